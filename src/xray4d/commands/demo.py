"""The ``xray4d demo`` verb: simulate, reconstruct, evaluate, report: the main job end to end."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import FRAMES_MAX, SIZE_MAX, TIME_BUDGET_S, UsageError, claim_outputs, int_range, with_range
from ..evaluation.cases import DEMO_SIMULATION
from ..io.checks import Output


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``xray4d demo``."""
    p = sub.add_parser("demo", help="simulate a droplet collision, reconstruct it, write a report",
                       description="Simulate the default droplet collision (64^3, 40 frames, views "
                                   "at 0 and 23.8 deg, 1%% noise), reconstruct it with X-Hexplane, "
                                   "evaluate against the truth and write report.md/report.html.")
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    size, frames = int_range(8, SIZE_MAX), int_range(2, FRAMES_MAX)
    p.add_argument("--time-budget", type=TIME_BUDGET_S, default=90.0,
                   help=with_range("seconds for the reconstruction (default 90)", TIME_BUDGET_S))
    p.add_argument("--size", type=size, default=DEMO_SIMULATION["size"],
                   help=with_range("voxels per side (default 64)", size))
    p.add_argument("--frames", type=frames, default=DEMO_SIMULATION["frames"],
                   help=with_range("frames (default 40)", frames))
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true", help="overwrite the results of an earlier demo in OUT")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo."""
    # the reconstruction stack (xray4d.api) is imported when the verb runs, not when the
    # parser of every verb is built at start-up (it adds ~0.4 s to each command)
    from ..evaluation.demo import DEMO_OUTPUTS, run_demo

    if args.time_budget <= 0:
        raise UsageError(f"--time-budget: must be positive, got {args.time_budget}")
    if args.size < 8 or args.frames < 2:
        raise UsageError("--size must be >= 8 and --frames >= 2")
    out = Path(args.out)
    claim_outputs(args, [Output(out, "--out", folder=True, replace=True)]
                  + [Output(out / name, "--out", folder="." not in name)
                     for name in (*DEMO_OUTPUTS, "reconstruction.h5.ckpt")], force=args.force)
    run_demo(out, size=args.size, frames=args.frames, time_budget_s=args.time_budget,
             progress=not args.quiet)
    return 0
