"""Preprocessing of recordings: intensities to transmissions and to line integrals.

* :func:`transmission`: flat/dark-corrected intensity ``(I - dark) / (white - dark)``.
* :func:`to_line_integrals`: an ``intensity`` recording turned into a
  ``line_integral`` one, by ``-log`` (attenuation contrast: the field is beta) or
  Paganin phase retrieval (single material: the field is delta).
* :func:`intensity_line_integrals`: line integrals of delta by Paganin or by ``-log``
  times the material's delta/beta, for any method.

Physical parameters come from the recording's root attributes ``energy_keV``,
``pixel_size_m`` and ``propagation_distance_m`` (data-format.md); the material
(formula, density) is an argument, since the file format does not carry it.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from . import physics
from .data import Recording
from .errors import InputError
from .physics.measurement import OpticsSetup

__all__ = ["optics_of", "transmission", "to_line_integrals", "intensity_line_integrals",
           "LINE_INTEGRAL_METHODS"]

LINE_INTEGRAL_METHODS = ("paganin", "attenuation")


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
    """Flat/dark-corrected transmission (T, V, H, W) float32 of an ``intensity`` recording.

    Dead pixels (flat at or below dark) get transmission 1
    (:func:`xray4d.physics.flat_dark_correct`); :func:`xray4d.io.load_recording` refuses
    a view with no live pixel. A transmission beyond the float32 range (counts enormous
    beside a flat barely above the dark) is an InputError naming ``/exchange/data``,
    never a silent Inf.
    """
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
    with np.errstate(over="ignore"):
        trans = physics.flat_dark_correct(data, white, dark).float().numpy()
    if not np.isfinite(trans).all():
        raise InputError(rec.path or "recording", "/exchange/data",
                         "flat/dark-corrected transmission beyond the float32 range (counts "
                         "far above a flat field barely above the dark field?)")
    return trans


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


def intensity_line_integrals(rec: Recording, how: str, material: str = "H2O",
                             density_g_cm3: float = 1.0) -> Recording:
    """Line integrals of delta (pixel units) of an ``intensity`` recording, for any method.

    Args:
        rec: intensity recording with flat (and optionally dark) fields and optics attributes.
        how: ``paganin`` (single-material phase retrieval) or ``log`` (``-log`` of
            the transmission as attenuation, propagation ignored, times the
            material's delta/beta).
        material, density_g_cm3: the single material.

    Returns:
        a ``line_integral`` recording of delta; its truth (if any) stays delta.
    """
    if how == "paganin":
        return to_line_integrals(rec, "paganin", material=material, density_g_cm3=density_g_cm3)
    if how != "log":
        raise ValueError(f"intensity preprocessing must be 'paganin' or 'log', got {how!r}")
    index = physics.refractive_index(material, density_g_cm3, optics_of(rec).energy_kev)
    out = to_line_integrals(rec, "attenuation", material=material, density_g_cm3=density_g_cm3)
    out.projections = (out.projections * np.float32(index.delta_over_beta)).astype(np.float32)
    out.truth = rec.truth
    out.attrs["preprocessing"] = f"-log(flat/dark corrected) * delta/beta ({material}), delta"
    return out
