"""The moment-based estimate of an object's value (xray4d.value_estimate), against known values."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from xray4d.geometry import Geometry
from xray4d.projector import Projector
from xray4d.reconstruct.value_bound import (estimate_value_max, estimate_value_max_auto, estimate_value_max_moments,
                                   row_covariance_value)

FOUR = (0.0, 23.8, 67.5, 112.5)


def ellipsoid(size: int, semi_axes, yaw_deg: float, value: float, supersample: int = 3) -> np.ndarray:
    """Voxel-averaged uniform ellipsoid (Z, Y, X) turned by ``yaw_deg`` about z, built here."""
    c = (np.arange(size * supersample) + 0.5) / supersample - 0.5 - (size - 1) / 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    a = np.radians(yaw_deg)
    xb, yb = np.cos(a) * x + np.sin(a) * y, -np.sin(a) * x + np.cos(a) * y
    ax, ay, az = semi_axes
    inside = (xb / ax) ** 2 + (yb / ay) ** 2 + (z / az) ** 2 < 1
    s = supersample
    return value * inside.reshape(size, s, size, s, size, s).mean((1, 3, 5))


def project(vols: np.ndarray, angles) -> np.ndarray:
    g = Geometry.from_angles(angles, vols.shape[0], vols.shape[1], vols.shape[2])
    with torch.no_grad():
        return Projector(g, dtype=torch.float64).forward(torch.as_tensor(vols)).numpy()


@pytest.mark.parametrize("semi_axes, yaw, value", [((12.0, 7.0, 5.0), 10.0, 1.0),
                                                   ((6.0, 11.0, 8.0), 70.0, 2.0),
                                                   ((9.0, 9.0, 9.0), 0.0, 0.5)])
def test_moments_recover_the_value_of_elongated_ellipsoids(semi_axes, yaw, value) -> None:
    """Uniform ellipsoids at 4 views: the moment estimate is within 4 % of the value (measured
    0.8-1.7 %) where the disc estimate is off by 23-35 % for the elongated ones."""
    vol = ellipsoid(40, semi_axes, yaw, value)[None]
    proj = project(vol, FOUR)
    est = estimate_value_max_moments(proj, np.array(FOUR), margin=1.0)
    assert est == pytest.approx(value, rel=0.04)
    auto, which = estimate_value_max_auto(proj, np.array(FOUR), margin=1.0)
    assert which == "moments" and auto == est
    if semi_axes[0] != semi_axes[1]:
        assert abs(estimate_value_max(proj, margin=1.0) / value - 1) > 0.1


def test_two_views_do_not_determine_the_value() -> None:
    """Two views leave the slice's covariance one parameter short: no moment estimate; the
    automatic choice falls back to the disc estimate (exact for a sphere)."""
    vol = ellipsoid(32, (8.0, 8.0, 8.0), 0.0, 1.0)[None]
    proj = project(vol, (0.0, 23.8))
    assert estimate_value_max_moments(proj, np.array([0.0, 23.8])) is None
    val, which = estimate_value_max_auto(proj, np.array([0.0, 23.8]), margin=1.0)
    assert which == "disc" and val == pytest.approx(1.0, rel=0.03)
    # three views, two of them the same direction (0 and 180 deg): still undetermined
    rows = project(vol, (0.0, 180.0, 45.0))[0, :, 16]
    assert row_covariance_value(rows, np.array([0.0, 180.0, 45.0])) is None


def test_per_frame_angles_and_separate_bumps() -> None:
    """(T, V) angles, and two balls side by side: the profile around the peak is one ball."""
    vols = np.stack([ellipsoid(40, (6.0, 6.0, 6.0), 0.0, 1.5),
                     ellipsoid(40, (10.0, 5.0, 6.0), 30.0, 1.5)])
    angles = np.array([FOUR, [a + 40.0 for a in FOUR]])
    g = Geometry.from_angles(angles, 2, 40, 40)
    with torch.no_grad():
        proj = Projector(g, dtype=torch.float64).forward(torch.as_tensor(vols)).numpy()
    assert estimate_value_max_moments(proj, angles, margin=1.0) == pytest.approx(1.5, rel=0.04)
    # two separate balls in one row: each view's bump around its peak is a single ball
    two = np.roll(ellipsoid(40, (5.0, 5.0, 5.0), 0.0, 1.0), -13, axis=2) + \
        np.roll(ellipsoid(40, (5.0, 5.0, 5.0), 0.0, 1.0), 13, axis=2)
    angles2 = (0.0, 25.0, 50.0)      # 26 cos(50 deg) = 16.7 > 10: 6.7 px apart in every view
    p2 = project(two[None], angles2)
    assert estimate_value_max_moments(p2, np.array(angles2), margin=1.0) == pytest.approx(1.0, rel=0.04)
