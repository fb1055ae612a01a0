"""``xray4d validate`` and its API: the numbers, the files, the warnings, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import h5py
import pytest
import torch

from xray4d.api import resolve_config
from xray4d.cli import main
from xray4d.evaluation.validation import check_warnings, run_validation, validate
from xray4d.io import load_reconstruction, save_recording
from xray4d.simulate import simulate_droplets

KEYS = ("heldout_relative_error", "heldout_relative_error_per_frame", "noise_level",
        "heldout_noise_ratio", "heldout_noise_ratio_per_frame", "fsc_resolution_voxels",
        "fsc_resolution_voxels_per_frame", "fsc_resolution_voxels_half_bit",
        "uncertainty_mean", "warnings", "verdict", "saturation_share", "fits",
        "quality_error", "quality_score", "quality_components")


@pytest.fixture(scope="module")
def recording():
    return simulate_droplets(size=20, frames=4, angles_deg=(0.0, 23.8), noise=0.01, seed=0)


def config(iterations: int, **overrides):
    return resolve_config("default", {"train": {"iterations": iterations, "time_budget_s": None,
                                                "frames_per_batch": 2}, **overrides})


def test_validate_through_the_api(recording) -> None:
    torch.set_num_threads(1)
    run = run_validation(recording, config(400), seeds=2)
    s = run.summary
    assert all(k in s for k in KEYS)
    assert set(run.reconstructions) == {"reconstruction", "seed_1", "half_a", "half_b"}
    assert s["ensemble"] == ["reconstruction", "seed_1", "half_a", "half_b"]
    assert len(s["heldout_relative_error_per_frame"]) == 4 and len(run.fsc) == 4
    # the simulated noise is 1 % of the largest line integral
    assert s["noise_level_relative"] == pytest.approx(0.01, rel=0.1)
    # a fit that converges predicts the held-out pixels near the noise level
    assert 0.8 < s["heldout_noise_ratio"] < 2.0 and s["warnings"] == []
    assert 2.0 <= s["fsc_resolution_voxels"] <= 10
    assert run.uncertainty.shape == (4, 20, 20, 20) and s["uncertainty_mean"] > 0
    # the held-out blocks are 10 % of the detector, and every fit saw the others only
    assert run.heldout.mean() == pytest.approx(0.1, abs=0.03)
    shares = {n: r.config["resolved"]["fitted_pixel_share"] for n, r in run.reconstructions.items()}
    assert shares["reconstruction"] == pytest.approx(1 - run.heldout.mean())
    assert shares["half_a"] + shares["half_b"] == pytest.approx(shares["reconstruction"])
    assert json.loads(json.dumps(s))   # plain JSON


def test_a_value_bound_at_half_the_truth_gets_a_saturation_warning(recording) -> None:
    torch.set_num_threads(1)
    s = validate(recording, config(200, field={"value_max": 0.5}), seeds=1)
    assert s["value_max"] == 0.5 and s["value_max_source"] == "config"
    assert s["value_bound_over_estimate"] < 0.6
    assert any(w.startswith("saturated") for w in s["warnings"])
    assert s["verdict"].startswith("Suspect")


def test_warnings_follow_the_thresholds() -> None:
    good = {"saturation_share": 0.6, "value_bound_over_estimate": 1.02, "value_max": 1.0,
            "value_estimate": 0.98, "heldout_noise_ratio": 1.2,
            "heldout_excess_relative_error": 0.1, "data_loss_drop": 0.1,
            "fsc_resolution_voxels": 2.0}
    assert check_warnings(good) == []   # saturated at a bound the data support: a liquid
    heads = lambda s: [w.split(":")[0] for w in check_warnings({**good, **s})]  # noqa: E731
    assert heads({"value_bound_over_estimate": 0.5, "value_max": 0.5}) == ["saturated"]
    assert heads({"value_bound_over_estimate": 0.5, "saturation_share": 0.1}) == []
    assert heads({"heldout_noise_ratio": 3.5}) == ["held-out error far above the noise"]
    assert heads({"heldout_noise_ratio": 2.5}) == []          # below 3: a model floor at low noise
    assert heads({"heldout_excess_relative_error": 0.5}) == ["held-out error far above the noise"]
    assert heads({"heldout_noise_ratio": None}) == []       # noise-free data: no ratio
    assert heads({"data_loss_drop": 0.5}) == ["not converged"]
    assert heads({"fsc_resolution_voxels": 6.0}) == ["FSC falls early"]


def test_validate_command_writes_the_json_the_report_and_the_fits(tmp_path: Path, capsys) -> None:
    rec = simulate_droplets(size=16, frames=3, angles_deg=(0.0, 23.8, 67.5), noise=0.01, seed=1)
    src, out = tmp_path / "rec.h5", tmp_path / "val"
    save_recording(rec, src)
    assert main(["validate", str(src), "--out", str(out), "--iterations", "60", "--seeds", "1",
                 "--quiet"]) == 0
    s = json.loads((out / "validation.json").read_text())
    assert all(k in s for k in KEYS)
    assert set(s["leave_view_out"]) == {"0", "1", "2"}     # three views: each left out
    for name in ("reconstruction", "half_a", "half_b", "leave_view_0", "leave_view_2"):
        assert load_reconstruction(out / f"{name}.h5").volume.shape == (3, 16, 16, 16)
    unc = load_reconstruction(out / "uncertainty.h5")
    assert unc.attrs["quantity"] == "uncertainty"
    assert float(unc.volume.mean()) == pytest.approx(s["uncertainty_mean"], rel=1e-5)
    with h5py.File(out / "uncertainty.h5") as f:
        assert f["/reconstruction/ensemble_mean"].shape == (3, 16, 16, 16)
    page = (out / "report.html").read_text()
    assert "Verdict" in page and "fsc.png" in page and "quality score" in page
    for fig in ("fsc.png", "heldout.png", "uncertainty.png"):
        assert (out / fig).stat().st_size > 0
    assert "wrote" in capsys.readouterr().out
    # a second run into the same folder needs --force
    before = (out / "validation.json").read_bytes()
    assert main(["validate", str(src), "--out", str(out), "--iterations", "5"]) == 2
    assert (out / "validation.json").read_bytes() == before


@pytest.mark.parametrize("flags, fault", [
    (["--holdout", "0.7"], "--holdout"), (["--holdout", "nan"], "--holdout"),
    (["--seeds", "0"], "--seeds"), (["--block", "0"], "--block"),
    (["--method", "fbp"], "--method"), (["--method", "nope"], "--method"),
    (["--iterations", "-3"], "--iterations")])
def test_validate_refuses_bad_options_in_one_line(tmp_path: Path, capsys, flags, fault) -> None:
    rec = simulate_droplets(size=12, frames=2, noise=0.0, seed=0)
    src, out = tmp_path / "rec.h5", tmp_path / "val"
    save_recording(rec, src)
    try:
        status = main(["validate", str(src), "--out", str(out), *flags])
    except SystemExit as exc:          # refused while parsing: a flag out of its range
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fault in err[0] and "Traceback" not in err[0]
    assert not out.exists()


def test_validate_refuses_a_missing_recording(tmp_path: Path, capsys) -> None:
    assert main(["validate", str(tmp_path / "none.h5"), "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none.h5" in err[0]
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize("scene, views", [("jet", 2), ("bubble-column", 3), ("head-on", 2)])
def test_the_saturation_checks_value_estimate_is_near_the_truth(scene: str, views: int) -> None:
    """The value the projections suggest, against the simulated truth's largest value: a
    bound at half the truth reads below 0.75 of it (the old lower of the disc and moment
    estimates read 0.22 on the 2-view jet and let such a bound through)."""
    from xray4d.evaluation.cases import simulate_case
    from xray4d.evaluation.validation import _value_estimate
    rec = simulate_case(scene, views, 32, 4, 0.02, 0)
    truth = float(rec.truth.max())
    est = _value_estimate(rec, 0.5 * truth)
    assert est["value_estimate"] == pytest.approx(truth, rel=0.1)
    assert est["value_bound_over_estimate"] < 0.75
