"""The projector (sparse CSR and dense) against the dense Joseph matrix built slice by slice
(:func:`~xray4d.projector.slice_projection_matrix`): forward, adjoint and the gradient of
the forward, for row-major and voxel-major (channels-last) volumes, shared and per-frame
angles, per dtype and device."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from xray4d.geometry import Geometry
from xray4d.projector import Projector, slice_projection_matrix

ANGLES = {"shared": [0.0, 23.8, 90.0, 137.0],
          "per_frame": [[0.0, 23.8, 90.0, 137.0], [10.0, 47.5, 200.0, 315.0],
                        [0.0, 23.8, 90.0, 137.0]]}


def _dense_reference(geom: Geometry, volume: torch.Tensor) -> torch.Tensor:
    """(B, V, Z, W) by dense matrix products, one operator per frame."""
    w = geom.width
    out = []
    for b in range(volume.shape[0]):
        op = torch.cat([slice_projection_matrix(float(a), w, dtype=volume.dtype,
                                                device=volume.device)
                        for a in geom.angles_deg[b]])                      # (V*W, W*W)
        rows = volume[b].reshape(geom.height, -1) @ op.t()                 # (Z, V*W)
        out.append(rows.reshape(geom.height, geom.views, w).transpose(0, 1))
    return torch.stack(out)


@pytest.mark.parametrize("sparse", [True, False], ids=["csr", "dense"])
@pytest.mark.parametrize("layout", ["row_major", "channels_last"])
@pytest.mark.parametrize("angles", list(ANGLES))
def test_forward_gradient_and_adjoint_match_the_dense_matrix(
        sparse: bool, layout: str, angles: str, dtype: torch.dtype, device: str) -> None:
    a = np.asarray(ANGLES[angles], dtype=np.float64)
    frames, h, w = 3, 5, 12
    geom = Geometry.from_angles(a, frames, h, w)
    proj = Projector(geom, dtype=dtype, device=device, sparse=sparse)
    assert proj.sparse == sparse
    g = torch.Generator().manual_seed(5)
    vol = torch.rand(frames, h, w, w, generator=g, dtype=torch.float64).to(device, dtype)
    if layout == "channels_last":
        vol = vol.contiguous(memory_format=torch.channels_last)
    weights = torch.randn(frames, geom.views, h, w, generator=g, dtype=torch.float64
                          ).to(device, dtype)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else \
        {"rtol": 1e-12, "atol": 1e-12}

    fast_in = vol.clone().requires_grad_()
    fast = proj(fast_in)
    (fast * weights).sum().backward()
    ref_in = vol.clone().requires_grad_()
    ref = _dense_reference(geom, ref_in)
    (ref * weights).sum().backward()
    torch.testing.assert_close(fast, ref.detach(), **tol)
    torch.testing.assert_close(fast_in.grad, ref_in.grad, **tol)
    # the adjoint is the transposed product, hence the forward's gradient
    torch.testing.assert_close(proj.adjoint(weights), ref_in.grad, **tol)


def test_a_subset_of_frames_uses_their_own_angles() -> None:
    a = np.asarray(ANGLES["per_frame"])
    geom = Geometry.from_angles(a, 3, 4, 10)
    vol = torch.rand(2, 4, 10, 10, dtype=torch.float64)
    out = Projector(geom, dtype=torch.float64, sparse=True)(vol, frames=[2, 1])
    ref = _dense_reference(Geometry.from_angles(a[[2, 1]], 2, 4, 10), vol)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
