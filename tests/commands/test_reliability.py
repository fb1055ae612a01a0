"""Determinism and crash safety of ``xray4d reconstruct`` as a real program.

- The same input, config and seed give bit-identical ``/reconstruction/volume`` bytes.
- A run SIGKILLed between checkpoint writes and again in the middle of one resumes to a
  result within 1 % PSNR of an uninterrupted run with the same seed, and no corrupted
  checkpoint, output or temporary file is left behind.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from xray4d import cli
from xray4d.geometry import Geometry
from xray4d.data import Recording
from xray4d.io import load_reconstruction, save_recording

ENV = dict(os.environ, OMP_NUM_THREADS="1")
N, FRAMES = 16, 3


def moving_ball_recording(path: Path, noise: float = 0.01) -> Recording:
    """A ball moving along x, projected by exact voxel sums at 0 and 90 degrees (theta = 0
    sums over y, 90 over x: data-format.md), with its voxel truth."""
    c = np.arange(N) - (N - 1) / 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    truth = np.stack([((x - 2.0 * k + 2) ** 2 + y ** 2 + z ** 2 < 20).astype(np.float32)
                      for k in range(FRAMES)])
    proj = np.stack([truth.sum(axis=2), truth.sum(axis=3)], axis=1)        # (T, V, Z, W)
    proj += noise * proj.max() * np.random.default_rng(0).standard_normal(proj.shape).astype(np.float32)
    rec = Recording(proj.astype(np.float32), Geometry.from_angles([0.0, 90.0], FRAMES, N, N),
                    truth=truth)
    save_recording(rec, path)
    return rec


def volume_bytes(path: Path) -> bytes:
    with h5py.File(path, "r") as f:
        return f["/reconstruction/volume"][()].tobytes()


def psnr(vol: np.ndarray, truth: np.ndarray) -> float:
    mse = float(np.mean((vol.astype(np.float64) - truth) ** 2))
    return 10 * np.log10(float(truth.max() - truth.min()) ** 2 / mse)


def test_same_input_config_and_seed_give_identical_bytes(tmp_path: Path) -> None:
    """One run in a fresh process, one in this process after its global random states were
    disturbed: the volumes are the same bytes. Another seed gives other bytes."""
    rec_path = tmp_path / "rec.h5"
    moving_ball_recording(rec_path)
    argv = ["reconstruct", str(rec_path), "--iterations", "15", "--seed", "7", "--quiet",
            "--no-preview"]
    r = subprocess.run([sys.executable, "-m", "xray4d", *argv, "--out", str(tmp_path / "a.h5")],
                       capture_output=True, text=True, timeout=300, env=ENV)
    assert r.returncode == 0, r.stderr
    torch.rand(17)
    np.random.rand(5)
    assert cli.main([*argv, "--out", str(tmp_path / "b.h5")]) == 0
    a, b = volume_bytes(tmp_path / "a.h5"), volume_bytes(tmp_path / "b.h5")
    assert len(a) == FRAMES * N ** 3 * 4
    assert a == b
    # the comparison can fail: another seed gives other bytes
    argv[argv.index("7")] = "8"
    assert cli.main([*argv, "--out", str(tmp_path / "c.h5")]) == 0
    assert volume_bytes(tmp_path / "c.h5") != a


#: the reconstruct verb in a child process; with SLOW_SAVE=K its K-th checkpoint write stops
#: half-way (half the bytes on disk, then a marker file, then a long sleep) so that the test
#: can kill it in the middle of a write
CHILD = textwrap.dedent("""
    import io, os, sys, time
    import torch
    k = int(os.environ.get("SLOW_SAVE", "0"))
    if k:
        real_save, calls = torch.save, [0]
        def save(obj, f, *a, **kw):
            calls[0] += 1
            if calls[0] != k:
                return real_save(obj, f, *a, **kw)
            buf = io.BytesIO()
            real_save(obj, buf, *a, **kw)
            data = buf.getvalue()
            with open(f, "wb") as fh:
                fh.write(data[: len(data) // 2])
                fh.flush()
                os.fsync(fh.fileno())
                open(os.environ["MARKER"], "w").close()
                time.sleep(60)
                fh.write(data[len(data) // 2:])
        torch.save = save
    from xray4d.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def _start(argv: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, *argv], env=dict(ENV, **env),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, f"the run ended early: {proc.stderr.read()}"
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _temps(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.endswith(".tmp"))


def test_sigkill_between_and_during_checkpoint_writes_then_resume(tmp_path: Path) -> None:
    rec_path = tmp_path / "rec.h5"
    rec = moving_ball_recording(rec_path)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("train:\n  checkpoint_every_s: 0.0\n  frames_per_batch: 2\n")
    iters = "120"
    common = ["--config", str(cfg), "--iterations", iters, "--seed", "3", "--quiet", "--no-preview"]

    # the reference: the same run, uninterrupted
    full = tmp_path / "full.h5"
    assert cli.main(["reconstruct", str(rec_path), "--out", str(full), *common]) == 0
    psnr_full = psnr(load_reconstruction(full).volume, rec.truth)

    out = tmp_path / "out.h5"
    ckpt = Path(str(out) + ".ckpt")
    argv = ["reconstruct", str(rec_path), "--out", str(out), *common]

    # 1. killed between checkpoint writes, some steps after the first one
    proc = _start(argv)
    _wait_for(ckpt, proc)
    time.sleep(0.2)
    _kill(proc)
    state = torch.load(ckpt, weights_only=False)      # a complete checkpoint, not a torn one
    first = state["iteration"]
    assert 0 < first < int(iters)
    assert not out.exists()

    # 2. resumed, then killed half-way through its 3rd checkpoint write
    marker = tmp_path / "writing"
    proc = _start(argv + ["--resume"], SLOW_SAVE="3", MARKER=str(marker))
    _wait_for(marker, proc)
    _kill(proc)
    assert len(_temps(tmp_path)) == 1                   # the torn write is only in a temp file
    state = torch.load(ckpt, weights_only=False)      # the checkpoint itself is whole
    assert state["iteration"] > first
    assert not out.exists()

    # 3. resumed to the end (in this process)
    assert cli.main(argv + ["--resume"]) == 0
    res = load_reconstruction(out)
    assert res.config["resolved"]["iterations_run"] == int(iters)
    psnr_resumed = psnr(res.volume, rec.truth)
    assert abs(psnr_resumed - psnr_full) <= 0.01 * psnr_full, (psnr_resumed, psnr_full)
    assert psnr_full > 20                               # and the run did reconstruct the ball
    # nothing corrupted or stray is left: no checkpoint, no temporary file
    assert not ckpt.exists()
    assert _temps(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["rec.h5", "cfg.yaml", "full.h5", "out.h5", "writing"])
