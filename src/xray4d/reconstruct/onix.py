"""4D-ONIX as a method: one network trained on several recordings at once, applied to
new recordings without fitting.

The network (:class:`~xray4d.fields.onix.OnixNetwork`: a CNN encoder of each frame's
views and an implicit generator sampling them) is trained by the one training loop
(:func:`~xray4d.reconstruct.fit.fit_field`, :class:`~xray4d.reconstruct.trainer.Trainer`):
the recordings' frames are stacked into one set of training frames
(:func:`stack_recordings`: their projections, angles per frame, and each recording's
own normalised times), and :class:`OnixModel` renders a batch of them from their own
projections (:meth:`~.trainer.FieldModel.render_batch`). The loss terms are those of every
field method: the data term through the projector (each frame's rendering projected at
its measured angles, compared with its projections), the configured regularisers, and
with ``--adversarial`` the patch discriminator on novel views
(:mod:`~xray4d.reconstruct.adversarial`).

:func:`fit_recordings` trains and returns one result per recording and the network;
:func:`apply_network` reconstructs a recording with a trained network in one forward pass
per chunk of frames (saved and loaded by :mod:`.onix_file`). The registered method
``onix`` trains on the one recording it is given; ``xray4d reconstruct A.h5 B.h5 ...
--method onix`` trains on all of them (:mod:`xray4d.commands.reconstruct_joint`).

Settings: the network's size is :data:`ARCHITECTURE`; its learning rate is
``train.lr_decoder`` times :data:`LEARNING_RATE_FACTOR`; the weight average's decay is at
most :data:`EMA_DECAY_MAX` (a network's early weights are no estimate of its last).
"""
from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import numpy as np
import torch

from ..config import ReconstructionConfig
from ..data import FitResult, Reconstruction, Recording
from ..errors import InputError
from ..fields.onix import OnixNetwork
from ..geometry import Geometry
from ..projector import Projector
from .fit import fit_field
from .measurement import MeasuredData
from .registry import Method, register_method
from .schedule import normalised_times
from .trainer import FieldModel
from .value_bound import resolve_value_max

__all__ = ["ARCHITECTURE", "OnixModel", "Onix", "stack_recordings", "fit_recordings",
           "apply_network"]

#: the network's size (besides the views, which the recordings set)
ARCHITECTURE: dict[str, int] = {"encoder_channels": 16, "feature_channels": 16, "blocks": 2,
                                "space_bands": 6, "time_bands": 4, "hidden": 64, "layers": 3}
#: the network's learning rate is ``train.lr_decoder`` times this (0.005 by default: at 0.01
#: the 16^3 droplets of the tests drove every output to 0 within 1000 steps)
LEARNING_RATE_FACTOR = 0.25
#: the largest decay of the weight average while training the network
EMA_DECAY_MAX = 0.99


def _source(rec: Recording) -> str:
    return str(rec.path or "recording")


def check_compatible(recordings: list[Recording], views: int | None = None) -> None:
    """Refuse (one line naming the file) recordings that cannot share one network: another
    number of views, or another detector size than the first (or than ``views``)."""
    first = recordings[0].geometry
    want_views = first.views if views is None else views
    for rec in recordings:
        g = rec.geometry
        if g.views != want_views:
            raise InputError(_source(rec), "/exchange/data", f"{g.views} views per frame; "
                             f"onix needs {want_views} (the network's and the other recordings')")
        if (g.height, g.width) != (first.height, first.width):
            raise InputError(_source(rec), "/exchange/data",
                             f"detector {g.height} x {g.width}; the other recordings have "
                             f"{first.height} x {first.width}")


def stack_recordings(datas: list[MeasuredData]) -> tuple[MeasuredData, np.ndarray]:
    """One set of training frames from several recordings: their projections and angles
    stacked frame after frame (times 0, 1, 2, ...), and each frame's normalised time in its
    own recording (N,)."""
    recs = [d.recording for d in datas]
    check_compatible(recs)
    g = recs[0].geometry
    angles = np.concatenate([r.geometry.angles_deg for r in recs])
    projections = np.concatenate([r.projections for r in recs]).astype(np.float32)
    geometry = Geometry.from_angles(angles, angles.shape[0], g.height, g.width, g.pixel_size_m)
    stacked = Recording(projections, geometry, "line_integral",
                        time=np.arange(angles.shape[0], dtype=np.float64),
                        path=recs[0].path if len(recs) == 1 else None)
    times = np.concatenate([normalised_times(r.time) for r in recs])
    masks = [d.fit_mask for d in datas]
    mask = None if all(m is None for m in masks) else np.concatenate(
        [np.ones(d.recording.projections.shape, bool) if m is None else m
         for d, m in zip(datas, masks)])
    return MeasuredData(stacked, fit_mask=mask), times


class OnixModel(FieldModel):
    """The network for the trainer: every training frame rendered from its own projections.

    Args:
        datas: the recordings trained on (line integrals, one detector size and views).
        config: the run's config (``field.value_max``, ``field.init_value``, ``train``).
    """

    def __init__(self, datas: list[MeasuredData], config: ReconstructionConfig) -> None:
        stacked, times = stack_recordings(datas)
        self.config, self.device = config, torch.device(config.train.device)
        rec = stacked.recording
        self.shape = rec.geometry.volume_shape
        self.views = rec.geometry.views
        self.projections = torch.as_tensor(rec.projections, device=self.device)
        self.angles = torch.as_tensor(rec.geometry.angles_deg, dtype=torch.float32,
                                      device=self.device)
        self.frame_times = torch.as_tensor(times, dtype=torch.float32, device=self.device)
        bounds = [resolve_value_max(d, config) for d in datas]
        self.value_max = max(b[0] for b in bounds)
        self.value_max_source = bounds[0][1]
        self.input_scale = float(np.abs(rec.projections).max()) or 1.0
        self.stacked = stacked

    def make_field(self) -> OnixNetwork:
        return OnixNetwork(self.views, **ARCHITECTURE, value_max=self.value_max,
                           init_value=self.config.field.init_value,
                           input_scale=self.input_scale,
                           seed=self.config.train.seed).to(self.device)

    def parameter_groups(self, field: OnixNetwork) -> list[dict[str, Any]]:
        return [{"params": list(field.parameters()),
                 "lr": self.config.train.lr_decoder * LEARNING_RATE_FACTOR}]

    def render(self, field: OnixNetwork, times: torch.Tensor) -> torch.Tensor:
        raise TypeError("the onix network renders frames from their projections: render_batch")

    def render_batch(self, field: OnixNetwork, frames: torch.Tensor,
                     times: torch.Tensor) -> torch.Tensor:
        idx = frames.to(self.device)
        return field.render(self.projections[idx], self.angles[idx], times, self.shape)

    def resolved(self) -> dict[str, Any]:
        return {"value_max": self.value_max, "value_max_source": self.value_max_source,
                "architecture": {"views": self.views, **ARCHITECTURE},
                "input_scale": self.input_scale}


def _onix_config(config: ReconstructionConfig) -> ReconstructionConfig:
    """The config the network is trained with: the weight average's decay capped."""
    train = dataclasses.replace(config.train,
                                ema_decay=min(config.train.ema_decay, EMA_DECAY_MAX))
    return dataclasses.replace(config, train=train)


def _split(result: FitResult, datas: list[MeasuredData], names: list[str]) -> list[FitResult]:
    """One result per recording from the result of the stacked frames."""
    out, start = [], 0
    r = result.reconstruction
    for data in datas:
        rec = data.recording
        end = start + rec.frames
        cfg = {**r.config, "resolved": {**r.config.get("resolved", {}), "trained_on": names}}
        recon = Reconstruction(volume=np.ascontiguousarray(r.volume[start:end]),
                               time=np.asarray(rec.time, np.float64), method=r.method,
                               config=cfg, wall_seconds=r.wall_seconds, source=_source(rec))
        out.append(FitResult(recon, result.field, result.losses, result.loss_times,
                             result.iterations, result.stopped_by,
                             None if result.predicted is None
                             else result.predicted[start:end], loss_terms=result.loss_terms))
        start = end
    return out


def fit_recordings(datas: list[MeasuredData], config: ReconstructionConfig, *,
                   checkpoint_path: str | os.PathLike | None = None, progress: bool = True,
                   resume: bool = False) -> tuple[list[FitResult], OnixNetwork]:
    """Train one network on every recording of ``datas`` (line integrals) through the
    trainer; each recording's reconstruction (on its voxel grid, not yet
    :func:`~.measurement.finish`-ed) and the network (averaged weights)."""
    for d in datas:
        if d.model is not None or d.oversample != 1 or d.channels != 1:
            raise InputError(_source(d.recording), "/exchange/data", "onix fits line integrals; "
                             "give intensity recordings with --intensity paganin or log")
    model = OnixModel(datas, _onix_config(config))
    result = fit_field(model, model.stacked, model.config, method=Onix.name,
                       checkpoint_path=checkpoint_path, progress=progress, resume=resume)
    names = [_source(d.recording) for d in datas]
    return _split(result, datas, names), result.field


@torch.no_grad()
def apply_network(network: OnixNetwork, data: MeasuredData, config: ReconstructionConfig,
                  description: dict[str, Any] | None = None) -> FitResult:
    """Reconstruct a recording with a trained network, without fitting: every frame rendered
    from its projections (chunks of ``train.render_chunk`` frames) and its prediction of the
    projections through the projector."""
    t0 = time.perf_counter()
    rec = data.recording
    check_compatible([rec], views=network.options["views"])
    if data.model is not None or data.oversample != 1:
        raise InputError(_source(rec), "/exchange/data", "onix reconstructs line integrals; "
                         "give intensity recordings with --intensity paganin or log")
    dev = next(network.parameters()).device
    projections = torch.as_tensor(rec.projections, dtype=torch.float32, device=dev)
    angles = torch.as_tensor(rec.geometry.angles_deg, dtype=torch.float32, device=dev)
    times = torch.as_tensor(normalised_times(rec.time), dtype=torch.float32, device=dev)
    projector = Projector(rec.geometry, device=dev)
    chunk, shape = config.train.render_chunk, rec.geometry.volume_shape
    volumes, predicted = [], []
    for i in range(0, rec.frames, chunk):
        v = network.render(projections[i:i + chunk], angles[i:i + chunk], times[i:i + chunk],
                           shape)
        volumes.append(v.float().cpu().numpy())
        predicted.append(projector.forward(v, frames=np.arange(i, i + v.shape[0])).cpu().numpy())
    cfg = config.to_dict()
    cfg["method"] = Onix.name
    cfg["resolved"] = {"applied_model": description or {}, "value_max": network.value_max,
                       "iterations_run": 0, "stopped_by": "trained model applied"}
    recon = Reconstruction(volume=np.concatenate(volumes), time=np.asarray(rec.time, np.float64),
                           method=Onix.name, config=cfg, wall_seconds=time.perf_counter() - t0,
                           source=_source(rec))
    return FitResult(recon, network, iterations=0, stopped_by="trained model applied",
                     predicted=np.concatenate(predicted))


@register_method
class Onix(Method):
    """4D-ONIX: one network for many recordings (see the module docstring)."""

    name = "onix"
    description = ("4D-ONIX: CNN encoder of the views + implicit generator, trained on several "
                   "recordings at once, applies to new ones without fitting")
    fits_field = True
    trains_across_recordings = True

    def fit(self, data: MeasuredData, config: ReconstructionConfig, *,
            checkpoint_path: str | os.PathLike | None = None, progress: bool = True,
            resume: bool = False) -> FitResult:
        """Train a network on this one recording (:func:`fit_recordings`)."""
        results, _ = fit_recordings([data], config, checkpoint_path=checkpoint_path,
                                    progress=progress, resume=resume)
        return results[0]
