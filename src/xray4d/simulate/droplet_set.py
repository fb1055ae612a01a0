"""A training set of droplet collisions: one collision per seed, its parameters drawn at
random, as the 4D-ONIX paper trains on (16 simulated collisions x 75 frames x 2 views at 0
and 23.8 degrees, of varied radii, speeds and impact offsets).

:func:`random_collision` draws a :class:`~.droplet_kinematics.DropletCollision` from a seed
(radii, approach speed, time of contact, impact parameter and its direction, the shape
oscillation, and one in four a stretching separation), always with both drops inside the
field of view at the first frame; :func:`simulate_droplet_set` records each with
:func:`~.droplets.simulate_droplets` (its own noise seed).
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from ..data import Recording
from .droplet_kinematics import DropletCollision
from .droplets import simulate_droplets

__all__ = ["random_collision", "simulate_droplet_set", "SET_RANGES", "MAX_START_DISTANCE"]

#: the ranges each parameter is drawn from, uniformly
SET_RANGES: dict[str, tuple[float, float]] = {
    "radius_1": (0.09, 0.16), "radius_2": (0.09, 0.16), "approach_speed": (0.6, 1.4),
    "contact_time": (0.15, 0.4), "impact_parameter": (0.0, 0.5),
    "impact_direction_deg": (0.0, 360.0), "oscillation_amplitude": (0.15, 0.4),
    "oscillation_period": (0.15, 0.3)}
#: the largest distance of the centres at the first frame, in fields of view: with radii up
#: to 0.16 both drops lie inside the field of view (|x| <= 0.5)
MAX_START_DISTANCE = 0.66


def random_collision(seed: int) -> DropletCollision:
    """The collision of seed ``seed``: parameters drawn from :data:`SET_RANGES` (the speed
    lowered where the drops would start further apart than :data:`MAX_START_DISTANCE`),
    one in four a separation."""
    rng = np.random.default_rng([seed, 0x0D1E7])
    p = {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in SET_RANGES.items()}
    gap = MAX_START_DISTANCE - p["radius_1"] - p["radius_2"]
    p["approach_speed"] = min(p["approach_speed"], gap / p["contact_time"])
    return DropletCollision(separation=bool(rng.uniform() < 0.25), **p)


def simulate_droplet_set(count: int, size: int = 32, frames: int = 75,
                         angles_deg: Sequence[float] | np.ndarray = (0.0, 23.8),
                         noise: float = 0.01, seed: int = 0, *, oversample: int = 2,
                         frame_interval_s: float = 1.0
                         ) -> Iterator[tuple[DropletCollision, Recording]]:
    """The collisions of seeds ``seed .. seed + count - 1`` and their recordings (with
    ground truth), one at a time (noise seeded by each collision's seed).

    Args as :func:`~.droplets.simulate_droplets`; ``count`` >= 1 collisions.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    for i in range(count):
        params = random_collision(seed + i)
        yield params, simulate_droplets(params, size=size, frames=frames, angles_deg=angles_deg,
                                        noise=noise, seed=seed + i, oversample=oversample,
                                        frame_interval_s=frame_interval_s)
