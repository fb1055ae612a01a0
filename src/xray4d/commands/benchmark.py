"""The ``xray4d benchmark`` verb: methods x simulated cases x view counts, side by side.

Each case is simulated once per view count (with ground truth) and written to
``OUT/recordings/``; each (case, views, method, budget) run happens in a fresh
child process, so that its peak memory is its own, and is scored against the
truth. Results go to ``OUT/benchmark.json`` and ``OUT/benchmark.md``, and
``OUT/quality_vs_time.png`` plots PSNR over wall time per method. Under each
table a line names the best conventional method of that case, view count and
budget and every other method's PSNR margin over it (``comparisons`` in the JSON).
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path
from typing import Any

from ..cli import UsageError, claim_outputs, read_config_overrides

#: view angles (degrees) by number of views: XMPI-like, the first two 23.8 deg apart
VIEW_ANGLES = {1: (0.0,), 2: (0.0, 23.8), 3: (0.0, 23.8, 67.5), 4: (0.0, 23.8, 67.5, 112.5)}

#: simulated cases: name -> (one-line description, simulator, keyword arguments)
CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "head-on": ("head-on collision of two equal droplets", "droplets", {}),
    "off-centre": ("off-centre collision of unequal droplets (impact 0.4, radii 0.15 / 0.11)",
                   "droplets", {"radius_1": 0.15, "radius_2": 0.11, "impact_parameter": 0.4}),
    "ellipsoid": ("rigid ellipsoid with a hollow inclusion, moving on an arc and tumbling",
                  "ellipsoid", {}),
}

#: what a user of a case knows about the sample, as config overrides for every method: the
#: ellipsoid is one material of value 1, given as the bound of the field and of the conventional
#: iterates (two views cannot tell this object's value: see value_estimate). Droplet cases pass
#: nothing: hexplane estimates the value from the projections.
KNOWN_MATERIAL: dict[str, dict[str, Any]] = {
    "ellipsoid": {"field": {"value_max": 1.0}, "conventional": {"value_max": 1.0}},
}


def case_overrides(case: str, user: dict[str, Any]) -> dict[str, Any]:
    """The config overrides of one case: its known material, then the user's (which win)."""
    def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out
    return merge(KNOWN_MATERIAL.get(case, {}), user)

#: order of the methods in the tables when --methods is not given (others follow by name)
DEFAULT_ORDER = ("hexplane", "static", "perframe", "sirt", "cgls", "fbp")

#: the conventional (non-learned) methods: the best of them per (case, views, budget) is the
#: reference every other method is compared with
CONVENTIONAL = ("fbp", "sirt", "cgls", "astra-fbp", "astra-sirt")

METRICS = ("psnr", "ssim", "dssim", "iou", "mse")


def _csv(kind, text: str) -> list:
    try:
        vals = [kind(v.strip()) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
    if not vals:
        raise argparse.ArgumentTypeError("the list is empty")
    return vals


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``xray4d benchmark``."""
    p = sub.add_parser(
        "benchmark", help="compare methods on simulated cases (quality, time, memory)",
        description="Simulate each case at each view count, reconstruct it with each method "
                    "under each time budget, score against the truth, and write benchmark.md, "
                    "benchmark.json and quality_vs_time.png to OUT.")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--cases", type=lambda s: _csv(str, s), default=list(CASES),
                   help=f"comma-separated cases (default all: {', '.join(CASES)})")
    p.add_argument("--views", type=lambda s: _csv(int, s), default=[2, 4],
                   help="comma-separated view counts, 1-4 (default 2,4)")
    p.add_argument("--methods", type=lambda s: _csv(str, s), default=None,
                   help="comma-separated methods (default all registered except those that need "
                        "an optional extra: astra-fbp and astra-sirt run only when named)")
    p.add_argument("--time-budget", type=lambda s: _csv(float, s), default=[120.0], metavar="S[,S...]",
                   help="wall-time budget(s) per run in seconds (default 120); several give a "
                        "quality-over-time curve; conventional methods stop earlier when done")
    p.add_argument("--size", type=int, default=64, help="voxels per side (default 64)")
    p.add_argument("--frames", type=int, default=40, help="frames (default 40)")
    p.add_argument("--noise", type=float, default=0.01, help="noise, fraction of the max (default 0.01)")
    p.add_argument("--seed", type=int, default=0, help="seed of noise and training (default 0)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per run (default torch's)")
    p.add_argument("--config", metavar="YAML", help="YAML file of config overrides for every run")
    p.add_argument("--force", action="store_true", help="overwrite results already in OUT")
    p.set_defaults(func=cmd_benchmark)


def _check(args: argparse.Namespace) -> list[str]:
    from ..reconstruct.registry import available_methods, needs_extra, unavailable_reason

    known = available_methods()
    # the ASTRA cross-checks duplicate fbp / sirt (measured within 1e-5 of them) and would make
    # the default table depend on which extras are installed: they run only when named
    default = [m for m in known if not needs_extra(m)]
    methods = args.methods or sorted(default, key=lambda m: (DEFAULT_ORDER.index(m)
                                                             if m in DEFAULT_ORDER else len(DEFAULT_ORDER), m))
    for m in methods:
        if m not in known:
            raise UsageError(f"--methods: unknown method {m!r}; available: {', '.join(known)}")
        missing = unavailable_reason(m)
        if missing:
            raise UsageError(f"--methods: {missing}")
    for c in args.cases:
        if c not in CASES:
            raise UsageError(f"--cases: unknown case {c!r}; available: {', '.join(CASES)}")
    for v in args.views:
        if v not in VIEW_ANGLES:
            raise UsageError(f"--views: {v} views not offered; choose from "
                             f"{', '.join(map(str, VIEW_ANGLES))}")
    for b in args.time_budget:
        if not (math.isfinite(b) and b > 0):
            raise UsageError(f"--time-budget: must be positive seconds, got {b:g}")
    if args.size < 8 or args.frames < 2:
        raise UsageError("--size must be >= 8 and --frames >= 2")
    if not (math.isfinite(args.noise) and args.noise >= 0):
        raise UsageError(f"--noise: must be >= 0, got {args.noise}")
    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads: must be >= 1, got {args.threads}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: --out: exists and is not a folder")
    if (out / "benchmark.json").exists() and not args.force:
        raise UsageError(f"{out}: --out: holds a benchmark already (use --force to overwrite)")
    # the sizes are the user's: refuse a simulation that cannot fit before making it (each
    # run's reconstruction is checked in its own process by xray4d.api)
    from ..resources import check_fits, estimate_simulation
    check_fits(estimate_simulation(args.size, args.frames, max(args.views)))
    return list(dict.fromkeys(methods))


def simulate_case(case: str, views: int, size: int, frames: int, noise: float, seed: int):
    """The recording (with truth) of a named case seen from ``views`` views."""
    from ..simulate import DropletCollision, simulate_droplets, simulate_rigid_ellipsoid

    _, kind, kwargs = CASES[case]
    angles = VIEW_ANGLES[views]
    if kind == "droplets":
        return simulate_droplets(DropletCollision(**kwargs), size=size, frames=frames,
                                 angles_deg=angles, noise=noise, seed=seed)
    return simulate_rigid_ellipsoid(size=size, frames=frames, angles_deg=angles, noise=noise,
                                    seed=seed)


def run_one(recording_path: str, method: str, budget_s: float, seed: int,
            threads: int | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """Reconstruct one recording with one method and score it (meant for a child process).

    Returns metrics (means over frames), wall seconds, iterations, the reason
    it stopped, and the peak resident memory of the process in MiB.
    """
    import resource

    import torch

    from ..api import reconstruct, resolve_config
    from ..io import load_recording
    from ..evaluation.metrics import evaluate_volumes

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
    try:
        conn.send(("ok", run_one(*a)))
    except BaseException as exc:  # reported in the table, the benchmark goes on
        conn.send(("error", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"))
    finally:
        conn.close()


def _run_isolated(*a) -> dict[str, Any]:
    import multiprocessing as mp

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
    from ..io import atomic_path

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
                  "", f"{CASES[case][0]}." + (
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
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import atomic_path

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


def cmd_benchmark(args: argparse.Namespace) -> int:
    """Run the benchmark grid and write its tables and plot."""
    import torch

    from ..io import atomic_path, save_recording

    methods = _check(args)
    from ..io.files import Output, check_inputs
    out = Path(args.out)
    if args.config:
        check_inputs([(args.config, "--config")])
    claim_outputs(args, [Output(out, "--out", folder=True, replace=True),
                         Output(out / "recordings", "--out", folder=True, replace=True)]
                  + [Output(out / n, "--out") for n in ("benchmark.json", "benchmark.md",
                                                          "quality_vs_time.png")]
                  + [Output(out / "recordings" / f"{c}_{v}views.h5", "--out")
                     for c in args.cases for v in args.views], [args.config], force=args.force)
    overrides: dict[str, Any] = {}
    if args.config:
        overrides = read_config_overrides(args.config)
        from ..api import resolve_config
        try:
            resolve_config("default", overrides)
        except ValueError as exc:
            raise UsageError(f"{args.config}: --config: {exc}") from None
    (out / "recordings").mkdir(parents=True, exist_ok=True)
    threads = args.threads or torch.get_num_threads()
    summary: dict[str, Any] = {
        "machine": f"{platform.machine()}, {threads} torch thread(s), torch {torch.__version__}",
        "size": args.size, "frames": args.frames, "noise": args.noise, "seed": args.seed,
        "time_budgets_s": args.time_budget, "methods": methods, "cases": args.cases,
        "views": args.views, "config_overrides": overrides, "rows": []}
    n_runs = len(args.cases) * len(args.views) * len(methods) * len(args.time_budget)
    done = 0
    for case in args.cases:
        for views in args.views:
            rec_path = out / "recordings" / f"{case}_{views}views.h5"
            save_recording(simulate_case(case, views, args.size, args.frames, args.noise, args.seed),
                           rec_path)
            for method in methods:
                for budget in args.time_budget:
                    done += 1
                    print(f"[{done}/{n_runs}] {case}, {views} views, {method}, {budget:g} s ...",
                          flush=True)
                    row = {"case": case, "views": views, "method": method, "budget_s": budget,
                           **_run_isolated(str(rec_path), method, budget, args.seed, args.threads,
                                           case_overrides(case, overrides))}
                    summary["rows"].append(row)
                    if "error" in row:
                        print(f"    failed: {row['error']}", flush=True)
                    else:
                        print(f"    PSNR {row['psnr']:.2f} dB, IoU {row['iou']:.3f}, "
                              f"{row['wall_s']:.1f} s, {row['peak_rss_mib']:.0f} MiB", flush=True)
    summary["comparisons"] = compare_to_conventional(summary["rows"])
    with atomic_path(out / "benchmark.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1, default=str))
    write_markdown(out / "benchmark.md", summary)
    plot_quality_vs_time(out / "quality_vs_time.png", summary["rows"])
    print(f"wrote {out / 'benchmark.md'}, {out / 'benchmark.json'}, {out / 'quality_vs_time.png'}")
    return 0
