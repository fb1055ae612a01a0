"""Errors that the command line turns into one line on stderr (no traceback)."""
from __future__ import annotations

import os

__all__ = ["InputError", "OutputError", "DivergenceError", "ResourceError", "ValueBoundWarning"]


class InputError(Exception):
    """A file that breaks the data contract: one line, file + dataset + fault."""

    def __init__(self, path: str | os.PathLike, dataset: str, fault: str) -> None:
        self.path, self.dataset, self.fault = str(path), dataset, fault
        super().__init__(f"{self.path}: {dataset}: {fault}")


class OutputError(Exception):
    """An output that cannot or must not be written: one line, file + option + fault.

    Raised before any work when an output is an input, exists without ``--force``, is
    locked by another run or cannot be created there; and when a write fails (a full
    disk), after which the earlier file is left as it was.
    """

    def __init__(self, path: str | os.PathLike, option: str, fault: str) -> None:
        self.path, self.option, self.fault = str(path), option, fault
        super().__init__(f"{self.path}: {option}: {fault}")


class DivergenceError(RuntimeError):
    """The training loss became NaN/Inf or exploded; the last good checkpoint is kept."""


class ResourceError(MemoryError):
    """A request that cannot fit in the available memory, refused before it allocates.

    The message is one line with the estimate and the available memory (exit status 2).
    """


class ValueBoundWarning(UserWarning):
    """The value bound may cap the reconstruction (much of the object sits at it) or rests on
    a shape guess; the command line prints it as one line."""


class TruncatedProjectionsWarning(UserWarning):
    """The object reaches the detector's edges (truncated projections) and the field of
    view is widened beyond the detector; the command line prints it as one line."""


class NegativeDataWarning(UserWarning):
    """The projections hold a large negative signal that a non-negative reconstruction
    cannot explain (an object of negative sign, or a wrong flat or reference); the command
    line prints it as one line."""
