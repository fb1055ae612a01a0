"""The bubble column scene: a gas bubble rising through a column of liquid.

A vertical cylinder of liquid (flat ends) spans most of the height of the field
of view; a gas bubble (a void: value 0) rises through it on a helical zigzag,
an oblate spheroid whose flattening oscillates, and grows as it rises (the
pressure drops). The projections of the column are flat-topped: the profile of
a cylinder seen from the side is ``2 sqrt(R^2 - u^2)`` in every row, the same
in all views, which no disc-shaped vertical section explains. Signed distances:
exact for the capped cylinder, to first order for the spheroid
(``(|p / a| - 1) min(a)``).
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
from .scene import box_coordinates, fine_box, occupancy, record, scene_truth

__all__ = ["BubbleColumn", "bubble_column_truth", "simulate_bubble_column"]


@dataclass(frozen=True)
class BubbleColumn:
    """A bubble rising in a liquid column (lengths in W, times normalised).

    Attributes:
        column_radius: radius of the liquid cylinder (axis along z through ``column_centre``).
        column_height: its height (centred on z = 0).
        column_centre: (x, y) of its axis.
        bubble_radius: radius of the bubble (of the sphere of the same volume) at the start.
        growth: relative growth of the bubble's radius over the movie.
        rise: z of the bubble's centre at the first and the last frame.
        wobble: radius of the helical path of the bubble around the column's axis.
        wobble_turns: turns of that path over the movie.
        flattening: mean oblateness of the bubble (axes ``(1 + e)^(1/3)`` across and
            ``(1 + e)^(-2/3)`` along z, times the radius).
        flattening_amplitude: relative oscillation of the oblateness.
        shape_period: period of that oscillation.
        value: value of the liquid (the bubble is 0).
    """

    column_radius: float = 0.3
    column_height: float = 0.86
    column_centre: tuple[float, float] = (0.02, -0.01)
    bubble_radius: float = 0.09
    growth: float = 0.15
    rise: tuple[float, float] = (-0.26, 0.26)
    wobble: float = 0.06
    wobble_turns: float = 1.25
    flattening: float = 0.35
    flattening_amplitude: float = 0.3
    shape_period: float = 0.2
    value: float = 1.0

    def __post_init__(self) -> None:
        for name in ("column_radius", "column_height", "bubble_radius", "shape_period", "value"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.flattening < 2 or not 0 <= self.flattening_amplitude < 1:
            raise ValueError("flattening must be in [0, 2) and flattening_amplitude in [0, 1)")
        if self.wobble + self.bubble_radius * (1 + self.growth) * 1.5 >= self.column_radius:
            raise ValueError("the bubble must stay inside the column (wobble + radius)")

    def bubble(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Centre (x, y, z) and semi-axes (a_x, a_y, a_z) of the bubble at normalised time t."""
        phase = 2 * math.pi * self.wobble_turns * t
        cx, cy = self.column_centre
        z = self.rise[0] + (self.rise[1] - self.rise[0]) * t
        centre = np.array([cx + self.wobble * math.sin(phase),
                           cy + self.wobble * (1 - math.cos(phase)) * 0.5, z])
        e = self.flattening * (1 + self.flattening_amplitude
                               * math.sin(2 * math.pi * t / self.shape_period))
        r = self.bubble_radius * (1 + self.growth * t)
        across, along = r * (1 + e) ** (1 / 3), r * (1 + e) ** (-2 / 3)
        return centre, np.array([across, across, along])


def _renderer(scene: BubbleColumn, frames: int, n_fine: int, oversample: int
              ) -> Callable[[int], FineFrame]:
    """Frame i: the column's occupancy times one minus the bubble's."""
    tt = normalised_times(frames)
    cx, cy = scene.column_centre
    rc, hh = scene.column_radius, scene.column_height / 2
    box = fine_box((cx - rc, cy - rc, -hh), (cx + rc, cy + rc, hh), n_fine, oversample)

    def render(i: int) -> FineFrame:
        if box is None:
            return None
        z, y, x = box_coordinates(box, n_fine)
        radial = torch.sqrt((x - cx) ** 2 + (y - cy) ** 2) - rc
        axial = z.abs() - hh
        outside = torch.sqrt(radial.clamp_min(0) ** 2 + axial.clamp_min(0) ** 2)
        column = occupancy(outside + torch.maximum(radial, axial).clamp_max(0), n_fine)
        centre, axes = scene.bubble(float(tt[i]))
        q = torch.sqrt(((x - centre[0]) / axes[0]) ** 2 + ((y - centre[1]) / axes[1]) ** 2
                       + ((z - centre[2]) / axes[2]) ** 2)
        gas = occupancy((q - 1) * float(axes.min()), n_fine)
        vol = column * (1 - gas)
        return box, vol * scene.value if scene.value != 1.0 else vol

    return render


def bubble_column_truth(params: BubbleColumn | None = None, size: int = 64, frames: int = 40, *,
                        oversample: int = 2) -> np.ndarray:
    """Voxel-averaged truth f[t, z, y, x] (T, size, size, size) float32 of the bubble column."""
    scene = BubbleColumn() if params is None else params
    return scene_truth(lambda n, pad: _renderer(scene, frames, n, oversample), size, frames,
                       oversample)


def simulate_bubble_column(params: BubbleColumn | None = None, size: int = 64, frames: int = 40,
                           angles_deg: Sequence[float] | np.ndarray = (0.0, 23.8),
                           noise: float = 0.01, seed: int = 0, *, oversample: int = 2,
                           frame_interval_s: float = 1.0,
                           detector: DetectorGeometry | None = None) -> Recording:
    """A ``line_integral`` recording of the rising bubble with its truth
    (:func:`~.scene.record`: fine grid, supersampled detector)."""
    scene = BubbleColumn() if params is None else params
    return record(lambda n, pad: _renderer(scene, frames, n, oversample), "bubble_column", scene,
                  size=size, frames=frames, angles_deg=angles_deg, noise=noise, seed=seed,
                  oversample=oversample, frame_interval_s=frame_interval_s,
                  detector=detector)
