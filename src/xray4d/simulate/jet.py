"""The liquid jet scene: a falling jet whose Rayleigh-Plateau swelling grows until it pinches
off into drops.

A liquid cylinder of radius r0 runs through the whole height of the field of
view along a slightly tilted axis and falls along it. Its surface carries a
varicose perturbation of wavelength lambda; in terms of the squared radius,

    r^2(zeta, t) = r0^2 (1 + A(t) cos(k zeta)),   k = 2 pi / lambda,

which keeps the volume of every wavelength at pi r0^2 lambda for A <= 1. The
amplitude grows exponentially, ``A = A0 exp(sigma t)``, and reaches 1 at
``pinch_time``, when the necks close. From then on the squared-radius profile
of each period relaxes towards that of a sphere of the same volume,
``R^3 = 3/4 r0^2 lambda``, by ``s(t)``, a smoothstep from 0 at ``pinch_time`` to 1
``relax_time`` later:

    r^2 = (1 - s) r0^2 (1 + cos(k zeta)) + s max(R^2 - zeta^2, 0)

(zeta taken from the nearest bulge), which keeps the volume too: a train of
drops. The signed distance is taken to first order from
``F = rho^2 - r^2(zeta)``: ``F / |grad F|``, finite at the necks; sections with no
liquid (r^2 <= 0, between the drops) are outside.
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
from .scene import box_coordinates, fine_box, occupancy, record, scene_truth, smoothstep

__all__ = ["LiquidJet", "liquid_jet_truth", "simulate_liquid_jet"]


@dataclass(frozen=True)
class LiquidJet:
    """A falling liquid jet breaking up into drops (lengths in W, times normalised).

    Attributes:
        radius: radius r0 of the unperturbed jet.
        wavelength: wavelength of the varicose perturbation (Rayleigh-Plateau's fastest
            growing one is about 9 r0).
        amplitude: initial amplitude A0 of the perturbation of the squared radius.
        pinch_time: time at which the necks close (the amplitude reaches 1).
        relax_time: time the drops take to become spheres after pinch-off.
        speed: falling speed along the axis, W per movie.
        centre: (x, y) where the axis crosses z = 0.
        tilt_deg: tilt of the axis from z towards x.
        value: value inside the liquid.
    """

    radius: float = 0.05
    wavelength: float = 0.4
    amplitude: float = 0.08
    pinch_time: float = 0.55
    relax_time: float = 0.15
    speed: float = 0.3
    centre: tuple[float, float] = (0.04, -0.03)
    tilt_deg: float = 8.0
    value: float = 1.0

    def __post_init__(self) -> None:
        for name in ("radius", "wavelength", "relax_time", "value"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.amplitude < 1:
            raise ValueError(f"amplitude must be in (0, 1), got {self.amplitude}")
        if not self.pinch_time > 0:
            raise ValueError(f"pinch_time must be > 0, got {self.pinch_time}")
        if not self.radius ** 2 < self.wavelength ** 2 / 6:
            raise ValueError("radius must be below wavelength / sqrt(6): the drops would touch")

    @property
    def drop_radius(self) -> float:
        """Radius R of the drops, one per wavelength: ``R^3 = 3/4 r0^2 lambda``."""
        return (0.75 * self.radius ** 2 * self.wavelength) ** (1.0 / 3.0)

    def profile(self, t: float, zeta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Squared radius r^2 and its derivative d(r^2)/d zeta at axial positions ``zeta``
        (measured in the falling liquid) and normalised time ``t``."""
        k = 2 * math.pi / self.wavelength
        # zeta from the nearest bulge (the maxima of cos k zeta)
        z = torch.remainder(zeta + self.wavelength / 2, self.wavelength) - self.wavelength / 2
        r0sq = self.radius ** 2
        if t <= self.pinch_time:
            a = self.amplitude * math.exp(math.log(1 / self.amplitude) * t / self.pinch_time)
            return r0sq * (1 + a * torch.cos(k * z)), -r0sq * a * k * torch.sin(k * z)
        s = smoothstep((t - self.pinch_time) / self.relax_time)
        big = self.drop_radius ** 2
        inside = (z * z < big).to(z.dtype)
        rsq = (1 - s) * r0sq * (1 + torch.cos(k * z)) + s * (big - z * z) * inside
        drsq = -(1 - s) * r0sq * k * torch.sin(k * z) - s * 2 * z * inside
        return rsq, drsq


def _renderer(jet: LiquidJet, frames: int, n_fine: int, oversample: int
              ) -> Callable[[int], FineFrame]:
    """Frame i of the jet on the fine grid, inside the box around its axis."""
    tt = normalised_times(frames)
    tilt = math.radians(jet.tilt_deg)
    axis = (math.sin(tilt), 0.0, math.cos(tilt))
    reach = (max(jet.radius * math.sqrt(2.0), jet.drop_radius) + 1.0 / n_fine) / math.cos(tilt)
    shift = 0.5 * math.tan(tilt)
    cx, cy = jet.centre
    box = fine_box((cx - shift - reach, cy - reach, -0.5), (cx + shift + reach, cy + reach, 0.5),
                   n_fine, oversample)

    def render(i: int) -> FineFrame:
        if box is None:
            return None
        z, y, x = box_coordinates(box, n_fine)
        px, py = x - cx, y - cy
        along = px * axis[0] + z * axis[2]
        rho2 = px * px + py * py + z * z - along * along
        rsq, drsq = jet.profile(float(tt[i]), along + jet.speed * float(tt[i]))
        grad = torch.sqrt(4 * rho2 + drsq * drsq).clamp_min(1e-9)
        # where the section is empty (between drops) F / |grad F| = rho / 2 would leave a
        # thread along the axis: outside, at least one fine voxel away
        sdf = torch.where(rsq > 0, (rho2 - rsq) / grad, rho2.sqrt().clamp_min(1.0 / n_fine))
        occ = occupancy(sdf, n_fine)
        return box, occ * jet.value if jet.value != 1.0 else occ

    return render


def liquid_jet_truth(params: LiquidJet | None = None, size: int = 64, frames: int = 40, *,
                     oversample: int = 2) -> np.ndarray:
    """Voxel-averaged truth f[t, z, y, x] (T, size, size, size) float32 of the jet."""
    jet = LiquidJet() if params is None else params
    return scene_truth(lambda n, pad: _renderer(jet, frames, n, oversample), size, frames,
                       oversample)


def simulate_liquid_jet(params: LiquidJet | None = None, size: int = 64, frames: int = 40,
                        angles_deg: Sequence[float] | np.ndarray = (0.0, 23.8),
                        noise: float = 0.01, seed: int = 0, *, oversample: int = 2,
                        frame_interval_s: float = 1.0,
                        detector: DetectorGeometry | None = None) -> Recording:
    """A ``line_integral`` recording of the breaking jet with its truth
    (:func:`~.scene.record`: fine grid, supersampled detector)."""
    jet = LiquidJet() if params is None else params
    return record(lambda n, pad: _renderer(jet, frames, n, oversample), "liquid_jet", jet,
                  size=size, frames=frames, angles_deg=angles_deg, noise=noise, seed=seed,
                  oversample=oversample, frame_interval_s=frame_interval_s,
                  detector=detector,
                  extra={"pinch_frame": int(math.ceil(jet.pinch_time * max(frames - 1, 0)))})
