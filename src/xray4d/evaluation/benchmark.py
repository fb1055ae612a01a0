"""The benchmark: methods x simulated cases x view counts, side by side.

Each case (:mod:`.cases`) is simulated once per view count (with ground truth)
and written to ``OUT/recordings/``; each (case, views, method, budget) run
happens in a fresh child process, so that its peak memory is its own, and is
scored against the truth. :func:`run_benchmark` writes the results to
``OUT/benchmark.json`` and ``OUT/benchmark.md``, ``OUT/quality_vs_time.png``
plots PSNR over wall time per method and ``OUT/psnr_per_scene.png`` the PSNR of
every method on every case (bars, one panel per view count). Under each table a line names the best
conventional method of that case, view count and budget and every other
method's PSNR margin over it (``comparisons`` in the JSON).
"""
from __future__ import annotations

import json
import math
import multiprocessing as mp
import platform
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..api import reconstruct, resolve_config
from ..io import atomic_path, load_recording, save_recording
from .cases import KNOWN_MATERIAL, VIEW_ANGLES, case_overrides, describe_case, simulate_case
from .metrics import evaluate_volumes

__all__ = ["CONVENTIONAL", "METRICS", "run_one", "compare_to_conventional", "write_markdown",
           "plot_quality_vs_time", "plot_psnr_per_scene", "run_benchmark"]

#: the conventional (non-learned) methods: the best of them per (case, views, budget) is the
#: reference every other method is compared with
CONVENTIONAL = ("fbp", "sirt", "cgls", "astra-fbp", "astra-sirt")

METRICS = ("psnr", "ssim", "dssim", "iou", "mse")


def run_one(recording_path: str, method: str, budget_s: float, seed: int,
            threads: int | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """Reconstruct one recording with one method and score it (meant for a child process).

    Returns metrics (means over frames), wall seconds, iterations, the reason
    it stopped, and the peak resident memory of the process in MiB.
    """
    import resource    # Unix only: imported where used, so the module imports on any platform

    if threads:
        torch.set_num_threads(threads)
    rec = load_recording(recording_path)
    cfg = resolve_config("default", overrides, method)
    cfg = cfg.updated({"train": {"time_budget_s": budget_s, "iterations": None, "seed": seed}})
    t0 = time.perf_counter()
    res = reconstruct(rec, cfg, progress=False)
    wall = time.perf_counter() - t0
    scores = evaluate_volumes(res.reconstruction.volume, rec.truth)["mean"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0   # kB on Linux
    return {"wall_s": wall, "iterations": res.iterations, "stopped_by": res.stopped_by,
            "final_residual": res.losses[-1] if res.losses else None, "peak_rss_mib": peak,
            **{k: float(scores[k]) for k in METRICS}}


def _child(conn, *a) -> None:
    """Body of the child process: send ``("ok", run_one(*a))`` or ``("error", one line)``."""
    try:
        conn.send(("ok", run_one(*a)))
    except BaseException as exc:  # reported in the table, the benchmark goes on
        conn.send(("error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
    finally:
        conn.close()


def _run_isolated(*a) -> dict[str, Any]:
    """:func:`run_one` in a fresh (spawned) process: its result, or ``{"error": one line}``."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, *a))
    proc.start()
    child.close()
    try:
        status, payload = parent.recv()
    except EOFError:
        status, payload = "error", f"the run's process died (exit {proc.exitcode})"
    proc.join()
    if status != "ok":
        return {"error": payload}
    return payload


def compare_to_conventional(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (case, views, budget): the best conventional method by PSNR and every method's margin.

    Args:
        rows: benchmark rows (``case``, ``views``, ``method``, ``budget_s``, ``psnr``; rows
            with an ``error`` are left out).

    Returns:
        one dict per group in the order the groups first appear: ``case``, ``views``,
        ``budget_s``, ``best_conventional`` (method name, or None when no conventional
        method ran), ``best_conventional_psnr`` and ``margin_db`` (PSNR of every other
        method minus the best conventional one, dB).
    """
    ok = [r for r in rows if "error" not in r and r.get("psnr") is not None
          and math.isfinite(r["psnr"])]
    out = []
    for case, views, budget in dict.fromkeys((r["case"], r["views"], r["budget_s"]) for r in ok):
        group = [r for r in ok if (r["case"], r["views"], r["budget_s"]) == (case, views, budget)]
        conv = [r for r in group if r["method"] in CONVENTIONAL]
        best = max(conv, key=lambda r: r["psnr"]) if conv else None
        out.append({"case": case, "views": views, "budget_s": budget,
                    "best_conventional": best["method"] if best else None,
                    "best_conventional_psnr": best["psnr"] if best else None,
                    "margin_db": {r["method"]: r["psnr"] - best["psnr"] for r in group
                                  if best and r["method"] not in CONVENTIONAL}})
    return out


def _fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def write_markdown(path: Path, summary: dict[str, Any]) -> None:
    """The results as Markdown tables, one per case and view count."""
    lines = ["# xray4d benchmark", "",
             f"{summary['machine']}; {summary['size']}^3 voxels x {summary['frames']} frames, "
             f"noise {summary['noise']:g}, seed {summary['seed']}; budgets "
             f"{', '.join(f'{b:g}' for b in summary['time_budgets_s'])} s.", "",
             "PSNR and IoU carry the verdict; SSIM is high for any mostly empty volume. "
             "Peak memory is the peak resident set of the process running the method "
             "(Python and torch included).", ""]
    rows = summary["rows"]
    groups = dict.fromkeys((r["case"], r["views"]) for r in rows)
    for case, views in groups:
        lines += [f"## {case}, {views} views ({', '.join(f'{a:g}' for a in VIEW_ANGLES[views])} deg)",
                  "", f"{describe_case(case)}." + (
                      f" Known to every method: {json.dumps(KNOWN_MATERIAL[case])}."
                      if case in KNOWN_MATERIAL else ""), "",
                  "| method | budget s | PSNR dB | SSIM | DSSIM | IoU | MSE | wall s | iterations | peak MiB |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            if (r["case"], r["views"]) != (case, views):
                continue
            if "error" in r:
                lines.append(f"| {r['method']} | {r['budget_s']:g} | failed: {r['error']} |"
                             + " |" * 7)
                continue
            lines.append(f"| {r['method']} | {r['budget_s']:g} | {_fmt(r['psnr'], '.2f')} | "
                         f"{_fmt(r['ssim'], '.4f')} | {_fmt(r['dssim'], '.4f')} | "
                         f"{_fmt(r['iou'], '.3f')} | {_fmt(r['mse'], '.3e')} | "
                         f"{r['wall_s']:.1f} | {r['iterations']} | {r['peak_rss_mib']:.0f} |")
        lines.append("")
        for c in summary.get("comparisons", []):
            if (c["case"], c["views"]) != (case, views) or c["best_conventional"] is None:
                continue
            margins = ", ".join(f"{m} {d:+.2f} dB" for m, d in c["margin_db"].items())
            lines.append(f"Best conventional at {c['budget_s']:g} s: {c['best_conventional']} "
                         f"({c['best_conventional_psnr']:.2f} dB)"
                         + (f"; PSNR over it: {margins}." if margins else "."))
            lines.append("")
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))


def plot_quality_vs_time(path: Path, rows: list[dict[str, Any]]) -> None:
    """PSNR over wall time, one panel per case and view count, one line per method."""
    # matplotlib (~0.5 s to import) only when a figure is drawn
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "error" not in r]
    groups = list(dict.fromkeys((r["case"], r["views"]) for r in ok)) or [("none", 0)]
    cols = min(3, len(groups))
    nrows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.3 * nrows), squeeze=False)
    methods = list(dict.fromkeys(r["method"] for r in ok))
    for ax, (case, views) in zip(axes.flat, groups):
        for m in methods:
            pts = sorted((r["wall_s"], r["psnr"]) for r in ok
                         if (r["case"], r["views"], r["method"]) == (case, views, m))
            if pts:
                ax.plot(*zip(*pts), marker="o", lw=1, label=m)
        ax.set_title(f"{case}, {views} views", fontsize=9)
        ax.set_xscale("log")      # conventional methods take well under a second
        ax.set_xlabel("wall time [s]")
        ax.set_ylabel("PSNR [dB]")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    if methods:
        axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def plot_psnr_per_scene(path: Path, rows: list[dict[str, Any]]) -> None:
    """PSNR of every method on every case: grouped bars, one panel per view count (the
    largest budget where there are several; failed runs are left out)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "error" not in r and r.get("psnr") is not None
          and math.isfinite(r["psnr"])]
    budget = max((r["budget_s"] for r in ok), default=0.0)
    ok = [r for r in ok if r["budget_s"] == budget]
    views = sorted(dict.fromkeys(r["views"] for r in ok)) or [0]
    cases = list(dict.fromkeys(r["case"] for r in ok))
    methods = list(dict.fromkeys(r["method"] for r in ok))
    wide = max(6.0, 2.0 + 0.3 * len(cases) * max(1, len(methods)))
    fig, axes = plt.subplots(len(views), 1, figsize=(wide, 3.0 * len(views)), squeeze=False)
    width = 0.8 / max(1, len(methods))
    for ax, n_views in zip(axes[:, 0], views):
        for k, m in enumerate(methods):
            vals = {r["case"]: r["psnr"] for r in ok if (r["views"], r["method"]) == (n_views, m)}
            shift = (k - (len(methods) - 1) / 2) * width
            xs = [i + shift for i, c in enumerate(cases) if c in vals]
            ax.bar(xs, [vals[c] for c in cases if c in vals], width, label=m)
        ax.set_xticks(range(len(cases)))
        ax.set_xticklabels(cases, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("PSNR [dB]")
        ax.set_title(f"{n_views} views, budget {budget:g} s", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    if methods:
        axes[0, 0].legend(fontsize=7, ncol=min(len(methods), 6))
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _say(line: str) -> None:
    print(line, flush=True)


def run_benchmark(out: str | Path, *, cases: Sequence[str], views: Sequence[int],
                  methods: Sequence[str], budgets_s: Sequence[float], size: int = 64,
                  frames: int = 40, noise: float = 0.01, seed: int = 0,
                  threads: int | None = None, overrides: dict[str, Any] | None = None,
                  log: Callable[[str], None] = _say) -> dict[str, Any]:
    """Run every (case, views, method, budget) and write the tables, the JSON and the plot.

    Args:
        out: output folder; gets ``recordings/``, ``benchmark.json``, ``benchmark.md``,
            ``quality_vs_time.png`` and ``psnr_per_scene.png`` (existing files are replaced).
        cases: case names (:func:`~.cases.case_names`: the named variants and the scenes).
        views: view counts, keys of :data:`~.cases.VIEW_ANGLES`.
        methods: registered reconstruction methods.
        budgets_s: wall-time budget(s) per run in seconds.
        size, frames, noise, seed: of the simulations; ``seed`` also seeds the training.
        threads: torch threads per run (default torch's).
        overrides: config overrides for every run, under each case's known material.
        log: receives one line per run and its result.

    Returns:
        the summary written to ``benchmark.json``: the settings, one row per run
        (metrics, wall seconds, iterations, peak memory, or ``error``) and
        ``comparisons`` (:func:`compare_to_conventional`).
    """
    out = Path(out)
    overrides = {} if overrides is None else overrides
    (out / "recordings").mkdir(parents=True, exist_ok=True)
    n_threads = threads or torch.get_num_threads()
    summary: dict[str, Any] = {
        "machine": f"{platform.machine()}, {n_threads} torch thread(s), torch {torch.__version__}",
        "size": size, "frames": frames, "noise": noise, "seed": seed,
        "time_budgets_s": list(budgets_s), "methods": list(methods), "cases": list(cases),
        "views": list(views), "config_overrides": overrides, "rows": []}
    n_runs = len(cases) * len(views) * len(methods) * len(budgets_s)
    done = 0
    for case in cases:
        for n_views in views:
            rec_path = out / "recordings" / f"{case}_{n_views}views.h5"
            save_recording(simulate_case(case, n_views, size, frames, noise, seed), rec_path)
            for method in methods:
                for budget in budgets_s:
                    done += 1
                    log(f"[{done}/{n_runs}] {case}, {n_views} views, {method}, {budget:g} s ...")
                    row = {"case": case, "views": n_views, "method": method, "budget_s": budget,
                           **_run_isolated(str(rec_path), method, budget, seed, threads,
                                           case_overrides(case, overrides))}
                    summary["rows"].append(row)
                    log(_row_line(row))
    summary["comparisons"] = compare_to_conventional(summary["rows"])
    with atomic_path(out / "benchmark.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1, default=str))
    write_markdown(out / "benchmark.md", summary)
    plot_quality_vs_time(out / "quality_vs_time.png", summary["rows"])
    plot_psnr_per_scene(out / "psnr_per_scene.png", summary["rows"])
    return summary


def _row_line(row: dict[str, Any]) -> str:
    """One line of progress for a finished run."""
    if "error" in row:
        return f"    failed: {row['error']}"
    return (f"    PSNR {row['psnr']:.2f} dB, IoU {row['iou']:.3f}, "
            f"{row['wall_s']:.1f} s, {row['peak_rss_mib']:.0f} MiB")
