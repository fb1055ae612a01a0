"""Exporters of a reconstruction f[t, z, y, x] to files other programs open.

* :func:`export_tiff_stack`: one multi-page float32 TIFF per frame, ``OUT_t0000.tif``, ...
  (Z pages of Y x X, ImageJ hyperstack metadata with axes ZYX). Fiji opens each file as a
  z-stack with its values intact (File > Open, or drag and drop); napari opens one as a 3D
  layer, or all of them as one 4D layer (``napari OUT_t*.tif --stack``). A two-channel
  reconstruction adds ``OUT_beta_t0000.tif``, ...
* :func:`export_ome_tiff`: the whole movie as one OME-TIFF, float32, axes ``TZYX`` (``TCZYX``
  with beta as a second channel) in its OME-XML. napari opens it as one 4D layer with a time
  slider; Fiji opens it as a hyperstack through Bio-Formats.
* :func:`export_movie`: an H.264 MP4 (through ``imageio-ffmpeg``, optional extra ``movie``),
  one video frame per reconstructed frame: central slices (top row) and maximum-intensity
  projections (bottom row) along z, y and x, normalised to the movie's value range.

Every file is written to a temporary file and renamed; when one frame of a stack fails,
the frames already written by the same call are removed.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from ..data import Reconstruction
from ..errors import InputError
from .files import atomic_path
from .peek import is_reconstruction_file

__all__ = ["EXPORT_SUFFIXES", "export_kind", "export_movie", "export_ome_tiff",
           "export_tiff_stack", "is_reconstruction_file", "tiff_stack_paths"]

#: output suffix -> what :func:`export_kind` calls it
EXPORT_SUFFIXES = {".ome.tif": "ome-tiff", ".ome.tiff": "ome-tiff", ".tif": "tiff",
                   ".tiff": "tiff", ".mp4": "mp4"}


def export_kind(out: str | os.PathLike) -> str | None:
    """``ome-tiff``, ``tiff`` or ``mp4`` from the output's name; None for another suffix."""
    name = Path(out).name.lower()
    for suffix, kind in EXPORT_SUFFIXES.items():   # .ome.tif before .tif
        if name.endswith(suffix) and len(name) > len(suffix):
            return kind
    return None


def _channels(rec: Reconstruction) -> list[tuple[str, np.ndarray]]:
    chans = [("", np.asarray(rec.volume, np.float32))]
    if rec.volume_beta is not None:
        chans.append(("beta", np.asarray(rec.volume_beta, np.float32)))
    return chans


def tiff_stack_paths(rec_frames: int, out: str | os.PathLike, beta: bool = False) -> list[Path]:
    """The files :func:`export_tiff_stack` writes for ``OUT.tif``: ``OUT_t0000.tif``, ...
    (and ``OUT_beta_t0000.tif``, ... with ``beta``)."""
    out = Path(out)
    stem, suffix = out.name[: -len(out.suffix)], out.suffix
    digits = max(4, len(str(rec_frames - 1)))
    names = [f"{stem}_t{t:0{digits}d}{suffix}" for t in range(rec_frames)]
    if beta:
        names += [f"{stem}_beta_t{t:0{digits}d}{suffix}" for t in range(rec_frames)]
    return [out.with_name(n) for n in names]


@contextlib.contextmanager
def _all_or_nothing() -> Iterator[list[Path]]:
    """Collect the paths written in the block; remove them all if the block fails."""
    written: list[Path] = []
    try:
        yield written
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise


def export_tiff_stack(rec: Reconstruction, out: str | os.PathLike) -> list[Path]:
    """One float32 multi-page TIFF per frame (and per channel): see the module's description.

    Returns the files written, frame by frame (delta's, then beta's).
    """
    import tifffile

    chans = _channels(rec)
    paths = tiff_stack_paths(rec.volume.shape[0], out, beta=len(chans) > 1)
    frames = rec.volume.shape[0]
    with _all_or_nothing() as written:
        for c, (_, vol) in enumerate(chans):
            for t in range(frames):
                target = paths[c * frames + t]
                with atomic_path(target) as tmp:
                    tifffile.imwrite(tmp, vol[t], imagej=True, metadata={"axes": "ZYX"})
                written.append(target)
    return paths


def export_ome_tiff(rec: Reconstruction, out: str | os.PathLike) -> Path:
    """The movie as one float32 OME-TIFF with axes ``TZYX`` (``TCZYX`` with beta)."""
    import tifffile

    chans = _channels(rec)
    if len(chans) == 1:
        data, axes = chans[0][1], "TZYX"
    else:
        data, axes = np.stack([v for _, v in chans], axis=1), "TCZYX"
    metadata = {"axes": axes, "Name": Path(rec.source or rec.path or "xray4d").name}
    if len(chans) > 1:
        metadata["Channel"] = {"Name": ["delta", "beta"]}
    with atomic_path(out) as tmp:
        tifffile.imwrite(tmp, data, ome=True, metadata=metadata, photometric="minisblack")
    return Path(out)


def _movie_frames(volume: np.ndarray) -> list[np.ndarray]:
    """RGB video frames: each reconstructed frame's panel, normalised to the movie's range,
    enlarged to at least 256 pixels and padded to multiples of 16 for the encoder."""
    from ..viz.preview import frame_panel   # viz imports io: import here, not at the top

    lo, hi = float(volume.min()), float(volume.max())
    scale = hi - lo if hi > lo else 1.0
    factor = max(1, 256 // max(volume.shape[1:]))
    frames = []
    for t in range(volume.shape[0]):
        panel = frame_panel(volume[t] - lo, scale)
        panel = np.repeat(np.repeat(panel, factor, axis=0), factor, axis=1)
        ph, pw = (-panel.shape[0]) % 16, (-panel.shape[1]) % 16
        frames.append(np.ascontiguousarray(np.pad(panel, ((0, ph), (0, pw), (0, 0)))))
    return frames


def export_movie(rec: Reconstruction, out: str | os.PathLike, fps: float = 10.0) -> Path:
    """An MP4 movie of the reconstruction, one video frame per reconstructed frame.

    Raises:
        InputError: ``imageio-ffmpeg`` is not installed, or ffmpeg failed.
    """
    try:
        import imageio_ffmpeg  # noqa: F401 (an optional extra: its absence is refused here)
    except ImportError:
        raise InputError(out, "mp4", "needs the optional package imageio-ffmpeg "
                                     "(pip install 'xray4d[movie]')") from None
    frames = _movie_frames(np.asarray(rec.volume, np.float32))
    try:
        write_mp4(frames, out, fps)
    except (OSError, RuntimeError) as exc:
        raise InputError(out, "mp4", f"ffmpeg failed ({str(exc).splitlines()[0][:200]})") from None
    return Path(out)


def write_mp4(frames: list[np.ndarray], out: str | os.PathLike, fps: float) -> None:
    """RGB frames (H, W, 3) uint8 as an H.264 MP4, written atomically (the container is
    named explicitly: the temporary file's name does not end in .mp4). OSError or
    RuntimeError when ffmpeg fails; ImportError without imageio-ffmpeg."""
    import imageio_ffmpeg

    h, w = frames[0].shape[:2]
    with atomic_path(out) as tmp:
        writer = imageio_ffmpeg.write_frames(str(tmp), (w, h), fps=fps, codec="libx264",
                                             pix_fmt_in="rgb24", pix_fmt_out="yuv420p",
                                             quality=8, macro_block_size=16,
                                             output_params=["-f", "mp4"])
        try:
            writer.send(None)
            for frame in frames:
                writer.send(frame)
        finally:
            writer.close()
