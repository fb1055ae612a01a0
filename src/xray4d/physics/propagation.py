"""Projection-approximation optics and Fresnel near-field propagation (torch).

Conventions: ``n = 1 - delta + i beta``, a plane wave ``exp(i (k z - w t))``
travelling along the ray; after a thin sample (projection approximation) the
exit wave is ``exp(-k int beta ds) exp(-i k int delta ds)``, i.e. the projected
phase ``phi = -k int delta ds`` (radians) and the intensity attenuation
``int mu ds = 2 k int beta ds`` (Beer-Lambert, ``I = exp(-int mu ds)``).

Free-space propagation over a distance z uses the paraxial (Fresnel) transfer
function ``H(f) = exp(-i pi lambda z |f|^2)`` applied by FFT (the constant
``exp(i k z)`` is dropped); the field is padded first to push the periodic
wrap-around of the FFT away from the region of interest. The Fresnel number
of one pixel, ``N_F = p^2 / (lambda z)``, tells the regime: N_F >> 1 contact /
edge-enhancement, N_F ~ 1 strong near-field fringes, N_F << 1 holography.

Every function is differentiable, works on any device, and treats all leading
dimensions as a batch: images are ``(..., H, W)``. Line integrals are in metres
unless a name says ``_px`` (in detector pixels, as ``projector.py`` returns them).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .materials import wavelength_m, wavenumber_per_m

__all__ = ["projected_phase", "projected_attenuation", "exit_wave", "fresnel_number",
           "fresnel_transfer_function", "fresnel_propagate", "intensity",
           "propagated_intensity", "pad_image", "crop_image"]


def projected_phase(delta_integral_m: torch.Tensor, energy_kev: float) -> torch.Tensor:
    """Projected phase ``phi = -k int delta ds`` in radians (integral in metres)."""
    return -wavenumber_per_m(energy_kev) * delta_integral_m


def projected_attenuation(beta_integral_m: torch.Tensor, energy_kev: float) -> torch.Tensor:
    """Projected attenuation of the intensity ``int mu ds = 2 k int beta ds`` (dimensionless)."""
    return 2.0 * wavenumber_per_m(energy_kev) * beta_integral_m


def exit_wave(delta_integral_m: torch.Tensor, beta_integral_m: torch.Tensor | None,
              energy_kev: float) -> torch.Tensor:
    """Complex exit wave ``exp(-int mu ds / 2 + i phi)`` of a unit plane wave.

    Args:
        delta_integral_m: ``int delta ds`` (..., H, W) in metres.
        beta_integral_m: ``int beta ds`` in metres, same shape, or None (pure phase object).
        energy_kev: photon energy in keV.

    Returns:
        complex tensor (..., H, W) (complex64 for float32 input).
    """
    phi = projected_phase(delta_integral_m, energy_kev)
    if beta_integral_m is None:
        log_amp = torch.zeros_like(phi)
    else:
        log_amp = -0.5 * projected_attenuation(beta_integral_m, energy_kev)
    return torch.polar(torch.exp(log_amp), phi)


def fresnel_number(pixel_size_m: float, distance_m: float, energy_kev: float) -> float:
    """Fresnel number of one pixel, ``p^2 / (lambda z)`` (inf at z = 0)."""
    if distance_m == 0:
        return math.inf
    return pixel_size_m ** 2 / (wavelength_m(energy_kev) * abs(distance_m))


def fresnel_transfer_function(shape: tuple[int, int], pixel_size_m: float, distance_m: float,
                              energy_kev: float, *, device: torch.device | str | None = None,
                              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Fresnel transfer function ``exp(-i pi lambda z (fx^2 + fy^2))`` on the FFT grid.

    Args:
        shape: (H, W) of the (padded) image.
        pixel_size_m: sampling interval in metres.
        distance_m: propagation distance in metres (negative propagates backwards).
        energy_kev: photon energy in keV.
        device, dtype: of the real frequencies; the result is the matching complex dtype.

    Returns:
        complex tensor (H, W), in ``torch.fft.fft2`` frequency order.
    """
    h, w = shape
    fy = torch.fft.fftfreq(h, d=pixel_size_m, device=device, dtype=torch.float64)
    fx = torch.fft.fftfreq(w, d=pixel_size_m, device=device, dtype=torch.float64)
    f2 = fy[:, None] ** 2 + fx[None, :] ** 2
    # the phase in float64, then cast: lambda z f^2 reaches 1e3 rad at low N_F
    arg = -math.pi * wavelength_m(energy_kev) * distance_m * f2
    return torch.polar(torch.ones_like(arg), arg).to(torch.complex64 if dtype != torch.float64
                                                     else torch.complex128)


def pad_image(x: torch.Tensor, pad: int, mode: str = "edge") -> torch.Tensor:
    """Pad the last two dims of a real or complex (..., H, W) tensor by ``pad`` on each side.

    ``mode``: ``edge`` (replicate the border, the default: a flat background
    stays flat), ``reflect``, or ``constant`` (zeros).
    """
    if pad <= 0:
        return x
    if x.is_complex():
        return torch.complex(pad_image(x.real, pad, mode), pad_image(x.imag, pad, mode))
    torch_mode = {"edge": "replicate", "reflect": "reflect", "constant": "constant"}.get(mode)
    if torch_mode is None:
        raise ValueError(f"pad mode must be 'edge', 'reflect' or 'constant', got {mode!r}")
    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    y = F.pad(x.reshape(-1, 1, h, w), (pad, pad, pad, pad), mode=torch_mode)
    return y.reshape(*lead, h + 2 * pad, w + 2 * pad)


def crop_image(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Undo :func:`pad_image`: remove ``pad`` pixels from each side of the last two dims."""
    if pad <= 0:
        return x
    return x[..., pad:-pad, pad:-pad]


def fresnel_propagate(wave: torch.Tensor, distance_m: float, pixel_size_m: float,
                      energy_kev: float, *, pad: int | None = None,
                      pad_mode: str = "edge") -> torch.Tensor:
    """Propagate a complex wave (..., H, W) over ``distance_m`` in free space (Fresnel).

    Transfer-function method: pad, ``ifft2(fft2(u) * H)``, crop. Unitary on the
    padded grid (``|H| = 1``), so with ``pad=0`` the total intensity is conserved
    exactly (Parseval) and ``distance_m = 0`` is the identity.

    Args:
        wave: complex (..., H, W) on a grid of ``pixel_size_m``.
        distance_m: propagation distance in metres.
        pixel_size_m: pixel size in metres.
        energy_kev: photon energy in keV.
        pad: pixels added on each side; default ``max(H, W) // 2`` (doubling the grid).
        pad_mode: see :func:`pad_image`.

    Returns:
        the propagated complex wave, same shape and dtype.
    """
    if not wave.is_complex():
        raise ValueError("fresnel_propagate needs a complex wave (see exit_wave)")
    h, w = wave.shape[-2:]
    pad = max(h, w) // 2 if pad is None else int(pad)
    u = pad_image(wave, pad, pad_mode)
    real_dtype = torch.float64 if wave.dtype == torch.complex128 else torch.float32
    hk = fresnel_transfer_function(tuple(u.shape[-2:]), pixel_size_m, distance_m, energy_kev,
                                   device=u.device, dtype=real_dtype)
    out = torch.fft.ifft2(torch.fft.fft2(u) * hk)
    return crop_image(out, pad)


def intensity(wave: torch.Tensor) -> torch.Tensor:
    """Intensity ``|u|^2`` of a complex wave."""
    return wave.real ** 2 + wave.imag ** 2


def propagated_intensity(delta_integral_px: torch.Tensor, beta_integral_px: torch.Tensor | None,
                         *, pixel_size_m: float, energy_kev: float, distance_m: float,
                         pad: int | None = None) -> torch.Tensor:
    """Intensity (transmission, flat = 1) at the detector from projected delta and beta.

    The line integrals are in pixel units (``int delta ds`` with s in pixels,
    as ``projector.py`` returns them); they are converted to metres by
    ``pixel_size_m``, turned into the exit wave, and propagated over ``distance_m``.
    """
    wave = exit_wave(delta_integral_px * pixel_size_m,
                     None if beta_integral_px is None else beta_integral_px * pixel_size_m,
                     energy_kev)
    if distance_m != 0:
        wave = fresnel_propagate(wave, distance_m, pixel_size_m, energy_kev, pad=pad)
    return intensity(wave)
