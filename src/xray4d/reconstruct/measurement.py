"""How intensity recordings reach the reconstruction methods.

* :func:`reconstruct_intensity`: fit flat/dark-corrected intensities through the
  propagation model (:class:`xray4d.physics.measurement.IntensityModel`).
* :func:`reconstruct_intensity_recording`: what ``xray4d.api.reconstruct`` runs on
  intensity data, as ``config.physics.intensity`` says (``model``, ``paganin``
  or ``log``); the output ``volume`` is delta and ``volume_beta`` beta.

Physical parameters come from the recording's root attributes ``energy_keV``,
``pixel_size_m`` and ``propagation_distance_m`` (data-format.md); the material
(formula, density) is an argument, since the file format does not carry it.
"""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch

from .. import physics
from ..data import Recording
from ..errors import InputError
from ..geometry import Geometry
from ..physics.measurement import IntensityModel
from ..preprocess import intensity_line_integrals, optics_of, transmission
from .hexplane import HexPlaneReconstructor
from .registry import get_method
from .regularizers import VALUE_MARGIN

__all__ = ["reconstruct_intensity", "reconstruct_intensity_recording", "check_intensity_setup",
           "beta_over_delta_range", "DELTA_ATTRS"]


#: attributes of a reconstruction from intensity data: what ``volume`` and ``volume_beta`` hold
DELTA_ATTRS = {"quantity": "delta", "units": "dimensionless",
               "quantity_beta": "beta", "units_beta": "dimensionless"}


def reconstruct_intensity(rec: Recording, config, *, material: str | None = None,
                          density_g_cm3: float | None = None, psf_sigma_px: float | None = None,
                          oversample: int | None = None, fine_render: bool | None = None,
                          checkpoint_path=None, progress: bool = False, resume: bool = False):
    """Fit an X-Hexplane field of delta to flat/dark-corrected intensities through
    the propagation model (:class:`IntensityModel`).

    The material, PSF, oversampling and ``fine_render`` default to
    ``config.physics``. Unless the ``regularizers`` section sets them, the fit adds
    the one-material prior (``physics.material_prior``; not with ``beta: fitted``) and
    volume conservation (``physics.volume_conservation``: every frame holds the same
    total delta). Every regulariser weight is multiplied by
    ``physics.regularizer_gain``, and the learning rates warm up over
    ``physics.warmup_fraction`` of training unless ``train.warmup_fraction`` is
    set (the saved config shows what was used). The bound of the field
    (``field.value_max``), unless set in ``config``, is 1.02 times the delta of
    the material (the physics prior of
    a single known liquid; Paganin-based estimates are noise-limited for weak
    absorbers). The model propagates on a grid ``oversample`` times finer than
    the detector.

    With ``fine_render`` the field itself is rendered and projected on that
    finer grid (its planes keep the resolution ``field.space_scale`` asks for
    relative to the detector grid), so that edges can sit between voxels as the
    pixel-wide fringes say; the output volume is the mean over each voxel of the
    detector grid (a voxel average, like the simulator's truth). Otherwise the
    field is rendered on the detector grid and its projections are upsampled
    (bicubic) before propagation: faster, but the edges it can represent are
    blurred by a voxel, which costs ~3 dB on the droplet benchmark.

    With ``physics.beta: fitted`` the field has two output channels sharing its
    planes: delta (bounded as above) and the ratio beta / delta (bounded by
    ``physics.beta_over_delta_max``, default 4 times the material's, and started
    at the material's, so the fit starts as the single-material one); the model
    takes the line integrals of delta and of beta = delta * ratio. Fitting
    delta and beta as two free channels instead let delta collapse to zero
    while beta explained the low frequencies (measured on the droplets).

    Returns:
        a :class:`~xray4d.reconstruct.FitResult` whose reconstruction has
        ``volume`` = delta and ``volume_beta`` = beta (delta / (delta/beta) of the
        material, or the fitted channel) on the detector's voxel grid, and whose
        ``measured`` holds the corrected intensities (``predicted`` is their model
        prediction).
    """
    phys = config.physics
    material = phys.material if material is None else material
    density_g_cm3 = phys.density_g_cm3 if density_g_cm3 is None else density_g_cm3
    psf_sigma_px = phys.psf_sigma_px if psf_sigma_px is None else psf_sigma_px
    oversample = phys.oversample if oversample is None else int(oversample)
    fine_render = phys.fine_render if fine_render is None else bool(fine_render)
    fine_render = fine_render and oversample > 1
    opt = optics_of(rec)
    index = physics.refractive_index(material, density_g_cm3, opt.energy_kev)
    fitted_beta = phys.beta == "fitted"
    model = IntensityModel(opt, index.delta_over_beta, psf_sigma_px, oversample=oversample,
                           fine_input=fine_render, two_channel=fitted_beta)
    target = copy.copy(rec)
    target.projections = transmission(rec)
    target.white = target.dark = None
    if not config.field.value_max:  # one known material: delta bounds the field
        config = config.updated({"field": {"value_max": VALUE_MARGIN * index.delta}})
    updates = {"train": {"ema_decay": phys.ema_decay}}
    priors = phys.model_fit_priors(config.regularizers)
    if priors:
        updates["regularizers"] = priors
    config = config.updated(updates)
    if phys.regularizer_gain != 1:  # the intensities' noise floor is far above the line integrals'
        weights = dataclasses.asdict(config.regularizers)
        config = config.updated({"regularizers": {k: v * phys.regularizer_gain
                                                  for k, v in weights.items()}})
    if not config.train.warmup_fraction:
        config = config.updated({"train": {"warmup_fraction": phys.warmup_fraction}})
    bounds = init = None
    if fitted_beta:  # second channel: beta / delta, started at the material's
        ratio, ratio_max = beta_over_delta_range(index, phys.beta_over_delta_max)
        bounds = (float(config.field.value_max), ratio_max)
        init = (config.field.init_value, ratio / ratio_max)
    if fine_render:
        # the field is rendered and projected on the fine grid; the data stay on the
        # detector grid (the model bins its prediction)
        g, m = rec.geometry, oversample
        target.geometry = Geometry.from_angles(g.angles_deg, g.frames, g.height * m,
                                               g.width * m, opt.pixel_size_m / m)
        config = config.updated({"field": {"space_scale": config.field.space_scale / m}})
    result = HexPlaneReconstructor(target, config, checkpoint_path, progress,
                                   measurement=model, output_bounds=bounds, output_init=init,
                                   relative=fitted_beta).fit(resume=resume)
    if fine_render:
        r, m = result.reconstruction, oversample
        r.volume = _voxel_mean(r.volume, m)
        if r.volume_beta is not None:
            r.volume_beta = _voxel_mean(r.volume_beta, m)
        r.config.setdefault("resolved", {})["fine_render"] = {
            "oversample": m, "space_scale_on_fine_grid": config.field.space_scale}
    _label_delta(result, index, fitted_beta=fitted_beta)
    result.measured = target.projections
    return result


def beta_over_delta_range(index: physics.RefractiveIndex, limit: float | None
                          ) -> tuple[float, float]:
    """Start and bound of a fitted beta/delta: the material's ratio, and ``limit`` (default
    4 times it); ValueError (one line) when the bound is not above the start."""
    ratio = 1.0 / index.delta_over_beta
    ratio_max = float(limit or 4 * ratio)
    if ratio >= ratio_max:
        raise ValueError(f"{ratio_max:g} is not above the beta/delta of {index.formula} "
                         f"({ratio:.4g}), where the fit starts")
    return ratio, ratio_max


def _voxel_mean(volume: np.ndarray, m: int) -> np.ndarray:
    """(T, Z m, Y m, X m) -> (T, Z, Y, X): the mean over each block of m^3 fine voxels."""
    t, z, y, x = volume.shape
    return np.ascontiguousarray(volume.reshape(t, z // m, m, y // m, m, x // m, m)
                                .mean(axis=(2, 4, 6), dtype=np.float64), np.float32)


def _label_delta(result, index: physics.RefractiveIndex, fitted_beta: bool = False) -> None:
    """Add volume_beta (from delta by the material's delta/beta, unless the field fitted
    it) and the unit attributes."""
    r = result.reconstruction
    if not fitted_beta:
        r.volume_beta = (r.volume / np.float32(index.delta_over_beta)).astype(np.float32)
    r.attrs = {**r.attrs, **DELTA_ATTRS,
               "material": f"{index.formula}, {index.density_g_cm3:g} g/cm3, "
                           f"{index.energy_kev:g} keV: delta {index.delta:.6g}, beta {index.beta:.6g}",
               "volume_beta": "fitted: the field's second output channel" if fitted_beta
               else "derived: volume / (delta/beta of the material)"}


def check_intensity_setup(rec: Recording, config) -> physics.RefractiveIndex:
    """Refuse, before any fitting, an ``intensity`` recording that ``config`` cannot reconstruct.

    Returns the material's refractive index at the recording's energy.

    Raises:
        xray4d.io.InputError: one line naming the file and what is missing or
            incompatible: an optics attribute, the flat fields, method ``hexplane``
            for ``physics.intensity=model``, ``physics.beta: fitted`` without it, a
            material xraydb does not know, or a beta/delta bound below the material's.
    """
    where = rec.path or "recording"
    for key in ("energy_keV", "pixel_size_m", "propagation_distance_m"):
        if key not in rec.attrs:
            raise InputError(where, f"/ attribute {key}", "missing, needed to reconstruct "
                             "intensity data (quantity=intensity)")
    if rec.white is None:
        raise InputError(where, "/exchange/data_white", "missing, needed for quantity=intensity")
    phys = config.physics
    if phys.beta == "fitted" and phys.intensity != "model":
        raise InputError(where, "config physics.beta",
                         f"'fitted' needs physics.intensity model (--intensity model), not "
                         f"{phys.intensity!r}: retrieved line integrals carry one channel")
    if phys.intensity == "model" and config.method != "hexplane":
        raise InputError(where, "/exchange/data",
                         f"quantity 'intensity' is fitted through the propagation model by "
                         f"method hexplane only, not {config.method!r}; use --intensity paganin "
                         "or log (config physics.intensity) for other methods")
    try:
        index = physics.refractive_index(phys.material, phys.density_g_cm3,
                                         float(rec.attrs["energy_keV"]))
    except ValueError as exc:
        raise InputError(where, "config physics.material",
                         str(exc).splitlines()[0].rstrip(":")) from None
    if phys.beta == "fitted":
        try:
            beta_over_delta_range(index, phys.beta_over_delta_max)
        except ValueError as exc:
            raise InputError(where, "config physics.beta_over_delta_max", str(exc)) from None
    return index


def reconstruct_intensity_recording(rec: Recording, config, checkpoint_path=None,
                                    progress: bool = True, resume: bool = False):
    """Reconstruct an ``intensity`` recording as ``config.physics.intensity`` says.

    ``model`` fits the intensities through the propagation model
    (:func:`reconstruct_intensity`; method ``hexplane`` only); ``paganin`` and
    ``log`` turn them into line integrals of delta (:func:`intensity_line_integrals`)
    and run ``config.method`` on those. Either way the reconstruction's
    ``volume`` is delta, ``volume_beta`` is beta derived by the material's
    delta/beta, and its attributes name both and their units.

    Raises:
        xray4d.io.InputError: see :func:`check_intensity_setup`.
    """
    phys = config.physics
    index = check_intensity_setup(rec, config)
    if phys.intensity == "model":
        return reconstruct_intensity(rec, config, checkpoint_path=checkpoint_path,
                                     progress=progress, resume=resume)
    li = intensity_line_integrals(rec, phys.intensity, phys.material, phys.density_g_cm3)
    result = get_method(config.method)(li, config, checkpoint_path, progress, resume)
    _label_delta(result, index)
    result.reconstruction.attrs["preprocessing"] = li.attrs["preprocessing"]
    result.measured = li.projections
    return result
