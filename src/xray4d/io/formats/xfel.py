"""European XFEL runs, read with EXtra-data (optional extra ``import``).

A run directory (or one of its HDF5 files) holds one camera source per view of a
multi-projection setup, each with its images in ``data.image.pixels`` (or ``image.pixels``):
one or more images per train. The views are the camera sources, in the order given
(``sources``), else every instrument source with camera images, sorted by name. Only the
trains in which every view recorded are kept, and every view must record the same number
of images in each of them; the frames are then the images in train order, image k of a
train after image k - 1 (T = trains x images per train). The angles are not in the run:
``angles`` (one per view) or ``angles_file``. The frame times are the frame indices; the
train IDs are named in the description.

Flat and dark fields are separate runs at European XFEL: ``flats`` and ``darks`` name such
runs, read from the same camera sources (every image of every kept train), and keep the
images as raw counts (``quantity = intensity``) beside them.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Sequence

import numpy as np

from ...data import Recording
from ...errors import InputError
from .common import check_memory, choose_quantity, make_recording, quiet_loggers, resolve_angles

__all__ = ["load_xfel", "quantity_xfel", "camera_sources"]

#: where the images of a camera source are, tried in this order
IMAGE_KEYS = ("data.image.pixels", "image.pixels")


def _open_run(path: str) -> Any:
    try:
        import extra_data
    except ImportError:
        raise InputError(path, "format xfel", "needs the optional package extra-data "
                                              "(pip install 'xray4d[import]')") from None
    if not os.path.exists(path):
        raise InputError(path, "run", "no such file or folder")
    try:
        with quiet_loggers("extra_data"):
            if os.path.isdir(path):
                return extra_data.RunDirectory(path, parallelize=False)
            return extra_data.H5File(path)
    except Exception as exc:      # EXtra-data raises many kinds on a broken run
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(path, "run", f"not a readable European XFEL run ({reason[:200]})") from None


def _image_key(run: Any, source: str) -> str | None:
    keys = run[source].keys()
    return next((k for k in IMAGE_KEYS if k in keys), None)


def camera_sources(run: Any) -> list[str]:
    """The instrument sources of a run that hold camera images, sorted by name."""
    return sorted(s for s in run.instrument_sources if _image_key(run, s) is not None)


def _views(path: str, run: Any, sources: Sequence[str] | None) -> list[tuple[str, str]]:
    """(source, image key) of each view."""
    cams = camera_sources(run)
    if sources is None:
        if not cams:
            raise InputError(path, "sources", "no camera source (an instrument source with "
                                              f"{' or '.join(IMAGE_KEYS)})")
        sources = cams
    views = []
    for s in sources:
        if s not in run.all_sources:
            raise InputError(path, s, "no such source in the run; camera sources: "
                                      f"{', '.join(cams) or 'none'}")
        key = _image_key(run, s)
        if key is None:
            raise InputError(path, s, f"holds no camera images ({' or '.join(IMAGE_KEYS)})")
        views.append((s, key))
    return views


def _read_views(path: str, run: Any, views: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
    """The images of every view, (N, V, H, W), and the train IDs of the kept trains."""
    with quiet_loggers("extra_data"), warnings.catch_warnings():
        warnings.simplefilter("ignore")       # no trains with all views: refused below
        sel = run.select([(s, k) for s, k in views], require_all=True)
    if len(sel.train_ids) == 0:
        raise InputError(path, views[0][0], "no train in which every view recorded an image")
    arrays, counts0 = [], None
    for s, k in views:
        kd = sel[s, k]
        name = f"{s} {k}"
        if len(kd.shape) != 3:
            raise InputError(path, name, f"wrong shape {kd.shape}, expected (images, rows, columns)")
        counts = np.asarray(kd.data_counts(labelled=False))
        if counts0 is None:
            counts0 = counts
        elif not np.array_equal(counts, counts0):
            raise InputError(path, name, f"images per train differ from those of {views[0][0]}")
        if arrays and kd.shape[1:] != arrays[0].shape[1:]:
            raise InputError(path, name, f"image shape {kd.shape[1:]} differs from "
                                         f"{arrays[0].shape[1:]} of {views[0][0]}")
        check_memory(path, name, (kd.shape[0] * len(views), *kd.shape[1:]), kd.dtype.itemsize)
        try:
            with quiet_loggers("extra_data"):
                arrays.append(kd.ndarray())
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(path, name, f"unreadable ({reason[:200]}), file truncated or "
                                         "corrupt?") from None
    return np.stack(arrays, axis=1), np.asarray(sel.train_ids)


def load_xfel(path: str | os.PathLike, *, sources: Sequence[str] | None = None,
              angles: Sequence[float] | None = None,
              angles_file: str | os.PathLike | None = None,
              flats: str | os.PathLike | None = None, darks: str | os.PathLike | None = None,
              quantity: str | None = None) -> Recording:
    """Read a European XFEL run as a recording, one view per camera source (see the
    module's description).

    Raises:
        InputError: EXtra-data is missing, the run cannot be read, a source is not there
            or holds no images, the views recorded different numbers of images, the
            angles do not match the views.
    """
    path = str(path)
    run = _open_run(path)
    views = _views(path, run, sources)
    data, train_ids = _read_views(path, run, views)
    t, v = data.shape[:2]
    theta = resolve_angles(path, t, v, angles, angles_file)
    if darks is not None and flats is None:
        raise InputError(path, "--flats", "missing, but --darks is given: dark fields need "
                                          "flat fields")
    fields = []
    for field_path in (flats, darks):
        if field_path is None:
            fields.append(None)
            continue
        fp = str(field_path)
        field_run = _open_run(fp)
        arr, _ = _read_views(fp, field_run, _views(fp, field_run, [s for s, _ in views]))
        if arr.shape[2:] != data.shape[2:]:
            raise InputError(fp, views[0][0], f"image shape {arr.shape[2:]} differs from "
                                              f"{data.shape[2:]} of the run's images")
        fields.append(arr)
    q = choose_quantity(path, quantity, fields[0] is not None)
    per_train = t // len(train_ids)
    description = (f"European XFEL run {os.path.basename(os.path.normpath(path))}: views "
                   f"{', '.join(s for s, _ in views)}; trains {train_ids[0]}..{train_ids[-1]} "
                   f"({len(train_ids)} kept), {per_train} image(s) per train")
    return make_recording(path, data, theta, quantity=q, white=fields[0], dark=fields[1],
                          attrs={"description": description}, data_name=views[0][1])


def quantity_xfel(path: str | os.PathLike, *, flats: str | os.PathLike | None = None,
                  quantity: str | None = None, **_: object) -> str:
    """The quantity :func:`load_xfel` will give, from the options alone."""
    return choose_quantity(path, quantity, flats is not None)
