"""``xray4d info`` and ``io.describe_file`` on files written here with h5py: every number
printed is one the test put into the file."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from xray4d.cli import main
from xray4d.io import describe_file

DATA = np.arange(3 * 2 * 4 * 5, dtype=np.float32).reshape(3, 2, 4, 5) / 8 - 2   # -2 .. 12.875
THETA = np.array([[0.0, 30.0], [5.0, 35.0], [10.0, 40.5]])


def _recording(path: Path, theta: np.ndarray) -> Path:
    with h5py.File(path, "w") as f:
        f["/exchange/data"] = DATA
        f["/exchange/theta"] = theta
        f["/exchange/time"] = np.array([0.5, 1.0, 2.25])
        f.attrs["pixel_size_m"] = 2e-6
        f.attrs["description"] = "written by the test"
    return path


def _reconstruction(path: Path) -> Path:
    vol = np.linspace(0.25, 3.5, 2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    with h5py.File(path, "w") as f:
        g = f.create_group("reconstruction")
        g["volume"] = vol
        g["volume_beta"] = vol / 100
        g["time"] = np.array([0.0, 1.0])
        g.attrs["method"] = "toy"
        g.attrs["wall_seconds"] = 12.34
    return path


def test_recording_with_angles_per_frame(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _recording(tmp_path / "rec.h5", THETA)
    d = describe_file(path)
    assert (d["kind"], d["frames"], d["views"], d["height"], d["width"]) == ("recording", 3, 2, 4, 5)
    assert not d["angles_shared"] and np.array_equal(d["angles_deg"], THETA)
    assert d["value_range"] == (-2.0, 12.875) and d["time_range"] == (0.5, 2.25)
    assert d["attrs"] == {"pixel_size_m": 2e-6, "description": "written by the test"}
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"file:        {path}", "kind:        recording", "frames:      3",
                   "views:       2", "detector:    4 rows x 5 columns",
                   "angles:      per frame, 0 .. 40.5 deg", "quantity:    line_integral",
                   "value range: -2 .. 12.875", "time:        0.5 .. 2.25 s", "truth:       no",
                   "pixel_size_m:2e-06", "description: written by the test"]


def test_recording_with_shared_angles(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _recording(tmp_path / "rec.h5", np.array([0.0, 23.8]))
    assert describe_file(path)["angles_shared"]
    assert main(["info", str(path)]) == 0
    assert "angles:      0, 23.8 deg (same every frame)" in capsys.readouterr().out.splitlines()


def test_reconstruction_with_two_channels(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = _reconstruction(tmp_path / "recon.h5")
    d = describe_file(path)
    assert (d["kind"], d["frames"], d["shape"], d["method"], d["channels"]) == (
        "reconstruction", 2, (3, 4, 4), "toy", 2)
    assert d["value_range"] == (0.25, 3.5) and d["wall_seconds"] == pytest.approx(12.34)
    assert main(["info", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"file:        {path}", "kind:        reconstruction", "frames:      2",
        "volume:      3 x 4 x 4 (z, y, x)", "method:      toy", "value range: 0.25 .. 3.5",
        "channels:    delta, beta", "wall time:   12.3 s"]
