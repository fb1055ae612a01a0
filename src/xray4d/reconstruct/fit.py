"""Fitting a field to measured projections with the one training loop.

:func:`fit_field` is what a field method's ``fit`` calls: it builds the projector, the
data term (through the measurement model), the regularisers and any optional terms (the
flow prior, the adversarial term), runs the :class:`~.trainer.Trainer`, renders every
frame from the averaged weights and assembles the :class:`~xray4d.data.FitResult`. The
data term sees only the pixels of ``data.fit_mask`` when it is set; with
``validation.stop: auto`` a share of the pixels is watched instead of fitted and ends the
run (:mod:`.holdout`).
"""
from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from ..config import ReconstructionConfig
from ..data import FitResult, Reconstruction
from ..fields.base import Field
from ..projector import Projector
from .adversarial import AdversarialTerm
from .calibration import DetectorCalibration
from .checkpoint import run_fingerprint
from .field_of_view import crop_columns
from .distributed import is_writer, world
from .flow import build_flow_terms, render_velocity
from .holdout import HeldOutStop, auto_stop_masks
from .losses import LossTerm, ProjectionDataTerm
from .regularizers import build_regularizers
from .schedule import normalised_times
from .trainer import FieldModel, StopCriterion, Trainer, TrainOutcome
from .value_bound import bound_diagnostic, distinct_views, warn_about_bound

if TYPE_CHECKING:
    from .measurement import MeasuredData

__all__ = ["fit_field", "render_all", "predict_all", "masked_error"]


@torch.no_grad()
def render_all(model: FieldModel, fld: Field, times: torch.Tensor, chunk: int) -> np.ndarray:
    """Every frame on the model's grid, in chunks: (T, [O,] Z, Y, X) float32 on the CPU."""
    n = times.shape[0]
    parts = [model.render_batch(fld, torch.arange(i, min(i + chunk, n)), times[i:i + chunk])
             .float().cpu().numpy() for i in range(0, n, chunk)]
    return np.concatenate(parts).astype(np.float32)


@torch.no_grad()
def predict_all(data_term: ProjectionDataTerm, volume: np.ndarray, chunk: int) -> np.ndarray:
    """The measured quantity predicted from rendered frames, in chunks: (T, V, H, W)."""
    dev = data_term.measured.device
    n = volume.shape[0]
    return np.concatenate([
        data_term.predict(torch.as_tensor(volume[i:i + chunk], device=dev),
                          np.arange(i, min(i + chunk, n))).cpu().numpy()
        for i in range(0, n, chunk)])


@torch.no_grad()
def masked_error(model: FieldModel, fld: Field, times: torch.Tensor,
                 data_term: ProjectionDataTerm, mask: torch.Tensor, chunk: int) -> float:
    """Mean squared error of ``fld``'s prediction on the ``mask`` pixels (T, V, H, W bool on
    the device), relative to the data term's scale squared as the data term is."""
    total, count = 0.0, 0
    for i in range(0, times.shape[0], chunk):
        frames = np.arange(i, min(i + chunk, times.shape[0]))
        m = mask[i:i + chunk]
        if not bool(m.any()):
            continue
        pred = data_term.predict(model.render_batch(fld, torch.as_tensor(frames),
                                                    times[i:i + chunk]), frames)
        total += float((pred - data_term.measured[i:i + chunk])[m].double().pow(2).sum())
        count += int(m.sum())
    return total / max(count, 1) / data_term.scale ** 2


def fit_field(model: FieldModel, data: "MeasuredData", config: ReconstructionConfig, *,
              method: str, checkpoint_path: str | os.PathLike | None = None,
              progress: bool = True, resume: bool = False,
              on_step: Callable[[int, float, float], None] | None = None,
              extra_terms: list[LossTerm] | None = None,
              stop: StopCriterion | None = None) -> FitResult:
    """Fit ``model``'s field to ``data`` through its measurement model; render the result.

    The loss terms are the data term, the config's regularisers (scaled by the model's
    value bound, ``model.value_max`` when it has one) and ``extra_terms``. The
    reconstruction's ``volume`` is channel 0 on the fitting grid, ``volume_beta``
    channel 1 when there are two (:func:`~xray4d.reconstruct.measurement.finish` brings
    both to the voxel grid and labels them). A bounded output's diagnostic (the bound, its
    source, the share of the object at it: :func:`~.value_bound.bound_diagnostic`) goes to
    ``resolved.value_bound`` and warns (:class:`~xray4d.errors.ValueBoundWarning`) when the
    bound may cap the truth or is a shape guess.
    ``stop`` is a stop rule of the caller's (e.g.
    one that watches the fit); ``validation.stop: auto`` brings its own instead.
    """
    start = time.perf_counter()
    tc = config.train
    if not tc.iterations and not tc.time_budget_s:
        raise ValueError("set iterations, a time budget, or both")
    rec = data.recording
    dev = torch.device(tc.device)
    vc, fit_mask, watched = config.validation, data.fit_mask, None
    if vc.stop == "auto":
        fit_mask, watched = auto_stop_masks(vc, fit_mask, rec.projections.shape)
    calibration = DetectorCalibration(rec.geometry, config.calibration, dev, data.oversample) \
        if config.calibration.enabled else None
    # sparse: the rendered frames are voxel-major, which the CSR operator reads without a copy
    data_term = ProjectionDataTerm(Projector(rec.geometry, device=dev, sparse=True),
                                   torch.as_tensor(rec.projections, dtype=torch.float32, device=dev),
                                   data.model, channels=model.channels,
                                   mask=None if fit_mask is None
                                   else torch.as_tensor(fit_mask, device=dev),
                                   calibration=calibration)
    times = torch.as_tensor(normalised_times(rec.time) if model.frame_times is None
                            else model.frame_times, dtype=torch.float32, device=dev)
    regs = build_regularizers(config.regularizers.weights(), getattr(model, "value_max", 1.0))
    if watched is not None and stop is not None:
        raise ValueError("validation.stop 'auto' brings its own stop rule; give none")
    if watched is not None:
        watched_t = torch.as_tensor(watched, device=dev)
        stop = HeldOutStop(lambda f: masked_error(model, f, times, data_term, watched_t,
                                                  tc.render_chunk),
                           vc.stop_every, vc.stop_patience, vc.stop_min_improvement)
    flow, velocity = build_flow_terms(config.flow, model.shape,
                                      getattr(model, "final_time", rec.frames),
                                      getattr(model, "value_max", 1.0), tc.seed, dev)
    if config.adversarial.enabled:
        extra_terms = [*(extra_terms or []), AdversarialTerm(data_term, config.adversarial, tc.seed)]
    trainer = Trainer(model, [data_term, *regs, *flow, *(extra_terms or [])], times, tc,
                      fingerprint=run_fingerprint(rec, config.to_dict()),
                      checkpoint_path=checkpoint_path, progress=progress, on_step=on_step,
                      desc=method, start=start, stop=stop)
    outcome = trainer.fit(resume=resume)
    volume = render_all(model, outcome.field, times, tc.render_chunk)
    predicted = predict_all(data_term, volume, tc.render_chunk)
    # the share of fitted pixels among the measured ones (a widened detector's padding left out)
    cfg = _run_config(model, config, method, volume, rec, trainer, outcome, stop,
                      None if fit_mask is None else crop_columns(fit_mask, data.lateral_padding, 1))
    two = model.channels > 1
    recon = Reconstruction(volume=np.ascontiguousarray(volume[:, 0]) if two else volume,
                           time=np.asarray(rec.time, np.float64), method=method, config=cfg,
                           wall_seconds=trainer.elapsed(), source=str(rec.path or ""),
                           volume_beta=np.ascontiguousarray(volume[:, 1]) if two else None)
    if calibration is not None:
        recon.detector = calibration.found()
        cfg["resolved"]["calibration"] = calibration.summary()
    if velocity is not None:
        recon.velocity = render_velocity(velocity, times, model.shape,
                                         float(rec.time[-1] - rec.time[0]), tc.render_chunk)
    return FitResult(recon, outcome.field, outcome.history[data_term.name], outcome.loss_times,
                     outcome.iterations, outcome.stopped_by, predicted,
                     loss_terms=outcome.history, velocity_field=velocity)


def _run_config(model: FieldModel, config: ReconstructionConfig, method: str, volume: np.ndarray,
                rec, trainer: Trainer, outcome: TrainOutcome, stop: StopCriterion | None,
                fit_mask: np.ndarray | None) -> dict[str, Any]:
    """The output's config: the run's config and what it resolved (the value bound's
    diagnostic, which warns, iterations, the stop, every loss term's first and last value)."""
    cfg = config.to_dict()
    cfg["method"] = method
    resolved = model.resolved()
    if getattr(model, "value_max", None) and config.field.activation == "sigmoid":
        diag = bound_diagnostic(volume[:, 0] if model.channels > 1 else volume, model.value_max,
                                resolved.get("value_max_source", "config"),
                                distinct_views(rec.geometry.angles_deg))
        resolved["value_bound"] = diag
        if is_writer():
            warn_about_bound(diag)
    cfg["resolved"] = {**resolved, "iterations_run": outcome.iterations,
                       "stopped_by": outcome.stopped_by, "world_size": world()[1],
                       "loss_terms": {name: {"weight": outcome.weights[name],
                                             "first": values[0] if values else None,
                                             "final": values[-1] if values else None}
                                      for name, values in outcome.history.items()}}
    for term in trainer.terms:   # e.g. the adversarial term's discriminator
        if hasattr(term, "summary"):
            cfg["resolved"][term.name] = term.summary()
    if stop is not None and hasattr(stop, "summary"):
        cfg["resolved"]["stop"] = stop.summary()
    if fit_mask is not None:
        cfg["resolved"]["fitted_pixel_share"] = float(np.mean(fit_mask))
    return cfg
