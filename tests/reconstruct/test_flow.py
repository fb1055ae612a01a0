"""The flow prior: residuals of mass transport and incompressibility against analytic flows,
the loss terms in a fit, and the velocity in the output file."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from xray4d.api import reconstruct, resolve_config
from xray4d.errors import InputError
from xray4d.io import load_reconstruction, save_reconstruction
from xray4d.reconstruct.flow import transport_residuals
from xray4d.simulate import simulate_droplets

C = np.array([0.3, -0.2, 0.1])      # a uniform velocity (x, y, z)
X0, S = np.array([0.1, 0.0, -0.1]), 0.3


def _points(n: int = 200, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xyzt = torch.rand(n, 4, generator=g, dtype=torch.float64) * 2 - 1
    return xyzt[:, :3], xyzt[:, 3]


def _blob(points: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """A Gaussian blob carried along by the uniform velocity C."""
    centre = torch.as_tensor(X0) + times[:, None] * torch.as_tensor(C)
    return torch.exp(-((points - centre) ** 2).sum(1) / (2 * S ** 2))


def _uniform(c: np.ndarray):
    return lambda p, t: torch.as_tensor(c, dtype=p.dtype).expand(p.shape[0], 3)


def test_advected_blob_with_its_velocity_has_no_residual() -> None:
    points, times = _points()
    mass, div = transport_residuals(_blob, _uniform(C), points, times, create_graph=False)
    assert float(mass.abs().max()) < 1e-12 and float(div.abs().max()) == 0.0


@pytest.mark.parametrize("wrong", [np.zeros(3), -C, np.array([0.3, 0.2, 0.1])])
def test_advected_blob_with_a_wrong_velocity_has_the_analytic_residual(wrong) -> None:
    """df/dt + w . grad f = (w - C) . grad f for f(x - C t), grad f = -(x - X0 - C t) f / S^2
    (computed here in numpy)."""
    points, times = _points()
    mass, _ = transport_residuals(_blob, _uniform(wrong), points, times, create_graph=False)
    p, t = points.numpy(), times.numpy()
    r = p - X0 - t[:, None] * C
    f = np.exp(-(r ** 2).sum(1) / (2 * S ** 2))
    expected = ((wrong - C)[None] * (-r / S ** 2 * f[:, None])).sum(1)
    np.testing.assert_allclose(mass.detach().numpy(), expected, rtol=1e-10, atol=1e-12)
    assert np.sqrt(np.mean(expected ** 2)) > 0.05      # far from zero


def test_compressing_flow_keeps_mass_through_the_divergence_term() -> None:
    """v = a x (div v = 3a) carries f(x, t) = exp(-3 a t) g(x exp(-a t)): the mass residual
    is zero only with the f div v term, and the divergence is 3a everywhere."""
    a = 0.4

    def density(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        q = p * torch.exp(-a * t)[:, None]
        return torch.exp(-3 * a * t) * torch.exp(-((q - torch.as_tensor(X0)) ** 2).sum(1)
                                                  / (2 * S ** 2))

    points, times = _points()
    mass, div = transport_residuals(density, lambda p, t: a * p, points, times,
                                    create_graph=False)
    assert float(mass.abs().max()) < 1e-12
    np.testing.assert_allclose(div.detach().numpy(), 3 * a, rtol=1e-12)
    # a divergence-free guess (v = 0) leaves df/dt = -3a f - a x . grad f
    mass0, div0 = transport_residuals(density, _uniform(np.zeros(3)), points, times,
                                      create_graph=False)
    assert float(div0.abs().max()) == 0.0 and float(mass0.abs().mean()) > 0.01


def _config(**flow):
    return resolve_config("default", {"train": {"iterations": 20, "time_budget_s": None,
                                                "frames_per_batch": 2},
                                      "flow": {"transport_weight": 1.0, "divergence_weight": 0.1,
                                               "warmup_iterations": 5, "points": 256, **flow}})


def test_fit_with_the_flow_prior_trains_and_writes_the_velocity(tmp_path: Path) -> None:
    rec = simulate_droplets(size=12, frames=3, noise=0.01, seed=0, frame_interval_s=1e-4)
    result = reconstruct(rec, _config(), progress=False, times="x2")
    r = result.reconstruction
    assert r.velocity.shape == (5, 3, 12, 12, 12) and np.isfinite(r.velocity).all()
    terms = result.loss_terms
    assert terms["flow_transport"][0] == 0.0                    # warming up at step 0
    assert terms["flow_transport"][-1] > 0 and terms["flow_divergence"][-1] > 0
    # the velocity field moved from its start (it is optimised)
    assert float(r.velocity.std()) > 0
    save_reconstruction(r, tmp_path / "r.h5")
    back = load_reconstruction(tmp_path / "r.h5")
    np.testing.assert_array_equal(back.velocity, r.velocity)
    # without the prior: no velocity, and old files load as before
    plain = reconstruct(rec, resolve_config("default", {"train": {"iterations": 5,
                                                                  "time_budget_s": None}}),
                        progress=False).reconstruction
    assert plain.velocity is None


def test_velocity_of_a_wrong_shape_is_refused(tmp_path: Path) -> None:
    import h5py
    rec = simulate_droplets(size=8, frames=2, noise=0.0, seed=0)
    r = reconstruct(rec, resolve_config("default", {"train": {"iterations": 2,
                                                              "time_budget_s": None}}),
                    progress=False).reconstruction
    save_reconstruction(r, tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5", "a") as f:
        f["/reconstruction/velocity"] = np.zeros((2, 2, 8, 8, 8), np.float32)
    with pytest.raises(InputError, match=r"/reconstruction/velocity: wrong shape"):
        load_reconstruction(tmp_path / "r.h5")


@pytest.mark.parametrize("method", ["sirt", "perframe", "static"])
def test_flow_prior_needs_a_field_continuous_in_time(method: str) -> None:
    rec = simulate_droplets(size=8, frames=2, noise=0.0, seed=0)
    cfg = _config()
    cfg.method = method
    with pytest.raises(InputError, match="config flow: the flow prior needs a field continuous"):
        reconstruct(rec, cfg, progress=False)


def test_velocity_units_are_voxels_per_second() -> None:
    from xray4d.fields.velocity import to_voxels_per_second
    v = np.ones((1, 3, 5, 9, 17), np.float32)     # one normalised unit per normalised time
    out = to_voxels_per_second(v, (5, 9, 17), time_span_s=2.0)
    # x: 16 voxels over 2 s of the movie, both spanning 2 normalised units -> 8 voxels/s
    assert out[0, 0, 0, 0, 0] == 8.0 and out[0, 1, 0, 0, 0] == 4.0 and out[0, 2, 0, 0, 0] == 2.0
    assert math.isclose(float(to_voxels_per_second(v, (5, 9, 17), 0.0).max()), 0.0)


def test_cli_with_the_flow_prior_writes_velocity_and_its_arrows(tmp_path: Path) -> None:
    from xray4d.cli import main
    from xray4d.io import save_recording

    rec = simulate_droplets(size=12, frames=3, noise=0.01, seed=0)
    save_recording(rec, tmp_path / "rec.h5")
    (tmp_path / "flow.yaml").write_text("flow:\n  transport_weight: 1.0\n"
                                        "  divergence_weight: 0.1\n  points: 128\n")
    assert main(["reconstruct", str(tmp_path / "rec.h5"), "--out", str(tmp_path / "out.h5"),
                 "--iterations", "6", "--quiet", "--config", str(tmp_path / "flow.yaml")]) == 0
    assert load_reconstruction(tmp_path / "out.h5").velocity.shape == (3, 3, 12, 12, 12)
    assert (tmp_path / "out_preview" / "velocity.png").stat().st_size > 0


def test_checkpoint_keeps_the_velocity_field(tmp_path: Path) -> None:
    """A run resumed from its checkpoint continues with the velocity field it had."""
    from xray4d.reconstruct.hexplane import HexPlaneReconstructor

    rec = simulate_droplets(size=8, frames=2, noise=0.0, seed=0)
    cfg = _config()
    cfg.train.iterations, cfg.train.checkpoint_every_s = 8, 0.0
    ckpt = tmp_path / "run.ckpt"
    first = HexPlaneReconstructor(rec, cfg, ckpt, progress=False).fit()
    state = torch.load(ckpt, weights_only=True)
    assert set(state["terms"]) == {"flow_transport"}      # the term that owns the velocity
    again = HexPlaneReconstructor(rec, cfg, ckpt, progress=False).fit(resume=True)
    assert again.iterations == 8                           # nothing left to do
    np.testing.assert_array_equal(again.reconstruction.velocity, first.reconstruction.velocity)
