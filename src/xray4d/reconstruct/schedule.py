"""The training schedule: normalised frame times and the learning-rate factor over a run."""
from __future__ import annotations

import numpy as np

__all__ = ["normalised_times", "learning_rate_factor"]


def normalised_times(time_s: np.ndarray) -> np.ndarray:
    """Map frame times onto [-1, 1] (first frame -1, last +1)."""
    t = np.asarray(time_s, dtype=np.float64)
    if t.size == 1 or t[-1] == t[0]:
        return np.zeros_like(t)
    return 2 * (t - t[0]) / (t[-1] - t[0]) - 1


def learning_rate_factor(progress: float, stage_start: float, final_ratio: float,
                         warmup_fraction: float = 0.0) -> float:
    """The learning rate's factor at a point of training (fractions of the whole run).

    Exponential decay from 1 to ``final_ratio`` over the run, times a linear
    warm-up from 0 over ``warmup_fraction`` after the start of the current stage
    (``stage_start``: 0, or the mark of the last upsampling, where the optimiser
    starts afresh and a fresh Adam's first steps are full-size whatever the gradient).
    """
    warm = 1.0
    if warmup_fraction:
        warm = min(1.0, max(progress - stage_start, 0.0) / warmup_fraction)
    return final_ratio ** progress * warm
