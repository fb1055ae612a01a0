"""The ``xray4d benchmark`` verb at a tiny size, its refusals, and the rigid-ellipsoid scene."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xray4d.cli import main
from xray4d.simulate import RigidEllipsoid, rigid_ellipsoid_truth, simulate_rigid_ellipsoid


def test_rigid_ellipsoid_keeps_its_mass_and_moves() -> None:
    truth = rigid_ellipsoid_truth(size=24, frames=3)
    a, b, c = RigidEllipsoid().semi_axes
    r = RigidEllipsoid().inclusion_radius
    w = 24
    expected = 4 / 3 * np.pi * (a * b * c - (1 - 0.4) * r ** 3) * w ** 3   # value 1, inclusion 0.4
    np.testing.assert_allclose(truth.sum((1, 2, 3)), expected, rtol=0.05)
    assert not np.allclose(truth[0], truth[-1])
    rec = simulate_rigid_ellipsoid(size=24, frames=3, noise=0.0)
    np.testing.assert_array_equal(rec.truth, truth)
    # every view of a frame carries the frame's mass (projections at finer sampling)
    mass = np.broadcast_to(truth.sum((1, 2, 3))[:, None], rec.projections.shape[:2])
    np.testing.assert_allclose(rec.projections.sum((2, 3)), mass, rtol=0.01)


def test_benchmark_verb_writes_tables_and_plot(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench"
    args = ["benchmark", "--out", str(out), "--cases", "ellipsoid", "--views", "2",
            "--methods", "fbp,sirt", "--size", "12", "--frames", "3", "--time-budget", "20",
            "--threads", "1"]
    assert main(args) == 0
    summary = json.loads((out / "benchmark.json").read_text())
    assert [(r["case"], r["views"], r["method"]) for r in summary["rows"]] == \
        [("ellipsoid", 2, "fbp"), ("ellipsoid", 2, "sirt")]
    for r in summary["rows"]:
        assert "error" not in r, r
        for key in ("psnr", "ssim", "dssim", "iou", "mse", "wall_s", "peak_rss_mib"):
            assert np.isfinite(r[key]), key
    md = (out / "benchmark.md").read_text()
    assert "| sirt |" in md and "| fbp |" in md
    assert (out / "quality_vs_time.png").stat().st_size > 1000
    assert (out / "recordings" / "ellipsoid_2views.h5").exists()
    # a second run into the same folder needs --force
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err


@pytest.mark.parametrize("bad, match", [
    (["--methods", "art"], "unknown method"),
    (["--cases", "volcano"], "unknown case"),
    (["--views", "7"], "argument --views: must be an integer from 1 to 4, got '7'"),
    (["--time-budget", "-1"], "argument --time-budget: must be a number in (0, 1e7]"),
    (["--views", "two"], "argument --views: must be an integer"),
])
def test_benchmark_verb_refuses_bad_requests(bad, match, tmp_path: Path, capsys) -> None:
    # numbers are checked while the command line is parsed (argparse exits with status 2)
    parse_time = bad[0] in ("--views", "--time-budget")
    with pytest.raises(SystemExit, match="2") if parse_time else _nothing():
        code = main(["benchmark", "--out", str(tmp_path / "b")] + bad)
        assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err
    assert not (tmp_path / "b" / "benchmark.json").exists()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_case_overrides_give_the_known_material_and_let_the_user_win() -> None:
    from xray4d.evaluation.cases import case_overrides
    assert case_overrides("head-on", {}) == {}
    known = case_overrides("ellipsoid", {})
    assert known["field"]["value_max"] == 1.0 and known["conventional"]["value_max"] == 1.0
    mixed = case_overrides("ellipsoid", {"field": {"value_max": 2.0, "channels": 8}})
    assert mixed["field"] == {"value_max": 2.0, "channels": 8}
    assert mixed["conventional"] == {"value_max": 1.0}


def test_benchmark_runs_library_scenes_and_draws_psnr_per_scene(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    assert main(["benchmark", "--out", str(out), "--cases", "jet,two-liquids", "--views", "2",
                 "--methods", "hexplane,sirt", "--size", "12", "--frames", "3",
                 "--time-budget", "2", "--threads", "1"]) == 0
    summary = json.loads((out / "benchmark.json").read_text())
    assert [(r["case"], r["method"]) for r in summary["rows"]] == \
        [("jet", "hexplane"), ("jet", "sirt"), ("two-liquids", "hexplane"),
         ("two-liquids", "sirt")]
    for r in summary["rows"]:
        assert "error" not in r, r
        for key in ("psnr", "ssim", "iou", "wall_s"):
            assert np.isfinite(r[key]), key
    md = (out / "benchmark.md").read_text()
    from xray4d.simulate import SCENES
    assert "## jet, 2 views" in md and SCENES["two-liquids"].summary in md
    png = (out / "psnr_per_scene.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_cases_all_names_every_scene_and_unknown_names_are_refused(tmp_path: Path,
                                                                  capsys) -> None:
    from xray4d.evaluation.cases import case_names, expand_cases
    from xray4d.simulate import SCENES
    assert expand_cases(["all"]) == list(SCENES)
    assert expand_cases(["head-on", "all", "jet"]) == ["head-on"] + list(SCENES)
    assert set(SCENES) <= set(case_names()) and "head-on" in case_names()
    assert main(["benchmark", "--out", str(tmp_path / "b"), "--cases", "all,volcano"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown case 'volcano'" in err


def test_scene_variants_are_cases_with_their_own_parameters() -> None:
    from xray4d.evaluation.cases import (VARIANTS, case_names, case_width, describe_case,
                                         simulate_case)
    for name, (summary, scene, _) in VARIANTS.items():
        assert name in case_names() and describe_case(name) == summary
        assert case_width(name) == case_width(scene)
        rec = simulate_case(name, 2, 16, 2, 0.0, 0)
        base = simulate_case(scene, 2, 16, 2, 0.0, 0)
        assert rec.truth.max() == 1.0 and not np.array_equal(rec.truth, base.truth)
