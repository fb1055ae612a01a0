"""What the importers share: angles, images grouped into frames and views, flat and dark
fields, the quantity, and the checks every array passes before it becomes a Recording.

Every fault raises :class:`~xray4d.errors.InputError` naming the file, the dataset (or the
command-line option) and what is wrong, as the HDF5 reader does.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import re
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ...data import QUANTITIES, Recording
from ...errors import InputError
from ...geometry import Geometry
from ...resources import GB, available_memory

__all__ = ["OPTION_FLAGS", "quiet_loggers", "check_memory", "checked_float32", "choose_quantity", "field_stack",
           "group_frames", "make_recording", "read_angles_file", "resolve_angles", "natural_key"]

#: the command-line flag of each import option, for messages
OPTION_FLAGS = {"angles": "--angles", "angles_file": "--angles-file", "views": "--views",
                "recording_index": "--recording-index", "sources": "--source",
                "flats": "--flats", "darks": "--darks", "quantity": "--quantity",
                "channel": "--channel"}


@contextlib.contextmanager
def quiet_loggers(*names: str) -> Iterator[None]:
    """Silence the named libraries' loggers in the block: a file they cannot read is
    reported once, in the one line of :class:`InputError`, not also in their log lines."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def natural_key(name: str) -> list[Any]:
    """Sort key that orders ``img2`` before ``img10`` (digit runs compared as numbers)."""
    return [int(s) if s.isdigit() else s.lower() for s in re.split(r"(\d+)", name)]


def check_memory(path: str | os.PathLike, name: str, shape: Sequence[int], itemsize: int) -> None:
    """Refuse an array of ``shape`` (stored with ``itemsize`` bytes, cast to float32) that
    cannot fit in the available memory, before reading it."""
    need = math.prod(int(s) for s in shape) * (itemsize + 4)
    avail = available_memory()
    if avail is not None and need > avail:
        raise InputError(path, name, f"shape {tuple(shape)} needs {need / GB:.3g} GB of memory to "
                                     f"load, only {avail / GB:.3g} GB is available")


def checked_float32(path: str | os.PathLike, name: str, arr: np.ndarray) -> np.ndarray:
    """``arr`` as float32 after the checks of the data contract: real numbers, not empty,
    finite (no NaN or Inf, nothing beyond the range of float32)."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fiub":
        raise InputError(path, name, f"wrong dtype {arr.dtype}, expected real numbers")
    if arr.size == 0:
        raise InputError(path, name, f"empty array (shape {arr.shape})")
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(arr, dtype=np.float32)
    finite = np.isfinite(out)
    if not finite.all():
        n_bad = int(out.size - np.count_nonzero(finite))
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise InputError(path, name, f"contains {n_bad} NaN or Inf values")
        raise InputError(path, name, f"{n_bad} values beyond the range of float32")
    return out


def read_angles_file(path: str | os.PathLike) -> np.ndarray:
    """Angles in degrees from a text file: numbers separated by white space, commas or new
    lines; ``#`` starts a comment. Returns the flat float64 array."""
    p = Path(path)
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a text file"
        raise InputError(path, "--angles-file", f"cannot read ({reason})") from None
    values = []
    for lineno, line in enumerate(text.splitlines(), 1):
        for token in re.split(r"[\s,]+", line.split("#", 1)[0].strip()):
            if token == "":
                continue
            try:
                val = float(token)
            except ValueError:
                raise InputError(path, f"line {lineno}", f"{token!r} is not an angle in degrees") from None
            if not math.isfinite(val):
                raise InputError(path, f"line {lineno}", f"angle {token!r} is not finite")
            values.append(val)
    if not values:
        raise InputError(path, "--angles-file", "holds no angles")
    return np.asarray(values, dtype=np.float64)


def resolve_angles(path: str | os.PathLike, frames: int, views: int,
                   angles: Sequence[float] | None, angles_file: str | os.PathLike | None
                   ) -> np.ndarray:
    """The view angles given on the command line, checked against the data.

    ``angles`` are V angles shared by every frame; ``angles_file`` holds V angles (shared)
    or T x V (one per image, frame by frame: frame 0's views first). Returns (V,) or (T, V).
    """
    if angles is not None and angles_file is not None:
        raise InputError(path, "--angles", "give --angles or --angles-file, not both")
    if angles is None and angles_file is None:
        raise InputError(path, "angles", "missing: this format does not hold them, give --angles "
                                         "(one per view) or --angles-file")
    if angles is not None:
        a = np.asarray(list(angles), dtype=np.float64)
        if a.ndim != 1 or a.size != views:
            raise InputError(path, "--angles", f"{a.size} angles but the data have {views} views")
        if not np.all(np.isfinite(a)):
            raise InputError(path, "--angles", "angles must be finite")
        return a
    a = read_angles_file(angles_file)  # type: ignore[arg-type]
    if a.size == views:
        return a
    if a.size == frames * views:
        return a.reshape(frames, views)
    want = f"{views} (one per view)" + (f" or {frames * views} (one per image)" if frames > 1 else "")
    raise InputError(angles_file, "--angles-file", f"{a.size} angles but the data need {want}")


def group_frames(path: str | os.PathLike, name: str, images: np.ndarray, views: int) -> np.ndarray:
    """(N, H, W) images taken one after another -> (T, V, H, W): image i is view i % V of
    frame i // V (V simultaneous views per frame, or V = 1 for a rotating-sample scan)."""
    if views < 1:
        raise InputError(path, "--views", f"must be at least 1, got {views}")
    n = images.shape[0]
    if n % views:
        raise InputError(path, name, f"{n} images do not divide into frames of {views} views "
                                     "(--views)")
    return images.reshape(n // views, views, *images.shape[1:])


def field_stack(path: str | os.PathLike, name: str, arr: np.ndarray | None, views: int,
                height: int, width: int) -> np.ndarray | None:
    """Flat or dark fields as (N, V, H, W): (N, H, W) or (H, W) fields of one detector are
    used for every view; (N, V, H, W) are per view already."""
    if arr is None:
        return None
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 3 and arr.shape[1:] == (height, width):
        arr = np.broadcast_to(arr[:, None], (arr.shape[0], views, height, width)).copy()
    elif not (arr.ndim == 4 and arr.shape[1:] == (views, height, width)):
        raise InputError(path, name, f"wrong shape {arr.shape}, expected (N, {height}, {width}) "
                                     f"or (N, {views}, {height}, {width}) to match the projections")
    return checked_float32(path, name, arr)


def choose_quantity(path: str | os.PathLike, requested: str | None, has_flats: bool,
                    flats_name: str = "--flats") -> str:
    """The quantity of imported data: ``intensity`` when flat fields come with them, else
    ``line_integral``, unless ``requested`` (``--quantity``) says otherwise."""
    if requested is None:
        return "intensity" if has_flats else "line_integral"
    if requested not in QUANTITIES:
        raise InputError(path, "--quantity", f"{requested!r} is not one of {', '.join(QUANTITIES)}")
    if requested == "intensity" and not has_flats:
        raise InputError(path, flats_name, "missing, needed for quantity intensity")
    if requested != "intensity" and has_flats:
        raise InputError(path, flats_name, f"flat fields are used with quantity intensity only, "
                                           f"not {requested}")
    return requested


def make_recording(path: str | os.PathLike, data: np.ndarray, angles: np.ndarray, *,
                   quantity: str = "line_integral", white: np.ndarray | None = None,
                   dark: np.ndarray | None = None, attrs: dict[str, Any] | None = None,
                   angles_name: str = "angles", data_name: str = "data") -> Recording:
    """A checked :class:`Recording` of (T, V, H, W) projections at (V,) or (T, V) angles."""
    data = checked_float32(path, data_name, data)
    if data.ndim != 4:
        raise InputError(path, data_name, f"wrong rank {data.ndim} (shape {data.shape}), "
                                          "expected (frames, views, rows, columns)")
    t, v, h, w = data.shape
    angles = np.asarray(angles, dtype=np.float64)
    if not np.all(np.isfinite(angles)):
        raise InputError(path, angles_name, "angles must be finite")
    if angles.shape not in ((v,), (t, v)):
        raise InputError(path, angles_name, f"shape {angles.shape} does not match (frames, views) "
                                            f"= ({t}, {v}) of the projections")
    if quantity == "intensity" and white is None:
        raise InputError(path, "flat fields", "missing, needed for quantity intensity")
    attrs = dict(attrs or {})
    geometry = Geometry.from_angles(angles, t, h, w, attrs.get("pixel_size_m"))
    return Recording(data, geometry, quantity, None, white, dark, attrs=attrs, path=str(path))
