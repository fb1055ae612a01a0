"""A velocity field v(x, t): its own small X-Hexplane with three signed outputs.

The flow prior (:mod:`xray4d.reconstruct.flow`) fits it beside the density field. Its
values are in normalised units: the spatial axes span [-1, 1] (first voxel centre to
last) and so does time (first recorded frame to last), so a component is the distance in
half widths of its axis per half of the movie. :func:`to_voxels_per_second` converts.
"""
from __future__ import annotations

import numpy as np
import torch

from .hexplane import HexPlaneField

__all__ = ["VelocityField", "to_voxels_per_second"]


class VelocityField(HexPlaneField):
    """Six feature planes, a linear decoder and three outputs (vx, vy, vz), unbounded.

    Args:
        space_resolution: (Rz, Ry, Rx) nodes of the spatial axes (coarse: a flow is smooth).
        time_resolution: nodes of the time axis.
        channels: feature channels per plane.
        seed: seed of the initialisation (the field starts near zero everywhere).
    """

    def __init__(self, space_resolution: tuple[int, int, int], time_resolution: int,
                 channels: int = 4, seed: int = 0) -> None:
        super().__init__(channels=channels, space_resolution=space_resolution,
                         time_resolution=time_resolution, decoder="linear",
                         activation="identity", value_max=[1.0, 1.0, 1.0],
                         init_value=[0.0, 0.0, 0.0], init_scale=0.1, seed=seed, outputs=3)

    def forward(self, points: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Velocity (N, 3) = (vx, vy, vz) at points (N, 3) = (x, y, z) and times (N,)."""
        return super().forward(points, times)


def to_voxels_per_second(velocity: np.ndarray, shape: tuple[int, int, int],
                         time_span_s: float) -> np.ndarray:
    """Velocity frames (T, 3, Z, Y, X) in normalised units -> voxels per second.

    Component i (x, y, z) spans ``N_i - 1`` voxels over 2 normalised units, and time
    ``time_span_s`` over 2, so the factor is ``(N_i - 1) / time_span_s`` (0 for a single
    frame, whose time is not a scale).
    """
    z, y, x = shape
    if not time_span_s > 0:
        return np.zeros_like(velocity, dtype=np.float32)
    scale = np.array([x - 1, y - 1, z - 1], np.float64) / time_span_s
    return (velocity * scale[None, :, None, None, None]).astype(np.float32)
