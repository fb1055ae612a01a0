"""The fast dense rendering of X-Hexplane (:mod:`xray4d.fields.pair_frames`: matrix products
into one voxel-major buffer, bias and sigmoid fused) against the point path, which samples
every plane with ``grid_sample`` and multiplies the pairs point by point: the values and the
gradients of every parameter, per dtype and device."""
from __future__ import annotations

import pytest
import torch

from xray4d.fields import HexPlaneField

#: name -> (plane resolution (Z, Y, X), outputs, activation, relative)
CASES = {
    "at_grid_resolution_sigmoid": ((5, 6, 7), 1, "sigmoid", False),
    "coarser_sigmoid": ((3, 4, 5), 1, "sigmoid", False),
    "softplus": ((5, 6, 7), 1, "softplus", False),
    "two_outputs_relative": ((3, 6, 4), 2, "sigmoid", True),
}
SHAPE = (5, 6, 7)


def _field(case: str, dtype: torch.dtype, device: str) -> HexPlaneField:
    space, outputs, activation, relative = CASES[case]
    torch.manual_seed(3)
    f = HexPlaneField(channels=4, space_resolution=space, time_resolution=3, init_scale=0.5,
                      activation=activation, outputs=outputs, relative=relative,
                      value_max=(1.5, 0.5)[:outputs] if outputs > 1 else 1.5,
                      init_value=(0.3, 0.4)[:outputs] if outputs > 1 else 0.3)
    with torch.no_grad():
        for p in f.planes.values():
            p.add_(0.3 * torch.randn_like(p))
        f.weight.normal_()
        f.bias.add_(0.2)
    return f.to(device=device, dtype=dtype)


def _points_render(f: HexPlaneField, times: torch.Tensor) -> torch.Tensor:
    """The reference: the field evaluated at every voxel centre through grid_sample."""
    z, y, x = SHAPE
    kw = {"dtype": times.dtype, "device": times.device}
    gz, gy, gx = torch.meshgrid(torch.linspace(-1, 1, z, **kw), torch.linspace(-1, 1, y, **kw),
                                torch.linspace(-1, 1, x, **kw), indexing="ij")
    pts = torch.stack([gx, gy, gz], -1).reshape(-1, 3)
    frames = []
    for t in times:
        v = f(pts, t.expand(pts.shape[0]))
        frames.append(v.reshape(SHAPE) if f.outputs == 1 else v.T.reshape(f.outputs, *SHAPE))
    return torch.stack(frames)


def _values_and_grads(f: HexPlaneField, render, weights: torch.Tensor):
    f.zero_grad(set_to_none=True)
    out = render()
    (out * weights).sum().backward()
    return out.detach(), {n: p.grad.clone() for n, p in f.named_parameters()}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_render_and_gradients_match_the_point_path(case: str, dtype: torch.dtype,
                                                        device: str) -> None:
    f = _field(case, dtype, device)
    times = torch.tensor([-1.0, -0.3, 0.55], dtype=dtype, device=device)
    g = torch.Generator().manual_seed(4)
    weights = torch.randn((3, f.outputs, *SHAPE) if f.outputs > 1 else (3, *SHAPE),
                          generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    fast, fast_grads = _values_and_grads(f, lambda: f.render_frames(times, SHAPE), weights)
    ref, ref_grads = _values_and_grads(f, lambda: _points_render(f, times), weights)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else \
        {"rtol": 1e-10, "atol": 1e-11}
    assert fast.dtype == dtype and fast.shape == ref.shape
    torch.testing.assert_close(fast, ref, **tol)
    for name, grad in ref_grads.items():
        scale = float(grad.abs().max()) or 1.0
        torch.testing.assert_close(fast_grads[name] / scale, grad / scale, **tol, msg=name)


def test_linear_frames_are_voxel_major() -> None:
    """The layout the projector reads without a copy: (B, Z, Y, X) in channels-last memory."""
    f = _field("at_grid_resolution_sigmoid", torch.float32, "cpu")
    v = f.render_frames(torch.tensor([0.0, 0.5]), SHAPE)
    assert v.shape == (2, *SHAPE) and v.is_contiguous(memory_format=torch.channels_last)


def test_bfloat16_autocast_render_is_close_and_trains_float32_parameters(device: str) -> None:
    f = _field("coarser_sigmoid", torch.float32, device)
    times = torch.tensor([-0.5, 0.5], device=device)
    ref = f.render_frames(times, SHAPE)
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
        low = f.render_frames(times, SHAPE)
    assert low.dtype == torch.bfloat16
    # bfloat16 keeps 8 bits of mantissa: ~0.4 % of the bound
    assert float((low.detach().float() - ref.detach()).abs().max()) < 0.02 * 1.5
    low.float().sum().backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in f.parameters())
