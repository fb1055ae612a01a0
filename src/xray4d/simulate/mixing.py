"""The mixing scene: two drops of different liquids collide, merge and mix.

The shape is the droplet collision of :mod:`.droplets` (approach, contact,
coalescence through a growing neck, a damped oscillation and, with an
off-centre impact, a spin of the merged drop); the liquid of drop 1 has value
``value_1`` and that of drop 2 ``value_2``. Inside the liquid the local fraction
c of liquid 1 is a smoothed step across the plane between the drops,
perpendicular to the collision axis in the drop's own (unstretched) frame,

    c = 1/2 erfc((zeta - zeta_i) / (sqrt(2) w(t))),   w = w0 + mixing sqrt(t - t_contact),

so the interface widens by diffusion after contact and turns with the merged
drop; the value is ``value_2 + (value_1 - value_2) c`` times the occupancy. Two
values until contact, a continuum of intermediate ones afterwards.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from ..data import Recording
from ..geometry import DetectorGeometry
from .droplet_kinematics import DropletCollision, Kinematics
from .droplets import _render_fine
from .sampling import FineFrame, normalised_times
from .scene import box_coordinates, record, scene_truth

__all__ = ["MixingDrops", "mixing_drops_truth", "simulate_mixing_drops"]


def _default_collision() -> DropletCollision:
    return DropletCollision(radius_1=0.14, radius_2=0.13, impact_parameter=0.3,
                            impact_direction_deg=60.0, oscillation_amplitude=0.25)


@dataclass(frozen=True)
class MixingDrops:
    """Two drops of different liquids that merge and mix (lengths in W, times normalised).

    Attributes:
        collision: the shape and motion (its ``value`` is ignored).
        value_1: value of drop 1's liquid (starts at negative x).
        value_2: value of drop 2's liquid.
        interface_width: width w0 of the interface before contact (sharp).
        mixing: growth of the interface width, W per sqrt(movie), after contact.
    """

    collision: DropletCollision = field(default_factory=_default_collision)
    value_1: float = 1.0
    value_2: float = 0.6
    interface_width: float = 0.002
    mixing: float = 0.3

    def __post_init__(self) -> None:
        for name in ("value_1", "value_2", "interface_width"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.mixing >= 0:
            raise ValueError(f"mixing must be >= 0, got {self.mixing}")

    def width(self, t: float) -> float:
        """Width of the interface at normalised time t."""
        since = max(t - self.collision.contact_time, 0.0)
        return self.interface_width + self.mixing * math.sqrt(since)


def _renderer(scene: MixingDrops, frames: int, n_fine: int, oversample: int
              ) -> Callable[[int], FineFrame]:
    """Frame i: the collision's occupancy times the local value of the mixture."""
    tt = normalised_times(frames)
    kin = Kinematics(scene.collision)

    def render(i: int) -> FineFrame:
        t = float(tt[i])
        state = kin.state(t)
        got = _render_fine(state, kin, n_fine, oversample, 1.0)
        if got is None:
            return None
        box, occ = got
        z, y, x = box_coordinates(box, n_fine)
        e0, e1, e2 = (float(c) for c in state.axis)
        # axial coordinate in the drop's own frame (undo scale and stretch), as the shape
        zeta = (e0 * x + e1 * y + e2 * z) / (state.scale * state.stretch)
        d = state.distance
        a1, a2 = -kin.m2 / kin.mass * d, kin.m1 / kin.mass * d
        zeta_i = 0.5 * ((a1 + kin.r1) + (a2 - kin.r2))
        c = 0.5 * torch.special.erfc((zeta - zeta_i) / (math.sqrt(2.0) * scene.width(t)))
        return box, occ * (scene.value_2 + (scene.value_1 - scene.value_2) * c)

    return render


def mixing_drops_truth(params: MixingDrops | None = None, size: int = 64, frames: int = 40, *,
                       oversample: int = 2) -> np.ndarray:
    """Voxel-averaged truth f[t, z, y, x] (T, size, size, size) float32 of the mixing drops."""
    scene = MixingDrops() if params is None else params
    return scene_truth(lambda n, pad: _renderer(scene, frames, n, oversample), size, frames,
                       oversample)


def simulate_mixing_drops(params: MixingDrops | None = None, size: int = 64, frames: int = 40,
                          angles_deg: Sequence[float] | np.ndarray = (0.0, 23.8),
                          noise: float = 0.01, seed: int = 0, *, oversample: int = 2,
                          frame_interval_s: float = 1.0,
                          detector: DetectorGeometry | None = None) -> Recording:
    """A ``line_integral`` recording of the two liquids merging and mixing, with its truth
    (:func:`~.scene.record`: fine grid, supersampled detector)."""
    scene = MixingDrops() if params is None else params
    return record(lambda n, pad: _renderer(scene, frames, n, oversample), "mixing_drops", scene,
                  size=size, frames=frames, angles_deg=angles_deg, noise=noise, seed=seed,
                  oversample=oversample, frame_interval_s=frame_interval_s,
                  detector=detector)
