"""Conventional baselines (FBP, SIRT, CGLS), the neural ablations, and the method registry."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xray4d.cli import main
from xray4d.config import ReconstructionConfig
from xray4d.conventional import angular_weights, cgls, fbp, ramp_filter, sirt
from xray4d.fields import HexPlaneField, PerFrameHexPlaneField
from xray4d.geometry import Geometry
from xray4d.io import Recording, load_reconstruction, save_recording
from xray4d.methods import _METHODS, available_methods, get_method
from xray4d.projector import Projector

# (centre x, y, z), semi-axes (x, y, z), value: a phantom built here, not by xray4d
ELLIPSOIDS = (((0.0, 0.0, 0.0), (24.0, 19.0, 5.5), 1.0),
              ((-8.0, 4.0, 0.0), (7.0, 5.0, 4.0), -0.5),
              ((9.0, -5.0, 1.0), (5.0, 8.0, 3.0), 0.6))


def ellipsoid_phantom(width: int, height: int, supersample: int = 4) -> np.ndarray:
    """Voxel-averaged sum of ellipsoids, shape (height, width, width), voxel-centre convention."""
    def axis(n: int) -> np.ndarray:
        return (np.arange(n * supersample) + 0.5) / supersample - 0.5 - (n - 1) / 2

    z, y, x = np.meshgrid(axis(height), axis(width), axis(width), indexing="ij")
    vol = np.zeros_like(x)
    for (cx, cy, cz), (ax, ay, az), value in ELLIPSOIDS:
        vol += value * (((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 + ((z - cz) / az) ** 2 < 1)
    s = supersample
    return vol.reshape(height, s, width, s, width, s).mean((1, 3, 5)).astype(np.float32)


def psnr(a: np.ndarray, truth: np.ndarray) -> float:
    rng = float(truth.max() - truth.min())
    return float(10 * np.log10(rng ** 2 / np.mean((a - truth) ** 2)))


def small_recording(frames: int = 3, size: int = 16, angles=(0.0, 23.8), noise: float = 0.0) -> Recording:
    """A ball that moves along x, projected by the project's own projector."""
    vols = []
    for t in range(frames):
        c = (np.arange(size) - (size - 1) / 2)
        z, y, x = np.meshgrid(c, c, c, indexing="ij")
        vols.append((((x - 2.0 * t + 2) ** 2 + y ** 2 + z ** 2) < (size / 4) ** 2).astype(np.float32))
    vol = torch.as_tensor(np.stack(vols))
    g = Geometry.from_angles(angles, frames, size, size)
    with torch.no_grad():
        proj = Projector(g).forward(vol).numpy()
    if noise:
        proj = proj + noise * proj.max() * np.random.default_rng(0).standard_normal(proj.shape).astype(np.float32)
    return Recording(proj.astype(np.float32), g, truth=vol.numpy())


# ---------------------------------------------------------------- pieces

def test_angular_weights_share_the_half_circle() -> None:
    np.testing.assert_allclose(angular_weights(np.arange(0, 180, 1.0)), np.pi / 180)
    np.testing.assert_allclose(angular_weights(np.arange(0, 360, 2.0)), np.pi / 180)
    w = angular_weights(np.array([0.0, 23.8]))
    np.testing.assert_allclose(w, [np.pi / 2, np.pi / 2])
    w = angular_weights(np.array([[0.0, 10.0, 90.0], [5.0, 5.0, 95.0]]))
    np.testing.assert_allclose(w.sum(axis=1), np.pi)
    np.testing.assert_allclose(np.degrees(w[0]), [(90 + 10) / 2, (10 + 80) / 2, (80 + 90) / 2])
    assert w[1, 0] == w[1, 1]


def test_ramp_filter_removes_the_mean_and_keeps_the_shape() -> None:
    p = torch.zeros(1, 1, 1, 64)
    p[..., 20:44] = 1.0
    for window in ("ram-lak", "shepp-logan", "cosine", "hamming", "hann"):
        q = ramp_filter(p, window)
        assert q.shape == p.shape and q.dtype == p.dtype
        # a box filtered: negative lobes just outside, near zero in the middle
        assert q[..., 18] < 0 and q[..., 45] < 0 and abs(float(q[..., 32])) < 0.05
    with pytest.raises(ValueError, match="unknown filter window"):
        ramp_filter(p, "gauss")


# ---------------------------------------------------------------- quality and convergence

@pytest.fixture(scope="module")
def many_angles():
    """A 64-wide phantom (16 rows) seen at 180 angles over 180 deg."""
    truth = ellipsoid_phantom(64, 16)
    g = Geometry.from_angles(np.arange(180) * 1.0, 1, 16, 64)
    proj = Projector(g)
    with torch.no_grad():
        data = proj.forward(torch.as_tensor(truth)[None])
    return truth, proj, data


def test_fbp_of_many_angles_reaches_30_db(many_angles) -> None:
    truth, proj, data = many_angles
    with torch.no_grad():
        rec = fbp(data, proj, "ram-lak")[0].numpy()
        rec_sl = fbp(data, proj, "shepp-logan")[0].numpy()
    assert psnr(rec, truth) >= 30.0
    assert psnr(rec_sl, truth) >= 30.0
    # the same answer through the registered method
    res = get_method("fbp")(Recording(data.numpy(), proj.geometry, truth=truth[None]),
                            ReconstructionConfig.from_dict({"conventional": {"filter": "ram-lak",
                                                                             "nonnegative": False}}),
                            None, False, False)
    np.testing.assert_allclose(res.reconstruction.volume[0], rec, atol=1e-4)


def test_sirt_residual_decreases_monotonically(many_angles) -> None:
    rec = small_recording(frames=3, size=24, angles=(0.0, 23.8, 67.5, 112.5), noise=0.01)
    res = get_method("sirt")(rec, ReconstructionConfig.from_dict({"conventional": {"iterations": 40}}),
                             None, False, False)
    losses = np.array(res.losses)
    assert res.iterations == len(losses) == 40
    assert np.all(np.diff(losses) <= 1e-9 * losses[0]), losses
    assert losses[-1] < 0.1 * losses[0]
    assert res.reconstruction.volume.min() >= 0
    assert res.predicted.shape == rec.projections.shape
    # unconstrained SIRT on the many-angle phantom converges towards it
    truth, proj, data = many_angles
    with torch.no_grad():
        x, _, l2 = sirt(data, proj, 30, nonnegative=False)
    assert np.all(np.diff(l2) <= 0)
    assert psnr(x[0].numpy(), truth) >= 25.0


def test_cgls_residual_decreases(many_angles) -> None:
    rec = small_recording(frames=3, size=24, noise=0.01)
    res = get_method("cgls")(rec, ReconstructionConfig.from_dict({"conventional": {"iterations": 15}}),
                             None, False, False)
    losses = np.array(res.losses)
    assert len(losses) == 15
    assert np.all(np.diff(losses) <= 1e-6 * losses[0]), losses
    assert losses[-1] < 0.05 * losses[0]
    assert res.reconstruction.volume.min() >= 0      # clipped at the end
    truth, proj, data = many_angles
    with torch.no_grad():
        x, pred, l2 = cgls(data, proj, 20)
    assert np.all(np.diff(l2) <= 1e-6 * l2[0])
    assert psnr(x[0].numpy(), truth) >= 30.0
    np.testing.assert_allclose(pred.numpy(), proj.forward(x).numpy(), atol=1e-3 * float(data.max()))


def test_conventional_methods_handle_per_frame_angles_and_empty_frames() -> None:
    rec = small_recording(frames=2, size=16)
    angles = np.array([[0.0, 23.8], [10.0, 33.8]])
    g = Geometry.from_angles(angles, 2, 16, 16)
    proj = Projector(g).forward(torch.as_tensor(rec.truth)).numpy()
    proj[1] = 0.0                                    # an empty frame: no division by zero
    rec = Recording(proj, g, truth=rec.truth)
    for name in ("fbp", "sirt", "cgls"):
        res = get_method(name)(rec, ReconstructionConfig.from_dict({"conventional": {"iterations": 5}}),
                               None, False, False)
        vol = res.reconstruction.volume
        assert np.isfinite(vol).all() and np.all(vol[1] == 0), name
        assert res.reconstruction.method == name


def test_conventional_config_is_validated() -> None:
    for bad, match in (({"filter": "box"}, "conventional.filter"),
                       ({"relaxation": 2.5}, "conventional.relaxation"),
                       ({"iterations": 0}, "conventional.iterations"),
                       ({"cutoff": 0}, "conventional.cutoff"),
                       ({"colour": 1}, "unknown key")):
        with pytest.raises(ValueError, match=match):
            ReconstructionConfig.from_dict({"conventional": bad})


# ---------------------------------------------------------------- ablations

def test_static_field_renders_the_same_volume_at_every_time() -> None:
    f = HexPlaneField(channels=4, space_resolution=(6, 7, 8), time_resolution=1, seed=1)
    with torch.no_grad():
        for p in f.planes.values():
            p.add_(0.3 * torch.randn_like(p))
        vols = f.render_frames(torch.tensor([-1.0, -0.3, 0.4, 1.0]), (5, 6, 6))
    for v in vols[1:]:
        torch.testing.assert_close(v, vols[0])


def test_perframe_field_frames_are_independent() -> None:
    times = torch.tensor([-1.0, 0.0, 1.0])
    f = PerFrameHexPlaneField(times, channels=4, space_resolution=(4, 4, 4), seed=0)
    vol = f.render_frames(times, (4, 4, 4))
    vol[1].sum().backward()
    grads = [sum(float(p.grad.abs().sum()) if p.grad is not None else 0.0
                 for p in sub.parameters()) for sub in f.fields]
    assert grads[1] > 0 and grads[0] == 0 and grads[2] == 0
    # point path agrees with the dense path on voxel centres
    g = torch.linspace(-1, 1, 4)
    zz, yy, xx = torch.meshgrid(g, g, g, indexing="ij")
    pts = torch.stack([xx, yy, zz], -1).reshape(-1, 3)
    with torch.no_grad():
        pt = f(pts.repeat(3, 1), times.repeat_interleave(pts.shape[0]))
        torch.testing.assert_close(pt.reshape(3, 4, 4, 4), f.render_frames(times, (4, 4, 4)),
                                   rtol=1e-5, atol=1e-6)
    f.upsample((6, 6, 6))
    assert f.space_resolution == (6, 6, 6) and f.time_resolution == 1


def test_static_and_perframe_methods_fit() -> None:
    rec = small_recording(frames=3, size=16)
    cfg = ReconstructionConfig.from_dict({"field": {"channels": 4},
                                          "train": {"iterations": 30, "frames_per_batch": 2}})
    static = get_method("static")(rec, cfg, None, False, False)
    vol = static.reconstruction.volume
    assert static.reconstruction.method == "static"
    np.testing.assert_allclose(vol[0], vol[2], rtol=1e-6, atol=1e-7)
    assert static.losses[-1] < static.losses[0]
    per = get_method("perframe")(rec, cfg, None, False, False)
    assert per.reconstruction.method == "perframe"
    assert not np.array_equal(per.reconstruction.volume[0], per.reconstruction.volume[2])
    assert per.losses[-1] < per.losses[0]


# ---------------------------------------------------------------- registry and command line

def test_registry_lists_each_method_once() -> None:
    names = list(available_methods())
    assert len(names) == len(set(names))
    for name in ("hexplane", "fbp", "sirt", "cgls", "static", "perframe"):
        assert names.count(name) == 1
        assert get_method(name) is _METHODS[name][0]
    with pytest.raises(ValueError, match="registered twice"):
        from xray4d.methods import register_method
        register_method("sirt")(lambda *a: None)
    with pytest.raises(ValueError, match="unknown method"):
        get_method("art")


@pytest.mark.parametrize("method", sorted(available_methods()))
def test_reconstruct_verb_runs_every_method(method: str, tmp_path: Path, capsys) -> None:
    rec = small_recording(frames=3, size=12)
    src = tmp_path / "rec.h5"
    save_recording(rec, src)
    out = tmp_path / "out.h5"
    args = ["reconstruct", str(src), "--out", str(out), "--method", method, "--iterations", "3",
            "--quiet"]
    if method != "sirt":          # sirt exercises the previews
        args.append("--no-preview")
    assert main(args) == 0
    r = load_reconstruction(out)
    assert r.method == method
    assert r.volume.shape == rec.truth.shape and np.isfinite(r.volume).all()
    assert r.config["method"] == method
    if method in ("sirt", "cgls"):
        assert r.config["conventional"]["iterations"] == 3
        assert r.config["resolved"]["iterations_run"] == 3
    assert f"method {method}" in capsys.readouterr().out


def test_reconstruct_verb_refuses_bad_conventional_options(tmp_path: Path, capsys) -> None:
    rec = small_recording(frames=2, size=8)
    src = tmp_path / "rec.h5"
    save_recording(rec, src)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("conventional:\n  filter: box\n")
    out = tmp_path / "out.h5"
    assert main(["reconstruct", str(src), "--out", str(out), "--method", "fbp",
                 "--config", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "conventional.filter" in err
    assert not out.exists()
