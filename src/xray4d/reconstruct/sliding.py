"""Sliding-window FBP of a rotating sample: what users of time-resolved tomography do today.

A rotating sample seen once (or a few times) per frame has too few views in any frame for
a reconstruction of its own. The classic remedy treats the sample as static over half a
rotation: frame t is reconstructed by filtered back-projection from the projections of
the frames whose angles span 180 degrees around its own (the window slides with t, so
there is one volume per frame). Whatever moves within that half rotation is blurred.
"""
from __future__ import annotations

import numpy as np
import torch

from ..data import Recording
from ..geometry import DetectorGeometry, Geometry
from ..projector import Projector
from .conventional import fbp

__all__ = ["half_rotation_windows", "sliding_window_fbp"]


def half_rotation_windows(angles_deg: np.ndarray, window_deg: float = 180.0) -> list[np.ndarray]:
    """For each frame, the frames whose views span ``window_deg`` around its own angle.

    Args:
        angles_deg: (T, V) angles in degrees of a monotonic rotation (V views per frame; the
            first view's angle places the frame).
        window_deg: the window's span in degrees (180: half a rotation, the least a
            parallel-beam FBP needs).

    Returns:
        per frame, the sorted indices of the frames in its window: the frames with
        ``|angle - angle_t| < window_deg / 2`` (half-open on one side so that the window
        spans exactly ``window_deg``), shifted to stay within the recording at its ends.
    """
    a = np.atleast_2d(np.asarray(angles_deg, dtype=np.float64))[:, 0]
    if a.size > 1 and not (np.all(np.diff(a) > 0) or np.all(np.diff(a) < 0)):
        raise ValueError("a sliding window needs angles that rotate monotonically")
    t_n = a.size
    step = abs(a[1] - a[0]) if t_n > 1 else window_deg
    width = min(t_n, max(1, int(round(window_deg / step))))
    out = []
    for t in range(t_n):
        start = min(max(t - width // 2, 0), t_n - width)
        out.append(np.arange(start, start + width))
    return out


def sliding_window_fbp(recording: Recording, window_deg: float = 180.0, filter: str = "hann",
                       cutoff: float = 1.0, nonnegative: bool = True) -> np.ndarray:
    """FBP per frame from the projections of its half-rotation window.

    Args:
        recording: line integrals (T, V, H, W) with angles (T, V) of a rotating sample.
        window_deg: span of the window (:func:`half_rotation_windows`).
        filter, cutoff: the ramp filter's window and cut-off (as ``conventional``).
        nonnegative: clip negative values at the end (as the ``fbp`` method does).

    Returns:
        (T, Z, Y, X) float32: frame t from the window around frame t.
    """
    g = recording.geometry
    data = torch.as_tensor(np.asarray(recording.projections, dtype=np.float32))
    t_n, _, h, w = data.shape
    out = np.zeros((t_n, h, w, w), dtype=np.float32)
    with torch.no_grad():
        for t, idx in enumerate(half_rotation_windows(g.angles_deg, window_deg)):
            angles = g.angles_deg[idx].reshape(1, -1)
            proj = Projector(Geometry.from_angles(angles, 1, h, w,
                                                  detector=_window_detector(g, idx)))
            views = data[idx].reshape(1, -1, h, w)
            x = fbp(views, proj, filter, cutoff)[0]
            out[t] = (x.clamp_min(0) if nonnegative else x).numpy()
    return out


def _window_detector(g: Geometry, idx: np.ndarray) -> DetectorGeometry | None:
    """The detector geometry of the views of frames ``idx`` as one frame (None: ideal)."""
    d = g.detector
    if d is None:
        return None
    return DetectorGeometry.build(1, idx.size * g.views, d.shift_px[idx].reshape(-1, 2),
                                  d.tilt_deg[idx].reshape(-1), d.magnification[idx].reshape(-1))
