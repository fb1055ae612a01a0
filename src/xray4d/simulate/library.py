"""The scene library: every simulated scene by name, for the CLI, the benchmark and scripts.

:data:`SCENES` maps a name to a :class:`Scene`: a one-line summary, the
parameters' dataclass (its defaults are the scene), ``simulate(params=None, *,
size, frames, angles_deg, noise, seed, oversample, frame_interval_s)`` and
``truth(params=None, *, size, frames, oversample)``. :func:`get_scene` looks one
up with a one-line error naming the known ones.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..data import Recording
from ..geometry import DetectorGeometry
from .bubble import BubbleColumn, bubble_column_truth, simulate_bubble_column
from .crown import CrownSplash, crown_splash_truth, simulate_crown_splash
from .droplet_kinematics import DropletCollision
from .droplets import droplet_truth, simulate_droplets
from .ellipsoid import RigidEllipsoid, rigid_ellipsoid_truth, simulate_rigid_ellipsoid
from .jet import LiquidJet, liquid_jet_truth, simulate_liquid_jet
from .mixing import MixingDrops, mixing_drops_truth, simulate_mixing_drops
from .spray import Spray, simulate_spray, spray_truth
from .tripod import TumblingTripod, simulate_tumbling_tripod, tumbling_tripod_truth
from .wide import WideCylinder, simulate_wide_cylinder, wide_cylinder_truth

__all__ = ["Scene", "SCENES", "get_scene", "scene_names"]


@dataclass(frozen=True)
class Scene:
    """One scene of the library.

    Attributes:
        name: what users pick it by (``xray4d simulate NAME``, ``--cases NAME``).
        summary: one line for listings.
        params: the frozen dataclass of its parameters; ``params()`` is the scene.
        simulate: ``simulate(params=None, size=, frames=, angles_deg=, noise=, seed=,
            oversample=, frame_interval_s=, detector=)`` -> a ``line_integral`` recording with truth.
        truth: ``truth(params=None, size=, frames=, oversample=)`` -> (T, N, N, N) float32.
        values: the values its materials take with the default parameters (largest
            first): the truth lies in [0, values[0]].
        width: width of the fine grid over the field of view's (above 1 for a scene wider
            than the field of view), for memory estimates.
    """

    name: str
    summary: str
    params: type
    simulate: Callable[..., Recording]
    truth: Callable[..., np.ndarray]
    values: tuple[float, ...] = (1.0,)
    width: float = 1.0

    def recording(self, *, size: int, frames: int, angles_deg: Any, noise: float, seed: int,
                  oversample: int = 2, frame_interval_s: float = 1.0,
                  params: Any = None, detector: DetectorGeometry | None = None) -> Recording:
        """The scene's recording (default parameters unless ``params``), on detectors of
        ``detector``'s geometry (None: ideal)."""
        return self.simulate(params, size=size, frames=frames, angles_deg=angles_deg,
                             noise=noise, seed=seed, oversample=oversample,
                             frame_interval_s=frame_interval_s, detector=detector)


def _droplet_truth(params: DropletCollision | None = None, size: int = 64, frames: int = 40, *,
                   oversample: int = 2) -> np.ndarray:
    return droplet_truth(DropletCollision() if params is None else params, size, frames,
                         oversample=oversample)


SCENES: dict[str, Scene] = {s.name: s for s in (
    Scene("droplets", "binary droplet collision: approach, neck, coalescence, damped oscillation",
          DropletCollision, simulate_droplets, _droplet_truth),
    Scene("ellipsoid", "rigid ellipsoid with a hollow inclusion (0.4), moving on an arc, tumbling",
          RigidEllipsoid, simulate_rigid_ellipsoid, rigid_ellipsoid_truth, (1.0, 0.4)),
    Scene("jet", "falling liquid jet: Rayleigh-Plateau swelling grows until it pinches off "
                 "into drops", LiquidJet, simulate_liquid_jet, liquid_jet_truth),
    Scene("bubble-column", "gas bubble (void) rising and wobbling in a liquid column that "
                           "spans most of the height", BubbleColumn, simulate_bubble_column,
          bubble_column_truth),
    Scene("spray", "24 small drops (3-8 voxels across at 64^3) on ballistic paths, crossing "
                   "in the views", Spray, simulate_spray, spray_truth),
    Scene("two-liquids", "drops of two liquids (1.0 and 0.6) merge, spin and mix "
                         "(intermediate values)", MixingDrops, simulate_mixing_drops,
          mixing_drops_truth, (1.0, 0.6)),
    Scene("tripod", "rigid non-convex tripod (hub and three legs) tumbling about a tilted "
                    "axis and drifting", TumblingTripod, simulate_tumbling_tripod,
          tumbling_tripod_truth),
    Scene("crown", "drop falls on a film and throws up a thin-walled expanding crown "
                   "(splash)", CrownSplash, simulate_crown_splash, crown_splash_truth),
    Scene("wide-cylinder", "horizontal liquid cylinder longer than the field of view "
                           "(truncated projections) with travelling waves", WideCylinder,
          simulate_wide_cylinder, wide_cylinder_truth, width=1.8),
)}


def scene_names() -> list[str]:
    """Names of the scenes, in the library's order."""
    return list(SCENES)


def get_scene(name: str) -> Scene:
    """The scene called ``name``; ValueError (one line) naming the known ones otherwise."""
    if name not in SCENES:
        raise ValueError(f"unknown scene {name!r}; available: {', '.join(SCENES)}")
    return SCENES[name]
