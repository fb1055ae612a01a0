"""Gradients of the differentiable operators the trainer relies on, checked against finite
differences (``torch.autograd.gradcheck``, float64): the measurement model (line integrals
-> detector intensity through Fresnel propagation) and the dense renderer of X-Hexplane
(planes -> voxel grid), alone and chained through the projector."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from xray4d import physics as ph
from xray4d.fields import HexPlaneField
from xray4d.geometry import Geometry
from xray4d.physics.measurement import IntensityModel, OpticsSetup
from xray4d.projector import Projector

#: 15 keV, 2 um pixels, 48 mm: Fresnel number ~1, the regime of the droplet recordings
OPTICS = OpticsSetup(15.0, 2e-6, 0.048)


@pytest.mark.parametrize("oversample, psf, two_channel",
                         [(1, 0.0, False), (2, 0.5, False), (2, 0.5, True)])
def test_gradcheck_intensity_model(oversample: int, psf: float, two_channel: bool,
                                   device: str) -> None:
    water = ph.refractive_index("H2O", 1.0, OPTICS.energy_kev)
    model = IntensityModel(OPTICS, water.delta_over_beta, psf, oversample=oversample,
                           two_channel=two_channel)
    rng = np.random.default_rng(0)
    shape = (1, 2, 2, 5, 6) if two_channel else (1, 2, 5, 6)
    # line integrals of delta in pixels: a few pixels of water, a few radians of phase
    x = torch.as_tensor(3 * water.delta * rng.random(shape), dtype=torch.float64, device=device)
    if two_channel:
        x[:, 1] /= water.delta_over_beta
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(model, (x,), eps=1e-3 * water.delta, atol=1e-6, rtol=1e-3)


def _field(outputs: int = 1, decoder: str = "linear") -> HexPlaneField:
    fld = HexPlaneField(channels=3, space_resolution=(3, 4, 4), time_resolution=3,
                        decoder=decoder, mlp_hidden=4, value_max=[1.0, 0.5][:outputs]
                        if outputs > 1 else 1.0, init_value=[0.3, 0.4][:outputs]
                        if outputs > 1 else 0.3, init_scale=0.5, seed=1, outputs=outputs,
                        relative=outputs > 1)
    return fld.double()


class _Render(torch.nn.Module):
    """A field's dense render as a module's forward, so its parameters can be swapped in."""

    def __init__(self, fld: HexPlaneField, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.fld, self.shape = fld, shape

    def forward(self, times: torch.Tensor) -> torch.Tensor:
        return self.fld.render_frames(times, self.shape)


def _render_fn(fld: HexPlaneField, times: torch.Tensor, shape=(4, 5, 5)):
    """(function of the parameters -> rendered frames, the parameters as inputs)."""
    module = _Render(fld, shape)
    names = [n for n, _ in module.named_parameters()]
    inputs = tuple(p.detach().clone().requires_grad_(True) for p in module.parameters())

    def render(*values):
        return torch.func.functional_call(module, dict(zip(names, values)), (times,))
    return render, inputs


@pytest.mark.parametrize("decoder, outputs", [("linear", 1), ("mlp", 1), ("linear", 2)])
def test_gradcheck_dense_render_wrt_every_parameter(decoder: str, outputs: int,
                                                    device: str) -> None:
    times = torch.tensor([-0.6, 0.35], dtype=torch.float64, device=device)
    render, inputs = _render_fn(_field(outputs, decoder).to(device), times)
    assert torch.autograd.gradcheck(render, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_gradcheck_render_then_project(device: str) -> None:
    """The chain the data term differentiates: planes -> frames -> line integrals."""
    times = torch.tensor([-1.0, 1.0], dtype=torch.float64, device=device)
    render, inputs = _render_fn(_field().to(device), times)
    proj = Projector(Geometry.from_angles([0.0, 23.8], 2, 4, 5), dtype=torch.float64,
                     device=device)

    def chain(*values):
        return proj.forward(render(*values), frames=np.arange(2))

    assert torch.autograd.gradcheck(chain, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)
