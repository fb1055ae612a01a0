"""The ``.npy`` arrays that 4D-ONIX and X-Hexplane train on, with angles given.

* 4D-ONIX: ``[frame, view, H, W]``, or ``[frame, view, channel, H, W]`` with two channels
  (attenuation and phase); ``channel`` picks one (default 0). The first axis is what
  4D-ONIX's data loader steps through in time (time stamps 0, 1, 2, ...), so it becomes
  the frames.
* X-Hexplane: ``[frame, view, W, H]``: the last two axes are swapped relative to xray4d's
  (rows H, columns W) and are swapped back.

Neither layout carries angles, flat fields or times: the angles come from ``angles`` (one
per view) or ``angles_file``; the data are taken as line integrals unless ``quantity``
says ``phase``; the frame times are the frame indices.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ...data import Recording
from ...errors import InputError
from .common import check_memory, choose_quantity, make_recording, resolve_angles

__all__ = ["load_onix_npy", "load_hexplane_npy", "quantity_npy"]


def _load(path: str) -> np.ndarray:
    """The array of a .npy file, memory-mapped (nothing read before the checks)."""
    if not os.path.isfile(path):
        raise InputError(path, "npy", "no such file" if not os.path.exists(path) else "not a file")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(path, "npy", f"not a readable .npy array ({reason[:200]})") from None
    if not isinstance(arr, np.ndarray):
        raise InputError(path, "npy", "an .npz archive, not a .npy array")
    if arr.dtype.kind not in "fiub":
        raise InputError(path, "npy", f"wrong dtype {arr.dtype}, expected real numbers")
    check_memory(path, "npy", arr.shape, arr.dtype.itemsize)
    return arr


def _materialise(path: str, arr: np.ndarray) -> np.ndarray:
    try:
        return np.array(arr)
    except (ValueError, OSError) as exc:      # a truncated file maps short
        raise InputError(path, "npy", f"unreadable data ({str(exc).splitlines()[0][:200]}), "
                                      "file truncated?") from None


def load_onix_npy(path: str | os.PathLike, *, angles: Sequence[float] | None = None,
                  angles_file: str | os.PathLike | None = None, channel: int | None = None,
                  quantity: str | None = None) -> Recording:
    """Read a 4D-ONIX array ``[frame, view, (channel,) H, W]`` as a recording.

    Raises:
        InputError: not a .npy array, wrong rank, a channel out of range, angles that
            do not match the views.
    """
    path = str(path)
    arr = _load(path)
    if arr.ndim == 5:
        c = 0 if channel is None else int(channel)
        if not 0 <= c < arr.shape[2]:
            raise InputError(path, "--channel", f"{c} is out of range: the array "
                                                f"[frame, view, channel, H, W] {arr.shape} has "
                                                f"{arr.shape[2]} channels")
        arr = arr[:, :, c]
    elif arr.ndim == 4:
        if channel not in (None, 0):
            raise InputError(path, "--channel", f"the array {arr.shape} has no channel axis")
    else:
        raise InputError(path, "npy", f"wrong rank {arr.ndim} (shape {arr.shape}), expected "
                                      "[frame, view, H, W] or [frame, view, channel, H, W]")
    data = _materialise(path, arr)
    theta = resolve_angles(path, data.shape[0], data.shape[1], angles, angles_file)
    return make_recording(path, data, theta, quantity=choose_quantity(path, quantity, False),
                          attrs={"description": f"imported from 4D-ONIX {os.path.basename(path)}"},
                          data_name="npy")


def load_hexplane_npy(path: str | os.PathLike, *, angles: Sequence[float] | None = None,
                      angles_file: str | os.PathLike | None = None,
                      quantity: str | None = None) -> Recording:
    """Read an X-Hexplane array ``[frame, view, W, H]`` as a recording (T, V, H, W).

    Raises:
        InputError: not a .npy array, wrong rank, angles that do not match the views.
    """
    path = str(path)
    arr = _load(path)
    if arr.ndim != 4:
        raise InputError(path, "npy", f"wrong rank {arr.ndim} (shape {arr.shape}), expected "
                                      "[frame, view, W, H]")
    data = np.ascontiguousarray(_materialise(path, arr).transpose(0, 1, 3, 2))
    theta = resolve_angles(path, data.shape[0], data.shape[1], angles, angles_file)
    return make_recording(path, data, theta, quantity=choose_quantity(path, quantity, False),
                          attrs={"description": f"imported from X-Hexplane {os.path.basename(path)}"},
                          data_name="npy")


def quantity_npy(path: str | os.PathLike, *, quantity: str | None = None, **_: object) -> str:
    """The quantity the .npy importers will give, from the options alone."""
    return choose_quantity(path, quantity, False)
