"""What a method fits, chosen by the recording's quantity and the config.

* Line integrals: the recording as it is; the field is the recorded quantity.
* Intensities with ``physics.intensity: model``: the flat/dark-corrected transmissions,
  predicted through the propagation model
  (:class:`~xray4d.physics.measurement.IntensityModel`) from the line integrals of a
  field of delta (and, with ``physics.beta: fitted``, of beta / delta as a second
  channel). Methods that fit a field through a measurement model
  (``Method.fits_measurement_model``) take this path.
* Intensities with ``physics.intensity: paganin`` or ``log``: line integrals of delta
  retrieved from them (:func:`~xray4d.preprocess.intensity_line_integrals`), for any
  method.

:func:`measured_data` prepares a :class:`MeasuredData`; :func:`finish` brings a fit's
result back to the recording's voxel grid and labels it (``volume`` is delta,
``volume_beta`` beta, with their units). The defaults of the model fit (its
regulariser weights, weight average and warm-up) are the ``intensity-model`` preset
(:func:`xray4d.config.resolve_config`).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from scipy.ndimage import uniform_filter

from .. import physics
from ..config import ReconstructionConfig
from ..data import FitResult, Recording
from ..errors import InputError, NegativeDataWarning
from ..geometry import Geometry
from ..physics.measurement import IntensityModel
from ..preprocess import intensity_line_integrals, optics_of, transmission
from .distributed import is_writer
from .field_of_view import crop_result
from .regularizers import VALUE_MARGIN

if TYPE_CHECKING:
    from .registry import Method

__all__ = ["MeasuredData", "measured_data", "finish", "check_intensity_setup",
           "beta_over_delta_range", "DELTA_ATTRS"]

#: attributes of a reconstruction from intensity data: what ``volume`` and ``volume_beta`` hold
DELTA_ATTRS = {"quantity": "delta", "units": "dimensionless",
               "quantity_beta": "beta", "units_beta": "dimensionless"}


@dataclass
class MeasuredData:
    """What a method fits, and how its result is read.

    Attributes:
        recording: the projections to match (line integrals, or flat/dark-corrected
            transmissions) with their geometry; with ``oversample`` > 1 the geometry is
            that of a grid ``oversample`` times finer than the detector (the data stay on
            the detector grid: the model bins its prediction).
        model: predicted line integrals -> the recorded quantity; None for line integrals.
        channels: output channels of the field: 1, or 2 (delta and beta / delta).
        value_max: the bound the physics gives the field's first channel (1.02 times the
            material's delta), or None (the config or an estimate decides).
        beta_ratio: start and bound of the fitted beta / delta (two channels), else None.
        oversample: the field is rendered this many times finer than the voxel grid.
        index: the material's refractive index (intensity data), or None.
        preprocessing: how line integrals were retrieved from intensities, or None.
        fit_mask: (T, V, H, W) bool, the pixels of ``recording.projections`` the data term
            fits (None: all); the others are held out (:mod:`.holdout`). Honoured by the
            methods that fit a field through :func:`~.fit.fit_field`.
        lateral_padding: voxels the field's grid is wider than the recording's volume on each
            side along y and x (:mod:`.field_of_view`: a truncating detector); the
            recording's projections are then padded and ``fit_mask`` leaves the padded
            columns out.
    """

    recording: Recording
    model: IntensityModel | None = None
    channels: int = 1
    value_max: float | None = None
    beta_ratio: tuple[float, float] | None = None
    oversample: int = 1
    index: physics.RefractiveIndex | None = None
    preprocessing: str | None = None
    fit_mask: np.ndarray | None = None
    lateral_padding: int = 0


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


def check_intensity_setup(rec: Recording, config: ReconstructionConfig,
                          method: "Method") -> physics.RefractiveIndex:
    """Refuse, before any fitting, an ``intensity`` recording that ``config`` and ``method``
    cannot reconstruct. Returns the material's refractive index at the recording's energy.

    Raises:
        xray4d.errors.InputError: one line naming the file and what is missing or
            incompatible: an optics attribute, the flat fields, a method that cannot fit
            through the propagation model for ``physics.intensity=model``,
            ``physics.beta: fitted`` without it, a material xraydb does not know, or a
            beta/delta bound below the material's.
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
    if phys.intensity == "model" and not method.fits_measurement_model:
        raise InputError(where, "/exchange/data",
                         f"quantity 'intensity' is fitted through the propagation model by "
                         f"field methods (e.g. hexplane) only, not {method.name!r}; use "
                         "--intensity paganin or log (config physics.intensity) for other methods")
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


def _model_data(rec: Recording, config: ReconstructionConfig,
                index: physics.RefractiveIndex) -> MeasuredData:
    """Transmissions fitted through the propagation model (``physics.intensity: model``)."""
    phys = config.physics
    opt = optics_of(rec)
    fitted_beta = phys.beta == "fitted"
    m = phys.oversample if phys.fine_render and phys.oversample > 1 else 1
    model = IntensityModel(opt, index.delta_over_beta, phys.psf_sigma_px,
                           oversample=phys.oversample, fine_input=m > 1, two_channel=fitted_beta)
    target = replace(rec, projections=transmission(rec), white=None, dark=None)
    if m > 1:
        # the field is rendered and projected on the fine grid; the data stay on the
        # detector grid (the model bins its prediction)
        g = rec.geometry
        target.geometry = Geometry.from_angles(g.angles_deg, g.frames, g.height * m,
                                               g.width * m, opt.pixel_size_m / m,
                                               None if g.detector is None
                                               else g.detector.scaled(m))
    return MeasuredData(target, model, channels=2 if fitted_beta else 1,
                        value_max=VALUE_MARGIN * index.delta,
                        beta_ratio=beta_over_delta_range(index, phys.beta_over_delta_max)
                        if fitted_beta else None, oversample=m, index=index)


def measured_data(recording: Recording, config: ReconstructionConfig) -> MeasuredData:
    """What a method fits for ``recording`` as ``config`` says (see the module docstring).

    Call after :func:`check_intensity_setup` (``Method.check`` does) for intensity data.
    """
    if recording.quantity != "intensity":
        warn_about_negative_signal(recording.projections)
        return MeasuredData(recording)
    phys = config.physics
    index = physics.refractive_index(phys.material, phys.density_g_cm3,
                                     float(recording.attrs["energy_keV"]))
    if phys.intensity == "model":
        return _model_data(recording, config, index)
    li = intensity_line_integrals(recording, phys.intensity, phys.material, phys.density_g_cm3)
    warn_about_negative_signal(li.projections)
    return MeasuredData(li, index=index, preprocessing=li.attrs["preprocessing"])


#: the smoothed projections' most negative value, as a share of their largest, above which
#: the data hold an object of negative sign: noise alone stays far below (on a 32^3 x 10
#: droplet recording, Gaussian noise of 1, 5 and 10 % of the largest line integral reaches
#: -0.014, -0.07 and -0.14 once smoothed over 5 x 5 pixels)
NEGATIVE_SIGNAL_SHARE = 0.5


def negative_signal_share(projections: np.ndarray) -> float:
    """How negative the projections (T, V, H, W) are: minus the smallest value of the
    projections smoothed over 5 x 5 detector pixels, over the largest (0 when nothing is
    negative; inf when nothing is positive)."""
    smooth = uniform_filter(np.asarray(projections, np.float32), size=(1, 1, 5, 5),
                            mode="nearest")
    low, high = float(smooth.min()), float(smooth.max())
    if low >= 0:
        return 0.0
    return -low / high if high > 0 else math.inf


def warn_about_negative_signal(projections: np.ndarray) -> None:
    """Warn in one line (:class:`~xray4d.errors.NegativeDataWarning`) when the projections
    hold a negative object: the reconstructions are non-negative and would show it as 0."""
    share = negative_signal_share(projections)
    if share > NEGATIVE_SIGNAL_SHARE and is_writer():
        how = "no positive value" if math.isinf(share) else \
            f"smoothed minimum {share:.2g} x their maximum"
        warnings.warn(NegativeDataWarning(
            f"the projections are strongly negative ({how}): the reconstruction is "
            "non-negative and shows a negative object as 0; check the sign, the flat field or "
            "the reference image"), stacklevel=2)


def _voxel_mean(volume: np.ndarray, m: int) -> np.ndarray:
    """(T, Z m, Y m, X m) -> (T, Z, Y, X): the mean over each block of m^3 fine voxels."""
    t, z, y, x = volume.shape
    return np.ascontiguousarray(volume.reshape(t, z // m, m, y // m, m, x // m, m)
                                .mean(axis=(2, 4, 6), dtype=np.float64), np.float32)


def finish(result: FitResult, data: MeasuredData) -> FitResult:
    """Bring a fit of ``data`` to the recording's voxel grid and label what it holds.

    On a fine grid the volumes become the mean over each voxel; on a widened grid
    (``data.lateral_padding``) volumes and predictions are cropped to the recording's
    volume and detector (:func:`~.field_of_view.crop_result`); from intensity data the
    ``volume`` is delta and ``volume_beta`` beta (fitted, or delta over the material's
    delta/beta), with their units and the material in the attributes; ``measured`` is what
    the fit was compared with.
    """
    r, m = result.reconstruction, data.oversample
    if m > 1:
        r.volume = _voxel_mean(r.volume, m)
        if r.volume_beta is not None:
            r.volume_beta = _voxel_mean(r.volume_beta, m)
        if r.velocity is not None:   # fine voxels per second -> voxels per second
            t, c = r.velocity.shape[:2]
            mean = _voxel_mean(r.velocity.reshape((t * c,) + r.velocity.shape[2:]), m)
            r.velocity = (mean / np.float32(m)).reshape((t, c) + mean.shape[1:])
        r.config.setdefault("resolved", {})["fine_render"] = {
            "oversample": m, "space_scale_on_fine_grid": r.config["field"]["space_scale"] / m}
    if data.index is None:
        return crop_result(result, data.lateral_padding)
    index, fitted = data.index, data.channels > 1
    if not fitted:
        r.volume_beta = (r.volume / np.float32(index.delta_over_beta)).astype(np.float32)
    r.attrs = {**r.attrs, **DELTA_ATTRS,
               "material": f"{index.formula}, {index.density_g_cm3:g} g/cm3, "
                           f"{index.energy_kev:g} keV: delta {index.delta:.6g}, beta {index.beta:.6g}",
               "volume_beta": "fitted: the field's second output channel" if fitted
               else "derived: volume / (delta/beta of the material)"}
    if data.preprocessing:
        r.attrs["preprocessing"] = data.preprocessing
    result.measured = data.recording.projections
    return crop_result(result, data.lateral_padding)
