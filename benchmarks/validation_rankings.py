"""Rank correlations of the no-truth numbers with the true PSNR, from stored benchmark rows.

Reads the JSON files written by ``benchmarks/bench_validation.py`` (no fit is run) and,
per set and over all of them, computes the Spearman correlation with the main fit's PSNR
of every no-truth number the rows hold, and of the quality error
(:func:`xray4d.evaluation.checks.quality_error`), recomputed from each row's numbers where
the row predates it. Besides all settings, it reports the settings without the 2-view
runs at half the bound (a thicker object explains those in every recorded view: no
check on the recorded views can rank them, docs/results/validation.md), and the
leave-one-view-out error over the settings with 3 or 4 views, and, over every pair of
settings of one scene, the share that each number orders as the PSNR does (the PSNR of
different scenes differs for reasons no projection shows). Prints Markdown and writes
``benchmarks/results/validation_rankings.json``.

    PYTHONPATH=src python benchmarks/validation_rankings.py [FILE.json ...] [--out OUT.json]
        [--sets-from benchmarks/results/validation_recheck.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

from scipy.stats import spearmanr

from xray4d.evaluation.checks import quality_error

RESULTS = Path(__file__).parent / "results"
#: the stored sets, in the order they were made
FILES = ("validation.json", "validation_check.json", "validation_fresh.json",
         "validation_fresh2.json", "validation_fresh3.json", "validation_fresh4.json",
         "validation_fresh5.json")


def object_fraction(row: dict[str, Any]) -> float | None:
    """The object's share of the volume: the row's own, or for rows written before it was
    stored, the ensemble's mean spread over the volume over its mean inside the object (the
    same share when the fits agree outside the object, slightly more otherwise)."""
    if row.get("object_fraction") is not None:
        return row["object_fraction"]
    unc, unc_obj = row.get("uncertainty_mean"), row.get("uncertainty_mean_object")
    return unc / unc_obj if unc is not None and unc_obj else None


def current_quality_error(row: dict[str, Any]) -> float | None:
    """:func:`quality_error` of a row, the object's share filled in for older rows."""
    return quality_error({**row, "object_fraction": object_fraction(row)})


def object_scale_quality_error(row: dict[str, Any]) -> float | None:
    """The quality error that ``quality_error`` replaced: the held-out error beyond the
    noise, plus the ensemble's spread inside the object over the bound, plus the share of
    the object at the bound times how far the bound lies below the estimate; each a share
    of the signal, blind to the object's size."""
    need = ("heldout_excess_relative_error", "uncertainty_mean_object", "value_max")
    if any(row.get(k) is None for k in need):
        return None
    sat, ratio = row.get("saturation_share"), row.get("value_bound_over_estimate")
    deficit = sat * max(0.0, 1.0 - ratio) if sat is not None and ratio is not None else 0.0
    return (row["heldout_excess_relative_error"]
            + row["uncertainty_mean_object"] / row["value_max"] + deficit)

#: name -> how to read it from a row (None: not available for that row)
NUMBERS: dict[str, Callable[[dict[str, Any]], float | None]] = {
    "heldout_relative_error": lambda r: r.get("heldout_relative_error"),
    "heldout_excess_relative_error": lambda r: r.get("heldout_excess_relative_error"),
    "heldout_noise_ratio": lambda r: r.get("heldout_noise_ratio"),
    "uncertainty_mean_object": lambda r: r.get("uncertainty_mean_object"),
    "uncertainty_over_bound": lambda r: (r["uncertainty_mean_object"] / r["value_max"]
                                         if r.get("value_max") else None),
    "uncertainty_over_bound (whole volume)": lambda r: (r["uncertainty_mean"] / r["value_max"]
                                                         if r.get("value_max") else None),
    "quality_error (object scale, before)": object_scale_quality_error,
    "quality_error": current_quality_error,
    # baselines: how much of the ranking is the object's size, which the PSNR over the
    # whole volume and the quality error both grow with
    "object_fraction (size alone)": object_fraction,
    "quality_error / object_fraction": lambda r: (
        current_quality_error(r) / object_fraction(r)
        if current_quality_error(r) is not None and object_fraction(r) else None),
}


def two_view_half_bound(row: dict[str, Any]) -> bool:
    """A 2-view setting with the bound at half the truth (named ``... 2v ... bound/2``)."""
    return " 2v " in f" {row['setting']} " and row["setting"].endswith("bound/2")


def spearman(rows: list[dict[str, Any]], read: Callable[[dict[str, Any]], float | None]
             ) -> dict[str, Any]:
    """Spearman of ``read(row)`` with the PSNR over the rows where it is known."""
    pairs = [(read(r), r["psnr"]) for r in rows]
    pairs = [(v, p) for v, p in pairs if v is not None]
    if len(pairs) < 3:
        return {"rho": None, "n": len(pairs)}
    return {"rho": float(spearmanr([v for v, _ in pairs], [p for _, p in pairs])[0]),
            "n": len(pairs)}


def scene(row: dict[str, Any]) -> str:
    """The scene of a setting: the first word of its name."""
    return row["setting"].split()[0]


def within_scene(rows: list[dict[str, Any]], read: Callable[[dict[str, Any]], float | None]
                 ) -> dict[str, Any]:
    """Over every pair of settings of one scene: the share that ``read`` orders as the PSNR
    does (lower number, higher PSNR; ties in either count half)."""
    hits, pairs = 0.0, 0
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            va, vb = read(a), read(b)
            if scene(a) != scene(b) or va is None or vb is None:
                continue
            pairs += 1
            prod = (va - vb) * (a["psnr"] - b["psnr"])
            hits += 1.0 if prod < 0 else 0.5 if prod == 0 else 0.0
    return {"share": hits / pairs if pairs else None, "pairs": pairs}


def rankings(sets: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per set, over all sets, and over all without the 2-view half-bound runs."""
    every = [r for rows in sets.values() for r in rows]
    groups = {**sets, "all": every,
              "all without 2-view bound/2": [r for r in every if not two_view_half_bound(r)]}
    out: dict[str, Any] = {}
    for name, rows in groups.items():
        out[name] = {key: spearman(rows, read) for key, read in NUMBERS.items()}
        lvo = [r for r in rows if r.get("leave_view_out_relative_error") is not None]
        out[name]["leave_view_out_relative_error (3-4 views)"] = spearman(
            lvo, lambda r: r["leave_view_out_relative_error"])
        out[name]["quality_error (3-4 views)"] = spearman(lvo, current_quality_error)
        out[name]["within_scene_pairs_ordered"] = {key: within_scene(rows, read)
                                                   for key, read in NUMBERS.items()}
        bad = [r for r in rows if r["kind"] == "bad"]
        good = [r for r in rows if r["kind"] == "good"]
        out[name]["bad_warned"] = f"{sum(bool(r['warnings']) for r in bad)}/{len(bad)}"
        out[name]["good_warned"] = f"{sum(bool(r['warnings']) for r in good)}/{len(good)}"
    return out


def markdown(result: dict[str, Any]) -> str:
    """One table: a row per number, a column per group."""
    groups = list(result)
    keys = [k for k in result[groups[0]] if not k.endswith("_warned")
            and k != "within_scene_pairs_ordered"]
    lines = ["| number | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    for key in keys:
        cells = []
        for g in groups:
            s = result[g][key]
            cells.append("-" if s["rho"] is None else f"{s['rho']:+.2f} ({s['n']})")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    for key in ("bad_warned", "good_warned"):
        lines.append(f"| {key} | " + " | ".join(result[g][key] for g in groups) + " |")
    lines += ["", "Same-scene pairs ordered as the PSNR orders them (share, pairs):", "",
              "| number | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    for key in NUMBERS:
        cells = []
        for g in groups:
            w = result[g]["within_scene_pairs_ordered"][key]
            cells.append("-" if w["share"] is None else f"{w['share']:.2f} ({w['pairs']})")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help=f"default: {', '.join(FILES)} in {RESULTS}")
    ap.add_argument("--sets-from", metavar="RECHECK.json",
                    help="take the sets it names from this file (validation_recheck.py's "
                         "output) instead of their own files")
    ap.add_argument("--out", default=str(RESULTS / "validation_rankings.json"))
    args = ap.parse_args()
    paths = [Path(f) for f in args.files] or [RESULTS / f for f in FILES if (RESULTS / f).exists()]
    replaced = json.loads(Path(args.sets_from).read_text())["sets"] if args.sets_from else {}
    sets = {}
    for path in paths:
        data = json.loads(path.read_text())
        name = data.get("settings", path.stem)
        sets[name] = [r for r in replaced.get(name, data["rows"]) if "psnr" in r]
    if args.sets_from:
        paths.append(Path(args.sets_from))
    result = rankings(sets)
    Path(args.out).write_text(json.dumps({"files": [p.name for p in paths],
                                          "spearman_with_psnr": result}, indent=1))
    print(markdown(result))


if __name__ == "__main__":
    main()
