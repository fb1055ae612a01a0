"""The ``xray4d evaluate`` verb: score a reconstruction against the ground truth.

    xray4d evaluate REC.h5 --truth RECORDING.h5 [--json OUT.json]

Reads ``/reconstruction/volume`` of REC.h5 and ``/ground_truth/volume`` of the
recording, prints mean and per-frame PSNR, SSIM, DSSIM, IoU and MSE
(:func:`xray4d.evaluation.score.evaluate_files`), and writes them as JSON when asked.
When both files also hold a second channel (``volume_beta``) it is scored too.
Any input fault is one line on stderr, exit status 2, and nothing written.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TextIO

import torch

from ..cli import UsageError
from ..evaluation.score import evaluate_files, format_table, write_json

__all__ = ["add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``evaluate`` on the CLI's subparsers."""
    s = sub.add_parser("evaluate", help="score a reconstruction against the ground truth",
                       description="Score a reconstruction against the ground truth of a simulated "
                                   "recording: PSNR, 3D SSIM, DSSIM, IoU and MSE per frame and mean.")
    s.add_argument("reconstruction", metavar="REC.h5", help="reconstruction file")
    s.add_argument("--truth", required=True, metavar="RECORDING.h5",
                   help="recording file holding /ground_truth/volume")
    s.add_argument("--json", metavar="OUT", default=None, help="also write the numbers as JSON")
    s.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    from ..cli import float_range, with_range

    # PSNR squares the range: beyond 1e30 it would leave float64
    data_range = float_range(0.0, 1e30, lo_open=True)
    threshold = float_range(-1e30, 1e30)
    s.add_argument("--data-range", type=data_range, default=None,
                   help=with_range("PSNR/SSIM data range (default: max - min of the whole truth "
                                   "movie)", data_range))
    s.add_argument("--threshold", type=threshold, default=None,
                   help=with_range("IoU threshold (default: half the maximum of the whole truth "
                                   "movie)", threshold))
    s.add_argument("--device", default=None,
                   help="torch device for the metrics (default: cuda if available, else cpu)")
    s.set_defaults(func=run)


def _check_declared_sizes(rec_path: str, truth_path: str) -> None:
    """Before loading anything: refuse a reconstruction whose declared shape differs from
    the truth's (InputError, as :func:`evaluate_files` says it), and files whose declared
    sizes cannot fit in memory together (ResourceError naming the larger file). Files
    that do not declare their sizes are left to the readers, which name the fault."""
    from ..errors import InputError, ResourceError
    from ..io import peek_recording, peek_volume
    from ..resources import check_fits, estimate_evaluation

    volume = peek_volume(rec_path, ("/reconstruction/volume",))
    recording = peek_recording(truth_path)
    truth = peek_volume(truth_path, ("/ground_truth/volume",))
    if volume is None or recording is None:
        return
    t, _, h, w = recording[0]
    # a truth that fits its recording but not the reconstruction: the reconstruction's fault
    # (a truth that does not fit its own recording is the reader's to name)
    if truth is not None and truth[0] == (t, h, w, w) and volume[0] != truth[0]:
        raise InputError(rec_path, "/reconstruction/volume",
                         f"shape {volume[0]} does not match truth {(t, h, w, w)} "
                         f"of {truth_path}:/ground_truth/volume")
    estimate = estimate_evaluation(volume[0], recording[0])
    try:
        check_fits(estimate)
    except ResourceError as exc:      # named: the file that declares the most
        parts = estimate.parts
        big = rec_path if parts["reconstruction"] >= parts["truth"] + parts["recording"] \
            else truth_path
        raise ResourceError(f"{big}: {exc}") from None


def run(args: argparse.Namespace, stream: TextIO | None = None) -> int:
    """Run the verb: evaluate, print the table, write JSON if asked. Returns 0."""
    stream = stream if stream is not None else sys.stdout
    if args.data_range is not None and not (math.isfinite(args.data_range) and args.data_range > 0):
        raise UsageError(f"--data-range: must be positive and finite, got {args.data_range}")
    if args.threshold is not None and not math.isfinite(args.threshold):
        raise UsageError(f"--threshold: must be finite, got {args.threshold}")
    if args.device is not None:
        try:
            dev = torch.device(args.device)
        except RuntimeError:
            raise UsageError(f"--device: unknown torch device {args.device!r}") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise UsageError(f"--device: {args.device} requested but CUDA is not available")
    from ..cli import claim_outputs
    from ..io.checks import Output, check_inputs
    check_inputs([(args.reconstruction, "/"), (args.truth, "/")])
    if args.json is not None:
        claim_outputs(args, [Output(Path(args.json), "--json")],
                      [args.reconstruction, args.truth], force=args.force)
    _check_declared_sizes(args.reconstruction, args.truth)
    result = evaluate_files(args.reconstruction, args.truth, data_range=args.data_range,
                            threshold=args.threshold, device=args.device)
    print(f"reconstruction: {args.reconstruction}" + (f" (method {result['method']})"
                                                       if result["method"] else ""), file=stream)
    quantity = (f" ({result['quantity']}, {result['units'] or 'units not stated'})"
                if result.get("quantity") else "")
    print(f"truth:          {args.truth}:/ground_truth/volume{quantity}", file=stream)
    for channel in ("volume", "volume_beta"):
        if channel in result:
            print(format_table(result, channel), file=stream)
    if args.json is not None:
        write_json(result, args.json)
        print(f"wrote {args.json}", file=stream)
    return 0
