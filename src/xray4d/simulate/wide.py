"""The wide scene: a long horizontal liquid cylinder, wider than the field of view, carrying a
travelling wave.

A cylinder of liquid lies along x, longer than the field of view is wide, so
every view's projections are truncated: the detector's edge columns see liquid
and rays at an oblique angle cross liquid outside the reconstructed volume. Its
radius carries a travelling varicose wave and its centre line a travelling
kink wave (along z, seen by every view):

    r(x, t) = r0 (1 + a sin(k x - 2 pi n t)),   z_c(x, t) = z0 + b sin(k2 x - 2 pi n2 t).

The scene is rendered on a fine grid padded along y and x (see
:func:`~.sampling.central`) far enough to hold the whole cylinder, so the
projections are the line integrals of all of it. Signed distance: to first order
from ``F = rho^2 - r^2(x)`` (``F / |grad F|``), cut by the flat ends.
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
from .scene import box_coordinates, fine_box, occupancy, pad_for, record, scene_truth

__all__ = ["WideCylinder", "wide_cylinder_truth", "simulate_wide_cylinder"]


@dataclass(frozen=True)
class WideCylinder:
    """A long liquid cylinder along x with travelling waves (lengths in W, times normalised).

    Attributes:
        length: length of the cylinder along x (centred on x = 0; > 1 is wider than the view).
        radius: radius r0.
        centre: (y, z) of the axis.
        amplitude, wavelength, cycles: varicose wave: relative amplitude a, wavelength
            2 pi / k, periods passing a point over the movie.
        kink, kink_wavelength, kink_cycles: kink wave of the axis along z: amplitude b,
            wavelength 2 pi / k2, periods over the movie.
        value: value inside the liquid.
    """

    length: float = 1.6
    radius: float = 0.1
    centre: tuple[float, float] = (0.03, 0.05)
    amplitude: float = 0.25
    wavelength: float = 0.45
    cycles: float = 1.0
    kink: float = 0.04
    kink_wavelength: float = 0.8
    kink_cycles: float = 0.5
    value: float = 1.0

    def __post_init__(self) -> None:
        for name in ("length", "radius", "wavelength", "kink_wavelength", "value"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.amplitude < 1 or self.kink < 0:
            raise ValueError("amplitude must be in [0, 1) and kink >= 0")

    @property
    def half_width(self) -> float:
        """Largest |x| or |y| of the liquid (W units)."""
        rmax = self.radius * (1 + self.amplitude)
        return max(self.length / 2, abs(self.centre[0]) + rmax)


def _renderer(c: WideCylinder, frames: int, n_fine: int, oversample: int, pad: int
              ) -> Callable[[int], FineFrame]:
    """Frame i on the padded fine grid."""
    tt = normalised_times(frames)
    rmax = c.radius * (1 + c.amplitude) + 1.0 / n_fine
    y0, z0 = c.centre
    box = fine_box((-c.length / 2, y0 - rmax, z0 - c.kink - rmax),
                   (c.length / 2, y0 + rmax, z0 + c.kink + rmax), n_fine, oversample, pad=pad)
    k, k2 = 2 * math.pi / c.wavelength, 2 * math.pi / c.kink_wavelength

    def render(i: int) -> FineFrame:
        if box is None:
            return None
        t = float(tt[i])
        z, y, x = box_coordinates(box, n_fine, pad=pad)
        wave = k * x - 2 * math.pi * c.cycles * t
        r = c.radius * (1 + c.amplitude * torch.sin(wave))
        drsq = 2 * r * c.radius * c.amplitude * k * torch.cos(wave)
        zc = z0 + c.kink * torch.sin(k2 * x - 2 * math.pi * c.kink_cycles * t)
        rho2 = (y - y0) ** 2 + (z - zc) ** 2
        side = (rho2 - r * r) / torch.sqrt(4 * rho2 + drsq * drsq).clamp_min(1e-9)
        occ = occupancy(torch.maximum(side, x.abs() - c.length / 2), n_fine)
        return box, occ * c.value if c.value != 1.0 else occ

    return render


def wide_cylinder_truth(params: WideCylinder | None = None, size: int = 64, frames: int = 40, *,
                        oversample: int = 2) -> np.ndarray:
    """Voxel-averaged truth f[t, z, y, x] (T, size, size, size) float32: the part of the
    cylinder inside the field of view."""
    c = WideCylinder() if params is None else params
    pad = pad_for(c.half_width, size * oversample, oversample)
    return scene_truth(lambda n, p: _renderer(c, frames, n, oversample, p), size, frames,
                       oversample, pad)


def simulate_wide_cylinder(params: WideCylinder | None = None, size: int = 64, frames: int = 40,
                           angles_deg: Sequence[float] | np.ndarray = (0.0, 23.8),
                           noise: float = 0.01, seed: int = 0, *, oversample: int = 2,
                           frame_interval_s: float = 1.0,
                           detector: DetectorGeometry | None = None) -> Recording:
    """A ``line_integral`` recording of the wide cylinder with its truth: truncated
    projections (line integrals of the whole cylinder on the field of view's detector)."""
    c = WideCylinder() if params is None else params
    pad = pad_for(c.half_width, size * oversample, oversample)
    return record(lambda n, p: _renderer(c, frames, n, oversample, p), "wide_cylinder", c,
                  size=size, frames=frames, angles_deg=angles_deg, noise=noise, seed=seed,
                  oversample=oversample, frame_interval_s=frame_interval_s,
                  detector=detector, pad=pad,
                  extra={"padding_fine_voxels": pad})
