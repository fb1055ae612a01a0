"""Held-out detector pixels: the block masks, a data term that never sees them, and the
automatic stop of training (``validation.stop: auto``, ``xray4d reconstruct --stop auto``)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from xray4d.cli import main
from xray4d.config import ReconstructionConfig
from xray4d.io import load_reconstruction, save_recording
from xray4d.reconstruct.hexplane import HexPlaneModel
from xray4d.reconstruct.holdout import block_halves, block_mask
from xray4d.reconstruct.measurement import measured_data
from xray4d.reconstruct.fit import fit_field
from xray4d.simulate import simulate_droplets


def small_config(iterations: int = 40) -> ReconstructionConfig:
    cfg = ReconstructionConfig()
    cfg.train.iterations, cfg.train.frames_per_batch = iterations, 2
    cfg.field.value_max = 1.0          # given: no estimate from the data
    return cfg


@pytest.fixture(scope="module")
def recording():
    return simulate_droplets(size=16, frames=3, angles_deg=(0.0, 23.8), noise=0.01, seed=0)


def test_block_mask_holds_out_a_share_of_each_view_in_blocks() -> None:
    m = block_mask((3, 2, 32, 40), 0.1, block=4, seed=0)
    assert m.shape == (3, 2, 32, 40) and m.dtype == bool
    blocks = m.reshape(3, 2, 8, 4, 10, 4)
    # whole 4 x 4 blocks, never single pixels
    assert np.all(blocks.all(axis=(3, 5)) == blocks.any(axis=(3, 5)))
    assert np.all(blocks.any(axis=(3, 5)).sum(axis=(2, 3)) == 8)      # 10 % of 80 blocks
    assert np.array_equal(m[0], m[2])                                 # the same every frame
    assert not np.array_equal(m[0, 0], m[0, 1])                       # chosen per view
    assert np.array_equal(m, block_mask((3, 2, 32, 40), 0.1, block=4, seed=0))
    assert not np.array_equal(m, block_mask((3, 2, 32, 40), 0.1, block=4, seed=1))


def test_block_halves_split_the_fitted_pixels() -> None:
    fitted = ~block_mask((2, 2, 16, 16), 0.2, block=4, seed=3)
    a, b = block_halves(fitted, block=4)
    assert not np.any(a & b) and np.array_equal(a | b, fitted)
    assert abs(a.sum() - b.sum()) <= 0.2 * fitted.sum()


def _fit_volume(rec, cfg, mask):
    """fit_field of X-Hexplane on the pixels of ``mask`` (None: all)."""
    data = dataclasses.replace(measured_data(rec, cfg), fit_mask=mask)
    return fit_field(HexPlaneModel(data, cfg), data, cfg, method="hexplane", progress=False)


def test_the_data_term_never_sees_the_held_out_pixels(recording) -> None:
    """Perturbing held-out data leaves the fit bit-identical; perturbing fitted data does not."""
    torch.set_num_threads(1)
    cfg = small_config()
    held = block_mask(recording.projections.shape, 0.1, block=4, seed=0)
    base = _fit_volume(recording, cfg, ~held)
    changed = recording.projections.copy()
    changed[held] += 50.0 * np.random.default_rng(0).random(int(held.sum()))
    other = _fit_volume(dataclasses.replace(recording, projections=changed), cfg, ~held)
    assert np.array_equal(base.reconstruction.volume, other.reconstruction.volume)
    assert base.losses == other.losses
    assert base.reconstruction.config["resolved"]["fitted_pixel_share"] == pytest.approx(
        1 - held.mean())
    # the same perturbation on fitted pixels changes the fit (the test can fail)
    moved = recording.projections.copy()
    moved[np.roll(held, 4, axis=-1) & ~held] += 1.0
    third = _fit_volume(dataclasses.replace(recording, projections=moved), cfg, ~held)
    assert not np.array_equal(base.reconstruction.volume, third.reconstruction.volume)


class NeverStop:
    """A stop rule that never stops and keeps the last field."""

    name = "never"

    def update(self, iteration, trainer, final_stage) -> bool:
        return False

    def chosen(self, field, iteration, elapsed):
        return field


def test_a_stop_rule_that_never_fires_leaves_the_fit_unchanged(recording) -> None:
    """The trainer with a stop rule hooked in runs exactly as without one."""
    torch.set_num_threads(1)
    cfg = small_config(30)
    plain = _fit_volume(recording, cfg, None)
    assert plain.stopped_by == "iterations" and "stop" not in plain.reconstruction.config["resolved"]
    data = measured_data(recording, cfg)
    hooked = fit_field(HexPlaneModel(data, cfg), data, cfg, method="hexplane", progress=False,
                       stop=NeverStop())
    assert np.array_equal(plain.reconstruction.volume, hooked.reconstruction.volume)
    assert plain.losses == hooked.losses


def test_auto_stop_ends_before_the_cap_and_keeps_the_best(recording) -> None:
    torch.set_num_threads(1)
    cfg = small_config(3000).updated({"validation": {"stop": "auto", "stop_every": 10,
                                                     "stop_patience": 3}})
    res = _fit_volume(recording, cfg, None)
    stop = res.reconstruction.config["resolved"]["stop"]
    assert res.stopped_by == "held-out error" and res.iterations < 3000
    # the watched pixels were not fitted: 5 % of the detector in blocks
    assert res.reconstruction.config["resolved"]["fitted_pixel_share"] == pytest.approx(0.95, abs=0.02)
    errors = [h["heldout_mse"] for h in stop["history"]]
    assert stop["best_heldout_mse"] == pytest.approx(min(errors))
    assert stop["best_iteration"] <= res.iterations
    # it stopped because the last `patience` evaluations did not improve by 0.2 %
    assert min(errors[-3:]) >= (1 - 0.002) * min(errors[:-3])
    assert stop["history"][-1]["iteration"] == res.iterations


def test_reconstruct_stop_auto_writes_an_output(recording, tmp_path: Path) -> None:
    src, out = tmp_path / "rec.h5", tmp_path / "out.h5"
    save_recording(recording, src)
    overrides = tmp_path / "over.yaml"
    overrides.write_text("validation: {stop_every: 10, stop_patience: 3}\n")
    assert main(["reconstruct", str(src), "--out", str(out), "--stop", "auto", "--iterations",
                 "3000", "--config", str(overrides), "--quiet", "--no-preview"]) == 0
    r = load_reconstruction(out)
    assert r.config["validation"]["stop"] == "auto"
    assert r.config["resolved"]["stopped_by"] == "held-out error"
    assert r.config["resolved"]["iterations_run"] < 3000
    assert np.isfinite(r.volume).all() and r.volume.max() > 0.5


def test_stop_auto_is_refused_for_methods_without_training(recording, tmp_path: Path,
                                                           capsys) -> None:
    src, out = tmp_path / "rec.h5", tmp_path / "out.h5"
    save_recording(recording, src)
    assert main(["reconstruct", str(src), "--out", str(out), "--method", "fbp",
                 "--stop", "auto"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--stop auto" in err[0] and "fbp" in err[0]
    assert not out.exists()


def test_validation_config_is_checked() -> None:
    for bad in ({"holdout": 0.0}, {"holdout": 0.8}, {"stop_holdout": -0.1}, {"block_px": 0},
                {"stop": "soon"}, {"stop_patience": 1.5}):
        with pytest.raises(ValueError, match="validation"):
            ReconstructionConfig().updated({"validation": bad})
