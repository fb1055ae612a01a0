"""Checkpoints of a training run: tensors and plain metadata only, checked before use.

A checkpoint is written with :func:`torch.save` and read back with
``torch.load(weights_only=True)``, which restores tensors, numbers, strings, lists and
dicts and refuses anything else: no code in a checkpoint ever runs (a crafted pickle is
refused in one line). On resume the checkpoint must carry this format's tag, the
fingerprint of the run it continues (the recording's data, angles, times and quantity,
and every config value that shapes the fit) and values in range (iteration, elapsed
time, stage, batch order, loss history); anything else is refused in one line naming
the checkpoint and the fault (:class:`~xray4d.errors.InputError`).
"""
from __future__ import annotations

import hashlib
import math
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import Recording
from ..errors import InputError, OutputError
from ..io.files import atomic_path

__all__ = ["CHECKPOINT_FORMAT", "run_fingerprint", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_FORMAT = "xray4d-checkpoint-2"

#: config values that may change between a run and its resume: where and in which precision
#: it renders and how often it checkpoints, and how long it goes on (a resumed run may be
#: given more time; the presets differ only in that)
_RESUMABLE_CHANGES = {("train", "device"), ("train", "precision"), ("train", "checkpoint_every_s"),
                      ("train", "render_chunk"), ("train", "iterations"),
                      ("train", "time_budget_s"), ("conventional", "iterations"), ("preset",)}


def run_fingerprint(recording: Recording, config: dict[str, Any]) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: a digest of the recording's data and
    geometry, and the config without the values a resume may change.

    Args:
        recording: the data being fitted (after any preprocessing).
        config: the run's config as a plain dict.
    """
    h = hashlib.sha256()
    for arr in (recording.projections, recording.geometry.angles_deg, recording.time):
        a = np.ascontiguousarray(arr)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    h.update(recording.quantity.encode())
    shaping = {section: ({k: v for k, v in values.items()
                          if (section, k) not in _RESUMABLE_CHANGES}
                         if isinstance(values, dict) else values)
               for section, values in config.items() if (section,) not in _RESUMABLE_CHANGES}
    return {"recording_sha256": h.hexdigest(), "config": shaping}


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write ``state`` (tensors and plain values) atomically to ``path``."""
    try:
        with atomic_path(path) as tmp:
            torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)
    except RuntimeError as exc:     # torch.save's own write errors, e.g. a full disk
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else "write failed"
        raise OutputError(path, "checkpoint", f"cannot be written ({reason})") from None


def _first_difference(a: Any, b: Any, where: str = "config") -> str | None:
    """The dotted path of the first value that differs between two plain trees."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{where}.{key}"
            diff = _first_difference(a[key], b[key], f"{where}.{key}")
            if diff:
                return diff
        return None
    return None if a == b else where


def _require(ok: bool, path: Path, fault: str) -> None:
    if not ok:
        raise InputError(path, "checkpoint", fault)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_ranges(state: dict[str, Any], path: Path, frames: int, stages: int,
                  iterations: int | None) -> None:
    """Refuse values a run of this recording and config cannot have written."""
    it, elapsed = state.get("iteration"), state.get("elapsed")
    _require(_is_int(it) and 0 <= it, path, f"iteration {it!r} is not a count of steps")
    _require(iterations is None or it <= iterations, path,
             f"iteration {it} is beyond the run's {iterations} iterations")
    _require(isinstance(elapsed, float) and math.isfinite(elapsed) and elapsed >= 0, path,
             f"elapsed time {elapsed!r} is not a finite number of seconds >= 0")
    _require(_is_int(state.get("stage")) and 0 <= state["stage"] < stages, path,
             f"stage {state.get('stage')!r} is not one of the run's {stages} stages")
    order, cursor = state.get("order"), state.get("cursor")
    _require(isinstance(order, torch.Tensor) and order.dtype == torch.int64
             and order.shape == (frames,)
             and bool(torch.equal(order.sort().values, torch.arange(frames))), path,
             f"the batch order is not an ordering of the recording's {frames} frames")
    _require(_is_int(cursor) and 0 <= cursor <= frames, path,
             f"batch cursor {cursor!r} is outside 0..{frames}")
    losses, times = state.get("losses"), state.get("loss_times")
    _require(isinstance(losses, list) and isinstance(times, list) and len(losses) == it
             and len(times) == it, path,
             f"the loss history does not hold one value per iteration ({it})")
    _require(all(isinstance(v, float) and math.isfinite(v) for v in losses), path,
             "the loss history holds values that are not finite numbers")


def load_checkpoint(path: str | os.PathLike, *, fingerprint: dict[str, Any], frames: int,
                    stages: int, iterations: int | None, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely and check it belongs to this run.

    Args:
        path: the checkpoint file.
        fingerprint: :func:`run_fingerprint` of the run that resumes.
        frames, stages: the recording's frames and the schedule's stages.
        iterations: the run's iteration limit (None: none).
        device: where its tensors go.

    Raises:
        InputError: one line naming the checkpoint and what is wrong with it.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError,
            ValueError, TypeError, KeyError, AttributeError, IndexError, UnicodeDecodeError,
            MemoryError, OverflowError) as exc:
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise InputError(path, "checkpoint", f"not a readable xray4d checkpoint ({reason}); "
                         "remove it to start afresh") from None
    _require(isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT, path,
             f"not an xray4d checkpoint of format {CHECKPOINT_FORMAT}; remove it to start afresh")
    saved = state.get("fingerprint")
    _require(isinstance(saved, dict), path, "no fingerprint of the run it belongs to")
    _require(saved.get("recording_sha256") == fingerprint["recording_sha256"], path,
             "was written for another recording (its data, angles or times differ); remove "
             "it or run without --resume")
    diff = _first_difference(saved.get("config"), fingerprint["config"])
    _require(diff is None, path, f"was written with another configuration ({diff} differs); "
             "run with the same settings or without --resume")
    _check_ranges(state, path, frames, stages, iterations)
    return state
