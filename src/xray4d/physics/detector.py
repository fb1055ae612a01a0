"""Detector model and flat/dark correction (torch, differentiable where it can be).

Images are ``(..., H, W)``; leading dimensions are a batch. Intensities are
*transmissions* (the flat field is 1) until :func:`record_counts` turns them
into counts at a fluence in photons per pixel.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["gaussian_kernel_1d", "gaussian_psf", "record_counts", "flat_dark_correct",
           "minus_log"]


def gaussian_kernel_1d(sigma_px: float, *, dtype: torch.dtype = torch.float32,
                       device: torch.device | str | None = None) -> torch.Tensor:
    """Normalised sampled Gaussian of standard deviation ``sigma_px`` pixels, radius ceil(4 sigma)."""
    radius = max(1, int(math.ceil(4 * sigma_px)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma_px) ** 2)
    return (k / k.sum()).to(device=device, dtype=dtype)


def gaussian_psf(image: torch.Tensor, sigma_px: float) -> torch.Tensor:
    """Blur (..., H, W) by a Gaussian point-spread function of ``sigma_px`` pixels.

    Separable convolution with replicated borders (a flat field stays flat and
    the mean of an image away from its border is kept). ``sigma_px = 0`` returns
    the input unchanged.
    """
    if not (sigma_px >= 0 and math.isfinite(sigma_px)):
        raise ValueError(f"PSF sigma must be a finite number of pixels >= 0, got {sigma_px}")
    if sigma_px == 0:
        return image
    k = gaussian_kernel_1d(sigma_px, dtype=image.dtype, device=image.device)
    r = (k.numel() - 1) // 2
    lead, (h, w) = image.shape[:-2], image.shape[-2:]
    x = image.reshape(-1, 1, h, w)
    x = F.pad(x, (r, r, r, r), mode="replicate")
    x = F.conv2d(x, k.reshape(1, 1, 1, -1))
    x = F.conv2d(x, k.reshape(1, 1, -1, 1))
    return x.reshape(*lead, h, w)


def record_counts(transmission: torch.Tensor, fluence: float | None, *, dark_counts: float = 0.0,
                  readout_sigma: float = 0.0,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Detector counts of a transmission image at a fluence (photons per pixel in the flat field).

    ``counts = Poisson(fluence * transmission) + dark_counts + Normal(0, readout_sigma)``.
    ``fluence=None`` gives the noise-free expectation (``fluence`` 1 photon scale
    then means counts = transmission + dark). Not differentiable (sampling).
    """
    t = transmission.clamp_min(0)
    if fluence is None:
        counts = t.clone()
    else:
        if not (fluence > 0 and math.isfinite(fluence)):
            raise ValueError(f"fluence must be a finite number of photons per pixel > 0, got {fluence}")
        counts = torch.poisson((fluence * t).double(), generator=generator).to(t.dtype)
    if readout_sigma < 0 or dark_counts < 0:
        raise ValueError("dark_counts and readout_sigma must be >= 0")
    counts = counts + dark_counts
    if readout_sigma > 0:
        counts = counts + readout_sigma * torch.randn(counts.shape, generator=generator,
                                                      dtype=counts.dtype)
    return counts


def flat_dark_correct(data: torch.Tensor, white: torch.Tensor, dark: torch.Tensor | None = None,
                      *, eps: float = 1e-6) -> torch.Tensor:
    """Flat/dark-corrected transmission ``(data - dark) / (white - dark)``.

    Args:
        data: (..., V, H, W) raw counts.
        white: flat fields (V, H, W) or (N, V, H, W); averaged over N.
        dark: dark fields, same layouts, or None (no dark current).
        eps: dead pixels are those where ``white - dark <= eps``: the flat carries no
            signal there, and their transmission is 1 (nothing absorbed, no
            information) rather than a division by a vanishing or negative number.
            Finite inputs give a finite result.
    """
    w = white.mean(dim=0) if white.dim() == data.dim() else white
    if dark is None:
        d = torch.zeros_like(w)
    else:
        d = dark.mean(dim=0) if dark.dim() == data.dim() else dark
    gain = w - d
    dead = gain <= eps
    trans = (data - d) / torch.where(dead, torch.ones_like(gain), gain)
    return torch.where(dead, torch.ones_like(trans), trans)


def minus_log(transmission: torch.Tensor, floor: float = 1e-6) -> torch.Tensor:
    """``-ln(transmission)``, the projected attenuation ``int mu ds`` (values below ``floor`` clamped)."""
    return -torch.log(transmission.clamp_min(floor))
