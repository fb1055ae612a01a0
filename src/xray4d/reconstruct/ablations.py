"""Neural ablations of X-Hexplane, trained exactly like it (same reconstructor,
schedule, regularisers, time budget): what sharing over time buys.

* ``static``: one X-Hexplane field with a single time node, so the time
  planes are constant and every frame renders the same volume (time ignored):
  the best single volume for the whole movie.
* ``perframe``: an independent static X-Hexplane field per frame
  (:class:`~xray4d.fields.perframe.PerFrameHexPlaneField`): no sharing over
  time. Each step trains the fields of the frames in its batch, so under a
  time budget each frame's field sees ``1 / T`` of the steps.
"""
from __future__ import annotations

import os
from typing import Callable

import torch

from ..config import ReconstructionConfig
from ..data import FitResult, Recording
from ..fields.perframe import PerFrameHexPlaneField
from .hexplane import HexPlaneReconstructor
from .schedule import normalised_times
from .registry import register_method

__all__ = ["StaticReconstructor", "PerFrameReconstructor"]


class StaticReconstructor(HexPlaneReconstructor):
    """X-Hexplane with time ignored: time resolution 1 at every stage."""

    method_name = "static"

    def __init__(self, recording: Recording, config: ReconstructionConfig,
                 checkpoint_path: str | os.PathLike | None = None, progress: bool = True,
                 on_step: Callable[[int, float, float], None] | None = None) -> None:
        super().__init__(recording, config, checkpoint_path, progress, on_step)
        self.final_time = 1
        self.stages = self._stages()

    def fit(self, resume: bool = False) -> FitResult:
        """Train and render like X-Hexplane; the result is labelled with this method."""
        result = super().fit(resume=resume)
        result.reconstruction.method = self.method_name
        result.reconstruction.config["method"] = self.method_name
        return result


class PerFrameReconstructor(StaticReconstructor):
    """Independent static X-Hexplane fields, one per frame."""

    method_name = "perframe"

    def make_field(self) -> PerFrameHexPlaneField:
        fc = self.config.field
        space, _ = self.stages[0]
        times = torch.as_tensor(normalised_times(self.recording.time), dtype=torch.float32)
        return PerFrameHexPlaneField(
            times, channels=fc.channels, space_resolution=space, decoder=fc.decoder,
            mlp_hidden=fc.mlp_hidden, activation=fc.activation, value_max=self.value_max,
            init_value=fc.init_value, init_scale=fc.init_scale,
            seed=self.config.train.seed).to(self.device)


@register_method("static", "ablation: X-Hexplane with time ignored (one volume for all frames)")
def static_method(recording: Recording, config: ReconstructionConfig, checkpoint_path=None,
                  progress: bool = True, resume: bool = False) -> FitResult:
    """Registered method ``static`` (checkpoints and resume as X-Hexplane)."""
    return StaticReconstructor(recording, config, checkpoint_path, progress).fit(resume=resume)


@register_method("perframe", "ablation: an independent static X-Hexplane field per frame")
def perframe_method(recording: Recording, config: ReconstructionConfig, checkpoint_path=None,
                    progress: bool = True, resume: bool = False) -> FitResult:
    """Registered method ``perframe`` (checkpoints and resume as X-Hexplane)."""
    return PerFrameReconstructor(recording, config, checkpoint_path, progress).fit(resume=resume)
