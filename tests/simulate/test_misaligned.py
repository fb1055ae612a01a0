"""Scenes recorded on misaligned detectors (``detector=``, ``simulate --detector-*``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from xray4d import cli
from xray4d.geometry import DetectorGeometry
from xray4d.io import load_recording
from xray4d.projector import Projector
from xray4d.simulate import get_scene, simulate_droplets

ANGLES = (0.0, 23.8, 67.5)
KW = dict(size=16, frames=2, angles_deg=ANGLES, noise=0.0, seed=0)


def test_ideal_detectors_record_what_no_detector_records() -> None:
    plain = simulate_droplets(**KW)
    ideal = simulate_droplets(**KW, detector=DetectorGeometry.build(2, 3))
    assert np.array_equal(plain.projections, ideal.projections)


@pytest.mark.parametrize("scene", ["droplets", "tripod"])
def test_whole_pixel_shifts_move_the_ideal_images(scene: str) -> None:
    """A whole-pixel shift is the ideal image moved by whole pixels (zero where it enters)."""
    det = DetectorGeometry.build(2, 3, [[0, 0], [2, -1], [-3, 2]])
    plain = get_scene(scene).recording(**KW)
    moved = get_scene(scene).recording(**KW, detector=det)
    p, m = plain.projections, moved.projections
    np.testing.assert_allclose(m[:, 0], p[:, 0], atol=1e-6)
    np.testing.assert_allclose(m[:, 1, :-1, 2:], p[:, 1, 1:, :-2], atol=1e-6)
    np.testing.assert_allclose(m[:, 2, 2:, :-3], p[:, 2, :-2, 3:], atol=1e-6)
    assert moved.geometry.detector is det


def test_the_projector_with_the_same_geometry_explains_a_misaligned_recording() -> None:
    det = DetectorGeometry.build(2, 3, [[0, 0], [0.5, 1.5], [-2.25, 0.75]], [0, 1, -1],
                                 [1, 1.05, 0.97])
    rec = simulate_droplets(**{**KW, "size": 32}, detector=det)
    truth = torch.as_tensor(rec.truth)
    d = rec.projections
    known = Projector(rec.geometry).forward(truth).numpy()
    ideal = Projector(rec.geometry.__class__.from_angles(ANGLES, 2, 32, 32)).forward(truth).numpy()
    err = lambda a: float(np.linalg.norm(a - d) / np.linalg.norm(d))  # noqa: E731
    assert err(known) < 0.04 and err(ideal) > 0.3


def test_cli_writes_the_geometry(tmp_path: Path) -> None:
    out = tmp_path / "r.h5"
    assert cli.main(["simulate", "droplets", "--out", str(out), "--size", "8", "--frames", "2",
                     "--angles", "0,23.8", "--detector-shift=-1:0.5,2:0",
                     "--detector-tilt", "0,1", "--magnification", "1,1.05"]) == 0
    d = load_recording(out).geometry.detector
    np.testing.assert_array_equal(d.shift_px[0], [[-1, 0.5], [2, 0]])
    np.testing.assert_array_equal(d.magnification[1], [1, 1.05])


@pytest.mark.parametrize("args", [["--detector-tilt", "0,1,2"], ["--magnification", "1,a"],
                                  ["--detector-shift", "1,2"], ["--detector-tilt", "0,50"]])
def test_cli_refuses_bad_detector_geometry(tmp_path: Path, capsys, args) -> None:
    out = tmp_path / "r.h5"
    code = cli.main(["simulate", "droplets", "--out", str(out), "--size", "8", "--frames", "2",
                     "--angles", "0,23.8", *args])
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
