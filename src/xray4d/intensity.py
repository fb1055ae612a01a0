"""Intensity recordings: preprocessing into line integrals, and the measurement model
that lets a line-integral reconstructor fit raw intensities.

* :func:`transmission`: flat/dark-corrected intensity ``(I - dark) / (white - dark)``.
* :func:`to_line_integrals`: an ``intensity`` recording turned into a
  ``line_integral`` recording the reconstructors accept, by ``-log``
  (attenuation contrast: the field is beta) or Paganin phase retrieval (single
  material: the field is delta).
* :class:`IntensityModel`: predicted line integrals of delta (pixel units) ->
  exit wave -> Fresnel propagation -> PSF -> transmission; differentiable, for
  fitting the corrected intensities directly (``reconstruct_intensity``).

Physical parameters come from the recording's root attributes ``energy_keV``,
``pixel_size_m`` and ``propagation_distance_m`` (data-format.md); the material
(formula, density) is an argument, since the file format does not carry it.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from . import physics
from .io import Recording

__all__ = ["OpticsSetup", "optics_of", "transmission", "to_line_integrals", "IntensityModel",
           "reconstruct_intensity", "LINE_INTEGRAL_METHODS"]

LINE_INTEGRAL_METHODS = ("paganin", "attenuation")


@dataclass(frozen=True)
class OpticsSetup:
    """Energy (keV), pixel size (m), propagation distance (m) of a recording."""

    energy_kev: float
    pixel_size_m: float
    distance_m: float

    @property
    def fresnel_number(self) -> float:
        return physics.fresnel_number(self.pixel_size_m, self.distance_m, self.energy_kev)


def optics_of(rec: Recording) -> OpticsSetup:
    """The optics of a recording from its root attributes; ValueError naming the missing one."""
    missing = [k for k in ("energy_keV", "pixel_size_m", "propagation_distance_m")
               if k not in rec.attrs]
    if missing:
        raise ValueError(f"{rec.path or 'recording'}: / attribute {missing[0]}: missing, needed "
                         "to model intensity data")
    return OpticsSetup(float(rec.attrs["energy_keV"]), float(rec.attrs["pixel_size_m"]),
                       float(rec.attrs["propagation_distance_m"]))


def transmission(rec: Recording) -> np.ndarray:
    """Flat/dark-corrected transmission (T, V, H, W) float32 of an ``intensity`` recording."""
    if rec.quantity != "intensity":
        raise ValueError(f"quantity {rec.quantity!r}: flat/dark correction needs intensity data")
    if rec.white is None:
        raise ValueError(f"{rec.path or 'recording'}: /exchange/data_white: missing, needed for "
                         "quantity=intensity")
    data = torch.as_tensor(rec.projections, dtype=torch.float64)
    white = torch.as_tensor(rec.white, dtype=torch.float64)
    dark = None if rec.dark is None else torch.as_tensor(rec.dark, dtype=torch.float64)
    if white.dim() == 3:
        white = white[None]
    if dark is not None and dark.dim() == 3:
        dark = dark[None]
    return physics.flat_dark_correct(data, white, dark).float().numpy()


def _line_integral_recording(rec: Recording, values: np.ndarray, how: str) -> Recording:
    out = copy.copy(rec)
    out.projections = np.ascontiguousarray(values, dtype=np.float32)
    out.quantity = "line_integral"
    out.white = out.dark = None
    out.attrs = dict(rec.attrs)
    out.attrs["preprocessing"] = how
    return out


def to_line_integrals(rec: Recording, method: str = "paganin", *, material: str = "H2O",
                      density_g_cm3: float = 1.0) -> Recording:
    """Turn an ``intensity`` recording into a ``line_integral`` one.

    Args:
        rec: intensity recording with flat (and optionally dark) fields and optics attributes.
        method: ``paganin``: single-material phase retrieval; line integrals of
            delta in pixel units (``delta * thickness / pixel``), so the field
            reconstructed is delta; truth stays delta. ``attenuation``: ``-log`` of
            the transmission as Beer-Lambert attenuation, divided by ``2 k p``:
            line integrals of beta, the field is beta (``truth`` becomes beta if known).
            Ignores propagation: edge fringes become artefacts.
        material, density_g_cm3: the single material (Paganin's delta/beta).
    """
    if method not in LINE_INTEGRAL_METHODS:
        raise ValueError(f"method must be one of {', '.join(LINE_INTEGRAL_METHODS)}, got {method!r}")
    opt = optics_of(rec)
    trans = torch.as_tensor(transmission(rec), dtype=torch.float64)
    if method == "attenuation":
        mu_int = physics.minus_log(trans)
        beta_px = mu_int / (2 * physics.wavenumber_per_m(opt.energy_kev) * opt.pixel_size_m)
        out = _line_integral_recording(rec, beta_px.numpy(), "-log(flat/dark corrected), beta")
        if rec.truth_beta is not None:
            out.truth = rec.truth_beta
        return out
    index = physics.refractive_index(material, density_g_cm3, opt.energy_kev)
    thick = physics.paganin_thickness(trans, delta=index.delta, beta=index.beta,
                                      energy_kev=opt.energy_kev, distance_m=opt.distance_m,
                                      pixel_size_m=opt.pixel_size_m)
    return _line_integral_recording(rec, (index.delta * thick / opt.pixel_size_m).numpy(),
                                    f"paganin ({material}, {density_g_cm3} g/cm3), delta")


class IntensityModel:
    """Predicted line integrals of delta (pixel units) -> detector transmission.

    Single material: the line integral of beta is that of delta divided by
    ``delta_over_beta`` (pass None for a pure phase object). Then the exit
    wave, Fresnel propagation over the distance (edge-padded FFT), intensity
    and a Gaussian PSF of ``psf_sigma_px`` pixels. Differentiable; the input
    is (..., H, W) (e.g. (B, V, H, W) from the projector).
    """

    def __init__(self, optics: OpticsSetup, delta_over_beta: float | None,
                 psf_sigma_px: float = 0.0, pad: int | None = None, oversample: int = 1) -> None:
        self.optics = optics
        self.delta_over_beta = delta_over_beta
        self.psf_sigma_px = float(psf_sigma_px)
        self.pad = pad
        self.oversample = int(oversample)

    def __call__(self, delta_px: torch.Tensor) -> torch.Tensor:
        o, m = self.optics, self.oversample
        if m > 1:
            # propagate on an m times finer grid (bicubic upsampling), then bin: fringes
            # about a pixel wide (Fresnel number ~1) are sampled without aliasing
            lead, (h, w) = delta_px.shape[:-2], delta_px.shape[-2:]
            delta_px = torch.nn.functional.interpolate(
                delta_px.reshape(-1, 1, h, w), scale_factor=m, mode="bicubic",
                align_corners=False).reshape(*lead, h * m, w * m) * m  # in fine pixels
        beta_px = None if self.delta_over_beta is None else delta_px / self.delta_over_beta
        img = physics.propagated_intensity(delta_px, beta_px, pixel_size_m=o.pixel_size_m / m,
                                           energy_kev=o.energy_kev, distance_m=o.distance_m,
                                           pad=self.pad)
        img = physics.gaussian_psf(img, self.psf_sigma_px * m)
        if m > 1:
            lead, (h, w) = img.shape[:-2], img.shape[-2:]
            img = img.reshape(*lead, h // m, m, w // m, m).mean(dim=(-3, -1))
        return img


def reconstruct_intensity(rec: Recording, config, *, material: str = "H2O",
                          density_g_cm3: float = 1.0, psf_sigma_px: float = 0.0,
                          oversample: int = 2, checkpoint_path=None, progress: bool = False):
    """Fit an X-Hexplane field of delta to flat/dark-corrected intensities through
    the propagation model (:class:`IntensityModel`).

    The bound of the field (``field.value_max``), unless set in ``config``, is
    1.02 times the delta of the material (the physics prior of a single known
    liquid; Paganin-based estimates are noise-limited for weak absorbers). The model propagates on a grid
    ``oversample`` times finer than the detector. The result's reconstruction
    has ``volume`` = delta and ``volume_beta`` = delta / (delta/beta) of the material.

    Returns:
        a :class:`~xray4d.reconstruct.FitResult`.
    """
    from .reconstruct import HexPlaneReconstructor

    opt = optics_of(rec)
    index = physics.refractive_index(material, density_g_cm3, opt.energy_kev)
    model = IntensityModel(opt, index.delta_over_beta, psf_sigma_px, oversample=oversample)
    target = copy.copy(rec)
    target.projections = transmission(rec)
    target.white = target.dark = None
    if not config.field.value_max:  # one known material: delta bounds the field
        config = config.updated({"field": {"value_max": 1.02 * index.delta}})
    result = HexPlaneReconstructor(target, config, checkpoint_path, progress,
                                   measurement=model).fit()
    result.reconstruction.volume_beta = (result.reconstruction.volume
                                         / np.float32(index.delta_over_beta))
    return result
