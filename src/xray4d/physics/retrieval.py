"""Phase retrieval from a single propagation distance (torch).

Paganin's single-material method (D. Paganin, S. C. Mayo, T. E. Gureyev,
P. R. Miller, S. W. Wilkins, "Simultaneous phase and amplitude extraction from
a single defocused image of a homogeneous object", J. Microsc. 206, 33-40,
2002, eq. 10): for a homogeneous object of known delta/beta, the projected
thickness is

    T = -(1/mu) ln( IFFT[ FFT[I / I0] / (1 + pi lambda z (delta/beta) |f|^2) ] ),

with ``mu = 2 k beta = 4 pi beta / lambda`` and spatial frequencies f in cycles
per metre. It is exact for the transport-of-intensity (small z) regime and a
low-pass approximation beyond.
"""
from __future__ import annotations

import math

import torch

from .materials import wavelength_m, wavenumber_per_m
from .propagation import crop_image, pad_image

__all__ = ["paganin_thickness", "paganin_filter"]


def paganin_filter(shape: tuple[int, int], pixel_size_m: float, distance_m: float,
                   energy_kev: float, delta_over_beta: float, *,
                   device: torch.device | str | None = None,
                   dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``1 / (1 + pi lambda z (delta/beta) |f|^2)`` on the FFT grid of ``shape`` (H, W)."""
    h, w = shape
    fy = torch.fft.fftfreq(h, d=pixel_size_m, device=device, dtype=torch.float64)
    fx = torch.fft.fftfreq(w, d=pixel_size_m, device=device, dtype=torch.float64)
    f2 = fy[:, None] ** 2 + fx[None, :] ** 2
    return (1.0 / (1.0 + math.pi * wavelength_m(energy_kev) * distance_m * delta_over_beta * f2)
            ).to(dtype)


def paganin_thickness(transmission: torch.Tensor, *, delta: float, beta: float,
                      energy_kev: float, distance_m: float, pixel_size_m: float,
                      pad: int | None = None, floor: float = 1e-6) -> torch.Tensor:
    """Projected thickness in metres of a homogeneous object from one near-field image.

    Args:
        transmission: flat/dark-corrected intensity ``I / I0`` (..., H, W).
        delta, beta: refractive index of the object's single material.
        energy_kev: photon energy in keV.
        distance_m: sample-detector distance in metres.
        pixel_size_m: pixel size in metres.
        pad: pixels of edge padding on each side (default ``max(H, W) // 2``).
        floor: smallest filtered transmission before the logarithm.

    Returns:
        projected thickness ``T`` (..., H, W) in metres; ``delta * T`` is the
        line integral of delta and ``-k delta T`` the projected phase.
    """
    if not (delta > 0 and beta > 0):
        raise ValueError(f"Paganin retrieval needs delta > 0 and beta > 0, got {delta}, {beta}")
    h, w = transmission.shape[-2:]
    pad = max(h, w) // 2 if pad is None else int(pad)
    x = pad_image(transmission, pad, "edge")
    filt = paganin_filter(tuple(x.shape[-2:]), pixel_size_m, distance_m, energy_kev, delta / beta,
                          device=x.device, dtype=x.dtype)
    low = torch.fft.ifft2(torch.fft.fft2(x) * filt).real
    mu = 2.0 * wavenumber_per_m(energy_kev) * beta
    return crop_image(-torch.log(low.clamp_min(floor)) / mu, pad)
