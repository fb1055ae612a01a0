"""Held-out detector pixels: masks in blocks, their error, and the automatic stop of training.

A fit that never saw some detector pixels can be judged without ground truth by how well
it predicts them. Pixels are held out in square blocks (:func:`block_mask`; single pixels
would be predicted from their fitted neighbours by the field's smoothness alone), the
same blocks in every frame (the field is shared over time, so a block held out in one
frame only would be seen, nearly unchanged, in the next). :func:`block_halves` splits the
fitted pixels into two disjoint halves for half-data reconstructions.

:class:`HeldOutStop` is a :class:`~xray4d.reconstruct.trainer.StopCriterion`: every
``every`` steps it evaluates the error of the averaged weights on the held-out pixels,
keeps the best weights, and ends the run once the error has not improved for
``patience`` evaluations after the last coarse-to-fine refinement
(``validation.stop: auto``; :func:`auto_stop_masks` carves its pixels out of the fitted
ones).
"""
from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    from ..config import ValidationConfig
    from ..fields.base import Field
    from .trainer import Trainer

__all__ = ["block_mask", "block_halves", "auto_stop_masks", "HeldOutStop"]


def _block_grid(height: int, width: int, block: int) -> tuple[int, int]:
    return -(-height // block), -(-width // block)


def block_mask(shape: tuple[int, int, int, int], share: float, block: int = 4,
               seed: int = 0) -> np.ndarray:
    """Detector pixels held out: a random share of square blocks of each view.

    Args:
        shape: (T, V, H, W) of the projections.
        share: fraction of each view's blocks held out, in (0, 1).
        block: side of a block, pixels (blocks at the detector's edge may be cut).
        seed: seed of the choice (``numpy.random.default_rng``).

    Returns:
        (T, V, H, W) bool, True where held out: in every view ``round(share * blocks)``
        blocks (at least one), chosen independently per view, the same in every frame.
    """
    t, v, h, w = shape
    if not 0 < share < 1:
        raise ValueError(f"share must be in (0, 1), got {share}")
    if block < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    by, bx = _block_grid(h, w, block)
    n = by * bx
    k = min(n - 1, max(1, int(round(share * n)))) if n > 1 else 0
    rng = np.random.default_rng(seed)
    held = np.zeros((v, by * bx), dtype=bool)
    for view in range(v):
        held[view, rng.choice(n, size=k, replace=False)] = True
    pixels = held.reshape(v, by, bx).repeat(block, axis=1).repeat(block, axis=2)[:, :h, :w]
    return np.ascontiguousarray(np.broadcast_to(pixels, (t, v, h, w)))


def block_halves(fitted: np.ndarray, block: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of the fitted pixels: a checkerboard of ``block``-pixel squares.

    Args:
        fitted: (T, V, H, W) bool, the pixels a full fit sees.
        block: side of the checkerboard's squares, pixels.

    Returns:
        (half A, half B), each (T, V, H, W) bool; their union is ``fitted``.
    """
    h, w = fitted.shape[-2:]
    iy = np.arange(h)[:, None] // block
    ix = np.arange(w)[None, :] // block
    even = (iy + ix) % 2 == 0
    return fitted & even, fitted & ~even


def auto_stop_masks(config: "ValidationConfig", fitted: np.ndarray | None,
                    shape: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The pixels a run with ``stop: auto`` fits and those it watches.

    The watched blocks (:func:`block_mask` of ``stop_holdout`` and ``block_px``, seeded
    ``holdout_seed + 1`` so they differ from the blocks a validation holds out) are taken
    from the pixels the run would otherwise fit (``fitted``, None: all).

    Returns:
        (fit mask, watched mask), (T, V, H, W) bool, disjoint.
    """
    watched = block_mask(shape, config.stop_holdout, config.block_px, config.holdout_seed + 1)
    if fitted is not None:
        watched &= fitted
        return fitted & ~watched, watched
    return ~watched, watched


class HeldOutStop:
    """Stop training when the held-out error stops improving; keep the best averaged weights.

    Args:
        error: the held-out error of a field (lower is better), e.g. the mean squared
            error of its prediction on the watched pixels.
        every: steps between two evaluations.
        patience: evaluations without an improvement, counted in the last coarse-to-fine
            stage only, before stopping.
        min_improvement: the wait starts afresh when an evaluation's error is below
            ``(1 - min_improvement)`` times that of the last evaluation that did so; the
            weights of the lowest error are kept whatever the margin.
    """

    name = "held-out error"

    def __init__(self, error: Callable[["Field"], float], every: int = 50, patience: int = 4,
                 min_improvement: float = 0.002) -> None:
        self.error, self.every, self.patience = error, every, patience
        self.min_improvement = min_improvement
        self.best: float = float("inf")
        #: the error of the last evaluation that improved by ``min_improvement``
        self.reference: float = float("inf")
        self.best_field: "Field | None" = None
        self.best_iteration = 0
        self.waited = 0
        self.history: list[tuple[int, float, float]] = []
        self.eval_seconds = 0.0

    def _evaluate(self, fld: "Field", iteration: int, elapsed: float) -> float:
        t0 = time.perf_counter()
        err = float(self.error(fld))
        self.eval_seconds += time.perf_counter() - t0
        self.history.append((iteration, elapsed, err))
        return err

    def update(self, iteration: int, trainer: "Trainer", final_stage: bool) -> bool:
        """After each step: evaluate every ``every`` steps; True when the run should end."""
        if iteration % self.every:
            return False
        fld = trainer.averaged_field()
        err = self._evaluate(fld, iteration, trainer.elapsed())
        if err < self.best:                       # any improvement: keep these weights
            self.best, self.best_iteration = err, iteration
            self.best_field = copy.deepcopy(fld)
        if err < (1 - self.min_improvement) * self.reference:   # a real one: wait afresh
            self.reference, self.waited = err, 0
        elif final_stage:
            self.waited += 1
        return final_stage and self.waited >= self.patience

    def chosen(self, fld: "Field", iteration: int, elapsed: float) -> "Field":
        """The field the run returns: the last one (``fld``) or the best seen, if better."""
        if self.history and self.history[-1][0] == iteration:
            err = self.history[-1][2]
        else:
            err = self._evaluate(fld, iteration, elapsed)
        if err <= self.best or self.best_field is None:
            self.best, self.best_iteration, self.best_field = err, iteration, fld
        return self.best_field

    def summary(self) -> dict[str, Any]:
        """What the run's output records of the stop: the best iteration and the history."""
        return {"rule": "auto", "best_iteration": self.best_iteration,
                "best_heldout_mse": self.best, "every": self.every, "patience": self.patience,
                "evaluation_seconds": self.eval_seconds,
                "history": [{"iteration": i, "elapsed_s": e, "heldout_mse": v}
                            for i, e, v in self.history]}
