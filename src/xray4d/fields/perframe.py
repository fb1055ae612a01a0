"""Independent fields per frame: the ablation of X-Hexplane's sharing over time.

One :class:`HexPlaneField` with a single time node (so its time planes are
constant: a static 3D field) per frame. Same representation, decoder and
sigmoid bound as X-Hexplane, but no parameter is shared between frames.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import Field
from .hexplane import HexPlaneField

__all__ = ["PerFrameHexPlaneField"]


class PerFrameHexPlaneField(Field):
    """A stack of static X-Hexplane fields, one per frame, chosen by time.

    Args:
        frame_times: normalised time of each frame, shape (T,); a query time
            uses the frame nearest to it.
        **hexplane: arguments of :class:`HexPlaneField` (``time_resolution`` is
            forced to 1); frame ``i`` is initialised with ``seed + i``.
    """

    def __init__(self, frame_times: torch.Tensor, **hexplane) -> None:
        super().__init__()
        hexplane = dict(hexplane)
        hexplane["time_resolution"] = 1
        seed = int(hexplane.pop("seed", 0))
        self.register_buffer("frame_times", torch.as_tensor(frame_times, dtype=torch.float32).reshape(-1))
        self.fields = nn.ModuleList(HexPlaneField(seed=seed + i, **hexplane)
                                    for i in range(self.frame_times.numel()))
        self.channels = self.fields[0].channels

    @property
    def planes(self) -> dict[str, nn.Parameter]:
        """Every frame's planes, named ``f{i}.{plane}`` (what plane regularisers read)."""
        return {f"f{i}.{name}": p for i, f in enumerate(self.fields) for name, p in f.planes.items()}

    @property
    def space_resolution(self) -> tuple[int, int, int]:
        return self.fields[0].space_resolution

    @property
    def time_resolution(self) -> int:
        return 1

    def upsample(self, space_resolution: tuple[int, int, int], time_resolution: int = 1) -> None:
        """Resample every frame's planes to a new spatial resolution (time stays 1)."""
        for f in self.fields:
            f.upsample(space_resolution, 1)

    def plane_parameters(self) -> list[nn.Parameter]:
        return [p for f in self.fields for p in f.plane_parameters()]

    def decoder_parameters(self) -> list[nn.Parameter]:
        return [p for f in self.fields for p in f.decoder_parameters()]

    def frame_index(self, times: torch.Tensor) -> torch.Tensor:
        """Index of the frame nearest to each normalised time (B,)."""
        return (times.to(self.frame_times)[:, None] - self.frame_times[None]).abs().argmin(dim=1)

    def forward(self, points: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        idx = self.frame_index(times)
        out = None
        for f in torch.unique(idx).tolist():
            sel = idx == f
            vals = self.fields[f](points[sel], times[sel])
            if out is None:
                out = vals.new_zeros(points.shape[0])
            out = out.index_put((torch.nonzero(sel).squeeze(1),), vals)
        return out if out is not None else points.new_zeros(0)

    def render_frames(self, times: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
        idx = self.frame_index(times).tolist()
        return torch.cat([self.fields[i].render_frames(times[j:j + 1], shape)
                          for j, i in enumerate(idx)])
