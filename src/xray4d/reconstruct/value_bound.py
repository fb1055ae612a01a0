"""The value bound of the field (the sigmoid bound ``field.value_max``): where it comes from,
and how the reconstruction sits against it.

:func:`resolve_value_max` takes the bound from the config, else from the material's physics
(:func:`material_value`: delta for line integrals of delta, ``k delta p`` for phase data,
the propagation model's delta for intensities), else from the projections
(:func:`estimate_value_bound`: disc-shaped sections at the peaks, raised to the visual
hull's floor with three or more views; see :mod:`.value_sections`). After the fit,
:func:`bound_diagnostic` measures the share of the object at the bound, which goes into
the output's config (``resolved.value_bound``); :func:`warn_about_bound` warns when that
share is large or the bound is a shape guess from two views.

The older estimates stay available. :func:`estimate_value_max` (the
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

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.ndimage import uniform_filter
import torch

from .. import physics
from ..alignment import from_detectors
from ..errors import InputError, ValueBoundWarning
from .regularizers import VALUE_MARGIN
from .value_sections import estimate_value_sections, hull_value_floor

if TYPE_CHECKING:
    from ..config import PhysicsConfig, ReconstructionConfig
    from ..data import Recording
    from .measurement import MeasuredData

__all__ = ["resolve_value_max", "estimate_value_max", "row_covariance_value",
           "estimate_value_max_moments", "estimate_value_max_auto", "estimate_value_bound",
           "material_value", "distinct_views", "bound_diagnostic", "describe_bound",
           "warn_about_bound", "SATURATION_BAND", "SATURATION_WARNING_SHARE", "SHAPE_GUESSES"]

#: a voxel of the object is *at the bound* when its value is within this fraction of it
SATURATION_BAND = 0.02
#: share of the object at the bound above which a reconstruction warns
SATURATION_WARNING_SHARE = 0.5
#: bound sources that rest on an assumed shape (with fewer than three views, nothing else)
SHAPE_GUESSES = ("sections", "disc", "moments", "hull")


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


def distinct_views(angles_deg: np.ndarray) -> int:
    """The number of distinct view directions (angles modulo 180 degrees) in the first frame."""
    a = np.atleast_2d(np.asarray(angles_deg, dtype=np.float64))[0]
    return int(np.unique(np.round(np.mod(a, 180.0), 3) % 180.0).size)


def estimate_value_bound(projections: np.ndarray, angles_deg: np.ndarray,
                         margin: float = VALUE_MARGIN, *, hull: bool = True
                         ) -> tuple[float, str]:
    """The bound of an object of unknown material from its projections, and its source.

    The disc-shaped sections at the projections' peaks
    (:func:`~.value_sections.estimate_value_sections`, ``sections``); with three or more
    distinct view directions the largest of that, the moment estimate
    (:func:`estimate_value_max_moments`, ``moments``) and the visual hull's floor
    (:func:`~.value_sections.hull_value_floor`, ``hull``); the vertical-disc estimate
    (:func:`estimate_value_max`, ``disc``) when no peak has a disc-shaped section. Times
    ``margin``.

    Measured against the truth's largest value on every scene of the library at 2 and
    4 views, 32^3 and 48^3 x 10 frames, 1 % noise: ``docs/results/value-bound.md``
    (``benchmarks/bench_value_bound.py``). 31 of 37 recordings get a bound in [1, 1.3]
    times the truth's maximum (27 before frames with two materials and rectangular slices
    were recognised, 22 with the linearly interpolated sections before that); the demo's
    droplet collision 1.01. Two views do not determine a value (only a shape assumption
    does): a tripod whose thin legs point along the rays comes out high (1.32 at 48^3) or
    low, drops overlapping along both rays high (spray, 1.38 at 48^3);
    :func:`bound_diagnostic` and :func:`warn_about_bound` report it.
    ``hull`` False leaves out the visual hull, whose floor needs the views' detectors
    aligned (a detector geometry still to be calibrated: a shifted view shrinks the hull and
    raises its floor; the moments are central, blind to column shifts).
    """
    p = np.asarray(projections, dtype=np.float64)
    value, source = estimate_value_sections(p, angles_deg=angles_deg), "sections"
    if distinct_views(angles_deg) >= 3:
        # the largest of the estimates: where they fail, the moments and the hull come out low
        others = [(estimate_value_max_moments(p, angles_deg, 1.0), "moments")]
        if hull:
            others.append((hull_value_floor(p, angles_deg), "hull"))
        for other, name in others:
            if other is not None and (value is None or other > value):
                value, source = other, name
    if value is None:
        return estimate_value_max(p, margin), "disc"
    return float(margin * value), source


def material_value(recording: "Recording", phys: "PhysicsConfig") -> float:
    """The value one voxel of the material ``phys.material`` has in the recording's quantity.

    * ``line_integral``: line integrals of delta in pixel units (what phase retrieval gives:
      ``P = sum of delta over the path in voxels``): the value is delta, at the recording's
      ``energy_keV``.
    * ``phase``: phase shifts in radians, ``k`` times the line integral of delta in metres
      (its magnitude; ``k = 2 pi / wavelength``): the value is ``k delta p`` with ``p`` the
      recording's ``pixel_size_m``.

    Raises:
        xray4d.errors.InputError: one line naming the attribute the quantity needs and the
            recording lacks, a material xraydb does not know, or a quantity (intensity)
            whose bound comes from the measurement model instead.
    """
    where = recording.path or "recording"
    quantity = recording.quantity
    needs = {"line_integral": ("energy_keV",), "phase": ("energy_keV", "pixel_size_m")}
    if quantity not in needs:
        raise InputError(where, "/exchange/data", f"quantity {quantity!r}: the material's "
                         "value is not derived from the line integrals of this quantity")
    for key in needs[quantity]:
        val = recording.attrs.get(key)
        if val is None or not (isinstance(val, (int, float, np.floating)) and math.isfinite(val)
                               and val > 0):
            raise InputError(where, f"/ attribute {key}", "missing or not a positive number, "
                             f"needed to derive the value of {phys.material} from physics "
                             f"({quantity} data)")
    energy = float(recording.attrs["energy_keV"])
    try:
        index = physics.refractive_index(phys.material, phys.density_g_cm3, energy)
    except ValueError as exc:
        raise InputError(where, "config physics.material",
                         str(exc).splitlines()[0].rstrip(":")) from None
    if quantity == "line_integral":
        return float(index.delta)
    return float(physics.wavenumber_per_m(energy) * index.delta
                 * float(recording.attrs["pixel_size_m"]))


def resolve_value_max(data: "MeasuredData", config: "ReconstructionConfig") -> tuple[float, str]:
    """The bound of the field's (first) output and where it came from.

    In this order: ``field.value_max`` when the config sets it (``config``); the bound the
    physics gives (``material``: 1.02 times the material's value), for intensity data
    fitted through the propagation model, or with ``physics.value_from_material`` for
    line integrals of delta and phase data (:func:`material_value`) and for intensities
    retrieved to line integrals of delta; else the estimate from the projections
    (:func:`estimate_value_bound`: ``sections``, ``hull`` or ``disc``).
    """
    if config.field.value_max:
        return float(config.field.value_max), "config"
    if data.value_max is not None:
        return float(data.value_max), "material"
    if config.physics.value_from_material:
        if data.index is not None:        # intensities retrieved to line integrals of delta
            return VALUE_MARGIN * float(data.index.delta), "material"
        return VALUE_MARGIN * material_value(data.recording, config.physics), "material"
    rec, pad = data.recording, data.lateral_padding
    projections = virtual_projections(rec)
    if pad:      # the measured columns of a widened detector (.field_of_view)
        projections = projections[..., pad:-pad]
    return estimate_value_bound(projections, rec.geometry.angles_deg,
                                hull=not config.calibration.enabled)


def virtual_projections(rec: "Recording") -> np.ndarray:
    """The recording's projections on the virtual detector (its own when the detectors are
    ideal; else resampled by the inverse of each view's mapping, :func:`from_detectors`)."""
    g = rec.geometry
    if g.aligned:
        return rec.projections
    assert g.detector is not None
    shift, tilt, mag = g.detector.tensors(np.arange(g.frames), dtype=torch.float64)
    return from_detectors(torch.as_tensor(rec.projections, dtype=torch.float64), shift, tilt,
                          mag).numpy()


def bound_diagnostic(volume: np.ndarray, value_max: float, source: str,
                     views: int) -> dict[str, Any]:
    """How the reconstruction sits against its bound.

    Args:
        volume: the reconstructed values bounded by ``value_max`` (any shape).
        value_max: the bound.
        source: where it came from (see :func:`resolve_value_max`).
        views: distinct view directions of the recording.

    Returns:
        ``value_max``, ``source``, ``views``, ``object_voxels`` (voxels above half the
        bound), ``share_at_bound`` (the share of those within :data:`SATURATION_BAND` of
        the bound; 0 without an object) and ``shape_guess`` (the bound rests on an assumed
        shape and fewer than three views).
    """
    v = np.asarray(volume)
    obj = v >= 0.5 * value_max
    n = int(obj.sum())
    share = float(np.mean(v[obj] >= (1 - SATURATION_BAND) * value_max)) if n else 0.0
    return {"value_max": float(value_max), "source": source, "views": int(views),
            "object_voxels": n, "share_at_bound": share,
            "shape_guess": source in SHAPE_GUESSES and views < 3}


def describe_bound(diag: dict[str, Any]) -> str:
    """One line: the bound, its source and the share of the object at it."""
    guess = f", a shape guess from {diag['views']} views" if diag["shape_guess"] else ""
    return (f"value bound {diag['value_max']:.4g} ({diag['source']}{guess}); "
            f"{100 * diag['share_at_bound']:.0f} % of the object at the bound")


def warn_about_bound(diag: dict[str, Any]) -> None:
    """Warn (:class:`~xray4d.errors.ValueBoundWarning`, one line each) when a large share of
    the object sits at a bound that does not come from the material's physics, or when the
    bound is a shape guess from fewer than three views."""
    if diag["share_at_bound"] >= SATURATION_WARNING_SHARE and diag["source"] != "material":
        warnings.warn(f"{100 * diag['share_at_bound']:.0f} % of the object sits at the value "
                      f"bound {diag['value_max']:.4g} ({diag['source']}): values above it "
                      "cannot be reconstructed; if the sample may be denser, give "
                      "--value-max or --material", ValueBoundWarning, stacklevel=2)
    if diag["shape_guess"]:
        warnings.warn(f"the value bound {diag['value_max']:.4g} is a shape guess from "
                      f"{diag['views']} views ({diag['source']}): two views do not determine "
                      "the value; give --value-max or --material if known",
                      ValueBoundWarning, stacklevel=2)
