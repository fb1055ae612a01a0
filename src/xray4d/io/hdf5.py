"""Read and write recording and reconstruction files (``data-format.md``).

Everything read is validated; a file that breaks the contract raises
:class:`InputError`, whose message is one line naming the file, the dataset and
the fault. Files are written to a temporary file beside the target and renamed,
so a reader never sees a half-written file.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from .. import __version__
from ..data import QUANTITIES, Reconstruction, Recording
from ..errors import InputError, OutputError
from ..geometry import MAGNIFICATION_RANGE, MAX_SHIFT_SHARE, MAX_TILT_DEG, DetectorGeometry, Geometry
from ..resources import GB, available_memory
from .files import atomic_path

__all__ = ["load_recording", "save_recording", "load_reconstruction", "save_reconstruction",
           "load_volume", "load_volume_times"]

ROOT_ATTRS = ("pixel_size_m", "energy_keV", "propagation_distance_m")


# ---------------------------------------------------------------- helpers

# what h5py raises on a file whose structure is corrupt (e.g. a zero-filled tail)
_H5_ERRORS = (KeyError, RuntimeError, OSError)
# what h5py raises reading one object's metadata (datatype, attribute) when it is corrupt:
# besides the above, ValueError/TypeError for a type numpy cannot represent or decode
_H5_READ_ERRORS = (*_H5_ERRORS, ValueError, TypeError)


def _reason(exc: BaseException) -> str:
    return str(exc).strip("'\"").split("(")[0].strip().rstrip(",") or "unreadable"


@contextlib.contextmanager
def _open(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Open an HDF5 file for reading; h5py errors inside the block become :class:`InputError`."""
    p = Path(path)
    if not p.exists():
        raise InputError(path, "/", "no such file")
    if p.is_dir():
        raise InputError(path, "/", "is a directory, not an HDF5 file")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise InputError(path, "/", f"not a readable HDF5 file ({_reason(exc)})") from None
    with f:
        try:
            yield f
        except _H5_ERRORS as exc:
            raise InputError(path, "/", f"unreadable HDF5 structure ({_reason(exc)}), "
                                        "file truncated or corrupt?") from None


def _read(f: h5py.File, path: str, name: str, *, ranks: tuple[int, ...],
          required: bool = True, dtype=np.float32) -> np.ndarray | None:
    try:
        present = name in f
        obj = f[name] if present else None
    except _H5_ERRORS as exc:
        raise InputError(path, name, f"unreadable ({_reason(exc)}), file truncated or corrupt?") from None
    if not present:
        if required:
            raise InputError(path, name, "missing")
        return None
    if not isinstance(obj, h5py.Dataset):
        raise InputError(path, name, "is a group, expected a dataset")
    if obj.ndim not in ranks:
        want = " or ".join(str(r) for r in ranks)
        raise InputError(path, name, f"wrong rank {obj.ndim} (shape {obj.shape}), expected rank {want}")
    try:  # a corrupt datatype message can describe a float numpy cannot represent
        stored = obj.dtype
    except _H5_READ_ERRORS as exc:
        raise InputError(path, name, f"unreadable datatype ({_reason(exc)}), file corrupt?") from None
    if stored.kind not in "fiu":
        raise InputError(path, name, f"wrong dtype {stored}, expected real numbers")
    if obj.size == 0 or any(s == 0 for s in obj.shape):
        raise InputError(path, name, f"empty array (shape {obj.shape})")
    # the array as stored plus its cast: refuse before allocating what cannot fit
    need = obj.size * (stored.itemsize + np.dtype(dtype).itemsize)
    avail = available_memory()
    if avail is not None and need > avail:
        raise InputError(path, name, f"shape {obj.shape} needs {need / GB:.3g} GB of memory to "
                                     f"load, only {avail / GB:.3g} GB is available")
    try:
        raw = obj[()]
    except (OSError, ValueError) as exc:
        raise InputError(path, name, f"unreadable data ({str(exc).split('(')[0].strip()}), "
                                     "file truncated or corrupt?") from None
    with np.errstate(over="ignore", invalid="ignore"):   # overflow is reported below, not warned
        arr = np.asarray(raw, dtype=dtype)
    if not np.all(np.isfinite(arr)):
        n_bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        if np.all(np.isfinite(raw)):
            raise InputError(path, name, f"{n_bad} values beyond the range of {np.dtype(dtype).name}")
        raise InputError(path, name, f"contains {n_bad} NaN or Inf values")
    return arr


def _attr_str(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        return _attr_str(value.reshape(-1)[0])
    return str(value)


def _attr(attrs: h5py.AttributeManager, path: str, where: str, key: str, default: Any = None) -> Any:
    """Attribute ``key`` of ``attrs`` (``default`` when absent); a corrupt one is refused in one line.

    ``where`` names the owner in the message (``/`` for the root, else a group or dataset).
    """
    try:
        return attrs[key] if key in attrs else default
    except _H5_READ_ERRORS as exc:
        raise InputError(path, f"{where} attribute {key}",
                         f"unreadable ({_reason(exc)}), file corrupt?") from None


def _check_shape(path: str, name: str, arr: np.ndarray, allowed: list[tuple[int, ...]]) -> None:
    if arr.shape not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise InputError(path, name, f"wrong shape {arr.shape}, expected {want}")


def _check_flat_dark(path: str, white: np.ndarray | None, dark: np.ndarray | None) -> None:
    """Refuse flat (and dark) fields from which no transmission can be computed.

    The fields are (N, V, H, W), finite already. As the flat/dark correction does
    (:func:`xray4d.physics.flat_dark_correct`), each is averaged over its N frames;
    every view needs at least one pixel where the flat is above the dark (above zero
    without a dark field). Pixels where it is not are dead and corrected to a
    transmission of 1; a view with no live pixel at all (an all-zero flat, or a dark
    at or above the flat everywhere) is an InputError naming the flat field's dataset.
    """
    if white is None:
        return
    flat = white.mean(axis=0, dtype=np.float64)
    below = np.zeros_like(flat) if dark is None else dark.mean(axis=0, dtype=np.float64)
    live = (flat - below > 0).reshape(flat.shape[0], -1).any(axis=1)
    if live.all():
        return
    view = int(np.flatnonzero(~live)[0])
    if dark is None:
        fault = f"flat field is zero or negative in every pixel of view {view}"
    else:
        fault = (f"flat field is not above the dark field (/exchange/data_dark) in any pixel "
                 f"of view {view}")
    raise InputError(path, "/exchange/data_white", fault + ": no transmission can be computed")


# ---------------------------------------------------------------- recordings

def load_recording(path: str | os.PathLike) -> Recording:
    """Load and validate a recording file. Raises :class:`InputError` on any fault."""
    path = str(path)
    with _open(path) as f:
        data = _read(f, path, "/exchange/data", ranks=(4,))
        t, v, h, w = data.shape
        quantity = _attr_str(_attr(f["/exchange/data"].attrs, path, "/exchange/data", "quantity",
                                   "line_integral"))
        if quantity not in QUANTITIES:
            raise InputError(path, "/exchange/data", f"attribute quantity={quantity!r} is not one of "
                                                     f"{', '.join(QUANTITIES)}")
        theta = _read(f, path, "/exchange/theta", ranks=(1, 2), dtype=np.float64)
        if theta.ndim == 1 and theta.shape[0] != v:
            raise InputError(path, "/exchange/theta", f"{theta.shape[0]} angles but /exchange/data "
                                                      f"has {v} views")
        if theta.ndim == 2 and theta.shape != (t, v):
            raise InputError(path, "/exchange/theta", f"shape {theta.shape} does not match "
                                                      f"(frames, views) = ({t}, {v}) of /exchange/data")
        time = _read(f, path, "/exchange/time", ranks=(1,), required=False, dtype=np.float64)
        if time is not None:
            _check_shape(path, "/exchange/time", time, [(t,)])
            if t > 1 and not np.all(np.diff(time) > 0):
                raise InputError(path, "/exchange/time", "times are not strictly increasing")
        fields = {}
        for name in ("data_white", "data_dark"):
            arr = _read(f, path, f"/exchange/{name}", ranks=(3, 4), required=False)
            if arr is not None:
                _check_shape(path, f"/exchange/{name}", arr, [(v, h, w), (arr.shape[0], v, h, w)])
                if arr.ndim == 3:
                    arr = arr[None]
            fields[name] = arr
        if quantity == "intensity" and fields["data_white"] is None:
            raise InputError(path, "/exchange/data_white", "missing, needed for quantity=intensity")
        _check_flat_dark(path, fields["data_white"], fields["data_dark"])
        truth = _read(f, path, "/ground_truth/volume", ranks=(4,), required=False)
        if truth is not None:
            _check_shape(path, "/ground_truth/volume", truth, [(t, h, w, w)])
        truth_beta = _read(f, path, "/ground_truth/volume_beta", ranks=(4,), required=False)
        if truth_beta is not None:
            _check_shape(path, "/ground_truth/volume_beta", truth_beta, [(t, h, w, w)])
        attrs: dict[str, Any] = {}
        for key in ROOT_ATTRS:
            stored_attr = _attr(f.attrs, path, "/", key)
            if stored_attr is not None:
                try:
                    raw_attr = np.asarray(stored_attr)
                    if raw_attr.size != 1:       # an array: which of its values was meant?
                        raise ValueError(key)
                    val = float(raw_attr.reshape(-1)[0])
                except (TypeError, ValueError, IndexError):
                    raise InputError(path, f"/ attribute {key}", "not a single number") from None
                if not np.isfinite(val) or val < 0 or (val == 0 and key != "propagation_distance_m"):
                    raise InputError(path, f"/ attribute {key}", f"invalid value {val}")
                attrs[key] = val
        description = _attr(f.attrs, path, "/", "description")
        if description is not None:
            attrs["description"] = _attr_str(description)
        detector = _read_detector(f, path, t, v, h, w)
    geometry = Geometry.from_angles(theta, t, h, w, attrs.get("pixel_size_m"), detector)
    return Recording(data, geometry, quantity, time, fields["data_white"], fields["data_dark"],
                     truth, truth_beta, attrs, path)


#: the datasets of the per-view detector geometry (``data-format.md``), with the shape each
#: has per view after (V,) or (T, V)
DETECTOR_DATASETS = {"/geometry/detector_shift": (2,), "/geometry/detector_tilt_deg": (),
                     "/geometry/magnification": ()}


def _read_detector(f: h5py.File, path: str, t: int, v: int, h: int, w: int
                   ) -> DetectorGeometry | None:
    """The per-view detector geometry of a recording; None when the file has none (ideal).

    Each dataset is optional (absent: no shift, no tilt, magnification 1); a wrong shape or a
    value out of range is refused in one line naming the dataset."""
    arrays = []
    for name, tail in DETECTOR_DATASETS.items():
        arr = _read(f, path, name, ranks=(1 + len(tail), 2 + len(tail)), required=False,
                    dtype=np.float64)
        if arr is not None:
            _check_shape(path, name, arr, [(v, *tail), (t, v, *tail)])
        arrays.append(arr)
    shift, tilt, mag = arrays
    if shift is None and tilt is None and mag is None:
        return None
    limit = MAX_SHIFT_SHARE * max(h, w)
    lo, hi = MAGNIFICATION_RANGE
    for name, arr, bad, text in (
            ("/geometry/detector_shift", shift, lambda a: np.abs(a) > limit,
             f"beyond +-{limit:g} pixels (half the detector)"),
            ("/geometry/detector_tilt_deg", tilt, lambda a: np.abs(a) > MAX_TILT_DEG,
             f"beyond +-{MAX_TILT_DEG:g} degrees"),
            ("/geometry/magnification", mag, lambda a: (a < lo) | (a > hi),
             f"outside [{lo:g}, {hi:g}]")):
        if arr is not None and np.any(bad(arr)):
            raise InputError(path, name, f"{int(np.count_nonzero(bad(arr)))} values {text}")
    return DetectorGeometry.build(t, v, shift, tilt, mag)


def write_detector(f: h5py.File, detector: DetectorGeometry | None, group: str = "/geometry"
                   ) -> None:
    """Write a detector geometry under ``group`` (per view unless it changes per frame);
    nothing for None."""
    if detector is None:
        return
    per_frame = detector.per_frame
    for (name, _), arr in zip(DETECTOR_DATASETS.items(),
                              (detector.shift_px, detector.tilt_deg, detector.magnification)):
        f.create_dataset(group + "/" + name.rsplit("/", 1)[1],
                         data=np.asarray(arr if per_frame else arr[0], np.float64))


#: an HDF5 file is built in memory and written to disk in one go when twice its size (HDF5's
#: buffer and the image copied from it) is at most this share of the available memory
IN_MEMORY_SHARE = 0.25


@contextlib.contextmanager
def _h5_writer(path: str | os.PathLike, nbytes: int) -> Iterator[h5py.File]:
    """An HDF5 file open for writing whose content goes to ``path`` atomically (``atomic_path``).

    HDF5 writing to disk can crash the process in C when a write fails (measured: SIGSEGV
    closing the file after a write failed with EFBIG), so the file is built in memory
    (the ``core`` driver, the same bytes as on disk) and written by Python: a full disk is
    then an ``OSError``, which ``atomic_path`` turns into one line with nothing written.
    Files too large for that (``IN_MEMORY_SHARE``) are written by HDF5 directly, after a
    check that the file system has room for ``nbytes`` (the uncompressed array bytes).
    """
    nbytes = int(nbytes) + 2 ** 20                       # + metadata
    avail = available_memory()
    in_memory = 2 * nbytes <= IN_MEMORY_SHARE * (avail if avail is not None else 4 * GB)
    with atomic_path(path) as tmp:
        if not in_memory:
            st = os.statvfs(tmp.parent)
            free = st.f_bavail * st.f_frsize
            if free < nbytes:
                raise OutputError(path, "write failed", f"needs up to {nbytes / GB:.3g} GB, "
                                  f"{free / GB:.3g} GB free on its file system; nothing was written")
            with h5py.File(tmp, "w") as f:
                yield f
            return
        f = h5py.File(tmp, "w", driver="core", backing_store=False)
        try:
            yield f
            f.flush()
            image = f.id.get_file_image()
        finally:
            f.close()
        with open(tmp, "wb") as fh:
            fh.write(image)


def save_recording(rec: Recording, path: str | os.PathLike) -> None:
    """Write a recording file atomically."""
    g = rec.geometry
    theta = g.angles_deg[0] if g.angles_shared else g.angles_deg
    arrays = (rec.projections, rec.white, rec.dark, rec.truth, rec.truth_beta)
    with _h5_writer(path, sum(np.size(a) * 4 for a in arrays if a is not None)) as f:
        d = f.create_dataset("/exchange/data", data=np.asarray(rec.projections, np.float32))
        d.attrs["quantity"] = rec.quantity
        f.create_dataset("/exchange/theta", data=np.asarray(theta, np.float64))
        f.create_dataset("/exchange/time", data=np.asarray(rec.time, np.float64))
        if rec.white is not None:
            f.create_dataset("/exchange/data_white", data=np.asarray(rec.white, np.float32))
        if rec.dark is not None:
            f.create_dataset("/exchange/data_dark", data=np.asarray(rec.dark, np.float32))
        if rec.truth is not None:
            f.create_dataset("/ground_truth/volume", data=np.asarray(rec.truth, np.float32),
                             compression="gzip", compression_opts=1)
        if rec.truth_beta is not None:
            f.create_dataset("/ground_truth/volume_beta", data=np.asarray(rec.truth_beta, np.float32),
                             compression="gzip", compression_opts=1)
        write_detector(f, g.detector)
        for key, val in rec.attrs.items():
            f.attrs[key] = val
        f.attrs["software"] = f"xray4d {_version()}"


# ---------------------------------------------------------------- reconstructions

def load_reconstruction(path: str | os.PathLike) -> Reconstruction:
    """Load and validate a reconstruction file."""
    path = str(path)
    with _open(path) as f:
        vol = _read(f, path, "/reconstruction/volume", ranks=(4,))
        time = _read(f, path, "/reconstruction/time", ranks=(1,), required=False, dtype=np.float64)
        if time is None:
            time = np.arange(vol.shape[0], dtype=np.float64)
        _check_shape(path, "/reconstruction/time", time, [(vol.shape[0],)])
        if vol.shape[2] != vol.shape[3]:
            raise InputError(path, "/reconstruction/volume", f"shape {vol.shape} is not (T, H, W, W)")
        beta = _read(f, path, "/reconstruction/volume_beta", ranks=(4,), required=False)
        if beta is not None:
            _check_shape(path, "/reconstruction/volume_beta", beta, [vol.shape])
        velocity = _read(f, path, "/reconstruction/velocity", ranks=(5,), required=False)
        if velocity is not None:
            _check_shape(path, "/reconstruction/velocity", velocity,
                         [(vol.shape[0], 3) + vol.shape[1:]])
        a = f["/reconstruction"].attrs
        try:
            config = json.loads(_attr_str(_attr(a, path, "/reconstruction", "config", "{}")))
        except json.JSONDecodeError:
            raise InputError(path, "/reconstruction attribute config", "not valid JSON") from None
        if not isinstance(config, dict):
            raise InputError(path, "/reconstruction attribute config", "not a JSON object")
        try:
            wall = float(np.asarray(_attr(a, path, "/reconstruction", "wall_seconds", 0.0)).reshape(-1)[0])
        except (TypeError, ValueError, IndexError):
            wall = math.nan
        if not (math.isfinite(wall) and wall >= 0):
            raise InputError(path, "/reconstruction attribute wall_seconds",
                             "not a number of seconds >= 0")
        extra = {}   # further text attributes (e.g. quantity, units); others are ignored
        for k in a.keys():
            if k not in _RECONSTRUCTION_ATTRS:
                with contextlib.suppress(*_H5_READ_ERRORS):
                    value = a[k]
                    if isinstance(value, (str, bytes)):
                        extra[k] = _attr_str(value)
        method = _attr_str(_attr(a, path, "/reconstruction", "method", ""))
        source = _attr_str(_attr(a, path, "/reconstruction", "source", ""))
        return Reconstruction(vol, time, method, config, wall, source, beta, path, extra,
                              velocity)


#: attributes of /reconstruction that Reconstruction holds as fields
_RECONSTRUCTION_ATTRS = ("method", "config", "wall_seconds", "source", "software")


def save_reconstruction(rec: Reconstruction, path: str | os.PathLike) -> None:
    """Write a reconstruction file atomically."""
    arrays = (rec.volume, rec.volume_beta, rec.velocity)
    with _h5_writer(path, sum(np.size(a) * 4 for a in arrays if a is not None)) as f:
        g = f.create_group("reconstruction")
        g.create_dataset("volume", data=np.asarray(rec.volume, np.float32),
                         compression="gzip", compression_opts=1)
        if rec.volume_beta is not None:
            g.create_dataset("volume_beta", data=np.asarray(rec.volume_beta, np.float32),
                             compression="gzip", compression_opts=1)
        if rec.velocity is not None:
            v = g.create_dataset("velocity", data=np.asarray(rec.velocity, np.float32),
                                 compression="gzip", compression_opts=1)
            v.attrs["units"] = "voxels per second"
            v.attrs["components"] = "vx, vy, vz"
        g.create_dataset("time", data=np.asarray(rec.time, np.float64))
        write_detector(f, rec.detector, "/reconstruction/geometry")
        g.attrs["method"] = rec.method
        g.attrs["config"] = json.dumps(rec.config, default=str)
        g.attrs["wall_seconds"] = float(rec.wall_seconds)
        g.attrs["source"] = rec.source
        g.attrs["software"] = f"xray4d {_version()}"
        for key, val in rec.attrs.items():
            if key not in _RECONSTRUCTION_ATTRS:
                g.attrs[key] = str(val)


def load_volume(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """The volume of a file: ``/ground_truth/volume``, else ``/reconstruction/volume``.

    Returns the (T, Z, Y, X) array and the dataset it came from.
    """
    path = str(path)
    with _open(path) as f:
        for name in ("/ground_truth/volume", "/reconstruction/volume"):
            if name in f:
                vol = _read(f, path, name, ranks=(4, 3))
                if vol.ndim == 3:
                    vol = vol[None]
                if vol.shape[2] != vol.shape[3]:
                    raise InputError(path, name, f"shape {vol.shape} is not (T, H, W, W)")
                return vol, name
    raise InputError(path, "/ground_truth/volume", "missing (and no /reconstruction/volume)")


def load_volume_times(path: str | os.PathLike, dataset: str, frames: int
                      ) -> tuple[np.ndarray, str]:
    """Times of the frames of the volume ``dataset`` of a file, else 0..T-1 when it has none.

    ``/reconstruction/time`` for ``/reconstruction/...`` volumes, else ``/exchange/time``.
    A times dataset that exists but cannot be read, or does not match the frames, is
    refused (:class:`InputError`) rather than silently replaced.

    Returns:
        the (frames,) float64 times and where they came from (the dataset, or
        ``frame index``).
    """
    name = "/reconstruction/time" if dataset.startswith("/reconstruction") else "/exchange/time"
    try:
        with h5py.File(path, "r") as f:
            if name not in f:
                return np.arange(frames, dtype=np.float64), "frame index"
            # the declared shape first: a file may declare any number of times
            shape = getattr(f[name], "shape", None)
            if shape != (frames,):
                raise InputError(path, name, f"wrong shape {shape}, expected ({frames},)")
            t = np.asarray(f[name][()], dtype=np.float64)
    except _H5_READ_ERRORS:
        raise InputError(path, name, "unreadable, file truncated or corrupt?") from None
    if not np.all(np.isfinite(t)) or (frames > 1 and not np.all(np.diff(t) > 0)):
        raise InputError(path, name, "times must be finite and strictly increasing")
    return t, name


def _version() -> str:
    """The version in the ``software`` attribute, the last thing each writer sets."""
    return __version__
