"""APS Data Exchange HDF5 in the classic single-scan layout, as tomopy and dxchange write it.

``/exchange/data`` (N, H, W) holds N projections taken one after another at the angles
``/exchange/theta`` (N,) (degrees, or radians when its ``units`` attribute says so);
``/exchange/data_white`` and ``/exchange/data_dark`` (n, H, W) the flat and dark fields of
the one detector. Image i becomes view i % V of frame i // V (V = ``views``, default 1: a
rotating-sample scan is a movie of N frames of one view, each at its own angle).

With flat fields the data stay raw counts (``quantity = intensity``) with the fields
beside them, so that xray4d's flat/dark correction and measurement model apply as they do
to its own intensity files; the same flat and dark fields serve every view.
"""
from __future__ import annotations

import os

import numpy as np

from ...data import Recording
from ...errors import InputError
from ..hdf5 import _attr, _attr_str, _open, _read
from .common import choose_quantity, field_stack, group_frames, make_recording

__all__ = ["load_dxchange", "quantity_dxchange"]


def load_dxchange(path: str | os.PathLike, *, views: int | None = None) -> Recording:
    """Read a single-scan Data Exchange file as a recording of N / ``views`` frames.

    Raises:
        InputError: a dataset is missing, of the wrong rank or shape, not finite, the
            angles do not match the projections, or N is not a multiple of ``views``.
    """
    path = str(path)
    v = 1 if views is None else int(views)
    with _open(path) as f:
        images = _read(f, path, "/exchange/data", ranks=(3,))
        n, h, w = images.shape
        theta = _read(f, path, "/exchange/theta", ranks=(1,), dtype=np.float64)
        if theta.shape[0] != n:
            raise InputError(path, "/exchange/theta", f"{theta.shape[0]} angles but /exchange/data "
                                                      f"has {n} projections")
        units = _attr_str(_attr(f["/exchange/theta"].attrs, path, "/exchange/theta", "units", "deg"))
        if units.strip().lower() in ("rad", "radian", "radians"):
            theta = np.rad2deg(theta)
        white = _read(f, path, "/exchange/data_white", ranks=(2, 3), required=False)
        dark = _read(f, path, "/exchange/data_dark", ranks=(2, 3), required=False)
    if dark is not None and white is None:
        raise InputError(path, "/exchange/data_white", "missing, but /exchange/data_dark is "
                                                       "there: dark fields need flat fields")
    data = group_frames(path, "/exchange/data", images, v)
    angles = theta.reshape(data.shape[0], v)
    white = field_stack(path, "/exchange/data_white", white, v, h, w)
    dark = field_stack(path, "/exchange/data_dark", dark, v, h, w)
    quantity = choose_quantity(path, None, white is not None)
    return make_recording(path, data, angles, quantity=quantity, white=white, dark=dark,
                          attrs={"description": f"imported from Data Exchange {os.path.basename(path)}"},
                          data_name="/exchange/data", angles_name="/exchange/theta")


def quantity_dxchange(path: str | os.PathLike, **_: object) -> str:
    """The quantity :func:`load_dxchange` will give, from the file's structure alone."""
    with _open(path) as f:
        return choose_quantity(path, None, "/exchange/data_white" in f)
