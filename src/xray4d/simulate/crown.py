"""The crown splash scene: a drop falls on a liquid film and throws up a thin expanding crown.

A disc-shaped film of liquid lies near the bottom of the field of view. A drop
falls on it at constant speed, touches it at ``impact_time`` and sinks into it
within ``sink_time`` (its radius shrinks to zero on the film's surface). From
the impact a crown rises: a thin wall (``wall_thickness``, one to two voxels on
a 64^3 grid) leaning outwards by ``flare_deg``, whose radius grows like the
square root of the time since impact, whose height rises to ``crown_height``
with time constant ``rise_time`` and then sags, topped by a rim (a torus)
whose height is modulated around the circumference (the lobes where fingers
form). Signed distances: exact for the drop, to first order for the slanted
wall, the rim and the film (maxima of plane distances).
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

__all__ = ["CrownSplash", "crown_splash_truth", "simulate_crown_splash"]


@dataclass(frozen=True)
class CrownSplash:
    """A drop splashing on a film (lengths in W, times normalised).

    Attributes:
        centre: (x, y) of the impact, the film's and the crown's axis.
        film_radius, film_thickness: the film, a disc whose top is at ``film_level`` (z).
        film_level: z of the film's top surface.
        drop_radius: radius of the falling drop.
        drop_start: z of the drop's centre at the first frame.
        impact_time: time at which the drop touches the film.
        sink_time: time the drop takes to sink into the film.
        crown_radius: radius of the crown's base at the last frame.
        crown_height: scale of the crown's height.
        rise_time: time constant of the crown's rise.
        sag: relative loss of height from the peak to the last frame.
        wall_thickness: thickness of the wall at impact; it thins to ``thinning`` times it.
        thinning: final over initial wall thickness.
        flare_deg: outward lean of the wall from the vertical.
        rim_radius: radius of the rim over the wall's thickness.
        lobes, lobe_amplitude: number of lobes of the rim around the circumference and
            their relative height.
        value: value inside the liquid.
    """

    centre: tuple[float, float] = (0.01, -0.02)
    film_radius: float = 0.42
    film_thickness: float = 0.04
    film_level: float = -0.28
    drop_radius: float = 0.08
    drop_start: float = 0.3
    impact_time: float = 0.25
    sink_time: float = 0.08
    crown_radius: float = 0.3
    crown_height: float = 0.27
    rise_time: float = 0.12
    sag: float = 0.3
    wall_thickness: float = 0.03
    thinning: float = 0.6
    flare_deg: float = 20.0
    rim_radius: float = 0.8
    lobes: int = 10
    lobe_amplitude: float = 0.12
    value: float = 1.0

    def __post_init__(self) -> None:
        for name in ("film_radius", "film_thickness", "drop_radius", "sink_time",
                     "crown_radius", "crown_height", "rise_time", "wall_thickness", "value"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.impact_time < 1:
            raise ValueError(f"impact_time must be in [0, 1), got {self.impact_time}")

    def crown(self, t: float) -> tuple[float, float, float]:
        """Base radius, height and wall thickness of the crown at normalised time t
        (height 0 before the impact)."""
        if t <= self.impact_time:
            return self.drop_radius, 0.0, self.wall_thickness
        tau = (t - self.impact_time) / (1 - self.impact_time)
        radius = self.drop_radius + (self.crown_radius - self.drop_radius) * math.sqrt(tau)
        height = self.crown_height * (1 - math.exp(-(t - self.impact_time) / self.rise_time)) \
            * (1 - self.sag * tau)
        return radius, height, self.wall_thickness * (1 - (1 - self.thinning) * tau)

    def drop(self, t: float) -> tuple[float, float]:
        """z of the drop's centre and its radius at normalised time t (0 once it has sunk)."""
        touch = self.film_level + self.drop_radius
        if t <= self.impact_time:
            frac = t / self.impact_time if self.impact_time > 0 else 1.0
            return self.drop_start + (touch - self.drop_start) * frac, self.drop_radius
        left = max(0.0, 1 - (t - self.impact_time) / self.sink_time)
        return self.film_level, self.drop_radius * left


def _crown_sdf(s: CrownSplash, t: float, rho: torch.Tensor, phi: torch.Tensor,
               h: torch.Tensor) -> torch.Tensor | None:
    """Signed distance of the wall and its rim at height h above the film (None: no crown)."""
    base, height, thick = s.crown(t)
    if height <= 0:
        return None
    lean = math.tan(math.radians(s.flare_deg))
    top = height * (1 + s.lobe_amplitude * torch.cos(s.lobes * phi))
    wall = ((rho - base - h * lean).abs() * math.cos(math.radians(s.flare_deg)) - thick / 2)
    wall = torch.maximum(torch.maximum(wall, h - top), -h - s.film_thickness / 2)
    rim = torch.sqrt((rho - base - top * lean) ** 2 + (h - top) ** 2) - s.rim_radius * thick
    return torch.minimum(wall, rim)


def _renderer(s: CrownSplash, frames: int, n_fine: int, oversample: int
              ) -> Callable[[int], FineFrame]:
    """Frame i: film, drop and crown in the box that holds them."""
    tt = normalised_times(frames)
    cx, cy = s.centre
    lean = math.tan(math.radians(s.flare_deg))

    def render(i: int) -> FineFrame:
        t = float(tt[i])
        dz, dr = s.drop(t)
        _, height, thick = s.crown(t)
        top = max(dz + dr, s.film_level + height * (1 + s.lobe_amplitude) + thick)
        half = max(s.film_radius, s.crown_radius + height * 1.2 * lean + thick)
        box = fine_box((cx - half, cy - half, s.film_level - s.film_thickness),
                       (cx + half, cy + half, top), n_fine, oversample)
        if box is None:
            return None
        z, y, x = box_coordinates(box, n_fine)
        rho = torch.sqrt((x - cx) ** 2 + (y - cy) ** 2)
        h = z - s.film_level
        sdf = torch.maximum((h + s.film_thickness / 2).abs() - s.film_thickness / 2,
                            rho - s.film_radius)
        if dr > 0:
            sdf = torch.minimum(sdf, torch.sqrt(rho * rho + (z - dz) ** 2) - dr)
        crown = _crown_sdf(s, t, rho, torch.atan2(y - cy, x - cx), h)
        if crown is not None:
            sdf = torch.minimum(sdf, crown)
        occ = occupancy(sdf, n_fine)
        return box, occ * s.value if s.value != 1.0 else occ

    return render


def crown_splash_truth(params: CrownSplash | None = None, size: int = 64, frames: int = 40, *,
                       oversample: int = 2) -> np.ndarray:
    """Voxel-averaged truth f[t, z, y, x] (T, size, size, size) float32 of the splash."""
    scene = CrownSplash() if params is None else params
    return scene_truth(lambda n, pad: _renderer(scene, frames, n, oversample), size, frames,
                       oversample)


def simulate_crown_splash(params: CrownSplash | None = None, size: int = 64, frames: int = 40,
                          angles_deg: Sequence[float] | np.ndarray = (0.0, 23.8),
                          noise: float = 0.01, seed: int = 0, *, oversample: int = 2,
                          frame_interval_s: float = 1.0,
                          detector: DetectorGeometry | None = None) -> Recording:
    """A ``line_integral`` recording of the splash with its truth
    (:func:`~.scene.record`: fine grid, supersampled detector)."""
    scene = CrownSplash() if params is None else params
    return record(lambda n, pad: _renderer(scene, frames, n, oversample), "crown_splash", scene,
                  size=size, frames=frames, angles_deg=angles_deg, noise=noise, seed=seed,
                  oversample=oversample, frame_interval_s=frame_interval_s,
                  detector=detector)
