"""The rectangle slice model of the value bound, against slices rasterised here."""
from __future__ import annotations

import numpy as np
import pytest

from xray4d.reconstruct.value_rectangles import rectangle_sides, rectangle_value

W = 48


def _rows(inside, value: float, angles_deg, fine: int = 16) -> np.ndarray:
    """(V, W) line integrals of a uniform slice (``inside(x, y)`` on a grid ``fine`` times
    finer than the pixels), binned into detector pixels along n = (cos a, sin a)."""
    c = (np.arange(W * fine) + 0.5) / fine - W / 2
    x, y = np.meshgrid(c, c)
    sel = inside(x, y)
    rows = []
    for a in np.radians(angles_deg):
        u = x[sel] * np.cos(a) + y[sel] * np.sin(a) + W / 2
        rows.append(np.histogram(u, bins=W, range=(0, W))[0] * value / fine ** 2)
    return np.asarray(rows)


def _plate(length: float, depth: float, psi_deg: float):
    e = np.radians(psi_deg)

    def inside(x, y):
        along = x * np.cos(e) + y * np.sin(e)
        across = -x * np.sin(e) + y * np.cos(e)
        return (np.abs(along) <= length / 2) & (np.abs(across) <= depth / 2)
    return inside


def test_sides_of_a_rectangle_from_its_box_widths() -> None:
    angles = np.array([0.0, 23.8, 67.5])
    psi = np.radians(40 - angles)
    widths = np.stack([16 * np.abs(np.cos(psi)), 4 * np.abs(np.sin(psi))], axis=1)
    length, depth, residual = rectangle_sides(widths[:, ::-1], angles)
    assert (length, depth) == (pytest.approx(16, abs=0.1), pytest.approx(4, abs=0.05))
    assert residual < 0.01


@pytest.mark.parametrize("angles", [(0.0, 23.8), (0.0, 23.8, 67.5, 112.5)])
@pytest.mark.parametrize("psi", [35.0, 120.0])
@pytest.mark.parametrize("blur", [False, True])
def test_value_of_a_plate_turned_in_depth(angles, psi: float, blur: bool) -> None:
    rows = _rows(_plate(24.0, 6.0, psi), 1.3, angles)
    if blur:          # a detector blur (0.2 px^2) that the pixel-averaged trapezoid lacks
        rows = np.stack([np.convolve(r, [0.1, 0.8, 0.1], mode="same") for r in rows])
    rows += np.random.default_rng(0).normal(0, 0.01 * rows.max(), rows.shape)
    # one slice with 1 % noise (the bound takes the median over frames)
    got = rectangle_value(rows, np.array(angles))
    assert got == pytest.approx(1.3, rel=0.06 if blur else 0.03)


def test_a_disc_is_not_a_rectangle() -> None:
    rows = _rows(lambda x, y: x ** 2 + y ** 2 <= 8.0 ** 2, 1.0, (0.0, 23.8))
    assert rectangle_value(rows, np.array([0.0, 23.8])) is None
