"""Trust without ground truth: how well a reconstruction is supported by its own data.

:func:`run_validation` fits the recording several times with the configured method
(one that trains a field, through :func:`~xray4d.reconstruct.fit.fit_field`) and
measures, from the data alone:

1. **Held-out pixels.** A share of each view's detector pixels, in square blocks, the
   same in every frame (:func:`~xray4d.reconstruct.holdout.block_mask`), is kept out of
   the data term of every fit and predicted by the main fit. Per frame: the relative
   error ``||pred - meas|| / ||meas - baseline||`` on those pixels (baseline 0 for line
   integrals, 1 for flat-corrected intensities) and the ratio of its root mean square
   to the noise level estimated from the data (:mod:`.noise`): near 1, the model
   predicts what it did not see as well as the noise allows. With three or more views
   each view is also left out in turn and predicted from the others.
2. **Half-data reconstructions.** The fitted pixels are split into two disjoint halves
   (a checkerboard of blocks, :func:`~xray4d.reconstruct.holdout.block_halves`), each
   fitted alone (other seeds); the Fourier shell correlation of the two, frame by frame
   (:mod:`.fsc`), gives a resolution in voxels (1/7 and half-bit thresholds) and in
   metres when the pixel size is known.
3. **Ensemble.** The main fit, fits with further seeds and the two halves: the standard
   deviation over them per voxel is the uncertainty map.
4. **Checks** (:data:`~.checks.THRESHOLDS`): the output saturated at a value bound below
   what the projections suggest, a held-out error far above the noise, a fit that has not
   converged, an FSC that falls early; each adds a one-line warning.
5. **A quality score** (:func:`~.checks.quality_error`, :func:`~.checks.quality_score`):
   the ensemble's spread over the whole volume and the value deficit at the bound times
   the object's share of the volume, summed into one number to rank reconstructions by.

The value bound of the field is resolved once (from the config, the material, or
estimated from the whole recording, held-out pixels included: one number shared by every
fit) so that the fits differ only in the pixels they see and their seed.
"""
from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from ..config import ReconstructionConfig
from ..data import FitResult, Reconstruction, Recording
from ..errors import InputError
from ..io import atomic_path, load_recording, save_reconstruction
from ..reconstruct.holdout import block_halves, block_mask
from ..reconstruct.field_of_view import lateral_padding, widen
from ..reconstruct.measurement import MeasuredData, finish, measured_data
from ..reconstruct.registry import get_method
from ..reconstruct.value_bound import (estimate_value_bound, estimate_value_max,
                                       estimate_value_max_moments, resolve_value_max,
                                       virtual_projections)
from .checks import (THRESHOLDS, check_warnings, loss_drop, quality_components, quality_error,
                     quality_score, saturation_share, verdict)
from .fsc import FSCCurve, fourier_shell_correlation
from .noise import noise_level

__all__ = ["THRESHOLDS", "OUTPUT_FILES", "ValidationRun", "run_validation", "validate",
           "validate_file", "write_validation", "save_uncertainty", "heldout_errors",
           "saturation_share", "check_warnings", "verdict", "loss_drop", "quality_error",
           "quality_score"]


@dataclass
class ValidationRun:
    """What :func:`run_validation` made.

    Attributes:
        summary: the numbers (``validation.json``): see :func:`run_validation`.
        reconstructions: every fit by name: ``reconstruction`` (the main fit, seed
            ``train.seed``), ``seed_<s>``, ``half_a``, ``half_b``, ``leave_view_<v>``.
        uncertainty: (T, Z, Y, X) standard deviation over the ensemble per voxel.
        ensemble_mean: (T, Z, Y, X) mean over the ensemble.
        fsc: the FSC curve of the two halves, per frame.
        heldout: (T, V, H, W) bool, the held-out pixels.
        predicted, measured: the main fit's prediction and what it was compared with.
    """

    summary: dict[str, Any]
    reconstructions: dict[str, Reconstruction]
    uncertainty: np.ndarray
    ensemble_mean: np.ndarray
    fsc: list[FSCCurve]
    heldout: np.ndarray
    predicted: np.ndarray
    measured: np.ndarray
    leave_view_out: dict[int, dict[str, Any]] = field(default_factory=dict)


def heldout_errors(predicted: np.ndarray, measured: np.ndarray, mask: np.ndarray,
                   baseline: float = 0.0) -> dict[str, np.ndarray]:
    """Per frame: relative error and root mean square error of ``predicted`` on ``mask``.

    Args:
        predicted, measured: (T, V, H, W).
        mask: (T, V, H, W) bool, the pixels compared.
        baseline: the value of empty space (0 for line integrals, 1 for transmissions).

    Returns:
        ``relative`` (T,): ``||pred - meas|| / ||meas - baseline||`` over the frame's
        masked pixels (NaN when it has none or they are all empty); ``rmse`` (T,).
    """
    m = mask.reshape(mask.shape[0], -1)
    diff = (predicted.astype(np.float64) - measured).reshape(m.shape)
    signal = (measured.astype(np.float64) - baseline).reshape(m.shape)
    sq = np.where(m, diff ** 2, 0.0).sum(axis=1)
    norm = np.where(m, signal ** 2, 0.0).sum(axis=1)
    count = m.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.where(norm > 0, np.sqrt(sq / np.where(norm > 0, norm, 1)), np.nan)
        rmse = np.where(count > 0, np.sqrt(sq / np.maximum(count, 1)), np.nan)
    return {"relative": rel, "rmse": rmse}


def _fits_plan(config: ReconstructionConfig, views: int, seeds: int, leave_view_out: bool
               ) -> list[tuple[str, int, str]]:
    """(name, seed, pixels) of every fit: pixels ``held-in``, ``half_a``, ``half_b`` or
    ``view <v>`` (all pixels but that view's)."""
    s0 = config.train.seed
    plan = [("reconstruction", s0, "held-in")]
    plan += [(f"seed_{s0 + i}", s0 + i, "held-in") for i in range(1, seeds)]
    plan += [("half_a", s0 + seeds, "half_a"), ("half_b", s0 + seeds + 1, "half_b")]
    if leave_view_out and views >= 3:
        plan += [(f"leave_view_{v}", s0, f"view {v}") for v in range(views)]
    return plan


def _fit(method, data: MeasuredData, config: ReconstructionConfig, mask: np.ndarray,
         seed: int, progress: bool) -> FitResult:
    cfg = config.updated({"train": {"seed": seed}})
    wide = widen(dataclasses.replace(data, fit_mask=mask), lateral_padding(data.recording, cfg))
    res = method.fit(wide, cfg, progress=progress)
    return finish(res, wide)


def _masks(shape: tuple[int, ...], config: ReconstructionConfig) -> dict[str, np.ndarray]:
    vc = config.validation
    held = block_mask(shape, vc.holdout, vc.block_px, vc.holdout_seed)
    half_a, half_b = block_halves(~held, vc.block_px)
    out = {"held-in": ~held, "half_a": half_a, "half_b": half_b, "held-out": held}
    for v in range(shape[1]):
        m = np.ones(shape, dtype=bool)
        m[:, v] = False
        out[f"view {v}"] = m
    return out


def _prepare(recording: Recording, config: ReconstructionConfig
             ) -> tuple[Any, MeasuredData, ReconstructionConfig, dict[str, Any]]:
    """Check the method, prepare the data, fix the value bound for every fit."""
    method = get_method(config.method)
    if not method.fits_field:
        raise InputError(recording.path or "recording", "config method",
                         f"validation fits held-out pixels, which needs a method that trains "
                         f"a field (e.g. hexplane), not {method.name!r}")
    method.check(recording, config)
    data = measured_data(recording, config)
    bound, source = resolve_value_max(data, config)
    # every fit on the same grid: widened as one reconstruction would be (warned once)
    pad = lateral_padding(data.recording, config, warn=True)
    cfg = config.updated({"field": {"value_max": bound,
                                    "lateral_margin": pad / data.recording.geometry.width}})
    info: dict[str, Any] = {"value_max": bound, "value_max_source": source}
    if data.value_max is None:   # no physical bound: what the projections suggest
        info.update(_value_estimate(data.recording, bound))
    return method, data, cfg, info


def _value_estimate(rec: Recording, bound: float) -> dict[str, Any]:
    """The object's value as the projections suggest it (margin 1), for the saturation check.

    The estimator of the value bound itself (:func:`~xray4d.reconstruct.value_bound.
    estimate_value_bound`: disc-shaped sections at the peaks, with three or more views
    raised to the moment estimate or the visual hull's floor). A bound resolved from the
    data is that estimate times the margin, so the check can only flag a bound given by
    the user. The lower of the old vertical-disc and moment estimates, used before, read
    0.17-0.58 of the truth on the jet, the tripod and the bubble column (the check could
    not fire there: docs/results/validation.md); they stay in ``value_estimates``.
    """
    p = virtual_projections(rec)          # as the estimate of the bound reads them
    angles = rec.geometry.angles_deg
    est, how = estimate_value_bound(p, angles, margin=1.0)
    found = {how: est, "disc": estimate_value_max(p, margin=1.0)}
    moments = estimate_value_max_moments(p, angles, margin=1.0)
    if moments is not None:
        found["moments"] = moments
    return {"value_estimate": est, "value_estimate_method": how,
            "value_estimates": found,
            "value_bound_over_estimate": bound / est if est > 0 else None}


def run_validation(recording: Recording, config: ReconstructionConfig, *, seeds: int = 2,
                   leave_view_out: bool = True, progress: bool = False,
                   log: Callable[[str], None] | None = None) -> ValidationRun:
    """Fit ``recording`` as ``config`` says, several times, and judge it from its data alone.

    Args:
        recording: the recording (line integrals or intensities).
        config: the resolved config; ``validation.holdout``, ``block_px`` and
            ``holdout_seed`` choose the held-out blocks, ``train`` the budget of each fit.
        seeds: fits on the held-in pixels with seeds ``train.seed`` + 0 .. seeds - 1 (>= 1).
        leave_view_out: with three or more views, also fit without each view in turn.
        progress: show each fit's progress bar.
        log: receives one line as each fit starts.

    Returns:
        a :class:`ValidationRun`; its ``summary`` holds ``heldout_relative_error`` (mean
        over frames) and ``heldout_relative_error_per_frame``, ``noise_level`` (sigma of
        the data) and ``noise_level_relative`` (over the largest datum),
        ``heldout_noise_ratio`` (and per frame), ``heldout_excess_relative_error`` (the
        part beyond the noise; and per frame), ``fit_noise_ratio``, ``data_loss_drop``,
        ``fsc_resolution_voxels`` (median over frames, 1/7 threshold; per frame; half-bit;
        ``fsc_resolution_m`` when the pixel size is known), ``uncertainty_mean`` (over
        all voxels) and ``uncertainty_mean_object``, ``saturation_share``,
        ``leave_view_out`` (three or more views), ``quality_error``, ``quality_score`` and
        ``quality_components`` (:mod:`.checks`), ``warnings`` and ``verdict``.
    """
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}")
    say = log or (lambda line: None)
    t0 = time.perf_counter()
    method, data, cfg, bound = _prepare(recording, config)
    measured = data.recording.projections
    masks = _masks(measured.shape, cfg)
    plan = _fits_plan(cfg, measured.shape[1], seeds, leave_view_out)
    results: dict[str, FitResult] = {}
    for i, (name, seed, pixels) in enumerate(plan):
        say(f"fit {i + 1}/{len(plan)}: {name} (seed {seed}, {pixels} pixels)")
        results[name] = _fit(method, data, cfg, masks[pixels], seed, progress)
    run = _assemble(recording, data, cfg, results, masks, bound)
    run.summary["settings"] = {"method": cfg.method, "seeds": seeds,
                               "holdout": cfg.validation.holdout,
                               "block_px": cfg.validation.block_px,
                               "holdout_seed": cfg.validation.holdout_seed,
                               "heldout_pixels": int(masks["held-out"].sum()),
                               "leave_view_out": bool(run.leave_view_out),
                               "iterations": cfg.train.iterations,
                               "time_budget_s": cfg.train.time_budget_s,
                               "stop": cfg.validation.stop}
    run.summary["fits"] = {n: {"seed": s, "pixels": p, "iterations": results[n].iterations,
                               "stopped_by": results[n].stopped_by,
                               "wall_s": results[n].reconstruction.wall_seconds}
                           for n, s, p in plan}
    run.summary["wall_s"] = time.perf_counter() - t0
    return run


def validate(recording: Recording, config: ReconstructionConfig, **kwargs: Any) -> dict[str, Any]:
    """The numbers of :func:`run_validation` (``validation.json``'s content)."""
    return run_validation(recording, config, **kwargs).summary


def _finite(x: Any) -> Any:
    """Floats, with NaN and infinities as None (plain JSON)."""
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_finite(v) for v in x]
    x = float(x)
    return x if np.isfinite(x) else None


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x[np.isfinite(x)])) if np.isfinite(x).any() else float("nan")


def _heldout_summary(pred: np.ndarray, meas: np.ndarray, masks: dict[str, np.ndarray],
                     baseline: float, sigma: float) -> dict[str, Any]:
    held = heldout_errors(pred, meas, masks["held-out"], baseline)
    fitted = heldout_errors(pred, meas, masks["held-in"], baseline)
    signal = heldout_errors(np.full_like(meas, baseline), meas, masks["held-out"], baseline)
    with np.errstate(invalid="ignore", divide="ignore"):
        # the error of predicting the noise-free data: the noise's share taken out
        excess = np.sqrt(np.maximum(held["rmse"] ** 2 - sigma ** 2, 0)) / signal["rmse"]
        # the relative error of a perfect prediction: the noise over the held-out signal's rms
        floor = sigma / signal["rmse"]
    ratio = held["rmse"] / sigma if sigma > 0 else np.full_like(held["rmse"], np.nan)
    fit_ratio = fitted["rmse"] / sigma if sigma > 0 else np.full_like(held["rmse"], np.nan)
    return {"heldout_relative_error": _finite(_nanmean(held["relative"])),
            "heldout_relative_error_per_frame": _finite(held["relative"]),
            "heldout_noise_floor_per_frame": _finite(floor),
            "heldout_excess_relative_error": _finite(_nanmean(excess)),
            "heldout_excess_relative_error_per_frame": _finite(excess),
            "heldout_noise_ratio": _finite(_nanmean(ratio)),
            "heldout_noise_ratio_per_frame": _finite(ratio),
            "fit_relative_error": _finite(_nanmean(fitted["relative"])),
            "fit_noise_ratio": _finite(_nanmean(fit_ratio))}


def _leave_view_out(results: dict[str, FitResult], meas: np.ndarray, masks: dict[str, np.ndarray],
                    baseline: float, sigma: float) -> dict[int, dict[str, Any]]:
    out = {}
    for v in range(meas.shape[1]):
        r = results.get(f"leave_view_{v}")
        if r is None:
            continue
        e = heldout_errors(r.predicted, meas, ~masks[f"view {v}"], baseline)
        out[v] = {"relative_error": _finite(_nanmean(e["relative"])),
                  "relative_error_per_frame": _finite(e["relative"]),
                  "noise_ratio": _finite(_nanmean(e["rmse"]) / sigma) if sigma > 0 else None}
    return out


def _fsc_summary(curves: list[FSCCurve], pixel_m: float | None) -> dict[str, Any]:
    res = np.array([c.resolution_voxels for c in curves])
    half = np.array([c.resolution_voxels_half_bit for c in curves])
    out = {"fsc_resolution_voxels": float(np.median(res)),
           "fsc_resolution_voxels_per_frame": _finite(res),
           "fsc_resolution_voxels_half_bit": float(np.median(half)),
           "fsc_resolution_voxels_half_bit_per_frame": _finite(half),
           "fsc_crossed_per_frame": [bool(c.crossed) for c in curves],
           "pixel_size_m": pixel_m}
    if pixel_m:
        out["fsc_resolution_m"] = float(np.median(res)) * pixel_m
        out["fsc_resolution_m_half_bit"] = float(np.median(half)) * pixel_m
    return out


def _assemble(recording: Recording, data: MeasuredData, cfg: ReconstructionConfig,
              results: dict[str, FitResult], masks: dict[str, np.ndarray],
              bound_info: dict[str, Any]) -> ValidationRun:
    """Every number of the validation from the fits (see :func:`run_validation`)."""
    main = results["reconstruction"]
    meas = np.asarray(data.recording.projections, dtype=np.float64)
    baseline = 0.0 if data.model is None else 1.0
    sigma, _ = noise_level(meas)
    scale = float(np.max(np.abs(meas - baseline))) or 1.0
    summary: dict[str, Any] = {**bound_info, "noise_level": sigma,
                               "noise_level_relative": sigma / scale}
    summary.update(_heldout_summary(main.predicted, meas, masks, baseline, sigma))
    lvo = _leave_view_out(results, meas, masks, baseline, sigma)
    if lvo:
        summary["leave_view_out"] = {str(v): d for v, d in lvo.items()}
        summary["leave_view_out_relative_error"] = _finite(
            _nanmean([d["relative_error"] for d in lvo.values() if d["relative_error"] is not None]))
    pixel_m = recording.geometry.pixel_size_m or recording.attrs.get("pixel_size_m")
    pixel_m = float(pixel_m) if pixel_m else None
    a, b = results["half_a"].reconstruction.volume, results["half_b"].reconstruction.volume
    curves = [fourier_shell_correlation(a[t], b[t], pixel_m) for t in range(a.shape[0])]
    summary.update(_fsc_summary(curves, pixel_m))
    members = [n for n in results if not n.startswith("leave_view_")]
    stack = np.stack([results[n].reconstruction.volume for n in members]).astype(np.float64)
    mean, std = stack.mean(axis=0), stack.std(axis=0, ddof=1)
    bound = float(cfg.field.value_max)
    obj = mean >= 0.1 * bound
    summary.update({"ensemble": members, "uncertainty_mean": float(std.mean()),
                    "uncertainty_mean_object": float(std[obj].mean()) if obj.any() else 0.0,
                    "object_fraction": float(obj.mean()),
                    "uncertainty_max": float(std.max()),
                    "saturation_share": saturation_share(main.reconstruction.volume, bound)})
    summary["data_loss_drop"] = loss_drop(main.losses)
    summary["quality_components"] = quality_components(summary)
    summary["quality_error"] = quality_error(summary)
    summary["quality_score"] = quality_score(summary)
    summary["warnings"] = check_warnings(summary)
    summary["verdict"] = verdict(summary)
    summary["thresholds"] = dict(THRESHOLDS)
    return ValidationRun(summary, {n: r.reconstruction for n, r in results.items()},
                         std.astype(np.float32), mean.astype(np.float32), curves,
                         masks["held-out"], main.predicted, meas.astype(np.float32), lvo)


#: the files :func:`write_validation` writes besides the reconstructions (``NAME.h5``)
OUTPUT_FILES = ("validation.json", "report.html", "uncertainty.h5", "heldout.png", "fsc.png",
                "uncertainty.png")


def save_uncertainty(run: ValidationRun, path: str | os.PathLike) -> None:
    """The uncertainty map as a reconstruction file: ``/reconstruction/volume`` is the
    standard deviation over the ensemble per voxel, ``/reconstruction/ensemble_mean`` the
    mean; the ``members`` attribute names the fits (written atomically)."""
    main = run.reconstructions["reconstruction"]
    members = run.summary["ensemble"]
    rec = Reconstruction(run.uncertainty, main.time, method=f"ensemble std ({main.method})",
                         config=main.config, source=main.source,
                         attrs={"quantity": "uncertainty", "members": ", ".join(members),
                                "description": "standard deviation over the ensemble per "
                                               "voxel (ddof 1)"})
    with atomic_path(path) as tmp:
        save_reconstruction(rec, tmp)
        with h5py.File(tmp, "a") as f:
            f.create_dataset("/reconstruction/ensemble_mean", data=run.ensemble_mean,
                             compression="gzip", compression_opts=1)


def write_validation(out: str | os.PathLike, run: ValidationRun, title: str = "") -> Path:
    """Write a validation into the folder ``out``: every fit as ``NAME.h5``,
    ``uncertainty.h5``, the figures, ``report.html`` and, last, ``validation.json``."""
    from ..viz.validation_report import write_validation_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, rec in run.reconstructions.items():
        save_reconstruction(rec, out / f"{name}.h5")
    save_uncertainty(run, out / "uncertainty.h5")
    write_validation_report(out, run, title)
    with atomic_path(out / "validation.json") as tmp:
        tmp.write_text(json.dumps(run.summary, indent=1, default=_json_default))
    return out / "validation.json"


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def validate_file(recording_path: str | os.PathLike, out: str | os.PathLike,
                  config: ReconstructionConfig, **kwargs: Any) -> ValidationRun:
    """Load a recording, :func:`run_validation` it and :func:`write_validation` into ``out``
    (nothing is written before every fit is done)."""
    rec = load_recording(recording_path)
    run = run_validation(rec, config, **kwargs)
    write_validation(out, run, title=f"{config.method}: {Path(recording_path).name}")
    return run
