"""Score a reconstruction file against the ground truth of a recording file.

:func:`evaluate_files` loads both and computes PSNR, SSIM, DSSIM, IoU and MSE per
frame and their means (:func:`xray4d.evaluation.metrics.evaluate_volumes`), for
the second channel (``volume_beta``) too when both files hold one;
:func:`format_table` renders one channel as text and :func:`write_json` writes
the result (non-finite numbers as null). Used by ``xray4d evaluate`` and the demo.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..io import atomic_path, load_reconstruction, load_recording
from .metrics import evaluate_volumes

__all__ = ["evaluate_files", "format_table", "write_json"]


def evaluate_files(rec_path: str | Path, truth_path: str | Path, *,
                   data_range: float | None = None, threshold: float | None = None,
                   device: str | None = None) -> dict[str, Any]:
    """Load a reconstruction and a recording with ground truth, and score the first.

    Args:
        rec_path: reconstruction file (``/reconstruction/volume``).
        truth_path: recording file with ``/ground_truth/volume``.
        data_range, threshold: passed to :func:`xray4d.evaluation.metrics.evaluate_volumes`.
        device: torch device (default: cuda if available, else cpu).

    Returns:
        ``{"reconstruction", "truth", "method", "quantity", "units", "time", "data_range_given",
        "threshold_given", "volume": metrics dict}`` (the dict of
        :func:`~xray4d.evaluation.metrics.evaluate_volumes`), plus ``"volume_beta"`` when both
        files hold a second channel.

    Raises:
        xray4d.errors.InputError: a malformed file, no truth in the recording, a
            reconstruction whose shape differs from the truth's, or a constant
            truth without ``data_range``.
    """
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
    text = json.dumps(_json_safe(result), indent=2, allow_nan=False) + "\n"
    with atomic_path(out) as tmp:
        tmp.write_text(text)
