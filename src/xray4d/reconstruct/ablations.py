"""Neural ablations of X-Hexplane, trained exactly like it (same trainer, schedule,
regularisers, time budget): what sharing over time buys.

* ``static``: one X-Hexplane field with a single time node, so the time
  planes are constant and every frame renders the same volume (time ignored):
  the best single volume for the whole movie (the same at any time: ``--times`` works).
* ``perframe``: an independent static X-Hexplane field per frame
  (:class:`~xray4d.fields.perframe.PerFrameHexPlaneField`): no sharing over
  time. Each step trains the fields of the frames in its batch, so under a
  time budget each frame's field sees ``1 / T`` of the steps. It has the recorded
  frames only (``--times`` between them is refused).
"""
from __future__ import annotations

import torch

from ..config import ReconstructionConfig
from ..fields.base import Field
from ..fields.perframe import PerFrameHexPlaneField
from .hexplane import HexPlaneMethod, HexPlaneModel
from .measurement import MeasuredData
from .registry import register_method
from .schedule import normalised_times
from .trainer import FieldModel

__all__ = ["PerFrameModel", "Static", "PerFrame"]


class PerFrameModel(HexPlaneModel):
    """Independent static X-Hexplane fields, one per frame."""

    def __init__(self, data: MeasuredData, config: ReconstructionConfig) -> None:
        super().__init__(data, config, time_nodes=1)
        if self.channels > 1:
            raise ValueError("perframe fits one output channel (not physics.beta: fitted)")
        self.frame_times = torch.as_tensor(normalised_times(data.recording.time),
                                           dtype=torch.float32)

    def make_field(self) -> Field:
        space, _ = self.stages[0]
        return PerFrameHexPlaneField(self.frame_times, space_resolution=space,
                                     **self.field_options()).to(self.device)


@register_method
class Static(HexPlaneMethod):
    """X-Hexplane with time ignored: time resolution 1 at every stage."""

    name = "static"
    description = "ablation: X-Hexplane with time ignored (one volume for all frames)"

    def model(self, data: MeasuredData, config: ReconstructionConfig) -> FieldModel:
        return HexPlaneModel(data, config, time_nodes=1)


@register_method
class PerFrame(HexPlaneMethod):
    """Independent static X-Hexplane fields, one per frame."""

    name = "perframe"
    description = "ablation: an independent static X-Hexplane field per frame"
    #: a field per recorded frame: nothing between them
    continuous_time = False

    def model(self, data: MeasuredData, config: ReconstructionConfig) -> FieldModel:
        return PerFrameModel(data, config)
