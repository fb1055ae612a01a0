"""Mixed precision of the field's rendering (``train.precision``).

Only the rendering of the field runs under ``torch.autocast`` (its matrix products and
activation, :mod:`xray4d.fields.pair_frames`); the rendered frames are brought back to
float32 before the projector, the loss terms and the optimiser see them. The projector
accumulates its line integrals in float32, and so do the data term's sum and the
regularisers. float16 (CUDA only) scales the loss against underflow of the gradients
(:class:`torch.amp.GradScaler`); bfloat16 has float32's range and needs no scaling.
"""
from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

__all__ = ["render_precision", "grad_scaler", "DTYPES"]

#: ``train.precision`` -> the rendering's dtype
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def render_precision(precision: str, device: torch.device) -> ContextManager:
    """The context the field is rendered in: autocast to ``precision`` on ``device``, or
    nothing for float32."""
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[precision])


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A loss scaler for float16 (None otherwise)."""
    return torch.amp.GradScaler(device.type) if precision == "float16" else None
