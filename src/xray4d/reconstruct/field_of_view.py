"""A field of view wider than the detector, for objects that the projections truncate.

When the sample is wider than the detector (a liquid sheet, a long horizontal jet, a
region of interest inside a larger body), rays at the detector's edge and rays at oblique
angles cross material outside the volume the detector spans. A field confined to that
volume must then put the outside material somewhere inside it: on the 32^3 wide cylinder
of the scene library, 4 views gave 18.7 dB (docs/results/field-of-view.md).

The remedy of region-of-interest tomography: reconstruct on a grid widened along y and x
by ``pad`` voxels on each side, fit only the measured detector columns (the padded
columns of the widened detector are masked out of the data term, through
``MeasuredData.fit_mask``), and crop the result back to the detector's volume.

:func:`truncated_share` tells truncated projections from projections of an object inside
the field of view: the share of detector rows whose edge columns carry signal.
:func:`lateral_padding` resolves ``field.lateral_margin`` (None: automatic) to voxels,
:func:`widen` pads the data and :func:`crop_result` brings a fit back to the detector's
volume.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING

import numpy as np
from scipy.ndimage import uniform_filter1d

from ..errors import TruncatedProjectionsWarning
from .distributed import is_writer

if TYPE_CHECKING:
    from ..config import ReconstructionConfig
    from ..data import FitResult, Recording
    from .measurement import MeasuredData

__all__ = ["EDGE_SIGNAL", "TRUNCATED_SHARE", "AUTO_MARGIN", "truncated_share",
           "lateral_padding", "field_of_view", "widen", "crop_result", "crop_columns"]

#: an edge column carries the object when its line integral (smoothed over 5 rows) exceeds
#: this share of the projections' largest value: noise alone stays below it (droplets at
#: 12^3 with 10 % noise: no edge row above it; the crown at 48^3 with 10 % noise: 1 %)
EDGE_SIGNAL = 0.1
#: the projections are truncated when more than this share of (frame, view, row, side)
#: edges carries signal: 0-0.01 on every scene inside the field of view (16^3-48^3, 1-10 %
#: noise), 0.10-0.44 on the wide cylinder (16^3-48^3, 2 and 4 views)
TRUNCATED_SHARE = 0.02
#: the lateral margin (a share of the detector's width, on each side) of an automatic
#: widening; chosen on the wide cylinder at 32^3 and 48^3, 2 and 4 views, against 0.25
#: (docs/results/field-of-view.md)
AUTO_MARGIN = 0.5


def truncated_share(projections: np.ndarray) -> float:
    """Share of (frame, view, row, side) whose outermost detector column carries signal:
    smoothed over 5 rows, above :data:`EDGE_SIGNAL` of the projections' largest value.
    0 for an object inside the field of view; a truncated one gives a clear share. (Only
    the outermost column: an object in the volume's corners, outside the circle the
    detector sees at every angle, reaches the next columns at oblique views.)

    Args:
        projections: (T, V, H, W) line integrals (0 where the beam crosses nothing).
    """
    p = np.asarray(projections, np.float32)
    top = float(p.max()) if p.size else 0.0
    if top <= 0 or p.shape[-1] < 4:
        return 0.0
    edges = np.stack([p[..., 0], p[..., -1]])                          # (2, T, V, H)
    edges = uniform_filter1d(edges, size=5, axis=-1, mode="nearest")
    return float(np.mean(edges > EDGE_SIGNAL * top))


def lateral_padding(recording: "Recording", config: "ReconstructionConfig", *,
                    warn: bool = False) -> int:
    """Voxels added on each side along y and x: ``field.lateral_margin`` times the width,
    or with the margin unset (automatic) :data:`AUTO_MARGIN` times it when the projections
    are truncated (:func:`truncated_share`) and 0 otherwise. Only line integrals (and
    phase) are judged automatically; intensities are fitted on the detector's volume.
    ``warn``: an automatic widening says so in one
    :class:`~xray4d.errors.TruncatedProjectionsWarning` line."""
    margin = config.field.lateral_margin
    width = recording.geometry.width
    if margin is not None:
        return int(round(margin * width))
    share = 0.0 if recording.quantity == "intensity" else truncated_share(recording.projections)
    if share <= TRUNCATED_SHARE:
        return 0
    pad = int(round(AUTO_MARGIN * width))
    if warn and is_writer():
        cost = ((width + 2 * pad) / width) ** 2
        warnings.warn(TruncatedProjectionsWarning(
            f"the object reaches the detector's edges ({100 * share:.0f} % of the edge rows): "
            f"the projections are truncated, so the field of view is widened by {pad} voxels "
            f"on each side (about {cost:.1f}x the work per step); field.lateral_margin 0 "
            "fits the detector's volume only"), stacklevel=3)
    return pad


def field_of_view(data: "MeasuredData", config: "ReconstructionConfig") -> "MeasuredData":
    """``data`` as a field method fits it: widened by :func:`lateral_padding` voxels on each
    side (:func:`widen`), with one :class:`~xray4d.errors.TruncatedProjectionsWarning` line
    when the widening is automatic."""
    return widen(data, lateral_padding(data.recording, config, warn=True))


def widen(data: "MeasuredData", pad: int) -> "MeasuredData":
    """``data`` on a detector ``pad`` columns wider on each side: the projections padded
    with zeros there, the padded columns left out of the fit (``fit_mask``), the geometry
    ``2 pad`` columns wider (the same angles and per-view detectors, whose mapping is about
    the detector's centre). ``data`` itself when ``pad`` is 0."""
    if pad <= 0:
        return data
    rec = data.recording
    p = rec.projections
    wide = np.zeros(p.shape[:-1] + (p.shape[-1] + 2 * pad,), p.dtype)
    wide[..., pad:-pad] = p
    mask = np.zeros(wide.shape, bool)
    mask[..., pad:-pad] = True if data.fit_mask is None else data.fit_mask
    g = dataclasses.replace(rec.geometry, width=rec.geometry.width + 2 * pad)
    return dataclasses.replace(data, recording=dataclasses.replace(rec, projections=wide,
                                                                  geometry=g, truth=None,
                                                                  truth_beta=None),
                               fit_mask=mask, lateral_padding=pad)


def crop_columns(array: np.ndarray, pad: int, axes: int) -> np.ndarray:
    """The central part of ``array``'s last ``axes`` axes without ``pad`` on each side
    (``array`` itself when ``pad`` is 0)."""
    if pad <= 0:
        return array
    index = (Ellipsis,) + (slice(pad, -pad),) * axes
    return np.ascontiguousarray(array[index])


def crop_result(result: "FitResult", pad: int) -> "FitResult":
    """A fit on the widened grid brought back to the detector's volume: the volumes (and
    velocities) cropped along y and x, the predicted (and measured) projections along the
    detector's columns; the padding recorded in the config (``resolved.field_of_view``)."""
    if pad <= 0:
        return result
    r = result.reconstruction
    grid = list(r.volume.shape[1:])
    r.volume = crop_columns(r.volume, pad, 2)
    if r.volume_beta is not None:
        r.volume_beta = crop_columns(r.volume_beta, pad, 2)
    if r.velocity is not None:
        r.velocity = crop_columns(r.velocity, pad, 2)
    if result.predicted is not None:
        result.predicted = crop_columns(result.predicted, pad, 1)
    if result.measured is not None:
        result.measured = crop_columns(result.measured, pad, 1)
    r.config.setdefault("resolved", {})["field_of_view"] = {
        "lateral_padding_voxels": pad, "fitted_grid": grid}
    return result
