"""A rotating-sample acquisition: one projection per frame at its own angle, truth at every
projection time, through the library and ``xray4d simulate --rotating``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xray4d.cli import main
from xray4d.io import load_recording
from xray4d.simulate import get_scene, rotating_angles


def test_rotating_angles_step_through_the_turns() -> None:
    a = rotating_angles(2, 12.0)
    assert a.shape == (60, 1)
    np.testing.assert_allclose(a[:, 0], 12.0 * np.arange(60))
    np.testing.assert_allclose(rotating_angles(0.5, 45.0, start_deg=10.0)[:, 0], [10, 55, 100, 145])
    for bad in ((0, 6.0), (2, 0.0), (float("nan"), 6.0), (1e-3, 6.0)):
        with pytest.raises(ValueError):
            rotating_angles(*bad)


def test_rotating_scene_has_its_truth_at_every_projection_time() -> None:
    angles = rotating_angles(1, 45.0)                      # 8 frames of one view
    rec = get_scene("ellipsoid").recording(size=12, frames=8, angles_deg=angles, noise=0.0,
                                           seed=0)
    assert rec.projections.shape == (8, 1, 12, 12) and rec.truth.shape == (8, 12, 12, 12)
    np.testing.assert_array_equal(rec.geometry.angles_deg, angles)
    # the scene evolves: consecutive truths differ; each projection carries its frame's mass
    assert all(np.abs(rec.truth[i + 1] - rec.truth[i]).max() > 0 for i in range(7))
    np.testing.assert_allclose(rec.projections.sum(axis=(1, 2, 3)), rec.truth.sum(axis=(1, 2, 3)),
                               rtol=0.02)


def test_simulate_rotating_from_the_command_line(tmp_path: Path, capsys) -> None:
    out = tmp_path / "rot.h5"
    assert main(["simulate", "droplets", "--out", str(out), "--size", "8", "--rotating", "0.5",
                 "--angle-step", "30", "--noise", "0"]) == 0
    rec = load_recording(out)
    assert rec.projections.shape == (6, 1, 8, 8) and rec.truth.shape[0] == 6
    np.testing.assert_allclose(rec.geometry.angles_deg[:, 0], [0, 30, 60, 90, 120, 150])
    assert "rotating" in capsys.readouterr().out
    for extra, flag in ((["--frames", "3"], "--frames"), (["--angles", "0"], "--angles")):
        assert main(["simulate", "tripod", "--out", str(tmp_path / "x.h5"), "--rotating", "1",
                     *extra]) == 2
        assert flag in capsys.readouterr().err
    assert main(["simulate", "tripod", "--out", str(tmp_path / "x.h5"), "--angle-step", "5"]) == 2
    assert "--angle-step" in capsys.readouterr().err
