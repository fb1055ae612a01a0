"""The tumbling tripod scene: a rigid non-convex body turning about a tilted axis and drifting.

Three round-ended rods (capsules) leave a spherical hub at 120 degrees from
each other, inclined below the body's equator like the legs of a tripod; the
body rotates by ``turn_deg`` over the movie about an axis tilted from z, and
its hub drifts on a straight line. It is neither convex nor elliptical: its
horizontal sections are up to three separate discs whose overlaps change with
the view and the time. Signed distances are exact (minimum over the hub and
the capsules).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ..data import Recording
from ..geometry import DetectorGeometry
from .sampling import FineFrame, normalised_times
from .scene import box_coordinates, fine_box, occupancy, record, rotation, scene_truth

__all__ = ["TumblingTripod", "tumbling_tripod_truth", "simulate_tumbling_tripod"]


@dataclass(frozen=True)
class TumblingTripod:
    """A rigid tripod tumbling and drifting (lengths in W, times normalised).

    Attributes:
        hub_radius: radius of the central sphere.
        leg_length: distance from the hub's centre to the centre of each leg's end cap.
        leg_radius: radius of the legs.
        leg_elevation_deg: angle of the legs below the body's xy plane.
        start, end: the hub's centre (x, y, z) at the first and the last frame.
        turn_deg: rotation over the movie.
        tilt_deg: tilt of the rotation axis from z towards x.
        initial_yaw_deg: rotation of the body about z before the tumbling starts.
        value: value inside the body.
    """

    hub_radius: float = 0.06
    leg_length: float = 0.22
    leg_radius: float = 0.035
    leg_elevation_deg: float = 25.0
    start: tuple[float, float, float] = (-0.08, 0.05, -0.04)
    end: tuple[float, float, float] = (0.08, -0.04, 0.05)
    turn_deg: float = 150.0
    tilt_deg: float = 35.0
    initial_yaw_deg: float = 10.0
    value: float = 1.0

    def __post_init__(self) -> None:
        for name in ("hub_radius", "leg_length", "leg_radius", "value"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    @property
    def reach(self) -> float:
        """Largest distance of the body's surface from the hub's centre."""
        return max(self.hub_radius, self.leg_length + self.leg_radius)

    def pose(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Hub centre (x, y, z) and rotation (body -> lab) at normalised time t."""
        a, b = np.asarray(self.start, np.float64), np.asarray(self.end, np.float64)
        tilt = math.radians(self.tilt_deg)
        axis = (math.sin(tilt), 0.0, math.cos(tilt))
        rot = rotation(axis, self.turn_deg * t) @ rotation((0.0, 0.0, 1.0), self.initial_yaw_deg)
        return a + (b - a) * t, rot

    def leg_ends(self) -> np.ndarray:
        """Ends (3, 3) of the legs' axes in the body frame (x, y, z)."""
        el = math.radians(self.leg_elevation_deg)
        az = np.radians([90.0, 210.0, 330.0])
        return self.leg_length * np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az),
                                           np.full(3, -math.sin(el))], axis=1)


def _capsule(px: torch.Tensor, py: torch.Tensor, pz: torch.Tensor, end: np.ndarray,
             radius: float) -> torch.Tensor:
    """Signed distance of the capsule from the origin to ``end`` (x, y, z) of ``radius``."""
    ex, ey, ez = (float(v) for v in end)
    length2 = ex * ex + ey * ey + ez * ez
    h = ((px * ex + py * ey + pz * ez) / length2).clamp(0.0, 1.0)
    return torch.sqrt((px - h * ex) ** 2 + (py - h * ey) ** 2 + (pz - h * ez) ** 2) - radius


def _renderer(body: TumblingTripod, frames: int, n_fine: int, oversample: int
              ) -> Callable[[int], FineFrame]:
    """Frame i: the body in the box around its hub."""
    tt = normalised_times(frames)
    legs = body.leg_ends()

    def render(i: int) -> FineFrame:
        centre, rot = body.pose(float(tt[i]))
        reach = body.reach + 1.0 / n_fine
        box = fine_box(centre - reach, centre + reach, n_fine, oversample)
        if box is None:
            return None
        z, y, x = box_coordinates(box, n_fine)
        px, py, pz = x - float(centre[0]), y - float(centre[1]), z - float(centre[2])
        sdf = torch.sqrt(px * px + py * py + pz * pz) - body.hub_radius
        for end in legs:
            sdf = torch.minimum(sdf, _capsule(px, py, pz, rot @ end, body.leg_radius))
        occ = occupancy(sdf, n_fine)
        return box, occ * body.value if body.value != 1.0 else occ

    return render


def tumbling_tripod_truth(params: TumblingTripod | None = None, size: int = 64, frames: int = 40,
                          *, oversample: int = 2) -> np.ndarray:
    """Voxel-averaged truth f[t, z, y, x] (T, size, size, size) float32 of the tripod."""
    body = TumblingTripod() if params is None else params
    return scene_truth(lambda n, pad: _renderer(body, frames, n, oversample), size, frames,
                       oversample)


def simulate_tumbling_tripod(params: TumblingTripod | None = None, size: int = 64,
                             frames: int = 40,
                             angles_deg: Sequence[float] | np.ndarray = (0.0, 23.8),
                             noise: float = 0.01, seed: int = 0, *, oversample: int = 2,
                             frame_interval_s: float = 1.0,
                             detector: DetectorGeometry | None = None) -> Recording:
    """A ``line_integral`` recording of the tumbling tripod with its truth
    (:func:`~.scene.record`: fine grid, supersampled detector)."""
    body = TumblingTripod() if params is None else params
    return record(lambda n, pad: _renderer(body, frames, n, oversample), "tumbling_tripod", body,
                  size=size, frames=frames, angles_deg=angles_deg, noise=noise, seed=seed,
                  oversample=oversample, frame_interval_s=frame_interval_s,
                  detector=detector)
