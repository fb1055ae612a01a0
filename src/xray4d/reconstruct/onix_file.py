"""Saved 4D-ONIX models: tensors and plain values only, checked before use.

A model file is written with :func:`torch.save` (to a temporary file renamed when
complete) and read back with ``torch.load(weights_only=True)``, which restores tensors,
numbers, strings, lists and dicts and refuses anything else: no code in a model file ever
runs. It holds this format's tag, the network's architecture (integers in the ranges of
:data:`~xray4d.fields.onix.ARCHITECTURE_LIMITS`), its weights (finite tensors of the
shapes that architecture builds, nothing more or less) and a description of the training
(recordings, iterations, angles: plain values). Anything else is refused in one line
naming the file and the fault (:class:`~xray4d.errors.InputError`).
"""
from __future__ import annotations

import math
import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError, OutputError
from ..fields.onix import ARCHITECTURE_LIMITS, OnixNetwork
from ..io.files import atomic_path

__all__ = ["MODEL_FORMAT", "save_onix_model", "load_onix_model"]

MODEL_FORMAT = "xray4d-onix-model-1"

#: plain types a model's description may hold
_PLAIN = (str, int, float, bool, type(None))


def save_onix_model(path: str | os.PathLike, network: OnixNetwork,
                    description: dict[str, Any]) -> None:
    """Write ``network`` (its architecture and weights, on the CPU) and a plain
    ``description`` of its training atomically to ``path``."""
    state = {"format": MODEL_FORMAT, "architecture": network.architecture(),
             "weights": {k: v.detach().cpu() for k, v in network.state_dict().items()},
             "description": description}
    try:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    except RuntimeError as exc:     # torch.save's own write errors, e.g. a full disk
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else "write failed"
        raise OutputError(path, "--save-model", f"cannot be written ({reason})") from None


def _plain(value: Any, depth: int = 0) -> bool:
    """Whether ``value`` is a tree of plain values (dicts with string keys, lists)."""
    if depth > 8:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v, depth + 1) for v in value)
    return isinstance(value, _PLAIN)


def _require(ok: bool, path: Path, fault: str) -> None:
    if not ok:
        raise InputError(path, "model", fault)


def _check_architecture(arch: Any, path: Path) -> dict[str, int]:
    _require(isinstance(arch, dict) and set(arch) == set(ARCHITECTURE_LIMITS), path,
             f"the architecture must state exactly {', '.join(ARCHITECTURE_LIMITS)}")
    for key, (low, high) in ARCHITECTURE_LIMITS.items():
        v = arch[key]
        _require(isinstance(v, int) and not isinstance(v, bool) and low <= v <= high, path,
                 f"architecture {key} {v!r} is not an integer in {low}..{high}")
    return arch


def load_onix_model(path: str | os.PathLike, device: torch.device | str = "cpu"
                    ) -> tuple[OnixNetwork, dict[str, Any]]:
    """Read a model file safely: the network (in eval mode, on ``device``) and its
    description.

    Raises:
        InputError: one line naming the file and what is wrong with it.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():   # torch's remarks on a foreign pickle: refused below
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError,
            ValueError, TypeError, KeyError, AttributeError, IndexError, UnicodeDecodeError,
            MemoryError, OverflowError) as exc:
        reason = ("it holds more than tensors and plain values, or is no torch file"
                  if isinstance(exc, pickle.UnpicklingError) else
                  str(exc).strip().splitlines()[0][:120] if str(exc).strip()
                  else type(exc).__name__)
        raise InputError(path, "model", f"not a readable xray4d model ({reason})") from None
    _require(isinstance(state, dict) and state.get("format") == MODEL_FORMAT, path,
             f"not an xray4d model of format {MODEL_FORMAT}")
    arch = _check_architecture(state.get("architecture"), path)
    description = state.get("description")
    _require(_plain(description) and isinstance(description, dict), path,
             "the description is not a dict of plain values")
    weights = state.get("weights")
    _require(isinstance(weights, dict) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) and v.is_floating_point()
        for k, v in weights.items()), path, "the weights are not named floating-point tensors")
    _require(all(bool(torch.isfinite(v).all()) for v in weights.values()), path,
             "the weights hold values that are not finite")
    for key in ("value_bound", "input_scale"):
        v = weights.get(key)
        _require(isinstance(v, torch.Tensor) and v.numel() == 1 and math.isfinite(float(v))
                 and 0 < float(v) < 1e30, path, f"{key} is missing or not a positive number")
    network = OnixNetwork(**arch)
    expected = network.state_dict()
    _require(set(weights) == set(expected), path,
             "its weights do not match its architecture (names differ)")
    for k, v in weights.items():
        _require(v.shape == expected[k].shape, path,
                 f"weight {k} has shape {tuple(v.shape)}, the architecture needs "
                 f"{tuple(expected[k].shape)}")
    network.load_state_dict({k: v.to(expected[k].dtype) for k, v in weights.items()})
    return network.to(device).eval(), description
