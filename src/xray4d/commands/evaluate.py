"""The ``xray4d evaluate`` verb: score a reconstruction against the ground truth.

    xray4d evaluate REC.h5 --truth RECORDING.h5 [--json OUT.json]

Reads ``/reconstruction/volume`` of REC.h5 and ``/ground_truth/volume`` of the
recording, prints mean and per-frame PSNR, SSIM, DSSIM, IoU and MSE
(:func:`xray4d.metrics.evaluate_volumes`), and writes them as JSON when asked.
When both files also hold a second channel (``volume_beta``) it is scored too.
Any input fault is one line on stderr, exit status 2, and nothing written.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np

__all__ = ["add_parser", "run", "evaluate_files", "format_table", "write_json"]


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
    s.add_argument("--data-range", type=float, default=None,
                   help="PSNR/SSIM data range (default: max - min of the whole truth movie)")
    s.add_argument("--threshold", type=float, default=None,
                   help="IoU threshold (default: half the maximum of the whole truth movie)")
    s.add_argument("--device", default=None,
                   help="torch device for the metrics (default: cuda if available, else cpu)")
    s.set_defaults(func=run)


def evaluate_files(rec_path: str | Path, truth_path: str | Path, *,
                   data_range: float | None = None, threshold: float | None = None,
                   device: str | None = None) -> dict[str, Any]:
    """Load a reconstruction and a recording with ground truth, and score the first.

    Args:
        rec_path: reconstruction file (``/reconstruction/volume``).
        truth_path: recording file with ``/ground_truth/volume``.
        data_range, threshold: passed to :func:`xray4d.metrics.evaluate_volumes`.
        device: torch device (default: cuda if available, else cpu).

    Returns:
        ``{"reconstruction", "truth", "method", "quantity", "units", "time", "data_range_given",
        "threshold_given", "volume": metrics dict}`` (the dict of
        :func:`~xray4d.metrics.evaluate_volumes`), plus ``"volume_beta"`` when both
        files hold a second channel.

    Raises:
        xray4d.io.InputError: a malformed file, no truth in the recording, a
            reconstruction whose shape differs from the truth's, or a constant
            truth without ``data_range``.
    """
    import torch

    from ..io import InputError, load_reconstruction, load_recording
    from ..evaluation.metrics import evaluate_volumes

    rec = load_reconstruction(rec_path)
    recording = load_recording(truth_path)
    if recording.truth is None:
        raise InputError(truth_path, "/ground_truth/volume",
                         "missing: the recording has no ground truth to evaluate against")
    if rec.volume.shape != recording.truth.shape:
        raise InputError(rec_path, "/reconstruction/volume",
                         f"shape {rec.volume.shape} does not match truth {recording.truth.shape} "
                         f"of {truth_path}:/ground_truth/volume")
    dev = torch.device(device if device is not None else
                       ("cuda" if torch.cuda.is_available() else "cpu"))

    def score(vol: np.ndarray, truth: np.ndarray, name: str) -> dict[str, Any]:
        try:
            return evaluate_volumes(vol, truth, data_range=data_range, threshold=threshold,
                                    device=dev)
        except ValueError as exc:
            raise InputError(truth_path, name, str(exc)) from None

    out: dict[str, Any] = {
        "reconstruction": str(rec_path),
        "truth": str(truth_path),
        "method": rec.method,
        # what the volume holds, e.g. delta (dimensionless) for intensity data; None: not stated
        "quantity": rec.attrs.get("quantity"),
        "units": rec.attrs.get("units"),
        "time": [float(t) for t in rec.time],
        "data_range_given": data_range is not None,
        "threshold_given": threshold is not None,
        "volume": score(rec.volume, recording.truth, "/ground_truth/volume"),
    }
    if rec.volume_beta is not None and recording.truth_beta is not None:
        out["volume_beta"] = score(rec.volume_beta, recording.truth_beta, "/ground_truth/volume_beta")
    return out


def _fmt(x: float, spec: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return format(x, spec)


_COLS = (("psnr", "PSNR dB", ".2f"), ("ssim", "SSIM", ".4f"), ("dssim", "DSSIM", ".4f"),
         ("iou", "IoU", ".4f"), ("mse", "MSE", ".3e"))


def format_table(result: dict[str, Any], channel: str = "volume") -> str:
    """A readable table of one channel of :func:`evaluate_files`: header, mean, per frame."""
    m = result[channel]
    t, z, y, x = m["shape"]
    win = m["ssim_win_size"]
    src = {True: "given", False: "whole truth movie"}
    lines = [
        f"{channel}: {t} frames of {z} x {y} x {x} (z, y, x); "
        f"data range {m['data_range']:.6g} ({src[bool(result.get('data_range_given'))]}); "
        f"IoU threshold {m['iou_threshold']:.6g} ({src[bool(result.get('threshold_given'))]}); "
        f"SSIM window {win if win else 'n/a (volume too small)'}",
        f"{'frame':>6} {'time':>10}" + "".join(f" {h:>10}" for _, h, _ in _COLS),
        f"{'mean':>6} {'':>10}" + "".join(f" {_fmt(m['mean'][k], s):>10}" for k, _, s in _COLS),
    ]
    times = result.get("time") or list(range(t))
    for i in range(t):
        lines.append(f"{i:>6} {times[i]:>10.4g}"
                     + "".join(f" {_fmt(m['per_frame'][k][i], s):>10}" for k, _, s in _COLS))
    return "\n".join(lines)


def _json_safe(obj: Any) -> Any:
    """Replace non-finite floats by None (JSON has no inf/nan; PSNR is inf for an exact frame)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def write_json(result: dict[str, Any], out: str | Path) -> None:
    """Write ``result`` to ``out`` atomically; non-finite numbers (inf PSNR) become null."""
    from ..io import atomic_path

    text = json.dumps(_json_safe(result), indent=2, allow_nan=False) + "\n"
    with atomic_path(out) as tmp:
        tmp.write_text(text)


def run(args: argparse.Namespace, stream: TextIO | None = None) -> int:
    """Run the verb: evaluate, print the table, write JSON if asked. Returns 0."""
    import torch

    from ..cli import UsageError

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
    from ..io.files import Output, check_inputs
    check_inputs([(args.reconstruction, "/"), (args.truth, "/")])
    if args.json is not None:
        claim_outputs(args, [Output(Path(args.json), "--json")],
                      [args.reconstruction, args.truth], force=args.force)
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
