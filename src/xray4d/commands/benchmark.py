"""The ``xray4d benchmark`` verb: methods x simulated cases x view counts, side by side.

Each case is simulated once per view count (with ground truth) and written to
``OUT/recordings/``; each (case, views, method, budget) run happens in a fresh
child process, so that its peak memory is its own, and is scored against the
truth. Results go to ``OUT/benchmark.json`` and ``OUT/benchmark.md``, and
``OUT/quality_vs_time.png`` plots PSNR over wall time per method. Under each
table a line names the best conventional method of that case, view count and
budget and every other method's PSNR margin over it (``comparisons`` in the JSON).
The cases are :mod:`xray4d.evaluation.cases`, the runs :mod:`xray4d.evaluation.benchmark`.
A run that fails is a row of the tables; when any failed the exit status is 1, with
one line on stderr counting them.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from ..cli import (FRAMES_MAX, NOISE, SEED, SIZE_MAX, THREADS, TIME_BUDGET_S, UsageError, int_range,
                   claim_outputs, list_of, read_config_overrides, with_range)
from ..evaluation.cases import CASES, VIEW_ANGLES, case_names, case_width, expand_cases
from ..reconstruct.registry import (available_methods, get_method, needs_extra,
                                   unavailable_reason)
from ..resources import check_fits, estimate_simulation

#: order of the methods in the tables when --methods is not given (others follow by name)
DEFAULT_ORDER = ("hexplane", "static", "perframe", "sirt", "cgls", "fbp")


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
                    "benchmark.json, quality_vs_time.png and psnr_per_scene.png to OUT.")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--cases", type=lambda s: _csv(str, s), default=list(CASES),
                   help=f"comma-separated cases or scenes (default: {', '.join(CASES)}; "
                        "'all': every scene of the library, see xray4d simulate --list)")
    views = list_of(int_range(1, max(VIEW_ANGLES)))
    p.add_argument("--views", type=views, default=[2, 4],
                   help=with_range("view counts (default 2,4)", views))
    p.add_argument("--methods", type=lambda s: _csv(str, s), default=None,
                   help="comma-separated methods (default all registered except those that need "
                        "an optional extra, astra-fbp and astra-sirt, and onix, which is trained "
                        "on other recordings: these run only when named)")
    budgets = list_of(TIME_BUDGET_S, max_items=100)
    size, frames = int_range(8, SIZE_MAX), int_range(2, FRAMES_MAX)
    p.add_argument("--time-budget", type=budgets, default=[120.0], metavar="S[,S...]",
                   help=with_range("wall-time budget(s) per run in seconds (default 120); several "
                                   "give a quality-over-time curve; conventional methods stop "
                                   "earlier when done", budgets))
    p.add_argument("--size", type=size, default=64, help=with_range("voxels per side (default 64)", size))
    p.add_argument("--frames", type=frames, default=40, help=with_range("frames (default 40)", frames))
    p.add_argument("--noise", type=NOISE, default=0.01,
                   help=with_range("noise, fraction of the max (default 0.01)", NOISE))
    p.add_argument("--seed", type=SEED, default=0,
                   help=with_range("seed of noise and training (default 0)", SEED))
    p.add_argument("--threads", type=THREADS, default=None,
                   help=with_range("torch threads per run (default torch's)", THREADS))
    p.add_argument("--config", metavar="YAML", help="YAML file of config overrides for every run")
    p.add_argument("--force", action="store_true", help="overwrite results already in OUT")
    p.set_defaults(func=cmd_benchmark)


def _check(args: argparse.Namespace) -> list[str]:
    known = available_methods()
    # the ASTRA cross-checks duplicate fbp / sirt (measured within 1e-5 of them) and would make
    # the default table depend on which extras are installed: they run only when named
    # 4D-ONIX is trained on other recordings than it is applied to (benchmarks/bench_onix.py):
    # fitted to each case alone it runs only when named too
    default = [m for m in known if not needs_extra(m)
               and not get_method(m).trains_across_recordings]
    methods = args.methods or sorted(default, key=lambda m: (DEFAULT_ORDER.index(m)
                                                             if m in DEFAULT_ORDER else len(DEFAULT_ORDER), m))
    for m in methods:
        if m not in known:
            raise UsageError(f"--methods: unknown method {m!r}; available: {', '.join(known)}")
        missing = unavailable_reason(m)
        if missing:
            raise UsageError(f"--methods: {missing}")
    args.cases = expand_cases(args.cases)
    for c in args.cases:
        if c not in case_names():
            raise UsageError(f"--cases: unknown case {c!r}; available: all, "
                             f"{', '.join(case_names())}")
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
    width = max(case_width(c) for c in args.cases)     # a wide scene renders a wider grid
    check_fits(estimate_simulation(math.ceil(args.size * width), args.frames, max(args.views)))
    return list(dict.fromkeys(methods))


def cmd_benchmark(args: argparse.Namespace) -> int:
    """Run the benchmark grid and write its tables and plot."""
    # the reconstruction stack (xray4d.api) is imported when the verb runs, not when the
    # parser of every verb is built at start-up (it adds ~0.4 s to each command)
    from ..api import resolve_config
    from ..evaluation.benchmark import run_benchmark

    methods = _check(args)
    from ..io.checks import Output, check_inputs
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
        try:
            resolve_config("default", overrides)
        except ValueError as exc:
            raise UsageError(f"{args.config}: --config: {exc}") from None
    out = Path(args.out)
    summary = run_benchmark(out, cases=args.cases, views=args.views, methods=methods,
                  budgets_s=args.time_budget, size=args.size, frames=args.frames,
                  noise=args.noise, seed=args.seed, threads=args.threads, overrides=overrides)
    print(f"wrote {out / 'benchmark.md'}, {out / 'benchmark.json'}, {out / 'quality_vs_time.png'}, "
          f"{out / 'psnr_per_scene.png'}")
    failed = [r for r in summary["rows"] if "error" in r]
    if failed:     # the tables hold the runs that worked; the exit status says not all did
        f = failed[0]
        print(f"xray4d benchmark: {len(failed)} of {len(summary['rows'])} runs failed (first: "
              f"{f['case']}, {f['views']} views, {f['method']}, {f['budget_s']:g} s: "
              f"{f['error']})", file=sys.stderr)
        return 1
    return 0
