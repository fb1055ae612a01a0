"""Importers of other file formats to a :class:`~xray4d.data.Recording`, one module each.

:func:`load_any` reads any of :data:`FORMATS`, detected from the path when it is
unambiguous (:func:`detect_format`), with the options that format needs (angles, views,
sources, ...); an option the format does not use is refused rather than ignored. What each
importer reads and how it maps to (T, V, H, W) and angles is in ``docs/data-format.md``,
"Importing other formats".
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import os
from pathlib import Path
from typing import Any, Callable

import h5py

from ...data import Recording
from ...errors import InputError
from ..hdf5 import load_recording
from ..peek import peek_recording
from .common import OPTION_FLAGS
from .dxchange import load_dxchange, quantity_dxchange
from .nexus import load_nxtomo, nxtomo_entries, quantity_nxtomo
from .npy import load_hexplane_npy, load_onix_npy, quantity_npy
from .tiff import TIFF_SUFFIXES, load_tiff, quantity_tiff
from .xfel import load_xfel, quantity_xfel

__all__ = ["FORMATS", "detect_format", "load_any", "peek_quantity", "load_dxchange",
           "load_nxtomo", "load_tiff", "load_xfel", "load_onix_npy", "load_hexplane_npy"]


def _quantity_xray4d(path: str | os.PathLike, **_: object) -> str | None:
    declared = peek_recording(path)
    return declared[3] if declared else None


#: format name -> (loader, the quantity it will give without reading the arrays)
_IMPORTERS: dict[str, tuple[Callable[..., Recording], Callable[..., str | None]]] = {
    "xray4d": (load_recording, _quantity_xray4d),
    "dxchange": (load_dxchange, quantity_dxchange),
    "nxtomo": (load_nxtomo, quantity_nxtomo),
    "tiff": (load_tiff, quantity_tiff),
    "xfel": (load_xfel, quantity_xfel),
    "onix-npy": (load_onix_npy, quantity_npy),
    "hexplane-npy": (load_hexplane_npy, quantity_npy),
}
#: the formats :func:`load_any` reads (``xray4d``: this project's own recording file)
FORMATS = tuple(_IMPORTERS)
#: options every format takes: the optics, stored as root attributes (override the file's)
OPTICS = {"energy_keV": "--energy", "pixel_size_m": "--pixel-size",
          "propagation_distance_m": "--distance"}

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_NPY_HINT = ("a .npy array: say its layout with --format onix-npy ([frame, view, (channel,) "
             "H, W]) or --format hexplane-npy ([frame, view, W, H])")


def _hdf5_format(path: Path) -> str:
    """Which HDF5 layout a file holds; ``xray4d`` when unsure (its reader names the fault).

    Raises:
        InputError: the file's tree cannot be walked (truncated or corrupt).
    """
    try:
        with h5py.File(path, "r") as f:
            data = f.get("/exchange/data")
            if isinstance(data, h5py.Dataset):
                return "dxchange" if data.ndim == 3 else "xray4d"
            if "INDEX" in f and "METADATA" in f:
                return "xfel"
    except (OSError, RuntimeError, KeyError, ValueError, TypeError):
        return "xray4d"
    return "nxtomo" if nxtomo_entries(path) else "xray4d"   # a corrupt tree: refused here


def detect_format(path: str | os.PathLike, format: str = "auto") -> str:
    """The format of ``path``: ``format`` itself unless ``auto``; else from the contents and
    the name: an HDF5 file by its layout (ours, Data Exchange, NXtomo, a European XFEL
    file), a TIFF file, a folder of TIFF files or of a European XFEL run.

    Raises:
        InputError: an unknown format name, a path that does not exist, a ``.npy`` file
            (its layout must be named), or contents of no known format.
    """
    if format != "auto":
        if format not in _IMPORTERS:
            raise InputError(path, "--format", f"unknown format {format!r}; one of "
                                               f"{', '.join(FORMATS)}, auto")
        return format
    p = Path(path)
    if not p.exists():
        raise InputError(path, "/", "no such file or folder")
    if p.is_dir():
        names = [q.name.lower() for q in p.iterdir() if not q.name.startswith(".")]
        if any(n.endswith(TIFF_SUFFIXES) for n in names):
            return "tiff"
        if any(n.endswith(".h5") for n in names):
            return "xfel"
        raise InputError(path, "--format", "a folder of neither TIFF images nor a European "
                                           "XFEL run (.h5 files)")
    try:
        with open(p, "rb") as f:
            head = f.read(8)
    except OSError as exc:
        raise InputError(path, "/", f"cannot read ({exc.strerror or 'unreadable'})") from None
    suffix = p.suffix.lower()
    if head.startswith(_HDF5_SIGNATURE):
        return _hdf5_format(p)
    if head[:4] in _TIFF_SIGNATURES or suffix in TIFF_SUFFIXES:
        return "tiff"
    if head.startswith(b"\x93NUMPY") or suffix == ".npy":
        raise InputError(path, "--format", _NPY_HINT)
    if suffix in (".h5", ".hdf5", ".hdf", ".nxs", ".nx", ".cxi"):
        return "xray4d"      # not HDF5 inside: load_recording says so
    raise InputError(path, "--format", "unknown file format (not HDF5, TIFF or .npy); name it "
                                       f"with --format ({', '.join(FORMATS)})")


def _split_options(path: str | os.PathLike, fmt: str, options: dict[str, Any]
                   ) -> tuple[dict[str, Any], dict[str, float]]:
    """The format's own options and the optics; an option the format does not take is refused."""
    loader = _IMPORTERS[fmt][0]
    accepted = set(inspect.signature(loader).parameters) - {"path"}
    own, optics = {}, {}
    for key, val in options.items():
        if val is None:
            continue
        if key in OPTICS:
            optics[key] = _check_optic(path, key, val)
        elif key in accepted:
            own[key] = val
        elif key in OPTION_FLAGS or key in ("format",):
            raise InputError(path, OPTION_FLAGS.get(key, key), f"not used by the {fmt} format")
        else:
            raise TypeError(f"load_any() got an unexpected option {key!r}")
    return own, optics


def _check_optic(path: str | os.PathLike, key: str, value: Any) -> float:
    try:
        val = float(value)
    except (TypeError, ValueError):
        raise InputError(path, OPTICS[key], f"not a number: {value!r}") from None
    if not math.isfinite(val) or val < 0 or (val == 0 and key != "propagation_distance_m"):
        raise InputError(path, OPTICS[key], f"invalid value {val}")
    return val


def load_any(path: str | os.PathLike, format: str = "auto", **options: Any) -> Recording:
    """Load a recording from any of :data:`FORMATS`.

    Args:
        path: a file or folder.
        format: one of :data:`FORMATS`, or ``auto`` (:func:`detect_format`).
        **options: what the format needs (None: not given): ``angles`` (V degrees, the
            same every frame), ``angles_file`` (a text file of V angles or one per image),
            ``views`` (V images per frame of an image sequence), ``recording_index`` (the
            NXtomo entry), ``sources`` (European XFEL camera sources, one per view),
            ``flats``/``darks`` (files or runs of flat and dark fields), ``quantity``,
            ``channel`` (4D-ONIX); for every format the optics ``energy_keV``,
            ``pixel_size_m``, ``propagation_distance_m``, which override the file's.

    Raises:
        InputError: one line naming the file, the dataset or option, and the fault.
    """
    fmt = detect_format(path, format)
    own, optics = _split_options(path, fmt, options)
    rec = _IMPORTERS[fmt][0](path, **own)
    if optics:
        rec.attrs.update(optics)
        if "pixel_size_m" in optics:
            rec.geometry = dataclasses.replace(rec.geometry, pixel_size_m=optics["pixel_size_m"])
    return rec


def peek_quantity(path: str | os.PathLike, format: str = "auto", **options: Any) -> str | None:
    """The quantity :func:`load_any` will give, without reading the arrays (None when our
    own file does not say: its loader then names the fault)."""
    fmt = detect_format(path, format)
    own, _ = _split_options(path, fmt, options)
    return _IMPORTERS[fmt][1](path, **own)
