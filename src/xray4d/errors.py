"""Errors that the command line turns into one line on stderr (no traceback)."""
from __future__ import annotations

__all__ = ["DivergenceError", "ResourceError"]


class DivergenceError(RuntimeError):
    """The training loss became NaN/Inf or exploded; the last good checkpoint is kept."""


class ResourceError(MemoryError):
    """A request that cannot fit in the available memory, refused before it allocates.

    The message is one line with the estimate and the available memory (exit status 2).
    """
