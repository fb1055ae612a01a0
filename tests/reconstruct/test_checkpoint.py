"""Checkpoints are data, never code, and only resume the run they belong to.

Each hostile or damaged checkpoint given to ``xray4d reconstruct --resume`` ends in one
line on stderr naming the checkpoint, exit status 2, no output written, and (for the
crafted pickle) no code run.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from xray4d.api import resolve_config
from xray4d.cli import main
from xray4d.io import save_recording
from xray4d.reconstruct.hexplane import HexPlaneReconstructor
from xray4d.simulate import simulate_droplets

ITERATIONS = 12


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_recording):
    """A recording, and a checkpoint of the run `xray4d reconstruct REC --iterations 12`
    would write (same preset and options), taken when it finished."""
    d = tmp_path_factory.mktemp("ckpt")
    rec = tiny_recording
    save_recording(rec, d / "rec.h5")
    cfg = resolve_config("default", {"train": {"iterations": ITERATIONS, "time_budget_s": None}})
    HexPlaneReconstructor(rec, cfg, d / "good.ckpt", progress=False).fit()
    return d


def resume(run: Path, tmp_path: Path, checkpoint: bytes | Path, capsys,
           recording: Path | None = None) -> tuple[int, str, Path]:
    out = tmp_path / "out.h5"
    ckpt = tmp_path / "out.h5.ckpt"
    if isinstance(checkpoint, Path):
        shutil.copy(checkpoint, ckpt)
    else:
        ckpt.write_bytes(checkpoint)
    code = main(["reconstruct", str(recording or run / "rec.h5"), "--out", str(out),
                 "--iterations", str(ITERATIONS + 3), "--resume", "--quiet", "--no-preview"])
    return code, capsys.readouterr().err, out


def assert_refused(code: int, err: str, out: Path, *words: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert "out.h5.ckpt: checkpoint:" in err
    for word in words:
        assert word in err, err
    assert not out.exists()


def test_a_good_checkpoint_resumes(run, tmp_path, capsys) -> None:
    code, err, out = resume(run, tmp_path, run / "good.ckpt", capsys)
    assert code == 0, err
    assert out.exists() and not (tmp_path / "out.h5.ckpt").exists()


class _Payload:
    """Pickles as a call of os.system: what a crafted checkpoint would run on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_checkpoint_runs_no_code(run, tmp_path, capsys) -> None:
    marker = tmp_path / "code-ran"
    crafted = tmp_path / "crafted.ckpt"
    state = torch.load(run / "good.ckpt", weights_only=True)
    state["losses"] = _Payload(marker)
    torch.save(state, crafted)
    code, err, out = resume(run, tmp_path, crafted, capsys)
    assert_refused(code, err, out, "not a readable xray4d checkpoint")
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["empty", "random", "truncated", "bit flips"])
def test_damaged_checkpoints_are_refused(run, tmp_path, capsys, damage: str) -> None:
    good = (run / "good.ckpt").read_bytes()
    rng = np.random.default_rng(1)
    if damage == "empty":
        data = b""
    elif damage == "random":
        data = rng.bytes(len(good))
    elif damage == "truncated":
        data = good[: len(good) // 2]
    else:
        arr = np.frombuffer(good, np.uint8).copy()
        idx = rng.choice(arr.size, 64, replace=False)
        arr[idx] ^= 0xFF
        data = arr.tobytes()
    code, err, out = resume(run, tmp_path, data, capsys)
    assert_refused(code, err, out)


def test_a_checkpoint_of_another_recording_is_refused(run, tmp_path, capsys) -> None:
    other = simulate_droplets(size=12, frames=3, noise=0.01, seed=5)   # same shape, other data
    save_recording(other, tmp_path / "other.h5")
    code, err, out = resume(run, tmp_path, run / "good.ckpt", capsys,
                            recording=tmp_path / "other.h5")
    assert_refused(code, err, out, "another recording")


def test_a_checkpoint_of_another_configuration_is_refused(run, tmp_path, capsys) -> None:
    ckpt = tmp_path / "out.h5.ckpt"
    shutil.copy(run / "good.ckpt", ckpt)
    out = tmp_path / "out.h5"
    code = main(["reconstruct", str(run / "rec.h5"), "--out", str(out), "--iterations",
                 str(ITERATIONS + 3), "--seed", "3", "--resume", "--quiet", "--no-preview"])
    assert_refused(code, capsys.readouterr().err, out, "config.train.seed differs")


@pytest.mark.parametrize("key, value, words", [
    ("iteration", 10 ** 9, ("iteration 1000000000", "beyond")),
    ("elapsed", float("nan"), ("elapsed time nan",)),
    ("elapsed", -5.0, ("elapsed time",)),
    ("stage", 7, ("stage 7",)),
    ("cursor", 99, ("cursor 99",)),
    ("order", torch.zeros(3, dtype=torch.int64), ("batch order",)),
    ("format", "something else", ("format",)),
])
def test_out_of_range_values_are_refused(run, tmp_path, capsys, key, value, words) -> None:
    state = torch.load(run / "good.ckpt", weights_only=True)
    state[key] = value
    forged = tmp_path / "forged.ckpt"
    torch.save(state, forged)
    code, err, out = resume(run, tmp_path, forged, capsys)
    assert_refused(code, err, out, *words)


def test_a_field_of_the_wrong_shape_is_refused(run, tmp_path, capsys) -> None:
    state = torch.load(run / "good.ckpt", weights_only=True)
    name = next(iter(state["field"]))
    state["field"][name] = torch.zeros(2, 2)
    forged = tmp_path / "forged.ckpt"
    torch.save(state, forged)
    code, err, out = resume(run, tmp_path, forged, capsys)
    assert_refused(code, err, out, "does not fit this run")
