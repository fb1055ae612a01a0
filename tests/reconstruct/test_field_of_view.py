"""A field of view wider than the detector for truncated projections: the detection of
truncation (against scenes built inside and beyond the field of view), the widened
projector (against analytic chords of a disc that leaves the detector's volume), and the
reconstruction (against the simulated truth, with and without widening)."""
from __future__ import annotations

import json
import math
import warnings

import h5py
import numpy as np
import pytest
import torch

from xray4d.api import reconstruct, resolve_config
from xray4d.cli import main
from xray4d.data import FitResult, Reconstruction
from xray4d.errors import TruncatedProjectionsWarning
from xray4d.evaluation.metrics import evaluate_volumes
from xray4d.geometry import Geometry
from xray4d.io import save_recording
from xray4d.projector import Projector
from xray4d.reconstruct.field_of_view import (AUTO_MARGIN, TRUNCATED_SHARE, crop_result,
                                              lateral_padding, truncated_share, widen)
from xray4d.reconstruct.measurement import MeasuredData
from xray4d.simulate import get_scene

FOUR = (0.0, 23.8, 67.5, 112.5)


@pytest.mark.parametrize("angles", [(0.0, 23.8), FOUR], ids=["2views", "4views"])
@pytest.mark.parametrize("scene", ["droplets", "crown", "jet", "bubble-column"])
def test_scenes_inside_the_field_of_view_are_not_truncated(scene: str, angles) -> None:
    rec = get_scene(scene).recording(size=16, frames=4, angles_deg=angles, noise=0.05, seed=0)
    assert truncated_share(rec.projections) <= TRUNCATED_SHARE
    assert lateral_padding(rec, resolve_config("default")) == 0


@pytest.mark.parametrize("angles", [(0.0, 23.8), FOUR], ids=["2views", "4views"])
def test_the_wide_cylinder_is_truncated(angles) -> None:
    # the cylinder is 1.6 times as long as the detector is wide (simulate/wide.py)
    rec = get_scene("wide-cylinder").recording(size=16, frames=4, angles_deg=angles,
                                               noise=0.01, seed=0)
    assert truncated_share(rec.projections) > 2 * TRUNCATED_SHARE
    assert lateral_padding(rec, resolve_config("default")) == round(AUTO_MARGIN * 16)
    cfg = resolve_config("default", {"field": {"lateral_margin": 0.0}})
    assert lateral_padding(rec, cfg) == 0


def _disc_slices(width: int, height: int, centre: tuple[float, float], radius: float,
                 fine: int = 8) -> np.ndarray:
    """(1, H, W, W): a vertical cylinder (a disc in every slice), each voxel's covered share
    from fine x fine samples; centre (x, y) and radius in voxels from the grid's centre."""
    c = (np.arange(width * fine) + 0.5) / fine - width / 2
    y, x = np.meshgrid(c, c, indexing="ij")
    inside = ((x - centre[0]) ** 2 + (y - centre[1]) ** 2 <= radius ** 2).astype(np.float32)
    share = inside.reshape(width, fine, width, fine).mean(axis=(1, 3))
    return np.broadcast_to(share, (1, height, width, width)).copy()


def test_a_widened_grid_projects_the_chords_of_a_disc_beyond_the_detector() -> None:
    w, h, pad, radius, centre = 24, 2, 12, 6.0, (13.0, -2.0)   # the disc leaves the volume
    angles = np.array([0.0, 23.8, 67.5, 112.5])
    wide = Geometry.from_angles(angles, 1, h, w + 2 * pad)
    got = Projector(wide, dtype=torch.float64)(
        torch.as_tensor(_disc_slices(w + 2 * pad, h, centre, radius)))[..., pad:-pad]
    # analytic chord, averaged over each detector pixel's width: the ray through u at theta
    # passes at |u - (cx cos + cy sin)| from the centre (data-format.md: x = u cos - s sin,
    # y = u sin + s cos)
    u = np.arange(w)[:, None] - (w - 1) / 2 + (np.arange(16) + 0.5) / 16 - 0.5
    th = np.radians(angles)[:, None, None]
    d = u[None] - (centre[0] * np.cos(th) + centre[1] * np.sin(th))
    chord = (2 * np.sqrt(np.clip(radius ** 2 - d ** 2, 0, None))).mean(-1)
    err = np.abs(got[0, :, 0].numpy() - chord)
    assert err.mean() < 0.06 and err.max() < 0.5          # measured 0.043, 0.41 (chords <= 12)
    # the detector's own volume misses the part outside it
    own = Projector(Geometry.from_angles(angles, 1, h, w), dtype=torch.float64)(
        torch.as_tensor(_disc_slices(w, h, centre, radius)))
    assert np.abs(own[0, 1:, 0].numpy() - chord[1:]).max(axis=1).min() > 5   # 7.6-9.4


def test_widen_pads_the_data_and_crop_brings_the_fit_back() -> None:
    rec = get_scene("wide-cylinder").recording(size=12, frames=2, angles_deg=FOUR, noise=0.0,
                                               seed=0)
    held = np.zeros(rec.projections.shape, bool)
    held[:, 1, :4, :4] = True
    data = widen(MeasuredData(rec, fit_mask=~held), 3)
    assert data.recording.projections.shape == (2, 4, 12, 18)
    assert data.recording.geometry.width == 18 and data.lateral_padding == 3
    np.testing.assert_array_equal(data.recording.projections[..., 3:-3], rec.projections)
    assert not data.recording.projections[..., :3].any()
    np.testing.assert_array_equal(data.fit_mask[..., 3:-3], ~held)
    assert not data.fit_mask[..., :3].any() and not data.fit_mask[..., -3:].any()
    vol = np.arange(2 * 12 * 18 * 18, dtype=np.float32).reshape(2, 12, 18, 18)
    fit = FitResult(Reconstruction(volume=vol, time=rec.time, method="m", config={}),
                    torch.nn.Linear(1, 1), predicted=data.recording.projections)
    out = crop_result(fit, 3)
    np.testing.assert_array_equal(out.reconstruction.volume, vol[..., 3:-3, 3:-3])
    np.testing.assert_array_equal(out.predicted, rec.projections)
    assert out.reconstruction.config["resolved"]["field_of_view"] == {
        "lateral_padding_voxels": 3, "fitted_grid": [12, 18, 18]}


def _psnr(rec, margin: float | None) -> tuple[float, FitResult]:
    cfg = resolve_config("default", {"train": {"iterations": 300, "time_budget_s": None},
                                     "field": {"lateral_margin": margin, "value_max": 1.02}})
    res = reconstruct(rec, cfg, progress=False)
    return float(evaluate_volumes(res.reconstruction.volume, rec.truth)["mean"]["psnr"]), res


def test_widening_reconstructs_what_the_detector_truncates() -> None:
    rec = get_scene("wide-cylinder").recording(size=16, frames=4, angles_deg=FOUR, noise=0.01,
                                               seed=0)
    with pytest.warns(TruncatedProjectionsWarning, match="widened by 8 voxels"):
        widened, res = _psnr(rec, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncatedProjectionsWarning)
        confined, _ = _psnr(rec, 0.0)
    # measured 31.4 dB against 18.7 dB
    assert widened > 25 and widened > confined + 8
    assert res.reconstruction.volume.shape == rec.truth.shape
    assert res.predicted.shape == rec.projections.shape


def test_the_command_line_widens_on_request_and_refuses_it_for_other_methods(tmp_path,
                                                                             capsys) -> None:
    rec = get_scene("droplets").recording(size=12, frames=2, angles_deg=(0.0, 23.8),
                                          noise=0.01, seed=0)
    save_recording(rec, tmp_path / "rec.h5")
    out = tmp_path / "out.h5"
    assert main(["reconstruct", str(tmp_path / "rec.h5"), "--out", str(out), "--iterations",
                 "20", "--lateral-margin", "0.25", "--no-preview", "--quiet"]) == 0
    with h5py.File(out) as f:
        assert f["/reconstruction/volume"].shape == (2, 12, 12, 12)
        cfg = json.loads(f["/reconstruction"].attrs["config"])
    assert cfg["resolved"]["field_of_view"]["fitted_grid"] == [12, 18, 18]
    capsys.readouterr()
    code = main(["reconstruct", str(tmp_path / "rec.h5"), "--out", str(tmp_path / "s.h5"),
                 "--method", "sirt", "--lateral-margin", "0.25", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "field.lateral_margin" in err
    assert not (tmp_path / "s.h5").exists()
    assert math.isfinite(cfg["field"]["lateral_margin"])


def test_validation_holds_out_measured_pixels_of_a_widened_fit() -> None:
    from xray4d.evaluation.validation import run_validation
    rec = get_scene("wide-cylinder").recording(size=12, frames=2, angles_deg=FOUR, noise=0.01,
                                               seed=0)
    cfg = resolve_config("default", {"train": {"iterations": 30, "time_budget_s": None}})
    with pytest.warns(TruncatedProjectionsWarning):
        run = run_validation(rec, cfg, seeds=1, leave_view_out=True)
    assert run.heldout.shape == rec.projections.shape and run.heldout.any()
    assert run.predicted.shape == rec.projections.shape
    for name, r in run.reconstructions.items():
        assert r.volume.shape == rec.truth.shape, name
        assert r.config["resolved"]["field_of_view"]["fitted_grid"] == [12, 24, 24], name
    assert math.isfinite(run.summary["heldout_relative_error"])
    assert {int(v) for v in run.summary["leave_view_out"]} == {0, 1, 2, 3}
    share = run.reconstructions["reconstruction"].config["resolved"]["fitted_pixel_share"]
    assert share == pytest.approx(1 - run.heldout.mean())      # of the measured pixels
