"""Per-view detector geometry (shift, tilt, magnification) against references the code did
not produce.

References used here:

* the forward mapping of ``data-format.md`` written out in the test (a virtual point
  ``(u, z)`` lands on the detector at ``m R(phi) (u, z) + shift + centre``), and the
  closed-form line integral of an isotropic Gaussian (``sqrt(2 pi) sigma exp(-d^2 / 2 sigma^2)``
  at distance ``d`` from its centre), so each detector shows a Gaussian disc of width
  ``m sigma`` around the mapped centre;
* exact identities: integer shifts move images by whole pixels, the ideal geometry changes
  nothing (bit for bit), the dot-product test ``<Ax, y> = <x, A^T y>``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from xray4d.alignment import from_detectors, to_detectors, to_detectors_adjoint
from xray4d.geometry import (DetectorGeometry, Geometry, detector_to_virtual,
                             virtual_to_detector)
from xray4d.projector import Projector, project_rays

H, W = 20, 24
SIGMA = 2.5
CENTRE = (1.5, -2.0, 1.0)          # (x, y, z) of the Gaussian, pixel units


def gaussian_on_detector(theta_deg: float, shift, tilt_deg: float, mag: float) -> np.ndarray:
    """(H, W) line integrals of the Gaussian blob on a shifted/tilted/magnified detector,
    from the forward mapping: the blob's virtual centre (u_c, z_c) lands at
    d_c = m R(phi) (u_c, z_c) + shift, and a pixel at distance r from d_c sees the line
    at distance r / m from the blob's centre."""
    t = math.radians(theta_deg)
    x, y, z = CENTRE
    uc, zc = x * math.cos(t) + y * math.sin(t), z
    p = math.radians(tilt_deg)
    dc_col = mag * (uc * math.cos(p) - zc * math.sin(p)) + shift[0]
    dc_row = mag * (uc * math.sin(p) + zc * math.cos(p)) + shift[1]
    cols = np.arange(W) - (W - 1) / 2
    rows = np.arange(H) - (H - 1) / 2
    r2 = (cols[None, :] - dc_col) ** 2 + (rows[:, None] - dc_row) ** 2
    return math.sqrt(2 * math.pi) * SIGMA * np.exp(-r2 / mag ** 2 / (2 * SIGMA ** 2))


def gaussian_volume() -> torch.Tensor:
    z, y, x = np.meshgrid(*(np.arange(n) - (n - 1) / 2 for n in (H, W, W)), indexing="ij")
    r2 = (x - CENTRE[0]) ** 2 + (y - CENTRE[1]) ** 2 + (z - CENTRE[2]) ** 2
    return torch.as_tensor(np.exp(-r2 / (2 * SIGMA ** 2)), dtype=torch.float64)


VIEWS = [(0.0, (0.0, 0.0), 0.0, 1.0), (30.0, (1.5, -2.0), 1.0, 1.0),
         (75.0, (-2.5, 1.0), -3.0, 1.05), (120.0, (0.4, 0.7), 0.0, 0.95)]


def _geometry() -> Geometry:
    det = DetectorGeometry.build(1, len(VIEWS), [v[1] for v in VIEWS], [v[2] for v in VIEWS],
                                 [v[3] for v in VIEWS])
    return Geometry.from_angles([v[0] for v in VIEWS], 1, H, W, detector=det)


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def test_dense_projector_matches_the_analytic_gaussian_on_misaligned_detectors() -> None:
    out = Projector(_geometry(), dtype=torch.float64).forward(gaussian_volume()[None])[0]
    for v, (theta, shift, tilt, mag) in enumerate(VIEWS):
        ref = gaussian_on_detector(theta, shift, tilt, mag)
        assert _rel(out[v].numpy(), ref) < 0.02, v
        # and far from what an ideal detector would see
        if shift != (0.0, 0.0):
            assert _rel(gaussian_on_detector(theta, (0, 0), 0, 1), ref) > 0.2


def test_ray_path_matches_the_analytic_gaussian_on_misaligned_detectors() -> None:
    g = _geometry()
    sx, sz = (W - 1) / 2, (H - 1) / 2

    def field(p: torch.Tensor) -> torch.Tensor:     # normalised (x, y, z) -> the Gaussian
        x, y, z = p[:, 0] * sx, p[:, 1] * sx, p[:, 2] * sz
        r2 = (x - CENTRE[0]) ** 2 + (y - CENTRE[1]) ** 2 + (z - CENTRE[2]) ** 2
        return torch.exp(-r2 / (2 * SIGMA ** 2))

    kk, jj = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    for v, (theta, shift, tilt, mag) in enumerate(VIEWS):
        n = kk.numel()
        got = project_rays(field, g, torch.full((n,), theta, dtype=torch.float64),
                           kk.reshape(-1), jj.reshape(-1), 4 * W, margin=1.0,
                           dtype=torch.float64, frames=torch.zeros(n, dtype=torch.long),
                           views=torch.full((n,), v, dtype=torch.long))
        assert _rel(got.reshape(H, W).numpy(), gaussian_on_detector(theta, shift, tilt, mag)) \
            < 2e-3, v


def test_ray_path_needs_the_views_when_detectors_are_not_ideal() -> None:
    with pytest.raises(ValueError, match="view"):
        project_rays(lambda p: p[:, 0], _geometry(), torch.zeros(2), torch.zeros(2),
                     torch.zeros(2), 8)


def test_resampling_at_zero_parameters_is_the_identity() -> None:
    x = torch.rand(2, 3, H, W, dtype=torch.float64)
    out = to_detectors(x, torch.zeros(2, 3, 2), torch.zeros(2, 3), torch.ones(2, 3))
    assert torch.allclose(out, x, atol=1e-12)


def test_positive_shifts_move_the_image_to_higher_columns_and_rows() -> None:
    x = torch.rand(1, 1, H, W, dtype=torch.float64)
    out = to_detectors(x, torch.tensor([[[2.0, 1.0]]]), torch.zeros(1, 1), torch.ones(1, 1))
    assert torch.allclose(out[0, 0, 1:, 2:], x[0, 0, :-1, :-2], atol=1e-12)
    assert float(out[0, 0, 0].abs().max()) < 1e-12 and float(out[0, 0, :, :2].abs().max()) < 1e-12


def test_from_detectors_inverts_an_integer_shift() -> None:
    x = torch.zeros(1, 1, H, W, dtype=torch.float64)
    x[0, 0, 5:12, 6:15] = torch.rand(7, 9, dtype=torch.float64)
    args = (torch.tensor([[[3.0, -2.0]]]), torch.zeros(1, 1), torch.ones(1, 1))
    assert torch.allclose(from_detectors(to_detectors(x, *args), *args), x, atol=1e-12)


def test_adjoint_is_the_transpose() -> None:
    g = _geometry()
    p = Projector(g, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, H, W, W, generator=gen, dtype=torch.float64)
    y = torch.rand(1, len(VIEWS), H, W, generator=gen, dtype=torch.float64)
    lhs, rhs = float((p.forward(x) * y).sum()), float((x * p.adjoint(y)).sum())
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs)
    sh, ti, ma = p.detector_parameters()
    a, b = to_detectors(y, sh, ti, ma), to_detectors_adjoint(y, sh, ti, ma)
    assert abs(float((a * y).sum()) - float((y * b).sum())) <= 1e-10 * float((a * y).sum())


def test_ideal_detector_geometry_changes_nothing() -> None:
    vol = torch.rand(2, H, W, W)
    angles = np.array([[0.0, 23.8], [10.0, 40.0]])
    plain = Projector(Geometry.from_angles(angles, 2, H, W))
    ideal = Projector(Geometry.from_angles(angles, 2, H, W,
                                           detector=DetectorGeometry.build(2, 2)))
    assert ideal.geometry.aligned
    assert torch.equal(plain.forward(vol), ideal.forward(vol))
    proj = torch.rand(2, 2, H, W)
    assert torch.equal(plain.adjoint(proj), ideal.adjoint(proj))


def test_resampling_is_differentiable_in_the_parameters() -> None:
    x = torch.rand(1, 2, H, W, dtype=torch.float64)
    shift = torch.tensor([[[0.3, -0.2], [1.1, 0.4]]], dtype=torch.float64, requires_grad=True)
    tilt = torch.tensor([[0.5, -1.0]], dtype=torch.float64, requires_grad=True)
    mag = torch.tensor([[1.02, 0.97]], dtype=torch.float64, requires_grad=True)
    to_detectors(x, shift, tilt, mag).pow(2).sum().backward()
    for t in (shift, tilt, mag):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs, match", [
    ({"shift_px": np.zeros((3, 2))}, "shape"),
    ({"tilt_deg": [0.0, 60.0]}, "tilt"),
    ({"magnification": [1.0, 3.0]}, "magnification"),
    ({"tilt_deg": [0.0, float("nan")]}, "NaN"),
])
def test_detector_geometry_refuses_bad_values(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        DetectorGeometry.build(4, 2, **kwargs)


def test_per_frame_detector_geometry_is_kept_per_frame() -> None:
    d = DetectorGeometry.build(3, 2, np.arange(12, dtype=float).reshape(3, 2, 2))
    assert d.per_frame and d.shift_px.shape == (3, 2, 2)
    assert not DetectorGeometry.build(3, 2, [[0, 0], [1, 2]]).per_frame


def test_virtual_to_detector_inverts_detector_to_virtual() -> None:
    """The inverse mapping (used to bring measured images onto the virtual detector) undoes
    the pixel -> virtual-detector mapping for shift, tilt and magnification together."""
    rows = torch.linspace(0, 31, 7, dtype=torch.float64)[:, None]
    cols = torch.linspace(0, 29, 5, dtype=torch.float64)[None, :]
    shift = torch.tensor([1.3, -2.1], dtype=torch.float64)
    tilt, mag = torch.tensor(1.7, dtype=torch.float64), torch.tensor(1.05, dtype=torch.float64)
    u, z = detector_to_virtual(rows, cols, shift, tilt, mag, 32, 30)
    back_rows, back_cols = virtual_to_detector(u, z, shift, tilt, mag, 32, 30)
    torch.testing.assert_close(back_rows, rows.expand_as(back_rows), atol=1e-12, rtol=0)
    torch.testing.assert_close(back_cols, cols.expand_as(back_cols), atol=1e-12, rtol=0)
