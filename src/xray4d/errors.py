"""Errors that the command line turns into one line on stderr (no traceback)."""
from __future__ import annotations

import os

__all__ = ["InputError", "DivergenceError", "ResourceError", "ValueBoundWarning"]


class InputError(Exception):
    """A file that breaks the data contract: one line, file + dataset + fault."""

    def __init__(self, path: str | os.PathLike, dataset: str, fault: str) -> None:
        self.path, self.dataset, self.fault = str(path), dataset, fault
        super().__init__(f"{self.path}: {dataset}: {fault}")


class DivergenceError(RuntimeError):
    """The training loss became NaN/Inf or exploded; the last good checkpoint is kept."""


class ResourceError(MemoryError):
    """A request that cannot fit in the available memory, refused before it allocates.

    The message is one line with the estimate and the available memory (exit status 2).
    """


class ValueBoundWarning(UserWarning):
    """The value bound may cap the reconstruction (much of the object sits at it) or rests on
    a shape guess; the command line prints it as one line."""
