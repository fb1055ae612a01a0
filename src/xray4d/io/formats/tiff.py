"""TIFF images plus their angles, read with ``tifffile``.

The input is a multi-page TIFF file or a folder of TIFF files (``*.tif``, ``*.tiff``, in
natural order of their names: ``img2`` before ``img10``; a file may hold several pages).
The N grey-level images, in that order, are grouped into frames of V views: image i is view
i % V of frame i // V. V is ``views``, else the number of ``angles``, else 1 (a
rotating-sample scan). The angles come from ``angles`` (V, the same every frame) or from
``angles_file`` (V, or one per image). Flat and dark fields, when given, are TIFF files or
folders too, used for every view; the images then stay raw counts (``quantity =
intensity``) beside them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ...data import Recording
from ...errors import InputError
from .common import (check_memory, choose_quantity, field_stack, group_frames, make_recording,
                     natural_key, quiet_loggers, resolve_angles)

__all__ = ["load_tiff", "quantity_tiff", "read_tiff_images", "tiff_files"]

TIFF_SUFFIXES = (".tif", ".tiff")


def tiff_files(path: str | os.PathLike) -> list[Path]:
    """The TIFF files of a folder in natural order of their names, or ``[path]`` for a file."""
    p = Path(path)
    if not p.exists():
        raise InputError(path, "TIFF", "no such file or folder")
    if not p.is_dir():
        return [p]
    files = sorted((q for q in p.iterdir() if q.suffix.lower() in TIFF_SUFFIXES and q.is_file()
                    and not q.name.startswith(".")), key=lambda q: natural_key(q.name))
    if not files:
        raise InputError(path, "TIFF", "folder holds no .tif or .tiff file")
    return files


def _read_one(path: Path) -> np.ndarray:
    """The grey-level images of one TIFF file as (n, H, W)."""
    import tifffile

    try:
        with quiet_loggers("tifffile"), tifffile.TiffFile(path) as tf:
            series = tf.series
            if not series or not tf.pages:
                raise InputError(path, "TIFF", "holds no image")
            if any("S" in s.axes for s in series):
                raise InputError(path, "TIFF", f"colour or multi-sample images (axes "
                                               f"{series[0].axes}), expected grey levels")
            if len(series) == 1:
                shape, dtype = series[0].shape, series[0].dtype
                check_memory(path, "TIFF", shape, dtype.itemsize)
                arr = series[0].asarray()
            else:                      # pages written one by one: stack them
                first = tf.pages[0]
                check_memory(path, "TIFF", (len(tf.pages), *first.shape), first.dtype.itemsize)
                arr = tf.asarray(key=slice(None))
    except InputError:
        raise
    except Exception as exc:          # tifffile raises its own and many other kinds
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(path, "TIFF", f"not a readable TIFF file ({reason[:200]})") from None
    if arr.ndim < 2:
        raise InputError(path, "TIFF", f"wrong shape {arr.shape}, expected images (rows, columns)")
    return arr.reshape(-1, *arr.shape[-2:])


def read_tiff_images(path: str | os.PathLike) -> np.ndarray:
    """All images of a TIFF file or folder as (N, H, W), in order; every image must have the
    shape of the first."""
    stacks = []
    for f in tiff_files(path):
        arr = _read_one(f)
        if stacks and arr.shape[1:] != stacks[0].shape[1:]:
            raise InputError(f, "TIFF", f"image shape {arr.shape[1:]} differs from "
                                        f"{stacks[0].shape[1:]} of the first image")
        stacks.append(arr)
    return stacks[0] if len(stacks) == 1 else np.concatenate(stacks)


def load_tiff(path: str | os.PathLike, *, angles: Sequence[float] | None = None,
              angles_file: str | os.PathLike | None = None, views: int | None = None,
              flats: str | os.PathLike | None = None, darks: str | os.PathLike | None = None,
              quantity: str | None = None) -> Recording:
    """Read TIFF images and their angles as a recording (see the module's description).

    Raises:
        InputError: an unreadable or colour TIFF, images of different shapes, angles that
            do not match the images, an image count that is not a multiple of the views,
            flat or dark fields of another shape.
    """
    path = str(path)
    if views is None:
        views = len(angles) if angles is not None else 1
    images = read_tiff_images(path)
    data = group_frames(path, "TIFF images", images, int(views))
    t, v, h, w = data.shape
    theta = resolve_angles(path, t, v, angles, angles_file)
    if darks is not None and flats is None:
        raise InputError(path, "--flats", "missing, but --darks is given: dark fields need "
                                          "flat fields")
    white = None if flats is None else field_stack(flats, "--flats", read_tiff_images(flats),
                                                   v, h, w)
    dark = None if darks is None else field_stack(darks, "--darks", read_tiff_images(darks),
                                                  v, h, w)
    q = choose_quantity(path, quantity, white is not None)
    return make_recording(path, data, theta, quantity=q, white=white, dark=dark,
                          attrs={"description": f"imported from TIFF {os.path.basename(path)}"},
                          data_name="TIFF images", angles_name="angles")


def quantity_tiff(path: str | os.PathLike, *, flats: str | os.PathLike | None = None,
                  quantity: str | None = None, **_: object) -> str:
    """The quantity :func:`load_tiff` will give, from the options alone."""
    return choose_quantity(path, quantity, flats is not None)
