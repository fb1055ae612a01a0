"""Self-calibration of the detector geometry (``calibration`` section, ``--calibrate``).

The recordings are simulated on misaligned detectors by the simulator (each pixel's
footprint on its fine projections), not by the resampling the calibration fits; the
references are the misalignments given to the simulator.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from xray4d.api import reconstruct, resolve_config
from xray4d.config_calibration import CalibrationConfig
from xray4d.errors import InputError
from xray4d.geometry import DetectorGeometry
from xray4d.projector import Projector
from xray4d.reconstruct.calibration import DetectorCalibration, free_parameters
from xray4d.simulate import simulate_droplets

ANGLES = (0.0, 23.8, 67.5, 112.5)
SHIFT = [[0.0, 0.0], [0.0, 1.0], [1.5, -1.0], [-2.0, 1.0]]


def _misaligned(size: int, frames: int, tilt=None, mag=None, noise: float = 0.0):
    det = DetectorGeometry.build(frames, 4, SHIFT, tilt, mag)
    rec = simulate_droplets(size=size, frames=frames, angles_deg=ANGLES, noise=noise, seed=0,
                            detector=det)
    # believed aligned: the geometry is what the calibration has to find
    return dataclasses.replace(rec, geometry=dataclasses.replace(rec.geometry, detector=None))


def test_gauge_holds_view_0_and_the_column_of_view_1() -> None:
    shift, tilt, mag = free_parameters(3, CalibrationConfig())
    np.testing.assert_array_equal(shift, [[0, 0], [0, 1], [1, 1]])
    np.testing.assert_array_equal(tilt, [0, 1, 1])
    assert free_parameters(3, CalibrationConfig(magnification=False))[2].sum() == 0


def test_calibration_finds_shift_tilt_and_magnification_given_the_object() -> None:
    """With the true volume, the data term alone pins the simulator's misalignment. The tilt
    is the weakest: 1 degree moves a drop's edge 0.1 px at 32^3, and the bicubic resampling
    of sharp-edged projections biases it by up to 0.2 degrees depending on the fractional
    row shift (0.80 found here with view 1's whole-pixel row shift; 1.08 at 1.5 px)."""
    rec = _misaligned(32, 3, tilt=[0, 1.0, 0, 0], mag=[1, 1, 1.05, 1])
    virtual = Projector(rec.geometry).project_virtual(torch.as_tensor(rec.truth))
    cal = DetectorCalibration(rec.geometry, CalibrationConfig())
    opt = torch.optim.Adam([dict(g, lr=g["lr"] * 5) for g in cal.parameter_groups()])
    data, frames = torch.as_tensor(rec.projections), np.arange(3)
    for _ in range(500):
        loss = (cal(virtual, frames) - data).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    found = cal.found()
    np.testing.assert_allclose(found.shift_px[0], SHIFT, atol=0.05)
    np.testing.assert_allclose(found.tilt_deg[0], [0, 1.0, 0, 0], atol=0.25)
    np.testing.assert_allclose(found.magnification[0], [1, 1, 1.05, 1], atol=0.005)


def test_hexplane_with_calibration_recovers_known_shifts() -> None:
    torch.set_num_threads(1)
    rec = _misaligned(24, 3, noise=0.01)
    cfg = resolve_config("default", {"train": {"iterations": 400, "time_budget_s": None},
                                     "calibration": {"enabled": True, "tilt": False,
                                                     "lr_shift_px": 0.05,
                                                     "magnification": False}})
    result = reconstruct(rec, cfg, progress=False)
    found = result.reconstruction.config["resolved"]["calibration"]
    np.testing.assert_allclose(found["detector_shift_px"], SHIFT, atol=0.2)
    np.testing.assert_allclose(result.reconstruction.detector.shift_px[0], SHIFT, atol=0.2)


def test_calibration_is_refused_without_a_field_or_with_one_view() -> None:
    rec = _misaligned(8, 2)
    with pytest.raises(InputError, match="calibration"):
        reconstruct(rec, resolve_config("default", {"method": "sirt",
                                                    "calibration": {"enabled": True}}),
                    progress=False)
    one = dataclasses.replace(rec, projections=rec.projections[:, :1],
                              geometry=dataclasses.replace(rec.geometry,
                                                           angles_deg=rec.geometry.angles_deg[:, :1]))
    with pytest.raises(InputError, match="2\\+ views"):
        reconstruct(one, resolve_config("default", {"calibration": {"enabled": True}}),
                    progress=False)


def test_cli_refuses_calibrate_for_a_conventional_method(tmp_path, capsys) -> None:
    from xray4d import cli
    from xray4d.io import save_recording
    save_recording(_misaligned(8, 2), tmp_path / "r.h5")
    code = cli.main(["reconstruct", str(tmp_path / "r.h5"), "--out", str(tmp_path / "o.h5"),
                     "--method", "sirt", "--calibrate", "--no-preview", "--quiet"])
    assert code == 2 and not (tmp_path / "o.h5").exists()
    assert "--calibrate" in capsys.readouterr().err


class _Killed(Exception):
    pass


def test_resume_keeps_the_calibrated_geometry(tmp_path) -> None:
    """The corrections are part of the checkpoint: a resumed run ends where a whole one does."""
    from xray4d.reconstruct.hexplane import HexPlaneReconstructor
    torch.set_num_threads(1)
    rec = _misaligned(12, 2, noise=0.01)
    cfg = resolve_config("default", {"train": {"iterations": 40, "time_budget_s": None,
                                               "checkpoint_every_s": 0.0},
                                     "calibration": {"enabled": True}})
    full = HexPlaneReconstructor(rec, cfg, progress=False).fit()

    def kill_at_25(it: int, loss: float, elapsed: float) -> None:
        if it == 25:
            raise _Killed

    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(_Killed):
        HexPlaneReconstructor(rec, cfg, ckpt, progress=False, on_step=kill_at_25).fit()
    resumed = HexPlaneReconstructor(rec, cfg, ckpt, progress=False).fit(resume=True)
    a = full.reconstruction.config["resolved"]["calibration"]
    b = resumed.reconstruction.config["resolved"]["calibration"]
    np.testing.assert_allclose(b["detector_shift_px"], a["detector_shift_px"], atol=1e-3)
    np.testing.assert_allclose(b["magnification"], a["magnification"], atol=1e-4)
    assert np.any(np.asarray(a["detector_shift_px"]) != 0)
