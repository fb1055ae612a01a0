"""4D-ONIX: the per-view sampling against the ray convention, joint training of two
recordings through the CLI, saved models that reload to the same volume, and refusals of
tampered, foreign and malicious model files."""
from __future__ import annotations

import math
import pickle
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from xray4d.cli import main
from xray4d.fields.onix import OnixNetwork, positional_encoding
from xray4d.io import load_reconstruction, save_recording
from xray4d.projector import Projector
from xray4d.geometry import Geometry
from xray4d.simulate import simulate_droplets, DropletCollision


def test_positional_encoding_is_sines_and_cosines_of_octaves() -> None:
    x = torch.tensor([[0.25, -0.5, 1.0]])
    enc = positional_encoding(x, 2)
    expected = [0.25, -0.5, 1.0] + [math.sin(math.pi * f * v) for v in (0.25, -0.5, 1.0)
                                    for f in (1, 2)] \
        + [math.cos(math.pi * f * v) for v in (0.25, -0.5, 1.0) for f in (1, 2)]
    assert torch.allclose(enc[0], torch.tensor(expected), atol=1e-6)


@pytest.mark.parametrize("angle", [0.0, 23.8, 90.0, 137.0])
def test_a_voxel_samples_the_detector_pixel_its_ray_hits(angle: float) -> None:
    """A voxel samples each view's feature map at the column and row its ray crosses: where
    the ray convention puts it, and where the projector's projection of that voxel is."""
    w = 15
    rng = np.random.default_rng(1)
    for _ in range(5):
        z, y, x = (int(v) for v in rng.integers(3, w - 3, 3))
        volume = torch.zeros(1, w, w, w)
        volume[0, z, y, x] = 1.0
        proj = Projector(Geometry.from_angles([angle], 1, w, w)).forward(volume)[0, 0]
        # a feature map whose value is the column index: the sample is the hit column
        cols = torch.arange(w, dtype=torch.float32).expand(w, w)
        maps = cols.reshape(1, 1, 1, w, w)
        n = (w - 1) / 2
        point = torch.tensor([[(x - n) / n, (y - n) / n, (z - n) / n]])
        u = OnixNetwork.view_features_at(maps, torch.tensor([[angle]]), point)[0, 0, 0]
        rows = torch.arange(w, dtype=torch.float32).reshape(w, 1).expand(w, w)
        r = OnixNetwork.view_features_at(rows.reshape(1, 1, 1, w, w), torch.tensor([[angle]]),
                                         point)[0, 0, 0]
        # the ray convention of geometry.py: u = x cos(theta) + y sin(theta), in pixels
        t = math.radians(angle)
        assert float(u) == pytest.approx((x - n) * math.cos(t) + (y - n) * math.sin(t) + n,
                                         abs=1e-4)
        # the projector's (Joseph's) projection of the voxel is centred there too
        centre = float((proj.sum(0) * torch.arange(w)).sum() / proj.sum())
        assert float(u) == pytest.approx(centre, abs=0.25)
        assert float(r) == pytest.approx(z, abs=1e-5)
        assert int(proj.sum(1).argmax()) == z


def _two_recordings(tmp_path: Path) -> list[Path]:
    paths = []
    for i, radius in enumerate((0.18, 0.24)):
        rec = simulate_droplets(DropletCollision(radius_1=radius, radius_2=0.2), size=12,
                                frames=3, noise=0.01, seed=i)
        paths.append(tmp_path / f"drop{i}.h5")
        save_recording(rec, paths[-1])
    return paths


@pytest.fixture
def trained(tmp_path: Path) -> tuple[list[Path], Path, Path]:
    """Two recordings, a network trained on both through the CLI, and its outputs."""
    recs = _two_recordings(tmp_path)
    out, model = tmp_path / "out", tmp_path / "onix.pt"
    assert main(["reconstruct", *map(str, recs), "--method", "onix", "--iterations", "6",
                 "--out", str(out), "--save-model", str(model), "--quiet", "--no-preview"]) == 0
    return recs, out, model


def test_one_network_trained_on_two_recordings_writes_each(trained) -> None:
    recs, out, model = trained
    with h5py.File(recs[0]) as f:
        truth_shape = f["ground_truth/volume"].shape
    for rec in recs:
        r = load_reconstruction(out / rec.name)
        assert r.volume.shape == truth_shape and r.method == "onix"
        assert np.isfinite(r.volume).all() and r.volume.min() >= 0
        assert r.volume.max() <= r.config["resolved"]["value_max"]
        assert r.config["resolved"]["iterations_run"] == 6
        assert [Path(p).name for p in r.config["resolved"]["trained_on"]] == [p.name for p in recs]
    assert (out / "summary.json").exists() and model.exists()


def test_a_saved_model_gives_the_same_volume_without_training(trained, tmp_path: Path,
                                                              capsys) -> None:
    recs, out, model = trained
    again = tmp_path / "again.h5"
    assert main(["reconstruct", str(recs[1]), "--model", str(model), "--out", str(again),
                 "--quiet", "--no-preview"]) == 0
    applied = load_reconstruction(again).volume
    np.testing.assert_allclose(applied, load_reconstruction(out / recs[1].name).volume,
                               atol=1e-6)
    assert load_reconstruction(again).config["resolved"]["iterations_run"] == 0


def _refused(capsys, argv: list[str], fault: str) -> None:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and fault in err[0], err


def test_tampered_foreign_and_malicious_models_are_refused(trained, tmp_path: Path,
                                                           capsys) -> None:
    recs, _, model = trained
    state = torch.load(model, weights_only=True)
    bad = {}
    shape = dict(state, weights={**state["weights"], "output.bias": torch.zeros(3)})
    bad["shape.pt"] = (shape, "output.bias")
    bad["format.pt"] = (dict(state, format="something-else"), "format")
    arch = dict(state, architecture={**state["architecture"], "hidden": 10 ** 9})
    bad["arch.pt"] = (arch, "hidden")
    nan = dict(state, weights={**state["weights"], "output.weight":
                               state["weights"]["output.weight"] * float("nan")})
    bad["nan.pt"] = (nan, "not finite")
    for name, (content, fault) in bad.items():
        torch.save(content, tmp_path / name)
        _refused(capsys, ["reconstruct", str(recs[0]), "--model", str(tmp_path / name),
                          "--out", str(tmp_path / f"{name}.h5"), "--quiet"], fault)
    # a recording is no model; neither is a pickle that would run code when loaded
    _refused(capsys, ["reconstruct", str(recs[0]), "--model", str(recs[1]),
                      "--out", str(tmp_path / "h5.h5"), "--quiet"], "model")
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))
    torch.save({"format": state["format"], "payload": Payload()}, tmp_path / "evil.pt")
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump(Payload(), f)
    for evil in ("evil.pt", "evil.pkl"):
        _refused(capsys, ["reconstruct", str(recs[0]), "--model", str(tmp_path / evil),
                          "--out", str(tmp_path / f"{evil}.h5"), "--quiet"], "model")
    assert not marker.exists()
    assert not list(tmp_path.glob("*.pt.h5")) and not list(tmp_path.glob("*.pkl.h5"))


def test_a_recording_of_other_views_is_refused_before_training(tmp_path: Path, capsys) -> None:
    recs = _two_recordings(tmp_path)
    three = tmp_path / "three.h5"
    save_recording(simulate_droplets(size=12, frames=3, angles_deg=(0, 23.8, 60)), three)
    _refused(capsys, ["reconstruct", str(recs[0]), str(three), "--method", "onix",
                      "--iterations", "2", "--out", str(tmp_path / "o"), "--quiet"],
             f"{three}: /exchange/data")


def test_model_options_are_refused_for_other_methods(tmp_path: Path, capsys) -> None:
    recs = _two_recordings(tmp_path)
    _refused(capsys, ["reconstruct", str(recs[0]), "--method", "hexplane", "--save-model",
                      str(tmp_path / "m.pt"), "--out", str(tmp_path / "o.h5")], "--save-model")


def test_onix_trains_with_the_discriminator_on_novel_views(tmp_path: Path) -> None:
    recs = _two_recordings(tmp_path)
    out = tmp_path / "out"
    assert main(["reconstruct", *map(str, recs), "--method", "onix", "--iterations", "6",
                 "--adversarial", "--out", str(out), "--quiet", "--no-preview"]) == 0
    resolved = load_reconstruction(out / recs[0].name).config["resolved"]
    assert resolved["adversarial"]["discriminator_updates"] == 4     # 6 steps, 30 % warm-up
    assert resolved["loss_terms"]["adversarial"]["final"] > 0
