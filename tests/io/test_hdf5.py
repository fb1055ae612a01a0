"""Recording and reconstruction files: round trips, and atomic writes."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import h5py
import numpy as np
import pytest

from xray4d.geometry import Geometry
from xray4d.data import Reconstruction, Recording
from xray4d.io import (InputError, atomic_path, load_reconstruction, load_recording,
                       load_volume, save_reconstruction, save_recording)

T, V, H, W = 3, 2, 5, 6


def _recording(angles: np.ndarray, **kw) -> Recording:
    rng = np.random.default_rng(0)
    return Recording(rng.random((T, V, H, W), dtype=np.float32),
                     Geometry.from_angles(angles, T, H, W, kw.pop("pixel_size_m", None)), **kw)


def _listing(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def test_recording_round_trip_shared_angles(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    truth = rng.random((T, H, W, W), dtype=np.float32)
    truth_beta = rng.random((T, H, W, W), dtype=np.float32)
    time = np.array([0.0, 0.25, 0.5])
    attrs = {"pixel_size_m": 2e-6, "energy_keV": 20.0, "propagation_distance_m": 0.0,
             "description": "droplet test"}
    rec = _recording(np.array([0.0, 90.0]), pixel_size_m=2e-6, time=time, truth=truth,
                     truth_beta=truth_beta, attrs=attrs)
    path = tmp_path / "rec.h5"
    save_recording(rec, path)
    back = load_recording(path)
    np.testing.assert_array_equal(back.projections, rec.projections)
    assert back.projections.dtype == np.float32 and back.projections.shape == (T, V, H, W)
    assert back.geometry.angles_deg.shape == (T, V) and back.geometry.angles_shared
    np.testing.assert_array_equal(back.geometry.angles_deg[0], [0.0, 90.0])
    assert (back.geometry.height, back.geometry.width) == (H, W)
    assert back.geometry.pixel_size_m == pytest.approx(2e-6)
    with h5py.File(path, "r") as f:  # shared angles are stored as (V,)
        assert f["/exchange/theta"].shape == (V,)
        assert f["/exchange/data"].attrs["quantity"] == "line_integral"
    np.testing.assert_array_equal(back.time, time)
    assert back.time.dtype == np.float64
    assert back.quantity == "line_integral"
    np.testing.assert_array_equal(back.truth, truth)
    np.testing.assert_array_equal(back.truth_beta, truth_beta)
    for key in ("pixel_size_m", "energy_keV", "propagation_distance_m"):
        assert back.attrs[key] == pytest.approx(attrs[key])
    assert back.attrs["description"] == "droplet test"
    assert back.white is None and back.dark is None and back.path == str(path)
    assert back.frames == T and back.views == V and back.has_truth


def test_recording_round_trip_per_frame_angles_and_intensity(tmp_path: Path) -> None:
    angles = np.array([[0.0, 90.0], [10.0, 100.0], [20.0, 110.0]])  # rotating sample: (T, V)
    rng = np.random.default_rng(2)
    white = rng.random((V, H, W), dtype=np.float32) + 1.0  # (V, H, W): one flat per view
    dark = rng.random((4, V, H, W), dtype=np.float32) * 0.01  # (N, V, H, W): N darks
    rec = _recording(angles, quantity="intensity", white=white, dark=dark)
    path = tmp_path / "rot.h5"
    save_recording(rec, path)
    back = load_recording(path)
    with h5py.File(path, "r") as f:
        assert f["/exchange/theta"].shape == (T, V)
    assert not back.geometry.angles_shared
    np.testing.assert_array_equal(back.geometry.angles_deg, angles)
    assert back.quantity == "intensity"
    assert back.white.shape == (1, V, H, W)  # (V, H, W) is promoted to one flat field
    np.testing.assert_array_equal(back.white[0], white)
    np.testing.assert_array_equal(back.dark, dark)
    np.testing.assert_array_equal(back.time, np.arange(T))  # default time 0..T-1
    assert back.truth is None and not back.has_truth


def test_reconstruction_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    vol = rng.random((T, H, W, W), dtype=np.float32)
    beta = rng.random((T, H, W, W), dtype=np.float32)
    config = {"method": "voxel", "iters": 10, "weights": [0.1, 0.2], "nested": {"a": None}}
    rec = Reconstruction(vol, np.array([0.0, 0.5, 1.0]), method="voxel", config=config,
                         wall_seconds=12.5, source="in.h5", volume_beta=beta)
    path = tmp_path / "out" / "recon.h5"  # parent created
    save_reconstruction(rec, path)
    back = load_reconstruction(path)
    np.testing.assert_array_equal(back.volume, vol)
    np.testing.assert_array_equal(back.volume_beta, beta)
    np.testing.assert_array_equal(back.time, [0.0, 0.5, 1.0])
    assert back.method == "voxel" and back.config == config
    assert back.wall_seconds == 12.5 and back.source == "in.h5" and back.path == str(path)
    with h5py.File(path, "r") as f:
        assert "xray4d" in str(f["/reconstruction"].attrs["software"])
    # load_volume finds the reconstruction when there is no ground truth
    v, name = load_volume(path)
    assert name == "/reconstruction/volume" and v.shape == (T, H, W, W)


def test_load_volume_prefers_ground_truth(tmp_path: Path) -> None:
    truth = np.ones((T, H, W, W), np.float32)
    path = tmp_path / "rec.h5"
    save_recording(_recording(np.array([0.0, 90.0]), truth=truth), path)
    v, name = load_volume(path)
    assert name == "/ground_truth/volume"
    np.testing.assert_array_equal(v, truth)


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    """The temporary file is created 0600; the result must follow the umask like any file."""
    path = tmp_path / "recon.h5"
    save_reconstruction(Reconstruction(np.zeros((1, 2, 2, 2), np.float32), np.zeros(1)), path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


# ------------------------------------------------------------------ atomic writes

def test_atomic_write_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "recon.h5"
    save_reconstruction(Reconstruction(np.zeros((1, 2, 2, 2), np.float32), np.zeros(1)), path)
    assert _listing(tmp_path) == ["recon.h5"]
    with atomic_path(tmp_path / "x.json") as tmp:
        assert tmp.parent == tmp_path and tmp.name != "x.json"
        tmp.write_text("{}")
    assert _listing(tmp_path) == ["recon.h5", "x.json"]


def test_failed_write_keeps_old_target_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "recon.h5"
    old = Reconstruction(np.full((1, 2, 2, 2), 7.0, np.float32), np.zeros(1), method="old")
    save_reconstruction(old, path)
    before = path.read_bytes()
    # fails midway: /reconstruction/volume is written, then volume_beta cannot be converted
    bad = Reconstruction(np.zeros((1, 2, 2, 2), np.float32), np.zeros(1), method="new",
                         volume_beta=np.array(["not", "numbers"], dtype=object))
    with pytest.raises(ValueError):
        save_reconstruction(bad, path)
    assert path.read_bytes() == before
    assert load_reconstruction(path).method == "old"
    assert _listing(tmp_path) == ["recon.h5"]
    # the same through atomic_path directly, with partial content already on disk
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("boom")
    assert path.read_bytes() == before
    assert _listing(tmp_path) == ["recon.h5"]


def test_failed_first_write_creates_nothing(tmp_path: Path) -> None:
    rec = _recording(np.array([0.0, 90.0]), truth=np.array([["x"]], dtype=object))
    with pytest.raises(ValueError):
        save_recording(rec, tmp_path / "new.h5")
    assert _listing(tmp_path) == []


def test_corrupt_file_is_refused_not_crashed(tmp_path: Path) -> None:
    """A file whose second half is zeros (metadata damaged): InputError, not an h5py error."""
    path = tmp_path / "recon.h5"
    save_reconstruction(Reconstruction(np.ones((2, 8, 8, 8), np.float32), np.zeros(2)), path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2:] = bytes(len(raw) - len(raw) // 2)
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError) as info:
        load_reconstruction(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
