"""Data-parallel training over frames: ``torchrun --nproc_per_node 2 -m xray4d reconstruct``.

The reference is the single-process trainer: two processes share each step's batch of
``frames_per_batch`` frames and take the steps one process takes (same seed, same frame
order), so their reconstructions agree to float32 rounding, with equal shares (4 frames)
and unequal ones (3 frames: 2 and 1, each process's loss weighted by its share). Only rank 0 writes; the output's
config records ``world_size``; a killed two-process run resumes from its checkpoint.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from xray4d.io import load_reconstruction, save_recording
from xray4d.simulate import simulate_droplets

pytestmark = pytest.mark.slow

ENV = dict(os.environ, OMP_NUM_THREADS="1")


def _torchrun(n: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={n}", "-m", "xray4d", *args]


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ddp") / "rec.h5"
    save_recording(simulate_droplets(size=12, frames=6, seed=1), path)
    return path


def _reconstruct(cmd: list[str], tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300, cwd=tmp)


@pytest.mark.parametrize("frames_per_batch", [4, 3])
def test_two_processes_take_the_steps_of_one(recording: Path, tmp_path: Path,
                                             frames_per_batch: int) -> None:
    cfg = tmp_path / "batch.yaml"
    cfg.write_text(f"train:\n  frames_per_batch: {frames_per_batch}\n")
    common = ["--config", str(cfg), "--iterations", "40", "--quiet", "--no-preview"]
    two = _reconstruct(_torchrun(2, "reconstruct", str(recording), "--out", "two.h5", *common),
                       tmp_path)
    assert two.returncode == 0, two.stderr[-2000:]
    assert "2 processes" in two.stdout
    one = _reconstruct([sys.executable, "-m", "xray4d", "reconstruct", str(recording), "--out",
                        "one.h5", *common], tmp_path)
    assert one.returncode == 0, one.stderr[-2000:]
    a, b = load_reconstruction(tmp_path / "one.h5"), load_reconstruction(tmp_path / "two.h5")
    assert a.config["resolved"]["world_size"] == 1
    assert b.config["resolved"]["world_size"] == 2
    assert np.abs(a.volume - b.volume).max() <= 1e-5 * max(1.0, np.abs(a.volume).max())
    # rank 0 alone wrote: the outputs, nothing else (no checkpoint, lock or temporary file)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.yaml", "one.h5", "two.h5"]
    assert two.stderr.count("warning: the value bound") <= 1


def test_a_killed_two_process_run_resumes(recording: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("train:\n  checkpoint_every_s: 0.0\n  frames_per_batch: 1\n")
    out, ckpt = tmp_path / "out.h5", tmp_path / "out.h5.ckpt"
    cmd = _torchrun(2, "reconstruct", str(recording), "--out", str(out), "--config", str(cfg),
                    "--iterations", "100000", "--quiet", "--no-preview")
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    # as a batch system ends a job: torchrun passes SIGTERM on to its workers
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert ckpt.exists() and not out.exists()
    done = int(torch.load(ckpt, weights_only=True)["iteration"])
    assert done > 0
    cmd[cmd.index("100000")] = str(done + 10)
    r = _reconstruct(cmd + ["--resume"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    result = load_reconstruction(out)
    assert result.config["resolved"]["iterations_run"] == done + 10
    assert result.config["resolved"]["world_size"] == 2
    assert not ckpt.exists()


def test_more_processes_than_frames_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "rec.h5"
    save_recording(simulate_droplets(size=8, frames=1, seed=0), path)
    r = _reconstruct(_torchrun(2, "reconstruct", str(path), "--out", "o.h5", "--iterations",
                               "5", "--quiet", "--no-preview"), tmp_path)
    assert r.returncode != 0
    assert "1 frames cannot be shared between 2 processes" in r.stderr
    assert not (tmp_path / "o.h5").exists()
