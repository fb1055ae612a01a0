"""The spray scene: many small drops flying on ballistic paths that cross in the views.

Drops of radii between ``radii[0]`` and ``radii[1]`` (3 to 8 voxels across on a
64^3 grid by default) fly on parabolas ``p(t) = p_mid + v (t - 1/2) - g (t -
1/2)^2 / 2 e_z`` that stay inside the field of view; their midpoints fill a
ball, so many drops overlap in every view while no two ever touch in space
(layouts that would are redrawn). The layout is drawn from ``layout_seed``
alone (the recording's noise has its own seed). Each drop is rendered in its
own small box with its exact signed distance.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from ..data import Recording
from ..geometry import DetectorGeometry
from .sampling import FineFrame, normalised_times
from .scene import box_coordinates, fine_box, occupancy, record, scene_truth

__all__ = ["Spray", "spray_truth", "simulate_spray"]

#: times at which drawn paths are checked for contact and for leaving the field of view
_CHECK_TIMES = np.linspace(0.0, 1.0, 41)


@dataclass(frozen=True)
class Spray:
    """A spray of small drops (lengths in W, times normalised).

    Attributes:
        drops: number of drops.
        radii: smallest and largest radius (drawn uniformly).
        spread: radius of the ball the drops' midpoints (at t = 1/2) are drawn in.
        speed: largest speed, W per movie (directions uniform).
        gravity: downward acceleration, W per movie^2.
        reach: every drop stays within this distance of the z axis and of z = 0.
        gap: smallest distance between the surfaces of two drops at any time.
        layout_seed: seed of the layout.
        value: value inside the liquid.
    """

    drops: int = 24
    radii: tuple[float, float] = (0.025, 0.06)
    spread: float = 0.24
    speed: float = 0.35
    gravity: float = 0.3
    reach: float = 0.45
    gap: float = 0.01
    layout_seed: int = 0
    value: float = 1.0

    def __post_init__(self) -> None:
        if not (isinstance(self.drops, int) and 1 <= self.drops <= 500):
            raise ValueError(f"drops must be an integer in 1..500, got {self.drops}")
        if not 0 < self.radii[0] <= self.radii[1]:
            raise ValueError(f"radii must be 0 < smallest <= largest, got {self.radii}")
        for name in ("spread", "reach", "value"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")

    def layout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Radii (N,), midpoints (N, 3) and velocities (N, 3) of the drops, (x, y, z).

        Raises:
            ValueError: no layout without contacts within 200 draws per drop.
        """
        rng = np.random.default_rng(self.layout_seed)
        radii, mids, vels, paths = [], [], [], []
        tt = _CHECK_TIMES - 0.5
        sag = np.outer(-0.5 * self.gravity * tt * tt, [0.0, 0.0, 1.0])
        for _ in range(self.drops):
            for _attempt in range(200):
                r = rng.uniform(*self.radii)
                d = rng.standard_normal(3)
                mid = d / np.linalg.norm(d) * self.spread * rng.uniform() ** (1 / 3)
                d = rng.standard_normal(3)
                vel = d / np.linalg.norm(d) * self.speed * rng.uniform()
                path = mid + np.outer(tt, vel) + sag                 # (times, 3)
                if (np.hypot(path[:, 0], path[:, 1]).max() + r > self.reach
                        or np.abs(path[:, 2]).max() + r > self.reach):
                    continue
                if all(np.linalg.norm(path - q, axis=1).min() > r + rq + self.gap
                       for q, rq in zip(paths, radii)):
                    break
            else:
                raise ValueError(f"no layout of {self.drops} drops without contacts; use "
                                 "fewer or smaller drops or a larger spread")
            radii.append(r)
            mids.append(mid)
            vels.append(vel)
            paths.append(path)
        return np.array(radii), np.array(mids), np.array(vels)

    def centres(self, t: float) -> np.ndarray:
        """Centres (N, 3) of the drops at normalised time t."""
        _, mids, vels = self.layout()
        s = t - 0.5
        return mids + vels * s + np.array([0.0, 0.0, -0.5 * self.gravity * s * s])


def _renderer(spray: Spray, frames: int, n_fine: int, oversample: int
              ) -> Callable[[int], FineFrame]:
    """Frame i: the drops, each in its own box, in the box that holds them all."""
    tt = normalised_times(frames)
    radii, mids, vels = spray.layout()

    def render(i: int) -> FineFrame:
        s = float(tt[i]) - 0.5
        centres = mids + vels * s + np.array([0.0, 0.0, -0.5 * spray.gravity * s * s])
        reach = radii[:, None] + 1.0 / n_fine
        box = fine_box((centres - reach).min(0), (centres + reach).max(0), n_fine, oversample)
        if box is None:
            return None
        vol = torch.zeros(tuple(b.stop - b.start for b in box))
        for c, r in zip(centres, radii):
            sub = fine_box(c - r - 1.0 / n_fine, c + r + 1.0 / n_fine, n_fine, oversample)
            if sub is None:
                continue
            z, y, x = box_coordinates(sub, n_fine)
            occ = occupancy(torch.sqrt((x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2)
                            - float(r), n_fine)
            at = tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(sub, box))
            vol[at] = torch.maximum(vol[at], occ)
        return box, vol * spray.value if spray.value != 1.0 else vol

    return render


def spray_truth(params: Spray | None = None, size: int = 64, frames: int = 40, *,
                oversample: int = 2) -> np.ndarray:
    """Voxel-averaged truth f[t, z, y, x] (T, size, size, size) float32 of the spray."""
    spray = Spray() if params is None else params
    return scene_truth(lambda n, pad: _renderer(spray, frames, n, oversample), size, frames,
                       oversample)


def simulate_spray(params: Spray | None = None, size: int = 64, frames: int = 40,
                   angles_deg: Sequence[float] | np.ndarray = (0.0, 23.8), noise: float = 0.01,
                   seed: int = 0, *, oversample: int = 2, frame_interval_s: float = 1.0,
                   detector: DetectorGeometry | None = None
                   ) -> Recording:
    """A ``line_integral`` recording of the spray with its truth
    (:func:`~.scene.record`: fine grid, supersampled detector)."""
    spray = Spray() if params is None else params
    return record(lambda n, pad: _renderer(spray, frames, n, oversample), "spray", spray,
                  size=size, frames=frames, angles_deg=angles_deg, noise=noise, seed=seed,
                  oversample=oversample, frame_interval_s=frame_interval_s,
                  detector=detector)
