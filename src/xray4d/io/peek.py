"""What a file declares, from its metadata alone, before anything large is read: the shape
of a recording or a volume, its angles, its pixel size, its kind; and
:func:`describe_file`, the summary ``xray4d info`` prints.

The peeks return None when the file does not say; the loaders of :mod:`.hdf5` then name
the fault. They let a verb refuse a request that cannot fit, or pick a preset, before
loading the data.
"""
from __future__ import annotations

import math
import os
from typing import Any

import h5py
import numpy as np

from .hdf5 import _H5_READ_ERRORS, _attr_str, load_reconstruction, load_recording

__all__ = ["peek_volume", "peek_recording", "peek_angles", "peek_pixel_size",
           "is_reconstruction_file", "describe_file"]


def peek_volume(path: str | os.PathLike,
                datasets: tuple[str, ...] = ("/ground_truth/volume", "/reconstruction/volume")
                ) -> tuple[tuple[int, int, int, int], str] | None:
    """The shape (T, Z, Y, X) that the first of ``datasets`` present in the file declares,
    from the metadata alone (a 3D volume is one frame), and that dataset; None when the file
    does not say (:func:`load_volume` or :func:`load_reconstruction` then name the fault).
    The default order is :func:`load_volume`'s. No array is read."""
    try:
        with h5py.File(path, "r") as f:
            for name in datasets:
                if name in f:
                    d = f[name]
                    if not isinstance(d, h5py.Dataset) or d.ndim not in (3, 4):
                        return None
                    shape = tuple(int(n) for n in d.shape)
                    shape = (1, *shape) if len(shape) == 3 else shape
                    return (shape, name) if min(shape) >= 1 else None  # type: ignore[return-value]
    except _H5_READ_ERRORS:
        return None
    return None


def peek_recording(path: str | os.PathLike
                   ) -> tuple[tuple[int, int, int, int], int, bool, str] | None:
    """What a recording file declares, from its metadata alone (no array is read).

    Returns ``((T, V, H, W), angle_sets, has_truth, quantity)``: the shape of
    ``/exchange/data``, the number of distinct angle sets it may hold (T when
    ``/exchange/theta`` is per frame, else 1), whether ``/ground_truth/volume``
    exists and the data's quantity attribute (default ``line_integral``); None
    when the file does not say (:func:`load_recording` then names the fault).
    Used to refuse a request that cannot fit before loading anything.
    """
    try:
        with h5py.File(path, "r") as f:
            d = f.get("/exchange/data")
            if not isinstance(d, h5py.Dataset) or d.ndim != 4:
                return None
            theta = f.get("/exchange/theta")
            per_frame = isinstance(theta, h5py.Dataset) and theta.ndim == 2
            shape = tuple(int(n) for n in d.shape)
            if min(shape) < 1:
                return None
            quantity = _attr_str(d.attrs.get("quantity", "line_integral"))
            return (shape, (shape[0] if per_frame else 1),  # type: ignore[return-value]
                    "/ground_truth/volume" in f, quantity)
    except _H5_READ_ERRORS:
        return None


def peek_angles(path: str | os.PathLike) -> np.ndarray | None:
    """The view angles ``/exchange/theta`` of a recording file, (V,) or (T, V) degrees, when
    they are a finite real array of rank 1 or 2; else None (:func:`load_recording` then names
    the fault). Reads that dataset only; used to pick a preset before the data are loaded."""
    try:
        with h5py.File(path, "r") as f:
            theta = f.get("/exchange/theta")
            if not isinstance(theta, h5py.Dataset) or theta.ndim not in (1, 2) \
                    or theta.dtype.kind not in "fiu" or theta.size == 0:
                return None
            a = np.asarray(theta[()], dtype=np.float64)
    except (*_H5_READ_ERRORS, ValueError, TypeError):
        return None
    return a if np.all(np.isfinite(a)) else None


def peek_pixel_size(path: str | os.PathLike) -> float | None:
    """The root attribute ``pixel_size_m`` of a file when it is one positive finite number,
    else None (absent, unreadable or invalid)."""
    try:
        with h5py.File(path, "r") as f:
            val = float(np.asarray(f.attrs["pixel_size_m"]).reshape(-1)[0])
    except (OSError, KeyError, ValueError, TypeError, IndexError):
        return None
    return val if math.isfinite(val) and val > 0 else None


def is_reconstruction_file(path: str | os.PathLike) -> bool:
    """True when the file is HDF5 holding ``/reconstruction`` and no ``/exchange`` (what the
    exporters read); False for anything else, readable or not (a loader names the fault)."""
    try:
        with h5py.File(path, "r") as f:
            return "reconstruction" in f and "exchange" not in f
    except _H5_READ_ERRORS:
        return False


def describe_file(path: str | os.PathLike) -> dict[str, Any]:
    """What a recording or reconstruction file holds, loaded and validated.

    Returns, for a reconstruction file: ``kind`` = ``reconstruction``, ``frames``,
    ``shape`` (Z, Y, X), ``method``, ``value_range`` (min, max), ``channels`` (1, or 2
    with ``volume_beta``) and ``wall_seconds``. For a recording file: ``kind`` =
    ``recording``, ``frames``, ``views``, ``height``, ``width``, ``angles_shared``,
    ``angles_deg`` ((V,) when the angles are the same every frame, else (T, V)),
    ``quantity``, ``value_range``, ``time_range`` (first, last), ``has_truth``,
    ``detector`` (the per-view detector geometry, None when ideal) and ``attrs`` (the root
    attributes).

    Raises:
        InputError: the file breaks the data contract.
    """
    if is_reconstruction_file(path):
        r = load_reconstruction(path)
        return {"kind": "reconstruction", "frames": r.volume.shape[0],
                "shape": tuple(r.volume.shape[1:]), "method": r.method,
                "value_range": (r.volume.min(), r.volume.max()),
                "channels": 1 if r.volume_beta is None else 2, "wall_seconds": r.wall_seconds}
    rec = load_recording(path)
    g = rec.geometry
    return {"kind": "recording", "frames": rec.frames, "views": rec.views,
            "height": g.height, "width": g.width, "angles_shared": g.angles_shared,
            "angles_deg": g.angles_deg[0] if g.angles_shared else g.angles_deg,
            "quantity": rec.quantity,
            "value_range": (rec.projections.min(), rec.projections.max()),
            "time_range": (rec.time[0], rec.time[-1]), "has_truth": rec.has_truth,
            "detector": None if g.aligned else g.detector, "attrs": dict(rec.attrs)}
