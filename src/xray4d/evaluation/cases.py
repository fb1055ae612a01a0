"""The simulated cases xray4d is evaluated on: the benchmark's cases and the demo's recording.

A case is a named scene of :mod:`xray4d.simulate` with its parameters, seen from
1 to 4 views (:data:`VIEW_ANGLES`), plus what a user of that case knows about the
sample (:data:`KNOWN_MATERIAL`, config overrides given to every method). Besides the
named variants of :data:`CASES`, every scene of the library (:data:`xray4d.simulate.SCENES`)
is a case with its default parameters, and ``all`` names them all (:func:`expand_cases`).
:data:`VARIANTS` are library scenes with other parameters (the validation benchmark's later
sets); they are cases by name but not in the benchmark's default list.
"""
from __future__ import annotations

from typing import Any

from ..data import Recording
from ..simulate import (SCENES, DropletCollision, get_scene, simulate_droplets,
                        simulate_rigid_ellipsoid)

__all__ = ["VIEW_ANGLES", "CASES", "VARIANTS", "KNOWN_MATERIAL", "DEMO_SIMULATION", "case_overrides",
           "simulate_case", "case_names", "expand_cases", "describe_case", "case_width"]

#: view angles (degrees) by number of views: XMPI-like, the first two 23.8 deg apart
VIEW_ANGLES = {1: (0.0,), 2: (0.0, 23.8), 3: (0.0, 23.8, 67.5), 4: (0.0, 23.8, 67.5, 112.5)}

#: simulated cases: name -> (one-line description, simulator, keyword arguments)
CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "head-on": ("head-on collision of two equal droplets", "droplets", {}),
    "off-centre": ("off-centre collision of unequal droplets (impact 0.4, radii 0.15 / 0.11)",
                   "droplets", {"radius_1": 0.15, "radius_2": 0.11, "impact_parameter": 0.4}),
    "ellipsoid": ("rigid ellipsoid with a hollow inclusion, moving on an arc and tumbling",
                  "ellipsoid", {}),
}

#: library scenes with other parameters: name -> (one-line description, scene, parameters);
#: every one keeps the truth's largest value at 1
VARIANTS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "glancing": ("glancing collision of two smaller equal droplets (radii 0.12, impact 0.3)",
                 "droplets", {"radius_1": 0.12, "radius_2": 0.12, "impact_parameter": 0.3}),
    "thick-jet": ("thicker, longer-wave liquid jet (radius 0.07, wavelength 0.5, amplitude 0.1)",
                  "jet", {"radius": 0.07, "wavelength": 0.5, "amplitude": 0.1}),
    "slim-column": ("slimmer liquid column (radius 0.2) with a smaller rising bubble (0.07)",
                    "bubble-column", {"column_radius": 0.2, "bubble_radius": 0.07}),
}

#: what a user of a case knows about the sample, as config overrides for every method: the
#: ellipsoid is one material of value 1, given as the bound of the field and of the conventional
#: iterates (two views cannot tell this object's value: see value_estimate). Droplet cases pass
#: nothing: hexplane estimates the value from the projections.
KNOWN_MATERIAL: dict[str, dict[str, Any]] = {
    "ellipsoid": {"field": {"value_max": 1.0}, "conventional": {"value_max": 1.0}},
}

#: the demo's recording: the default droplet collision (keyword arguments of simulate_droplets)
DEMO_SIMULATION = {"size": 64, "frames": 40, "angles_deg": (0.0, 23.8), "noise": 0.01, "seed": 0}


def case_overrides(case: str, user: dict[str, Any]) -> dict[str, Any]:
    """The config overrides of one case: its known material, then the user's (which win)."""
    def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out
    return merge(KNOWN_MATERIAL.get(case, {}), user)


def case_names() -> list[str]:
    """Every case: the named variants of :data:`CASES`, then the library's other scenes."""
    return list(CASES) + [s for s in SCENES if s not in CASES] + list(VARIANTS)


def expand_cases(names: list[str]) -> list[str]:
    """The cases asked for, with ``all`` standing for every scene of the library (in its
    order); duplicates dropped."""
    out: list[str] = []
    for name in names:
        out += list(SCENES) if name == "all" else [name]
    return list(dict.fromkeys(out))


def describe_case(case: str) -> str:
    """One line describing a case."""
    if case in VARIANTS:
        return VARIANTS[case][0]
    return CASES[case][0] if case in CASES else SCENES[case].summary


def case_width(case: str) -> float:
    """Width of the case's fine grid over the field of view's (memory estimates)."""
    if case in VARIANTS:
        return SCENES[VARIANTS[case][1]].width
    return 1.0 if case in CASES else SCENES[case].width


def simulate_case(case: str, views: int, size: int, frames: int, noise: float,
                  seed: int) -> Recording:
    """The recording (with truth) of a case (:func:`case_names`) seen from ``views`` views."""
    angles = VIEW_ANGLES[views]
    if case in VARIANTS:
        _, name, kwargs = VARIANTS[case]
        scene = get_scene(name)
        return scene.recording(size=size, frames=frames, angles_deg=angles, noise=noise,
                               seed=seed, params=scene.params(**kwargs))
    if case not in CASES:
        return get_scene(case).recording(size=size, frames=frames, angles_deg=angles,
                                         noise=noise, seed=seed)
    _, kind, kwargs = CASES[case]
    if kind == "droplets":
        return simulate_droplets(DropletCollision(**kwargs), size=size, frames=frames,
                                 angles_deg=angles, noise=noise, seed=seed)
    return simulate_rigid_ellipsoid(size=size, frames=frames, angles_deg=angles, noise=noise,
                                    seed=seed)
