"""The benchmark's comparison with the best conventional method, per case, view count and budget."""
from __future__ import annotations

from pathlib import Path

import pytest

from xray4d.evaluation.benchmark import compare_to_conventional, write_markdown


def _row(case: str, views: int, method: str, psnr: float, budget: float = 60.0) -> dict:
    return {"case": case, "views": views, "method": method, "budget_s": budget, "psnr": psnr,
            "ssim": 0.9, "dssim": 0.05, "iou": 0.5, "mse": 1e-3, "wall_s": 1.0, "iterations": 10,
            "peak_rss_mib": 500.0}


ROWS = [_row("ellipsoid", 2, "hexplane", 27.87), _row("ellipsoid", 2, "perframe", 23.47),
        _row("ellipsoid", 2, "sirt", 20.96), _row("ellipsoid", 2, "fbp", 17.15),
        {"case": "ellipsoid", "views": 2, "method": "cgls", "budget_s": 60.0, "error": "boom"},
        _row("ellipsoid", 4, "hexplane", 33.0), _row("ellipsoid", 4, "sirt", 30.5),
        _row("ellipsoid", 4, "astra-sirt", 30.6), _row("ellipsoid", 4, "hexplane", 34.0, 120.0),
        _row("ellipsoid", 4, "sirt", 30.5, 120.0), _row("head-on", 2, "hexplane", 44.0)]


def test_best_conventional_margins_per_case_views_and_budget() -> None:
    comp = compare_to_conventional(ROWS)
    assert [(c["case"], c["views"], c["budget_s"]) for c in comp] == \
        [("ellipsoid", 2, 60.0), ("ellipsoid", 4, 60.0), ("ellipsoid", 4, 120.0), ("head-on", 2, 60.0)]
    two, four, four_long, head = comp
    assert two["best_conventional"] == "sirt" and two["best_conventional_psnr"] == 20.96
    assert two["margin_db"] == pytest.approx({"hexplane": 6.91, "perframe": 2.51})
    # ASTRA's SIRT counts as conventional, and here it is the best one
    assert four["best_conventional"] == "astra-sirt"
    assert four["margin_db"] == pytest.approx({"hexplane": 2.4})
    assert four_long["margin_db"] == pytest.approx({"hexplane": 3.5})
    assert head["best_conventional"] is None and head["margin_db"] == {}


def test_markdown_has_every_group_and_its_comparison_line(tmp_path: Path) -> None:
    summary = {"machine": "test", "size": 12, "frames": 3, "noise": 0.01, "seed": 0,
               "time_budgets_s": [60.0, 120.0], "rows": ROWS,
               "comparisons": compare_to_conventional(ROWS)}
    path = tmp_path / "benchmark.md"
    write_markdown(path, summary)
    md = path.read_text()
    assert "## ellipsoid, 2 views (0, 23.8 deg)" in md
    assert "## ellipsoid, 4 views (0, 23.8, 67.5, 112.5 deg)" in md
    assert ("Best conventional at 60 s: sirt (20.96 dB); PSNR over it: hexplane +6.91 dB, "
            "perframe +2.51 dB.") in md
    assert "Best conventional at 60 s: astra-sirt (30.60 dB); PSNR over it: hexplane +2.40 dB." in md
    assert "Best conventional at 120 s: sirt (30.50 dB); PSNR over it: hexplane +3.50 dB." in md
    assert "| cgls | 60 | failed: boom |" in md
    # the 4-view line sits in the 4-view section, after its table
    four = md.index("## ellipsoid, 4 views")
    assert md.index("astra-sirt (30.60 dB)") > four > md.index("sirt (20.96 dB)")


def test_benchmark_verb_runs_two_and_four_views(tmp_path: Path) -> None:
    """End to end with --views 2,4: both groups in the JSON (rows and comparisons) and the Markdown."""
    import json

    from xray4d.cli import main

    out = tmp_path / "bench"
    assert main(["benchmark", "--out", str(out), "--cases", "ellipsoid", "--views", "2,4",
                 "--methods", "fbp", "--size", "12", "--frames", "3", "--time-budget", "20",
                 "--threads", "1"]) == 0
    summary = json.loads((out / "benchmark.json").read_text())
    assert [(r["case"], r["views"]) for r in summary["rows"]] == [("ellipsoid", 2), ("ellipsoid", 4)]
    assert all("error" not in r for r in summary["rows"])
    assert [(c["views"], c["best_conventional"]) for c in summary["comparisons"]] == [(2, "fbp"), (4, "fbp")]
    md = (out / "benchmark.md").read_text()
    assert "## ellipsoid, 4 views" in md and md.count("Best conventional at 20 s: fbp") == 2
    assert (out / "recordings" / "ellipsoid_4views.h5").exists()
