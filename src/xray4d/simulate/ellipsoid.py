"""The rigid ellipsoid scene: a solid ellipsoid with a hollow inclusion, moving on an arc
and tumbling.

Nothing here flows or merges: the shape is rigid, and its motion (translation
plus rotation about a tilted axis) is what a static or per-frame method must
follow; the inclusion makes the object heterogeneous (two values), unlike a
liquid. Each frame is point-sampled on the whole fine grid of :mod:`.sampling`
and projected there by :class:`~.acquisition.VolumeProjector`.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ..data import Recording
from ..geometry import DetectorGeometry, Geometry
from .acquisition import VolumeProjector, acquire, add_noise, angles_per_frame
from .sampling import (FineFrame, check_render_args, fine_coordinates, normalised_times,
                       voxelise, whole_box)

__all__ = ["RigidEllipsoid", "rigid_ellipsoid_truth", "simulate_rigid_ellipsoid"]


@dataclass(frozen=True)
class RigidEllipsoid:
    """A solid ellipsoid with a hollow spherical inclusion, moving on an arc and tumbling.

    Lengths are fractions of the field of view W, times normalised (0 .. 1 over
    the movie), as for :class:`~.droplet_kinematics.DropletCollision`. Nothing here flows or merges:
    the shape is rigid, and its motion (translation plus rotation about a tilted
    axis) is what a static or per-frame method must follow. The inclusion makes
    the object heterogeneous (two values), unlike a liquid.
    """

    #: semi-axes (a_x, a_y, a_z) of the ellipsoid in its body frame
    semi_axes: tuple[float, float, float] = (0.24, 0.13, 0.1)
    value: float = 1.0
    #: inclusion: centre along the body x axis, radius, and its value
    inclusion_offset: float = 0.1
    inclusion_radius: float = 0.05
    inclusion_value: float = 0.4
    #: the centre goes from ``start`` to ``end`` (x, y, z), bulging by ``arc`` along y
    start: tuple[float, float, float] = (-0.14, -0.04, -0.05)
    end: tuple[float, float, float] = (0.14, 0.04, 0.05)
    arc: float = 0.06
    #: rotation over the movie, degrees, about the z axis tilted by ``tilt_deg`` towards x
    turn_deg: float = 120.0
    tilt_deg: float = 30.0

    def pose(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Centre (x, y, z) and rotation matrix (body -> lab) at normalised time t."""
        a, b = np.asarray(self.start, np.float64), np.asarray(self.end, np.float64)
        centre = a + (b - a) * t + np.array([0.0, self.arc * math.sin(math.pi * t), 0.0])
        tilt = math.radians(self.tilt_deg)
        axis = np.array([math.sin(tilt), 0.0, math.cos(tilt)])
        phi = math.radians(self.turn_deg) * t
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        rot = np.eye(3) + math.sin(phi) * k + (1 - math.cos(phi)) * (k @ k)
        return centre, rot


def _ellipsoid_fine(scene: RigidEllipsoid, t: float, n_fine: int) -> torch.Tensor:
    """Point-sampled scene (Z, Y, X) on a grid of n_fine sub-voxels per axis."""
    c = torch.as_tensor(fine_coordinates(n_fine), dtype=torch.float64)
    centre, rot = scene.pose(t)
    z, y, x = torch.meshgrid(c, c, c, indexing="ij")
    lab = torch.stack([x - centre[0], y - centre[1], z - centre[2]], dim=-1)
    body = lab @ torch.as_tensor(rot)            # body coordinates = R^T (p - c)
    ax = torch.as_tensor(scene.semi_axes, dtype=torch.float64)
    inside = ((body / ax) ** 2).sum(-1) < 1
    hole = ((body - torch.tensor([scene.inclusion_offset, 0.0, 0.0], dtype=torch.float64)) ** 2
            ).sum(-1) < scene.inclusion_radius ** 2
    vol = inside.to(torch.float32) * scene.value
    vol[inside & hole] = scene.inclusion_value
    return vol


def _renderer(scene: RigidEllipsoid, frames: int, n_fine: int) -> Callable[[int], FineFrame]:
    """Frame i of the scene on the whole fine grid, at normalised time ``i / (frames - 1)``."""
    tt = normalised_times(frames)
    box = whole_box(n_fine)

    def render(i: int) -> FineFrame:
        return box, _ellipsoid_fine(scene, float(tt[i]), n_fine)

    return render


def rigid_ellipsoid_truth(scene: RigidEllipsoid | None = None, size: int = 64, frames: int = 40,
                          *, oversample: int = 2) -> np.ndarray:
    """Voxel-averaged truth f[t, z, y, x] (T, size, size, size) float32 of the scene."""
    scene = RigidEllipsoid() if scene is None else scene
    check_render_args(size, oversample)
    return voxelise(_renderer(scene, frames, size * oversample), frames, size, oversample)


def simulate_rigid_ellipsoid(scene: RigidEllipsoid | None = None, size: int = 64, frames: int = 40,
                             angles_deg: Sequence[float] | np.ndarray = (0.0, 23.8),
                             noise: float = 0.01, seed: int = 0, *, oversample: int = 2,
                             frame_interval_s: float = 1.0,
                             detector: DetectorGeometry | None = None) -> Recording:
    """Simulate a recording of the rigid tumbling ellipsoid, with its ground truth.

    As :func:`~.droplets.simulate_droplets`: the truth is the block average of a
    grid ``oversample`` times finer, and the projections are line integrals of
    that fine grid on a finer detector, averaged over pixel blocks.
    """
    scene = RigidEllipsoid() if scene is None else scene
    check_render_args(size, oversample)
    angles = angles_per_frame(angles_deg, frames)
    n_fine = size * oversample
    project = VolumeProjector(angles, n_fine)
    truth, clean = acquire(_renderer(scene, frames, n_fine), frames, size, angles.shape[1],
                           oversample, project, detector=detector)
    description = {"phantom": "rigid_ellipsoid", "parameters": dataclasses.asdict(scene),
                   "size": int(size), "frames": int(frames), "oversample": int(oversample),
                   "noise": float(noise), "seed": int(seed),
                   "normalised_times": "frame i at i / (frames - 1)"}
    return Recording(add_noise(clean, noise, seed),
                     Geometry.from_angles(angles, frames, size, size, detector=detector),
                     "line_integral",
                     time=np.arange(frames, dtype=np.float64) * frame_interval_s, truth=truth,
                     attrs={"description": json.dumps(description)})
