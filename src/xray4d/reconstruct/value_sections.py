"""The object's value from the shape of its projections around their peaks, and a floor from
the visual hull.

Two views cannot determine the value of an object without a shape assumption:
the data fix its line integrals, not how far it extends along the rays. The
estimate here assumes, locally, a *disc-shaped section*, but checks the
assumption against the data instead of imposing it in one fixed direction.

:func:`estimate_value_sections`: around each of the few highest peaks of a
view, the profiles of the projection along the two principal axes of the peak's
neighbourhood are compared with a semi-ellipse, ``p sqrt(1 - (t / R)^2)``
averaged over each detector pixel (the projection of a disc of radius R and
value ``p / (2 R)``), fitted by area and width. The profiles are sampled from the
view by cubic splines: linear interpolation averages off-grid samples over up to four
pixels, a blur the pixel-averaged disc does not model, which widened the sections
of bodies a few pixels across and lowered their value by 5-15 % (a rod 3 voxels
across at 0.85-0.91 of the truth, now 0.98-1.01). An axis whose profile is not a
semi-ellipse (a flat top: a column seen along its axis, a rod along its length,
a sheet; two overlapping bodies) is not used, nor one narrower than three pixels
(``THIN_PX``: a sheet seen edge-on or a leg of a few voxels, whose width the
detector does not resolve while the value goes with 1 / width^2). When both axes
pass, the better fitting one is used. A peak whose detector row reaches less than
``ROW_TOLERANCE`` of the peak's height in another view (the same horizontal slice,
seen from there) is elongated along this view's ray: its value is scaled by the
shortfall. A section that the detector's edge cuts (truncated projections: a peak next
to a side edge, its tilted section leaving the detector) is not used either: it came
out narrower than the body and 4-60 % too dense on the wide cylinder, whose views' edge
columns see liquid. Per view the largest value over its peaks (the densest material),
per frame the smallest over views (an elongation along one view's rays only
raises that view's value), then the median over frames.

Two refinements of that median. A frame whose views show two materials
(:func:`two_materials`: two round drops, both principal sections discs of one value,
with values apart by more than ``1 / LIGHT_SHARE``, seen so by two views that agree on
both values) has its denser value counted apart: the bound is the larger of the median
over all frames and the median over those frames of their denser value (two liquids
that merge and mix: the early frames show both, the later ones only the mixture, whose
value the plain median returned, 0.83-0.85 of the densest). And with the view angles
given, a frame whose slice through its peak is a rectangle in every view (a plate
turned in depth, whose flat-topped sections a disc spreads over the plate's width) also
gets the value of that rectangle (:func:`.value_rectangles.rectangle_value`), the larger
of the two counting.

:func:`hull_value_floor`: every ray's line integral is at most the value times
the ray's path through the visual hull (the intersection of the views'
back-projected silhouettes, which holds the object), so ``P / L_hull`` is a
lower bound of the value. Three or more views make the hull tight enough to
matter; views whose silhouette touches the detector's side edges (an object
wider than the field of view) give no floor.

Measured on the scene library at 2 and 4 views, 32^3 and 48^3 x 10 frames, and on the
demo's recording: ``docs/results/value-bound.md`` (``benchmarks/bench_value_bound.py``).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import binary_dilation, map_coordinates, maximum_filter, uniform_filter

from ..geometry import Geometry
from ..projector import Projector
from .value_rectangles import rectangle_value

__all__ = ["peak_positions", "section_value", "frame_sections", "two_materials",
           "estimate_value_sections", "hull_value_floor"]

#: a section passes as a disc when the semi-ellipse misses this share of its area, or less
MAX_MISMATCH = 0.15
#: sections narrower than this many pixels are unresolved (a sheet seen edge-on)
THIN_PX = 3.0
#: sampling step of the profiles, pixels
STEP = 0.5
#: a peak whose row reaches less than this share of it in another view is elongated along the
#: ray: its value is scaled by the shortfall
ROW_TOLERANCE = 0.9
#: a view shows two materials when the lighter of two disc-shaped peaks is below this share of
#: the denser one
LIGHT_SHARE = 0.75
#: views agree on a frame's two materials when their values differ by less than this fraction
AGREE = 0.1
_SUB = (np.arange(8) + 0.5) / 8 - 0.5


def peak_positions(view: np.ndarray, count: int = 3,
                   fraction: float = 0.5) -> list[tuple[int, int]]:
    """(row, column) of the ``count`` highest local maxima of a 3x3-smoothed view that reach
    ``fraction`` of its maximum, highest first."""
    smooth = uniform_filter(np.asarray(view, np.float64), 3, mode="constant")
    local = (smooth == maximum_filter(smooth, size=5, mode="constant")) & \
        (smooth > fraction * smooth.max()) & (smooth > 0)
    cand = np.argwhere(local)
    order = np.argsort(-smooth[tuple(cand.T)])[:count]
    return [(int(cand[i][0]), int(cand[i][1])) for i in order]


def _minor_axis(view: np.ndarray, k: int, j: int, r: int = 4) -> np.ndarray:
    """Unit vector (d_row, d_col) of the narrowest direction of the peak's neighbourhood
    (second moments of what exceeds half the peak within ``r`` pixels)."""
    h, w = view.shape
    rows, cols = slice(max(k - r, 0), min(k + r + 1, h)), slice(max(j - r, 0), min(j + r + 1, w))
    wts = np.clip(view[rows, cols] - 0.5 * view[k, j], 0, None)
    total = wts.sum()
    if not total > 0:
        return np.array([1.0, 0.0])
    zz, uu = np.mgrid[rows, cols]
    cz, cu = (zz * wts).sum() / total, (uu * wts).sum() / total
    czz, cuu = ((zz - cz) ** 2 * wts).sum() / total, ((uu - cu) ** 2 * wts).sum() / total
    czu = ((zz - cz) * (uu - cu) * wts).sum() / total
    return np.linalg.eigh(np.array([[czz, czu], [czu, cuu]]))[1][:, 0]


def _bump(q: np.ndarray, i0: int) -> slice:
    """The samples around ``i0`` that descend from it (2 % of the peak of tolerance) and stay
    above 2 % of it."""
    floor = tol = 0.02 * q[i0]
    lo = hi = i0
    while lo > 0 and floor < q[lo - 1] <= q[lo] + tol:
        lo -= 1
    while hi < q.size - 1 and floor < q[hi + 1] <= q[hi] + tol:
        hi += 1
    return slice(lo, hi + 1)


def _blurred_ellipse(t: np.ndarray, c: float, radius: float) -> np.ndarray:
    """The unit semi-ellipse ``sqrt(1 - ((t - c) / R)^2)`` averaged over a pixel at each t."""
    x = (t[:, None] + _SUB[None, :] - c) / radius
    return np.sqrt(np.clip(1 - x * x, 0, None)).mean(axis=1)


def _fit_disc(t: np.ndarray, q: np.ndarray) -> tuple[float, float, float]:
    """(mismatch, value, width) of the pixel-averaged disc section that best fits the profile
    ``q`` at ``t`` with the same area; the width is the fitted 2 R in pixels."""
    area = q.sum() * STEP
    c = (t * q).sum() / q.sum()
    r0 = 2 * area / (np.pi * q.max())
    best = (np.inf, 0.0, 0.0)
    for radius in r0 * np.linspace(0.6, 1.4, 33):
        p = 2 * area / (np.pi * radius)           # the semi-ellipse's area is pi p R / 2
        wide = np.arange(c - radius - 2, c + radius + 2 + STEP, STEP)
        model = p * _blurred_ellipse(wide, c, radius)
        outside = model[(wide < t[0] - STEP / 2) | (wide > t[-1] + STEP / 2)].sum() * STEP
        mismatch = (np.abs(q - p * _blurred_ellipse(t, c, radius)).sum() * STEP + outside) / area
        if mismatch < best[0]:
            best = (float(mismatch), float(p / (2 * radius)), float(2 * radius))
    return best


def section_value(view: np.ndarray, k: int, j: int, direction: np.ndarray
                  ) -> tuple[float, float, float] | None:
    """(mismatch, value, width in pixels) of the disc that fits the view's profile through
    pixel (k, j) along ``direction`` (d_row, d_col); None when the bump is too short or
    the detector's edge cuts it (a sample next to the bump lies off the detector: a body
    longer than the detector is wide, whose section there would come out narrower and
    denser than it is)."""
    n = max(view.shape)
    t = np.arange(-n, n + STEP, STEP)
    rows, cols = k + t * direction[0], j + t * direction[1]
    q = map_coordinates(view, [rows, cols], order=3, mode="constant")
    if not q[t.size // 2] > 0:
        return None
    sel = _bump(q, t.size // 2)
    if sel.stop - sel.start < 3:
        return None
    around = slice(max(sel.start - 1, 0), sel.stop + 1)
    if not ((rows[around] >= 0) & (rows[around] <= view.shape[0] - 1) & (cols[around] >= 0)
            & (cols[around] <= view.shape[1] - 1)).all():
        return None                       # the detector's edge cuts the section
    return _fit_disc(t[sel], np.clip(q[sel], 0, None))


def _peak_value(view: np.ndarray, k: int, j: int) -> tuple[float, bool] | None:
    """The value at one peak from the principal section that is a disc (see the module), and
    whether the peak is *round*: both principal sections are discs of values within
    ``AGREE`` of each other (a drop, not a body elongated in the detector's plane)."""
    minor = _minor_axis(view, k, j)
    major = np.array([minor[1], -minor[0]])
    a, b = section_value(view, k, j, minor), section_value(view, k, j, major)
    ok = [s for s in (a, b) if s is not None and s[0] < MAX_MISMATCH and s[2] >= THIN_PX]
    if not ok:
        return None
    values = [s[1] for s in ok]
    return min(ok)[1], len(ok) == 2 and max(values) <= (1 + AGREE) * min(values)


def frame_sections(frame: np.ndarray, peaks: int = 3
                   ) -> list[list[tuple[float, bool, int, int]]]:
    """Per view of one frame (V, H, W), the (value, round, row, column) of each of its
    ``peaks`` highest peaks whose section is a disc (:func:`_peak_value`), the value scaled
    by the row check (see the module), highest value first."""
    smoothed = [uniform_filter(view, 3, mode="constant") for view in frame]
    row_tops = np.stack([smooth.max(axis=1) for smooth in smoothed])   # (V, H): rows' peaks
    out = []
    for view, smooth in zip(frame, smoothed):
        found = [(v[0] * min(1.0, float(row_tops[:, k].min()) / (ROW_TOLERANCE * smooth[k, j])),
                  v[1], k, j) for k, j in peak_positions(view, peaks)
                 if (v := _peak_value(view, k, j)) is not None]
        out.append(sorted(found, reverse=True))
    return out


def two_materials(sections: list[list[tuple[float, bool, int, int]]]) -> float | None:
    """The denser value of a frame that shows two materials, else None.

    A view shows two materials when two of its round peaks (drops: both principal sections
    discs of one value) have values apart by more than ``1 / LIGHT_SHARE``; the frame does
    when at least two views do and agree, within ``AGREE``, on both values (the same two
    drops seen from two directions). The denser value is the smallest over those views.
    """
    pairs = []
    for found in sections:
        values = [v for v, rnd, _, _ in found if rnd]
        if len(values) >= 2 and values[-1] < LIGHT_SHARE * values[0]:
            pairs.append((values[0], values[-1]))
    if len(pairs) < 2:
        return None
    hi, lo = np.array(pairs).T
    if hi.max() > (1 + AGREE) * hi.min() or lo.max() > (1 + AGREE) * lo.min():
        return None
    return float(hi.min())


def _peak_rows(frame: np.ndarray) -> np.ndarray:
    """(V, W): the detector row through the frame's highest (3x3-smoothed) line integral in
    any view, averaged with its two neighbours, in every view."""
    smooth = [uniform_filter(view, 3, mode="constant") for view in frame]
    best = int(np.argmax([s.max() for s in smooth]))
    k = int(np.unravel_index(int(np.argmax(smooth[best])), smooth[best].shape)[0])
    return frame[:, max(k - 1, 0):k + 2].mean(axis=1)


def estimate_value_sections(projections: np.ndarray, margin: float = 1.0, peaks: int = 3,
                            angles_deg: np.ndarray | None = None) -> float | None:
    """The object's value from disc-shaped sections at the peaks of its projections.

    Args:
        projections: (T, V, H, W) line integrals.
        margin: factor on the result.
        peaks: highest local maxima examined per view.
        angles_deg: (V,) or (T, V) view angles in degrees; with them, a frame whose slice
            through its peak is a rectangle in every view (:func:`.rectangle_value`: a
            plate) takes the larger of that value and its sections'.

    Returns:
        ``margin`` times the median over frames of the smallest over views of the largest
        value over a view's peaks; where some frames show two materials
        (:func:`two_materials`), the larger of that and the median over those frames of
        their denser value. None when no frame gives a value.
    """
    p = np.asarray(projections, dtype=np.float64)
    ang = None if angles_deg is None else \
        np.broadcast_to(np.asarray(angles_deg, dtype=np.float64), p.shape[:2])
    per_frame, dense = [], []
    for t, frame in enumerate(p):
        sections = frame_sections(frame, peaks)
        values = [min(found[0][0] for found in sections if found)] \
            if any(sections) else []
        if ang is not None and (rect := rectangle_value(_peak_rows(frame), ang[t])) is not None:
            values.append(rect)
        if values:
            per_frame.append(max(values))
        if (two := two_materials(sections)) is not None:
            dense.append(two)
    if not per_frame:
        return None
    value = float(np.median(per_frame))
    if dense:
        value = max(value, float(np.median(dense)))
    return margin * value


def _hull(frame: np.ndarray, angles_deg: np.ndarray, threshold: float) -> np.ndarray | None:
    """Visual hull (H, W, W) bool of one frame, or None when a silhouette touches a side edge."""
    _, h, w = frame.shape
    c = np.arange(w) - (w - 1) / 2
    x, y = np.meshgrid(c, c)                       # (y, x) grids of the slice
    hull = np.ones((h, w, w), dtype=bool)
    for view, theta in zip(frame, np.radians(angles_deg)):
        sil = view > threshold
        if sil[:, 0].any() or sil[:, -1].any():
            return None
        sil = binary_dilation(sil, iterations=1)
        col = np.clip(np.round(x * np.cos(theta) + y * np.sin(theta) + (w - 1) / 2), 0, w - 1)
        hull &= sil[:, col.astype(int)]
    return hull


def hull_value_floor(projections: np.ndarray, angles_deg: np.ndarray, *,
                     threshold: float = 0.03, quantile: float = 0.99) -> float | None:
    """A lower bound of the object's largest value: ``P / L_hull`` on its rays.

    Args:
        projections: (T, V, H, W) line integrals.
        angles_deg: (V,) or (T, V) view angles in degrees.
        threshold: silhouettes are where a view exceeds this fraction of the frame's maximum
            (dilated by one pixel).
        quantile: per frame, this quantile of ``P / L_hull`` over the rays that carry at
            least 30 % of the frame's maximum (the largest ratio would follow the noise).

    Returns:
        the largest per-frame value, or None when no frame gives one (silhouettes at the
        detector's side edges, or no signal).
    """
    p = np.asarray(projections, dtype=np.float32)
    t_n, v_n, h, w = p.shape
    ang = np.asarray(angles_deg, dtype=np.float64)
    ang = np.broadcast_to(ang, (t_n, v_n)) if ang.ndim == 1 else ang
    best = None
    projectors: dict[bytes, Projector] = {}
    for i in range(t_n):
        top = float(p[i].max())
        hull = _hull(p[i], ang[i], threshold * top) if top > 0 else None
        if hull is None:
            continue
        key = ang[i].tobytes()
        if key not in projectors:
            projectors[key] = Projector(Geometry.from_angles(ang[i][None], 1, h, w))
        proj = projectors[key]
        with torch.no_grad():
            length = proj.forward(torch.as_tensor(hull[None], dtype=torch.float32))[0].numpy()
        sel = (p[i] > 0.3 * top) & (length > 0.5)
        if sel.any():
            est = float(np.quantile(p[i][sel] / length[sel], quantile))
            best = est if best is None else max(best, est)
    return best
