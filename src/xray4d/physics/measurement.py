"""Measurement models: what a detector records from the line integrals of a field.

:class:`IntensityModel` maps predicted line integrals of delta (and beta) to the
flat/dark-corrected intensity behind a propagation distance: exit wave, Fresnel
propagation, detector PSF and pixel binning. Differentiable, so a reconstructor can
fit raw intensities through it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .detector import gaussian_kernel_1d
from .materials import wavelength_m
from .propagation import exit_wave, fresnel_number, fresnel_transfer_function, intensity

__all__ = ["OpticsSetup", "IntensityModel"]


@dataclass(frozen=True)
class OpticsSetup:
    """Energy (keV), pixel size (m), propagation distance (m) of a recording."""

    energy_kev: float
    pixel_size_m: float
    distance_m: float

    @property
    def fresnel_number(self) -> float:
        return fresnel_number(self.pixel_size_m, self.distance_m, self.energy_kev)


class IntensityModel:
    """Predicted line integrals of delta (pixel units) -> detector transmission.

    Single material: the line integral of beta is that of delta divided by
    ``delta_over_beta`` (pass None for a pure phase object); with ``two_channel``
    the line integrals of beta are an input of their own. The chain, on a
    grid ``oversample`` times finer than the detector: bicubic upsampling of the
    line integrals, edge padding by ``pad`` fine pixels, exit wave, Fresnel
    propagation over the distance (FFT transfer function), intensity, crop,
    Gaussian PSF of ``psf_sigma_px`` detector pixels (replicated borders), and
    the mean over each detector pixel. Differentiable; the input is (..., H, W)
    (e.g. (B, V, H, W) from the projector).

    The linear steps are applied as small matrices along each axis (upsampling
    with padding before the exit wave; crop, PSF and binning after the
    intensity), built once per detector size, and the transfer function is
    cached: the result equals composing :func:`torch.nn.functional.interpolate`
    (bicubic), :func:`xray4d.physics.propagated_intensity`,
    :func:`xray4d.physics.gaussian_psf` and a block mean.

    Args:
        optics: energy, pixel size and propagation distance.
        delta_over_beta: the material's delta / beta, or None (pure phase object).
        psf_sigma_px: Gaussian PSF standard deviation in detector pixels (0: none).
        pad: fine pixels of edge padding on each side against the FFT's
            wrap-around; None: twice the reach of the band-limited Fresnel kernel
            (``lambda z / (2 p_fine^2)`` fine pixels) plus 4, e.g. 8 at Fresnel number 1
            with ``oversample=2``.
        oversample: propagate on a grid this many times finer (fringes about a
            pixel wide at Fresnel number ~1 are then sampled without aliasing).
        fine_input: the input is already on the fine grid ((..., H m, W m), line
            integrals in fine pixels, e.g. projections of a field rendered ``oversample``
            times finer): no upsampling; the output is still on the detector grid.
        two_channel: the input holds line integrals of delta and of beta,
            (..., 2, V, H, W) (e.g. (B, 2, V, H, W) from a two-channel field);
            ``delta_over_beta`` is then ignored.
    """

    def __init__(self, optics: OpticsSetup, delta_over_beta: float | None,
                 psf_sigma_px: float = 0.0, pad: int | None = None, oversample: int = 1,
                 fine_input: bool = False, two_channel: bool = False) -> None:
        self.fine_input = bool(fine_input)
        self.two_channel = bool(two_channel)
        self.optics = optics
        self.delta_over_beta = delta_over_beta
        self.psf_sigma_px = float(psf_sigma_px)
        self.oversample = int(oversample)
        if self.oversample < 1:
            raise ValueError(f"oversample must be >= 1, got {oversample}")
        fine = optics.pixel_size_m / self.oversample
        reach = wavelength_m(optics.energy_kev) * abs(optics.distance_m) / (2 * fine ** 2)
        self.pad = int(pad) if pad is not None else 2 * math.ceil(reach - 1e-6) + 4
        self._cache: dict = {}

    def _operators(self, h: int, w: int, dtype: torch.dtype, device: torch.device):
        """Upsampling (with padding) and PSF-binning matrices per axis, and the transfer
        function, for a detector of h x w pixels."""
        key = (h, w, dtype, device)
        if key not in self._cache:
            m, p = self.oversample, self.pad
            up = [_padded_upsampling(n * m if self.fine_input else n, 1 if self.fine_input
                                     else m, p).to(device=device, dtype=dtype) for n in (h, w)]
            down = [_psf_binning(n, m, p, self.psf_sigma_px).to(device=device, dtype=dtype)
                    for n in (h, w)]
            hk = None
            if self.optics.distance_m != 0:
                hk = fresnel_transfer_function(
                    (h * m + 2 * p, w * m + 2 * p), self.optics.pixel_size_m / m,
                    self.optics.distance_m, self.optics.energy_kev, device=device, dtype=dtype)
            self._cache[key] = (up, down, hk)
        return self._cache[key]

    def __call__(self, line_integrals_px: torch.Tensor) -> torch.Tensor:
        o, m = self.optics, self.oversample
        beta_px = None
        if self.two_channel:
            if line_integrals_px.dim() < 4 or line_integrals_px.shape[-4] != 2:
                raise ValueError(f"two-channel input must be (..., 2, V, H, W), got "
                                 f"{tuple(line_integrals_px.shape)}")
            delta_px, beta_px = line_integrals_px.unbind(-4)
        else:
            delta_px = line_integrals_px
        h, w = delta_px.shape[-2:]
        if self.fine_input:
            if h % m or w % m:
                raise ValueError(f"fine input of {h} x {w} pixels is not {m} times a detector")
            h, w = h // m, w // m
        (uh, uw), (bh, bw), hk = self._operators(h, w, delta_px.dtype, delta_px.device)
        # padded (and upsampled): line integrals in fine pixels
        gain = 1 if self.fine_input else m
        fine_px = uh @ delta_px @ uw.T * gain
        if beta_px is not None:
            beta_m = uh @ beta_px @ uw.T * (gain * o.pixel_size_m / m)
        elif self.delta_over_beta is None:
            beta_m = None
        else:
            beta_m = fine_px * (o.pixel_size_m / m / self.delta_over_beta)
        wave = exit_wave(fine_px * (o.pixel_size_m / m), beta_m, o.energy_kev)
        if hk is not None:
            wave = torch.fft.ifft2(torch.fft.fft2(wave) * hk)
        return bh @ intensity(wave) @ bw.T


def _padded_upsampling(n: int, m: int, pad: int) -> torch.Tensor:
    """(n m + 2 pad, n) matrix: bicubic upsampling by m (as ``F.interpolate``, align_corners
    False), then edge padding by ``pad`` fine pixels."""
    eye = torch.eye(n, dtype=torch.float64)
    if m > 1:
        # bicubic interpolation in torch is separable: one axis of an identity image
        up = torch.nn.functional.interpolate(eye.reshape(n, 1, n, 1), size=(n * m, 1),
                                             mode="bicubic", align_corners=False)
        eye = up.reshape(n, n * m).T
    idx = torch.arange(-pad, n * m + pad).clamp(0, n * m - 1)
    return eye[idx].contiguous()


def _psf_binning(n: int, m: int, pad: int, sigma_px: float) -> torch.Tensor:
    """(n, n m + 2 pad) matrix: crop the padding, Gaussian PSF of ``sigma_px`` detector
    pixels with replicated borders (as :func:`xray4d.physics.gaussian_psf`), mean over
    each block of m fine pixels."""
    nf = n * m
    blur = torch.eye(nf, dtype=torch.float64)
    if sigma_px > 0:
        k = gaussian_kernel_1d(sigma_px * m, dtype=torch.float64)
        r = (k.numel() - 1) // 2
        blur = torch.zeros(nf, nf, dtype=torch.float64)
        rows = torch.arange(nf)
        for j, weight in enumerate(k):
            blur.index_put_((rows, (rows + j - r).clamp(0, nf - 1)), weight.expand(nf),
                            accumulate=True)
    binning = torch.zeros(n, nf, dtype=torch.float64)
    binning[torch.arange(nf) // m, torch.arange(nf)] = 1.0 / m
    out = torch.zeros(n, nf + 2 * pad, dtype=torch.float64)
    out[:, pad:pad + nf] = binning @ blur
    return out
