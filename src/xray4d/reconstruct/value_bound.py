"""Estimates of an object's value (the sigmoid bound ``field.value_max``) from its projections.

:func:`estimate_value_max` (the
"disc" estimate) assumes the vertical cross-section through the peak column is
a disc, i.e. the object's extent along the ray equals its height there. That is
exact for drops, but for an elongated solid it returns ``f * (extent along the
ray) / (height)``: 1.15 on the tumbling ellipsoid whose value is 1 (and 0.73 to
1.38 times the truth on other ellipsoids, measured).

:func:`estimate_value_max_moments` uses the horizontal cross-section instead.
For each frame it takes the detector row through the peak and, in every view,
the mass m and the variance of the row profile around the peak. The variance
of a projection along the detector direction n = (cos theta, sin theta) is
``n^T Sigma n``, with Sigma the 2x2 covariance of the slice's mass: exact for
any object. Three or more views at distinct angles determine Sigma (least
squares); a uniform ellipse of covariance Sigma has area ``4 pi sqrt(det
Sigma)``, so ``f = m / (4 pi sqrt(det Sigma))``. With two views Sigma has one
free parameter and the value is not determined by the data: any estimate then
rests on a shape prior, and the disc prior is kept
(:func:`estimate_value_max_auto`).

Measured on simulated 64^3 x 40-frame recordings with 1 % noise, median over
frames, no margin (truth in brackets), views (0, 23.8, 67.5, 112.5) deg:

============================== ======= ======= ========
case                           truth   disc    moments
============================== ======= ======= ========
head-on droplets               1.0     0.992   0.996
off-centre droplets            1.0     0.987   0.994
stretching separation          1.0     0.999   0.987
tumbling ellipsoid (benchmark) 1.0     1.145   0.947
ellipsoid (0.12, 0.22, 0.16)   2.0     1.382   1.921
flat ellipsoid (0.2, 0.2, 0.08) 1.0    0.733   0.968
============================== ======= ======= ========

The ellipsoid's hollow inclusion (value 0.4) lowers its slice masses, hence
0.947 rather than 1. Limitation: separate objects in the peak row that overlap
in some view but not in others (two drops before they merge) give the wrong
covariance in that frame (head-on droplets: per-frame values 0.78-1.04); the
median over frames absorbs it while most frames hold one body. With the value
bound at 0.966 (this estimate x 1.02) instead of the disc estimate's 1.168,
X-Hexplane on the 4-view tumbling ellipsoid went from 31.06 to 34.60 dB
(1500 iterations, 1 thread; SIRT 31.06 dB).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy.ndimage import uniform_filter

from .regularizers import VALUE_MARGIN

if TYPE_CHECKING:
    from ..config import ReconstructionConfig
    from .measurement import MeasuredData

__all__ = ["resolve_value_max", "estimate_value_max", "row_covariance_value", "estimate_value_max_moments", "estimate_value_max_auto"]


def estimate_value_max(projections: np.ndarray, margin: float = VALUE_MARGIN) -> float:
    """Estimate the value inside a homogeneous object (e.g. a liquid) from its projections.

    In each view the column of the detector through the (3x3-smoothed) peak is
    taken. If the object's cross-section in that plane is a disc, as for a
    sphere or a drop symmetric about a horizontal axis, the column profile is
    P(z) = 2 f sqrt(R^2 - z^2), so ``f = pi * peak^2 / (4 * sum(P))``, using
    every pixel of the column rather than a threshold. The minimum over views is
    taken per frame (elongation along a ray only raises the estimate), then the
    median over frames, times ``margin``.

    Used as the bound of the sigmoid output, this is a physics prior (one
    material of known density) that makes two-view reconstructions far better
    posed. For heterogeneous samples set ``field.value_max`` explicitly (e.g.
    the densest material's value).
    """
    p = np.asarray(projections, dtype=np.float64)
    per_frame = []
    for frame in p:
        ests = []
        for view in frame:
            smooth = uniform_filter(view, size=3, mode="constant")
            k, j = np.unravel_index(int(np.argmax(smooth)), smooth.shape)
            peak = smooth[k, j]
            area = view[:, max(j - 1, 0):j + 2].mean(axis=1).sum()
            if peak > 0 and area > 0:
                ests.append(np.pi * peak ** 2 / (4 * area))
        if ests:
            per_frame.append(min(ests))
    if not per_frame:
        return 1.0
    return float(margin * np.median(per_frame))


def _peak_bump(profile: np.ndarray, fraction: float) -> slice:
    """The contiguous run of detector columns around the profile's peak above ``fraction`` of it."""
    j = int(np.argmax(profile))
    thr = fraction * profile[j]
    lo, hi = j, j
    while lo > 0 and profile[lo - 1] > thr:
        lo -= 1
    while hi < profile.size - 1 and profile[hi + 1] > thr:
        hi += 1
    return slice(lo, hi + 1)


def row_covariance_value(rows: np.ndarray, angles_deg: np.ndarray, fraction: float = 0.02,
                         min_condition: float = 1e-3) -> float | None:
    """Value of a uniform elliptical slice from its projections in three or more views.

    Args:
        rows: (V, W) line integrals of one detector row (one horizontal slice), per view.
        angles_deg: (V,) view angles in degrees.
        fraction: each view's profile is cut to the run of columns around its
            peak that stays above this fraction of the peak (drops next to
            each other count separately; noise far away does not bias the variance).
        min_condition: smallest singular value of the normalised moment system;
            below it (fewer than three distinct angles mod 180) None is returned.

    Returns:
        ``m / (4 pi sqrt(det Sigma))`` with m the mean slice mass over views and
        Sigma the least-squares covariance of the slice; None when the views
        do not determine Sigma or it is not positive definite.
    """
    rows = np.asarray(rows, dtype=np.float64)
    theta = np.radians(np.asarray(angles_deg, dtype=np.float64))
    if rows.ndim != 2 or rows.shape[0] != theta.size or theta.size < 3:
        return None
    w = rows.shape[1]
    u = np.arange(w) - (w - 1) / 2
    masses, variances = [], []
    for p in rows:
        smooth = np.convolve(p, np.ones(3) / 3, mode="same")
        if not smooth.max() > 0:
            return None
        sel = _peak_bump(smooth, fraction)
        q = np.clip(p[sel], 0, None)
        m = q.sum()
        if not m > 0:
            return None
        mu = (u[sel] * q).sum() / m
        masses.append(m)
        variances.append(((u[sel] - mu) ** 2 * q).sum() / m)
    c, s = np.cos(theta), np.sin(theta)
    a = np.stack([c * c, 2 * c * s, s * s], axis=1)
    if np.linalg.svd(a, compute_uv=False)[-1] < min_condition * np.sqrt(theta.size):
        return None
    sxx, sxy, syy = np.linalg.lstsq(a, np.asarray(variances), rcond=None)[0]
    det = sxx * syy - sxy * sxy
    if not (sxx > 0 and det > 0):
        return None
    return float(np.mean(masses) / (4 * np.pi * np.sqrt(det)))


def estimate_value_max_moments(projections: np.ndarray, angles_deg: np.ndarray,
                               margin: float = VALUE_MARGIN, fraction: float = 0.02) -> float | None:
    """The object's value from the covariance of the slice through its peak (three or more views).

    Per frame: the detector row through the largest (3x3-smoothed) line
    integral of any view, averaged with its two neighbours, goes to
    :func:`row_covariance_value`. The median over frames times ``margin`` is
    returned, or None when no frame gives an estimate (fewer than three
    distinct view angles).

    Args:
        projections: (T, V, H, W) line integrals.
        angles_deg: (V,) or (T, V) view angles in degrees.
        margin: factor on the median (as in :func:`xray4d.reconstruct.estimate_value_max`).
        fraction: see :func:`row_covariance_value`.
    """
    p = np.asarray(projections, dtype=np.float64)
    t_n, v_n, h, _ = p.shape
    ang = np.asarray(angles_deg, dtype=np.float64)
    ang = np.broadcast_to(ang, (t_n, v_n)) if ang.ndim == 1 else ang
    estimates = []
    for t in range(t_n):
        smooth = [uniform_filter(view, size=3, mode="constant") for view in p[t]]
        best = int(np.argmax([s.max() for s in smooth]))
        k = int(np.unravel_index(int(np.argmax(smooth[best])), smooth[best].shape)[0])
        rows = p[t, :, max(k - 1, 0):k + 2].mean(axis=1)         # (V, W)
        est = row_covariance_value(rows, ang[t], fraction)
        if est is not None:
            estimates.append(est)
    if not estimates:
        return None
    return float(margin * np.median(estimates))


def estimate_value_max_auto(projections: np.ndarray, angles_deg: np.ndarray,
                            margin: float = VALUE_MARGIN) -> tuple[float, str]:
    """The moment estimate where the views determine it (three or more angles), else the disc one.

    Returns:
        (value, which): ``which`` is ``"moments"`` or ``"disc"``.
    """
    est = estimate_value_max_moments(projections, angles_deg, margin)
    if est is not None:
        return est, "moments"
    return estimate_value_max(projections, margin), "disc"


def resolve_value_max(data: "MeasuredData", config: "ReconstructionConfig") -> tuple[float, str]:
    """The bound of the field's (first) output and where it came from.

    ``field.value_max`` when the config sets it (``config``); else the bound the physics
    gives for a known material (``material``: 1.02 times its delta, intensity data);
    else the estimate from the projections (``moments`` with three or more distinct
    angles, ``disc`` otherwise; :func:`estimate_value_max_auto`).
    """
    if config.field.value_max:
        return float(config.field.value_max), "config"
    if data.value_max is not None:
        return float(data.value_max), "material"
    rec = data.recording
    return estimate_value_max_auto(rec.projections, rec.geometry.angles_deg)
