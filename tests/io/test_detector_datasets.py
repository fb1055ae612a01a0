"""The per-view detector geometry in recording and reconstruction files (``/geometry``)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from xray4d.data import Reconstruction, Recording
from xray4d.geometry import DetectorGeometry, Geometry
from xray4d.io import InputError, load_recording, save_reconstruction, save_recording

T, V, H, W = 3, 2, 5, 6


def _recording(detector: DetectorGeometry | None) -> Recording:
    rng = np.random.default_rng(0)
    return Recording(rng.random((T, V, H, W), dtype=np.float32),
                     Geometry.from_angles([0.0, 23.8], T, H, W, detector=detector))


def test_old_files_without_geometry_are_ideal(tmp_path: Path) -> None:
    save_recording(_recording(None), tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5") as f:
        assert "geometry" not in f
    g = load_recording(tmp_path / "r.h5").geometry
    assert g.detector is None and g.aligned


def test_per_view_geometry_round_trip(tmp_path: Path) -> None:
    det = DetectorGeometry.build(T, V, [[0, 0], [1.5, -2]], [0, 1], [1, 1.05])
    save_recording(_recording(det), tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5") as f:
        assert f["/geometry/detector_shift"].shape == (V, 2)
        assert f["/geometry/detector_tilt_deg"].shape == (V,)
        np.testing.assert_array_equal(f["/geometry/magnification"][()], [1, 1.05])
    got = load_recording(tmp_path / "r.h5").geometry.detector
    np.testing.assert_array_equal(got.shift_px, det.shift_px)
    np.testing.assert_array_equal(got.tilt_deg, det.tilt_deg)


def test_per_frame_geometry_round_trip(tmp_path: Path) -> None:
    shift = np.random.default_rng(1).normal(size=(T, V, 2))
    save_recording(_recording(DetectorGeometry.build(T, V, shift)), tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5") as f:
        assert f["/geometry/detector_shift"].shape == (T, V, 2)
    np.testing.assert_array_equal(load_recording(tmp_path / "r.h5").geometry.detector.shift_px,
                                  shift)


def test_one_dataset_alone_leaves_the_others_ideal(tmp_path: Path) -> None:
    save_recording(_recording(None), tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5", "a") as f:
        f["/geometry/detector_tilt_deg"] = [0.0, 0.5]
    d = load_recording(tmp_path / "r.h5").geometry.detector
    assert np.all(d.shift_px == 0) and np.all(d.magnification == 1)
    np.testing.assert_array_equal(d.tilt_deg[:, 1], 0.5)


@pytest.mark.parametrize("name, value, fault", [
    ("/geometry/detector_shift", np.zeros((V, 3)), "wrong shape"),
    ("/geometry/detector_shift", np.zeros((V + 1, 2)), "wrong shape"),
    ("/geometry/detector_tilt_deg", np.zeros((T, V + 1)), "wrong shape"),
    ("/geometry/magnification", [1.0, np.nan], "NaN"),
    ("/geometry/magnification", [1.0, 0.0], "outside"),
    ("/geometry/detector_tilt_deg", [0.0, 90.0], "beyond"),
    ("/geometry/detector_shift", [[0.0, 0.0], [100.0, 0.0]], "beyond"),
])
def test_bad_geometry_is_refused_in_one_line(tmp_path: Path, name, value, fault) -> None:
    save_recording(_recording(None), tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5", "a") as f:
        f[name] = np.asarray(value, dtype=np.float64)
    with pytest.raises(InputError) as exc:
        load_recording(tmp_path / "r.h5")
    msg = str(exc.value)
    assert "\n" not in msg and name in msg and fault in msg and "r.h5" in msg


def test_reconstruction_keeps_the_calibrated_geometry(tmp_path: Path) -> None:
    det = DetectorGeometry.build(1, V, [[0, 0], [0.25, 1.0]], [0, 0.3], [1, 1.01])
    rec = Reconstruction(np.zeros((1, H, W, W), np.float32), np.zeros(1), detector=det)
    save_reconstruction(rec, tmp_path / "o.h5")
    with h5py.File(tmp_path / "o.h5") as f:
        np.testing.assert_array_equal(f["/reconstruction/geometry/detector_shift"][()],
                                      [[0, 0], [0.25, 1.0]])
        np.testing.assert_array_equal(f["/reconstruction/geometry/magnification"][()], [1, 1.01])
