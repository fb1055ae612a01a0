"""The times a reconstruction is written at (``--times``): the recorded frames' by default,
or any times within the recording, for methods whose field is continuous in time.

A request is a list of times in seconds (on the recording's ``/exchange/time`` scale),
or ``xN``: N times the recorded frame rate, i.e. the recorded frames and N - 1 equally
spaced times between each pair of neighbours (``x1`` is the recorded frames).
:func:`parse_times` reads the text (one line of fault: :class:`ValueError`),
:func:`resolve_times` turns it into the times for one recording (one line naming the
recording and ``--times``: :class:`~xray4d.errors.InputError`). A requested time that
lies within :data:`SNAP_TOLERANCE` of a frame interval of a recorded time *is* that
recorded time (the output records the recorded value): ``0.0003`` asks for the frame
recorded at ``3 * 1e-4`` s although the two floating-point numbers differ.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

__all__ = ["TimeRequest", "parse_times", "resolve_times", "recorded_index", "normalise_to",
           "MAX_RATE_FACTOR", "MAX_TIMES", "SNAP_TOLERANCE"]

#: the largest N of ``xN``
MAX_RATE_FACTOR = 1000
#: the most times a request may list, or ``xN`` may produce
MAX_TIMES = 100_000
#: a requested time this close to a recorded one, as a fraction of the smallest frame
#: interval, is that recorded time
SNAP_TOLERANCE = 1e-6


@dataclass(frozen=True)
class TimeRequest:
    """Times asked for: ``seconds`` (strictly increasing) or a rate ``factor`` (``xN``).

    Attributes:
        text: the request as given (kept in the output's resolved config).
        seconds: the times in seconds, or None for a rate factor.
        factor: N of ``xN``, or None for a list of times.
    """

    text: str
    seconds: tuple[float, ...] | None = None
    factor: int | None = None


def parse_times(text: str) -> TimeRequest:
    """Read ``xN`` (N an integer in 1..:data:`MAX_RATE_FACTOR`) or a comma-separated list of
    finite, strictly increasing times in seconds (at most :data:`MAX_TIMES`).

    Raises:
        ValueError: one line saying what is wrong with ``text``.
    """
    spec = text.strip()
    if spec[:1] in ("x", "X"):
        digits = spec[1:].strip()
        if not digits.isdigit() or not 1 <= int(digits) <= MAX_RATE_FACTOR:
            raise ValueError(f"xN needs an integer N from 1 to {MAX_RATE_FACTOR} "
                             f"(times the recorded frame rate), got {text!r}")
        return TimeRequest(text=spec, factor=int(digits))
    parts = [p.strip() for p in spec.split(",")]
    if not spec or any(not p for p in parts):
        raise ValueError(f"expected xN or a comma-separated list of times in seconds, got {text!r}")
    if len(parts) > MAX_TIMES:
        raise ValueError(f"at most {MAX_TIMES} times, got {len(parts)}")
    values = []
    for p in parts:
        try:
            v = float(p)
        except ValueError:
            raise ValueError(f"{p!r} is not a time in seconds (expected xN or a "
                             "comma-separated list of numbers)") from None
        if not math.isfinite(v):
            raise ValueError(f"times must be finite, got {p!r}")
        values.append(v)
    for a, b in zip(values, values[1:]):
        if not b > a:
            raise ValueError(f"times must be strictly increasing, got {a:g} then {b:g}")
    return TimeRequest(text=spec, seconds=tuple(values))


def _tolerance(recorded: np.ndarray) -> float:
    if recorded.size > 1:
        return SNAP_TOLERANCE * float(np.min(np.diff(recorded)))
    return SNAP_TOLERANCE * max(abs(float(recorded[0])), 1.0)


def recorded_index(times: np.ndarray, recorded: np.ndarray) -> np.ndarray:
    """For each time (T',), the index of the recorded frame at that time (within
    :data:`SNAP_TOLERANCE` of a frame interval), or -1 where it lies between frames."""
    recorded = np.asarray(recorded, np.float64)
    times = np.asarray(times, np.float64)
    pos = np.clip(np.searchsorted(recorded, times), 0, recorded.size - 1)
    best = pos.copy()
    left = np.clip(pos - 1, 0, recorded.size - 1)
    closer = np.abs(recorded[left] - times) < np.abs(recorded[pos] - times)
    best[closer] = left[closer]
    near = np.abs(recorded[best] - times) <= _tolerance(recorded)
    return np.where(near, best, -1)


def resolve_times(request: TimeRequest, recorded: np.ndarray,
                  source: str | os.PathLike = "recording") -> np.ndarray:
    """The times (T',) float64 that ``request`` asks of a recording whose frames were taken at
    ``recorded`` (strictly increasing); a time at a recorded frame is that frame's time.

    Raises:
        InputError: one line naming ``source`` and ``--times``: a time before the first or
            after the last recorded frame (no extrapolation), or more than
            :data:`MAX_TIMES` times.
    """
    rec = np.asarray(recorded, np.float64)
    if request.factor is not None:
        n = request.factor
        if (rec.size - 1) * n + 1 > MAX_TIMES:
            raise InputError(source, "--times", f"x{n} makes {(rec.size - 1) * n + 1} frames "
                             f"of {rec.size} recorded; at most {MAX_TIMES}")
        steps = np.arange(n, dtype=np.float64) / n
        inner = (rec[:-1, None] + np.diff(rec)[:, None] * steps[None]).ravel()
        return np.concatenate([inner, rec[-1:]])
    times = np.asarray(request.seconds, np.float64)
    tol = _tolerance(rec)
    outside = (times < rec[0] - tol) | (times > rec[-1] + tol)
    if outside.any():
        bad = float(times[outside][0])
        raise InputError(source, "--times", f"{bad:g} s lies outside the recording "
                         f"({rec[0]:g} s to {rec[-1]:g} s); times are interpolated, never "
                         "extrapolated")
    idx = recorded_index(times, rec)
    out = np.where(idx >= 0, rec[np.maximum(idx, 0)], times)
    if np.any(np.diff(out) <= 0):
        raise InputError(source, "--times", "two requested times are the same recorded frame")
    return out


def normalise_to(times: np.ndarray, recorded: np.ndarray) -> np.ndarray:
    """Times on the recording's normalised scale (first frame -1, last +1), as
    :func:`~xray4d.reconstruct.schedule.normalised_times` maps the recorded ones."""
    t = np.asarray(times, np.float64)
    rec = np.asarray(recorded, np.float64)
    if rec.size == 1 or rec[-1] == rec[0]:
        return np.zeros_like(t)
    return 2 * (t - rec[0]) / (rec[-1] - rec[0]) - 1
