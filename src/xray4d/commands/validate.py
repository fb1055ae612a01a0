"""The ``xray4d validate`` verb: how far a reconstruction can be trusted, without ground truth.

    xray4d validate RECORDING.h5 --out DIR [--method M --preset P --time-budget S
        --iterations N --seed S --seeds N --holdout 0.1 --block 4 ...] [--force]

Fits the recording several times (:func:`xray4d.evaluation.validation.run_validation`:
held-out pixels, half-data reconstructions, an ensemble over seeds, leave-one-view-out
with three or more views) and writes DIR/validation.json, DIR/report.html, the
reconstructions (DIR/reconstruction.h5 and the others) and DIR/uncertainty.h5. The time
budget and the iterations are per fit. Nothing is written before every fit is done.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from ..cli import (ITERATIONS, SEED, TIME_BUDGET_S, UsageError, check_output, float_range,
                   int_range, with_range)
from .reconstruct import LATERAL_MARGIN, VALUE_MAX, add_precision_argument

__all__ = ["add_parser", "run"]

#: most fits of the ensemble over seeds
MAX_SEEDS = 16


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``validate`` on the CLI's subparsers."""
    p = sub.add_parser(
        "validate", help="judge a reconstruction without ground truth",
        description="Fit the recording several times and judge the result from the data "
                    "alone: error on held-out detector pixels against the noise level, "
                    "Fourier shell correlation of two half-data reconstructions, a per-voxel "
                    "uncertainty over an ensemble of fits, leave-one-view-out with three or "
                    "more views, and warnings. Writes DIR/validation.json, DIR/report.html, "
                    "the reconstructions and DIR/uncertainty.h5. --time-budget and "
                    "--iterations are per fit.")
    p.add_argument("recording", metavar="RECORDING.h5")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write into")
    p.add_argument("--method", default=None,
                   help="a method that trains a field (default: the preset's, hexplane)")
    p.add_argument("--preset", default="default", choices=("fast", "default", "quality", "ct"))
    p.add_argument("--config", metavar="YAML", help="YAML file of config overrides")
    seeds, holdout, block = int_range(1, 64), float_range(0.0, 0.5, lo_open=True), int_range(1, 1024)
    p.add_argument("--time-budget", type=TIME_BUDGET_S, metavar="SECONDS",
                   help=with_range("wall time of each fit", TIME_BUDGET_S))
    p.add_argument("--iterations", type=ITERATIONS, metavar="N",
                   help=with_range("iterations of each fit", ITERATIONS))
    p.add_argument("--seed", type=SEED,
                   help=with_range("seed of the main fit (default 0); the others follow", SEED))
    p.add_argument("--seeds", type=seeds, default=2, metavar="N",
                   help=with_range("fits with seeds SEED .. SEED+N-1 on the held-in pixels "
                                   "(default 2); with the two half-data fits they form the "
                                   "ensemble", seeds))
    p.add_argument("--holdout", type=holdout, metavar="SHARE",
                   help=with_range("share of each view's detector pixels held out (default 0.1)",
                                   holdout))
    p.add_argument("--block", type=block, metavar="PIXELS",
                   help=with_range("side of the held-out square blocks (default 4)", block))
    p.add_argument("--no-leave-view-out", action="store_true",
                   help="skip the fits that leave each view out (three or more views)")
    p.add_argument("--stop", choices=("fixed", "auto"),
                   help="how each fit ends (see xray4d reconstruct --stop)")
    p.add_argument("--device", choices=("cpu", "cuda"), help="where to compute (default cpu)")
    add_precision_argument(p)
    p.add_argument("--value-max", type=VALUE_MAX, metavar="V",
                   help=with_range("known largest value of the object (e.g. the liquid's); "
                                   "default: estimated", VALUE_MAX))
    p.add_argument("--lateral-margin", type=LATERAL_MARGIN, metavar="M",
                   help=with_range("field of view widened by M times the detector's width on "
                                   "each side (as xray4d reconstruct --lateral-margin)",
                                   LATERAL_MARGIN))
    p.add_argument("--intensity", choices=("model", "paganin", "log"),
                   help="intensity recordings: as xray4d reconstruct --intensity")
    p.add_argument("--material", metavar="FORMULA", help="intensity recordings: the material")
    p.add_argument("--beta", choices=("material", "fitted"),
                   help="intensity recordings: as xray4d reconstruct --beta")
    p.add_argument("--force", action="store_true", help="replace the files of an earlier validation in DIR")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def _check_options(args: argparse.Namespace) -> dict:
    """The validation section's overrides; UsageError naming the flag when out of range."""
    if not 1 <= args.seeds <= MAX_SEEDS:
        raise UsageError(f"--seeds: must be an integer in 1..{MAX_SEEDS}, got {args.seeds}")
    section: dict = {}
    if args.holdout is not None:
        if not (math.isfinite(args.holdout) and 0 < args.holdout <= 0.5):
            raise UsageError(f"--holdout: must be in (0, 0.5], got {args.holdout}")
        section["holdout"] = args.holdout
    if args.block is not None:
        if args.block < 1:
            raise UsageError(f"--block: must be a positive number of pixels, got {args.block}")
        section["block_px"] = args.block
    return section


def _check_out(args: argparse.Namespace, views: int) -> None:
    """Refuse a DIR that is a file, holds the input among the files to write, or holds an
    earlier validation (without --force)."""
    from ..evaluation.validation import OUTPUT_FILES

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out}: --out: exists and is not a folder")
    names = ["reconstruction.h5", "half_a.h5", "half_b.h5", *OUTPUT_FILES]
    names += [f"seed_{i}.h5" for i in range(MAX_SEEDS * 2)]
    names += [f"leave_view_{v}.h5" for v in range(views)]
    for name in names:
        check_output(out / name, [args.recording], force=True, option="--out")
    if (out / "validation.json").exists() and not args.force:
        raise UsageError(f"{out}: --out: holds an earlier validation (use --force to replace it)")


def run(args: argparse.Namespace) -> int:
    """Run the verb: validate, write DIR, print the numbers and the warnings."""
    from ..evaluation.validation import validate_file
    from ..io import peek_recording
    from ..reconstruct.registry import available_methods, get_method
    from .reconstruct import build_config

    section = _check_options(args)
    cfg = build_config(args)      # the reconstruct options, read by name
    if section:
        try:
            cfg = cfg.updated({"validation": section})
        except ValueError as exc:
            raise UsageError(f"config: {exc}") from None
    if cfg.method not in available_methods():
        raise UsageError(f"--method: unknown method {cfg.method!r}; available: "
                         f"{', '.join(available_methods())}")
    if not get_method(cfg.method).fits_field:
        raise UsageError(f"--method: validation holds detector pixels out of the fit, which "
                         f"needs a method that trains a field (e.g. hexplane), not {cfg.method!r}")
    declared = peek_recording(args.recording)
    _check_out(args, declared[0][1] if declared else 4)
    t0 = time.perf_counter()
    say = None if args.quiet else (lambda line: print(line, flush=True))
    r = validate_file(args.recording, args.out, cfg, seeds=args.seeds,
                      leave_view_out=not args.no_leave_view_out, log=say)
    s = r.summary
    print(f"held-out relative error {_fmt(s['heldout_relative_error'], '.4g')} "
          f"({_fmt(s['heldout_noise_ratio'])} x the noise level); FSC resolution "
          f"{s['fsc_resolution_voxels']:.2f} voxels; uncertainty (mean std) "
          f"{s['uncertainty_mean']:.3g}; {len(s['fits'])} fits, {time.perf_counter() - t0:.1f} s")
    for w in s["warnings"]:
        print(f"warning: {w}")
    print(f"wrote {Path(args.out) / 'validation.json'} and {Path(args.out) / 'report.html'}")
    return 0


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)
