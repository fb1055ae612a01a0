"""The geometry conventions of ``docs/data-format.md``, pinned on the Geometry object.

At angle theta the ray through detector pixel (k, j) is x = u cos(theta) - s sin(theta),
y = u sin(theta) + s cos(theta), z = z_k with u_j = j - (W - 1) / 2 (pixel units), so
theta = 0 sums over y and theta = 90 degrees over x. The references are these formulas
evaluated by hand here; the projector's agreement with them is in test_projector.py.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from xray4d.geometry import Geometry, centred_coordinates, normalised_coordinates


def test_centred_and_normalised_coordinates() -> None:
    np.testing.assert_allclose(centred_coordinates(4), [-1.5, -0.5, 0.5, 1.5])
    np.testing.assert_allclose(normalised_coordinates(5), [-1, -0.5, 0, 0.5, 1])


def test_angles_per_view_are_shared_by_every_frame() -> None:
    g = Geometry.from_angles([0.0, 23.8], 3, 8, 10, pixel_size_m=2e-6)
    assert g.angles_deg.shape == (3, 2) and g.frames == 3 and g.views == 2
    assert g.volume_shape == (8, 10, 10)
    assert g.angles_shared and g.angle_sets == 1
    rot = Geometry.from_angles([[0, 90], [10, 100], [0, 90]], 3, 8, 10)
    assert not rot.angles_shared and rot.angle_sets == 2
    with pytest.raises(ValueError, match="angles must have shape"):
        Geometry.from_angles(np.zeros((2, 2)), 3, 8, 10)


def _ray(geom: Geometry, angle: float, row: int, col: int, n: int = 400):
    pts, ds = geom.ray_points(np.array([angle]), torch.tensor([row]), torch.tensor([col]), n,
                              dtype=torch.float64)
    # back from normalised coordinates to pixel units about the centre
    sx, sz = (geom.width - 1) / 2, (geom.height - 1) / 2
    return pts[0, :, 0] * sx, pts[0, :, 1] * sx, pts[0, :, 2] * sz, ds


@pytest.mark.parametrize("angle", [0.0, 23.8, 90.0, 137.0])
def test_ray_points_follow_the_contract(angle: float) -> None:
    geom = Geometry.from_angles([angle], 1, 5, 12)
    row, col = 3, 8
    x, y, z, ds = _ray(geom, angle, row, col)
    th = np.deg2rad(angle)
    u = col - (12 - 1) / 2
    # every point is u along the detector direction and some s along the beam
    s = -x.numpy() * np.sin(th) + y.numpy() * np.cos(th)
    np.testing.assert_allclose(x.numpy(), u * np.cos(th) - s * np.sin(th), atol=1e-9)
    np.testing.assert_allclose(y.numpy(), u * np.sin(th) + s * np.cos(th), atol=1e-9)
    np.testing.assert_allclose(z.numpy(), row - (5 - 1) / 2, atol=1e-12)
    # equally spaced by ds along the beam, centred on the rotation axis
    np.testing.assert_allclose(np.diff(s), ds, rtol=1e-9)
    assert abs(s.mean()) < 1e-9


def test_theta_0_runs_along_y_and_theta_90_along_x() -> None:
    geom = Geometry.from_angles([0.0, 90.0], 1, 3, 10)
    x0, y0, _, _ = _ray(geom, 0.0, 1, 7)
    assert torch.allclose(x0, torch.full_like(x0, 7 - 4.5)) and y0.std() > 1
    x90, y90, _, _ = _ray(geom, 90.0, 1, 7)
    assert torch.allclose(y90, torch.full_like(y90, 7 - 4.5), atol=1e-9) and x90.std() > 1


def test_the_ray_covers_the_volume_and_its_samples_sum_to_the_chord() -> None:
    """Line integral of the indicator of a disc of radius R about the axis, centred ray:
    2R (the midpoint rule's error is at most one step)."""
    geom = Geometry.from_angles([31.0], 1, 1, 16)
    x, y, _, ds = _ray(geom, 31.0, 0, 8, n=2000)
    u = 8 - 7.5
    r = 6.0
    inside = (x ** 2 + y ** 2) <= r ** 2
    assert float(inside.sum()) * ds == pytest.approx(2 * np.sqrt(r ** 2 - u ** 2), abs=2 * ds)
    # the samples reach beyond the volume's circumscribed circle
    assert float((x ** 2 + y ** 2).max()) > 2 * 7.5 ** 2
