"""Errors that the command line turns into one line on stderr (no traceback)."""
from __future__ import annotations

__all__ = ["DivergenceError"]


class DivergenceError(RuntimeError):
    """The training loss became NaN/Inf or exploded; the last good checkpoint is kept."""
