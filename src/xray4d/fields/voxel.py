"""Voxel fields: a movie of voxel volumes behind the :class:`~xray4d.fields.Field` interface."""
from __future__ import annotations

import torch

from .base import Field

__all__ = ["FrameVolumeField"]


class FrameVolumeField(Field):
    """A fixed movie of voxel volumes as a field: the frame nearest in time, trilinear in space.

    What conventional methods return as ``FitResult.field``; it follows the
    :class:`~xray4d.fields.Field` interface (normalised coordinates and times).
    """

    def __init__(self, volumes: torch.Tensor, times: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("volumes", volumes)
        self.register_buffer("times", times.to(volumes.dtype))

    def frame_index(self, times: torch.Tensor) -> torch.Tensor:
        """Index of the frame nearest to each normalised time."""
        return (times.to(self.times.dtype)[:, None] - self.times[None]).abs().argmin(dim=1)

    def render_frames(self, times: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
        """Volumes (B, Z, Y, X) at normalised times (B,); ``shape`` must be the stored grid."""
        if tuple(shape) != tuple(self.volumes.shape[1:]):
            raise ValueError(f"this field is a voxel grid of shape {tuple(self.volumes.shape[1:])}, "
                             f"not {tuple(shape)}")
        return self.volumes[self.frame_index(times)]

    def forward(self, points: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Values at points (N, 3) = (x, y, z) in [-1, 1] and times (N,): (N,)."""
        idx = self.frame_index(times)
        out = torch.zeros(points.shape[0], dtype=self.volumes.dtype, device=points.device)
        for f in torch.unique(idx).tolist():
            sel = idx == f
            grid = points[sel].to(self.volumes.dtype).reshape(1, -1, 1, 1, 3)
            out[sel] = torch.nn.functional.grid_sample(
                self.volumes[f][None, None], grid, mode="bilinear", padding_mode="zeros",
                align_corners=True).reshape(-1)
        return out
