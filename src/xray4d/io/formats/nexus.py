"""NXtomo (NeXus tomography) HDF5 entries, read with the ``nxtomo`` library (optional
extra ``import``).

The entry's ``instrument/detector/data`` (N, H, W) holds every image; its
``image_key_control`` (or ``image_key``) says which are projections (0), flat fields (1),
dark fields (2), invalid (3) or alignment images (-1). Projections, in their order in the
file, become the frames: projection i is view i % V of frame i // V (V = ``views``,
default 1), at ``sample/rotation_angle`` of that image. Invalid and alignment images are
left out. Flats and darks are kept beside the raw projections (``quantity = intensity``)
and serve every view. The beam energy, the pixel size (the sample's effective one, else
the detector's) and the propagation distance (the sample's, else the detector's distance)
become the root attributes ``energy_keV``, ``pixel_size_m``, ``propagation_distance_m``.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ...data import Recording
from ...errors import InputError
from ..hdf5 import _open
from .common import (check_memory, choose_quantity, field_stack, group_frames, make_recording,
                     quiet_loggers)

__all__ = ["load_nxtomo", "quantity_nxtomo", "nxtomo_entries"]

PROJECTION, FLAT, DARK = 0, 1, 2


def _library(path: str):
    try:
        from nxtomo.application.nxtomo import NXtomo
    except ImportError:
        raise InputError(path, "format nxtomo", "needs the optional package nxtomo "
                                                "(pip install 'xray4d[import]')") from None
    return NXtomo


def nxtomo_entries(path: str | os.PathLike) -> tuple[str, ...]:
    """The NXtomo entries of a file (sorted), found with h5py alone: groups whose
    ``definition`` attribute is ``NXtomo``."""
    found: list[str] = []

    def visit(name: str, obj: Any) -> None:
        try:
            definition = obj.attrs.get("definition") if hasattr(obj, "attrs") else None
        except (OSError, KeyError, RuntimeError, TypeError, ValueError):
            return
        if isinstance(definition, bytes):
            definition = definition.decode("utf-8", "replace")
        if isinstance(definition, str) and definition.lower() == "nxtomo":
            found.append("/" + name)

    with _open(path) as f:
        f.visititems(visit)
    return tuple(sorted(found))


def _entry(path: str, recording_index: int | None) -> str:
    entries = nxtomo_entries(path)
    if not entries:
        raise InputError(path, "/", "no NXtomo entry (a group with definition=NXtomo)")
    if recording_index is None:
        if len(entries) > 1:
            raise InputError(path, "/", f"{len(entries)} NXtomo entries ({', '.join(entries)}): "
                                        "choose one with --recording-index")
        return entries[0]
    if not 0 <= recording_index < len(entries):
        raise InputError(path, "--recording-index", f"{recording_index} is out of range: the file "
                                                    f"has {len(entries)} NXtomo entries")
    return entries[recording_index]


def _magnitude(quantity: Any, unit: str) -> float | None:
    """A pint quantity in ``unit`` as a positive finite float, else None."""
    if quantity is None:
        return None
    try:
        val = float(np.asarray(quantity.to(unit).magnitude).reshape(-1)[0])
    except Exception:        # a unit of the wrong dimension, an empty array: not usable
        return None
    return val if np.isfinite(val) and val >= 0 else None


def load_nxtomo(path: str | os.PathLike, *, views: int | None = None,
                recording_index: int | None = None) -> Recording:
    """Read one NXtomo entry as a recording of (projections / ``views``) frames.

    ``recording_index`` picks the entry when the file holds several (sorted by name).

    Raises:
        InputError: not an HDF5 file, no (or an unreadable) NXtomo entry, a missing or
            misshapen dataset, image keys or angles that do not match the images, or a
            projection count that is not a multiple of ``views``.
    """
    path = str(path)
    v = 1 if views is None else int(views)
    entry = _entry(path, recording_index)
    NXtomo = _library(path)
    with _open(path) as f:          # refuse what cannot fit before the library reads it
        data_ds = f.get(f"{entry}/instrument/detector/data")
        if data_ds is not None and hasattr(data_ds, "shape"):
            check_memory(path, f"{entry}/instrument/detector/data", data_ds.shape,
                         data_ds.dtype.itemsize)
    try:
        with quiet_loggers("nxtomo", "silx"):
            nx = NXtomo().load(path, entry, detector_data_as="as_numpy_array")
    except Exception as exc:        # the library raises many kinds on a broken entry
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(path, entry, f"not a readable NXtomo entry ({reason[:200]})") from None
    det = nx.instrument.detector
    name = f"{entry}/instrument/detector/data"
    images = det.data
    if images is None:
        raise InputError(path, name, "missing")
    images = np.asarray(images)
    if images.ndim != 3:
        raise InputError(path, name, f"wrong rank {images.ndim} (shape {images.shape}), "
                                     "expected (images, rows, columns)")
    n, h, w = images.shape
    if det.image_key_control is None:
        raise InputError(path, f"{entry}/instrument/detector/image_key", "missing")
    keys = np.asarray([int(k.value) for k in det.image_key_control])
    if keys.shape != (n,):
        raise InputError(path, f"{entry}/instrument/detector/image_key",
                         f"{keys.size} image keys but {name} has {n} images")
    rotation = nx.sample.rotation_angle
    angle_name = f"{entry}/sample/rotation_angle"
    if rotation is None:
        raise InputError(path, angle_name, "missing")
    angles = np.asarray(rotation.to("degree").magnitude, dtype=np.float64).reshape(-1)
    if angles.shape != (n,):
        raise InputError(path, angle_name, f"{angles.size} angles but {name} has {n} images")
    proj = keys == PROJECTION
    if not proj.any():
        raise InputError(path, name, "no projection (image_key 0)")
    data = group_frames(path, name, images[proj], v)
    flats = images[keys == FLAT] if (keys == FLAT).any() else None
    darks = images[keys == DARK] if (keys == DARK).any() else None
    if darks is not None and flats is None:
        raise InputError(path, name, "dark fields (image_key 2) but no flat field (image_key 1)")
    white = field_stack(path, f"{name} flat fields", flats, v, h, w)
    dark = field_stack(path, f"{name} dark fields", darks, v, h, w)
    quantity = choose_quantity(path, None, white is not None)
    attrs: dict[str, Any] = {"description": f"imported from NXtomo {os.path.basename(path)}{entry}"}
    optics = {"energy_keV": _magnitude(nx.instrument.beam.incident_energy, "keV"),
              "pixel_size_m": _magnitude(nx.sample.x_pixel_size, "m")
              or _magnitude(det.x_pixel_size, "m"),
              "propagation_distance_m": _magnitude(nx.sample.propagation_distance, "m")
              if nx.sample.propagation_distance is not None else _magnitude(det.distance, "m")}
    attrs.update({k: val for k, val in optics.items()
                  if val is not None and (val > 0 or k == "propagation_distance_m")})
    return make_recording(path, data,
                          angles[proj].reshape(data.shape[0], v), quantity=quantity,
                          white=white, dark=dark, attrs=attrs, data_name=name,
                          angles_name=angle_name)


def quantity_nxtomo(path: str | os.PathLike, *, recording_index: int | None = None,
                    **_: object) -> str:
    """The quantity :func:`load_nxtomo` will give: ``intensity`` when the entry has flat
    fields (image key 1), from the image keys alone."""
    path = str(path)
    entry = _entry(path, recording_index)
    with _open(path) as f:
        det = f.get(f"{entry}/instrument/detector")
        keys = None
        for key_name in ("image_key_control", "image_key"):
            if det is not None and key_name in det:
                keys = np.asarray(det[key_name][()])
                break
    return choose_quantity(path, None, keys is not None and bool(np.any(keys == FLAT)))
