"""Acquisition: the projections of a scene, with noise.

The projections of a simulated scene are line integrals of its fine grid
(:mod:`.sampling`) on a detector ``oversample`` times finer, averaged over
blocks of pixels, so the data are not made by the projector that reconstructs
them. :func:`acquire` does this for any scene that renders its frames as
:data:`~.sampling.FineFrame`, with one of two fine projectors: :class:`BoxProjector`
(the Joseph operator restricted to the box that holds the object; its cost
scales with the box) or :class:`VolumeProjector` (the sparse or dense
:class:`~xray4d.projector.Projector` on the whole fine volume).

:func:`simulate_recording` projects a volume you already have at its own
resolution (the ``xray4d project`` verb); :func:`add_noise` is the Gaussian
noise of every line-integral simulation.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch

from ..data import Recording
from ..geometry import DetectorGeometry, Geometry, detector_to_virtual
from ..projector import DENSE_OPERATOR_LIMIT_BYTES, Projector, slice_projection_matrix
from .sampling import FineFrame, block_mean, central, coarse_index

__all__ = ["add_noise", "angles_per_frame", "rotating_angles", "FineProjector", "BoxProjector", "VolumeProjector",
           "acquire", "fine_to_detectors", "simulate_recording"]


def add_noise(projections: np.ndarray, noise: float, seed: int = 0) -> np.ndarray:
    """Add Gaussian noise of standard deviation ``noise * max(projections)``.

    Deterministic under ``seed`` (``numpy.random.default_rng``); ``noise = 0``
    returns a float32 copy. Returns float32.
    """
    if not (noise >= 0 and math.isfinite(noise)):
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    clean = np.asarray(projections, dtype=np.float32)
    if noise == 0:
        return clean.copy()
    sigma = float(noise) * float(np.max(clean)) if clean.size else 0.0
    rng = np.random.default_rng(seed)
    return (clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32)


def angles_per_frame(angles_deg: Sequence[float] | np.ndarray, frames: int) -> np.ndarray:
    """View angles in degrees as a (frames, V) float64 array; (V,) angles are the same every
    frame. ValueError for any other shape or a non-finite angle."""
    a = np.asarray(angles_deg, dtype=np.float64)
    if a.ndim == 1:
        a = np.broadcast_to(a, (frames, a.shape[0])).copy()
    if a.ndim != 2 or a.shape[0] != frames or a.shape[1] < 1:
        raise ValueError(f"angles must have shape (V,) or ({frames}, V), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("angles must be finite")
    return a


def rotating_angles(rotations: float, step_deg: float, start_deg: float = 0.0) -> np.ndarray:
    """The angles of a continuously rotating sample seen once per frame: (T, 1) degrees.

    One projection every ``step_deg`` over ``rotations`` turns, ``T = round(rotations * 360
    / step_deg)`` frames at ``start_deg + t * step_deg``, each frame its own projection
    time (a scene evolves over the whole rotation sequence). ValueError (one line) for a
    non-positive or non-finite rotation count or step, or fewer than one frame.
    """
    for name, val in (("rotations", rotations), ("step_deg", step_deg)):
        if not (math.isfinite(val) and val > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {val}")
    if not math.isfinite(start_deg):
        raise ValueError(f"start_deg must be finite, got {start_deg}")
    frames = int(round(rotations * 360.0 / step_deg))
    if frames < 1:
        raise ValueError(f"{rotations} rotations at {step_deg} deg per projection give no frame")
    return (start_deg + step_deg * np.arange(frames, dtype=np.float64))[:, None]


class FineProjector(Protocol):
    """Line integrals of one frame's fine box on the fine detector, in fine-pixel units."""

    def __call__(self, occ: torch.Tensor, box_y: slice, box_x: slice,
                 frame: int) -> torch.Tensor:
        """occ (rows, ny, nx) at columns (box_y, box_x) of the slices -> (V, rows, W)."""
        ...


class BoxProjector:
    """Line integrals of one frame's box on the fine detector.

    Uses the Joseph operator of ``projector.py`` (one (W, W*W) matrix per view,
    ``slice_projection_matrix``) restricted to the voxel columns of the box, so
    the cost scales with the box, not the volume. Falls back to the (sparse)
    :class:`~xray4d.projector.Projector` on whole slices when the dense operator
    of one frame would be too large.
    """

    def __init__(self, angles: np.ndarray, width: int) -> None:
        self.angles = angles
        self.width = width
        self.shared = bool(np.all(angles == angles[:1]))
        n_bytes = angles.shape[1] * width ** 3 * 4
        self.dense = n_bytes <= DENSE_OPERATOR_LIMIT_BYTES
        self._key: bytes | None = None
        self._op: torch.Tensor | Projector | None = None

    def _operator(self, frame: int) -> torch.Tensor | Projector:
        a = self.angles[0 if self.shared else frame]
        if a.tobytes() != self._key:
            w = self.width
            if self.dense:
                self._op = torch.cat([slice_projection_matrix(float(v), w) for v in a]
                                     ).reshape(len(a) * w, w, w)
            else:
                self._op = Projector(Geometry.from_angles(a, 1, 1, w))
            self._key = a.tobytes()
        assert self._op is not None
        return self._op

    def __call__(self, occ: torch.Tensor, box_y: slice, box_x: slice, frame: int) -> torch.Tensor:
        """occ (rows, ny, nx) at columns (box_y, box_x) of the slices -> (V, rows, W)."""
        op = self._operator(frame)
        rows, w = occ.shape[0], self.width
        views = self.angles.shape[1]
        if isinstance(op, torch.Tensor):
            sub = op[:, box_y, box_x].reshape(views * w, -1)
            out = occ.reshape(rows, -1) @ sub.t()
            return out.reshape(rows, views, w).permute(1, 0, 2)
        slab = torch.zeros((rows, w, w), dtype=occ.dtype)
        slab[:, box_y, box_x] = occ
        out = op.forward(slab[:, None], frames=np.zeros(rows, dtype=np.int64))
        return out[:, :, 0, :].permute(1, 0, 2)


class VolumeProjector:
    """Line integrals of the whole fine volume with :class:`~xray4d.projector.Projector`.

    Takes only boxes that span the whole fine grid (see :func:`~.sampling.whole_box`).
    """

    def __init__(self, angles: np.ndarray, width: int) -> None:
        self.width = width
        self.projector = Projector(Geometry.from_angles(angles, angles.shape[0], width, width))

    def __call__(self, occ: torch.Tensor, box_y: slice, box_x: slice, frame: int) -> torch.Tensor:
        """occ (W, W, W), the whole fine volume of frame ``frame`` -> (V, W, W)."""
        if occ.shape != (self.width,) * 3:
            raise ValueError(f"VolumeProjector takes the whole fine volume, got {tuple(occ.shape)}")
        return self.projector.forward(occ[None], frames=[frame])[0]


def fine_to_detectors(fine: torch.Tensor, detector: DetectorGeometry, frame: int, size: int,
                      oversample: int, pad: int = 0) -> torch.Tensor:
    """Each real detector's pixels from the line integrals on the fine virtual detector.

    Every real pixel is the mean over ``oversample``^2 points spread evenly over its area,
    each mapped to the virtual detector (:func:`~xray4d.geometry.detector_to_virtual`) and
    interpolated bilinearly in the fine image (zero outside it): the pixel's footprint on
    the fine grid, not the reconstruction's resampling of the coarse one.

    Args:
        fine: (V, size * oversample, size * oversample + 2 pad) fine line integrals (in
            voxel units) of one frame on the virtual detector.
        detector: the detector geometry; frame ``frame`` is used.
        size: detector pixels per side; oversample, pad: as for :func:`acquire`.

    Returns:
        (V, size, size) float64.
    """
    v, os_ = fine.shape[0], oversample
    sub = (torch.arange(os_, dtype=torch.float64) + 0.5) / os_ - 0.5
    k = (torch.arange(size, dtype=torch.float64)[:, None] + sub[None, :]).reshape(-1)
    rows, cols = k[:, None], k[None, :]
    shift, tilt, mag = (torch.as_tensor(a[frame], dtype=torch.float64)
                        for a in (detector.shift_px, detector.tilt_deg, detector.magnification))
    u, z = detector_to_virtual(rows[None], cols[None], shift[:, None, None, :],
                               tilt[:, None, None], mag[:, None, None], size, size)
    # centred coarse coordinate c -> fine index os c + (n_fine - 1) / 2 (+ pad for columns)
    n_rows, n_cols = fine.shape[1], fine.shape[2]
    fx = u * os_ + (size * os_ - 1) / 2.0 + pad
    fz = z * os_ + (size * os_ - 1) / 2.0
    grid = torch.stack([2 * fx / max(n_cols - 1, 1) - 1, 2 * fz / max(n_rows - 1, 1) - 1], -1)
    out = torch.nn.functional.grid_sample(fine.to(torch.float64)[:, None], grid,
                                          mode="bilinear", padding_mode="zeros",
                                          align_corners=True)[:, 0]
    return out.reshape(v, size, os_, size, os_).mean(dim=(2, 4))


def acquire(render: Callable[[int], FineFrame], frames: int, size: int, views: int,
            oversample: int, project: FineProjector, *, pad: int = 0,
            detector: DetectorGeometry | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Voxel-averaged truth and noise-free projections of a scene.

    Args:
        render: ``render(i)`` gives frame i on the fine grid (or None: nothing in view).
        frames, size, views: shape of the result: (frames, size, size, size) truth and
            (frames, views, size, size) projections.
        oversample: sub-voxels (and detector sub-pixels) per axis, >= 1.
        project: the fine projector, e.g. :class:`BoxProjector` of the frames' angles
            (on ``size * oversample + 2 pad`` fine columns).
        pad: fine voxels added on each side along y and x for a scene wider than the
            field of view (a multiple of ``oversample``): the rays through the field of
            view cross the whole padded grid, the detector keeps its central
            ``size * oversample`` fine pixels and the truth the central voxels
            (:func:`~.sampling.central`).
        detector: per-view detector geometry (shift, tilt, magnification); None or ideal:
            the virtual detector's pixel blocks, else :func:`fine_to_detectors`.

    Returns:
        ``(truth, clean)``, both float32: the block means of the fine frames, and the
        block means of their fine line integrals (in voxel units).
    """
    n_fine = size * oversample
    truth = np.zeros((frames, size, size, size), dtype=np.float32)
    clean = np.zeros((frames, views, size, size), dtype=np.float32)
    with torch.no_grad():
        for i in range(frames):
            got = render(i)
            if got is None:
                continue
            (bz, by, bx), occ = got
            inner = central(got, n_fine, pad)
            if inner is not None:
                idx = coarse_index(inner[0], oversample)
                truth[(i,) + idx] = block_mean(inner[1], oversample, (0, 1, 2)).numpy()
            # fine line integrals are in fine-pixel units: divide by oversample
            if detector is not None and not detector.ideal:
                full = torch.zeros((views, n_fine, n_fine + 2 * pad), dtype=occ.dtype)
                full[:, bz, :] = project(occ, by, bx, i) / oversample
                clean[i] = fine_to_detectors(full, detector, i, size, oversample, pad).numpy()
                continue
            fine = project(occ, by, bx, i)[:, :, pad:pad + n_fine] / oversample
            rows = slice(bz.start // oversample, bz.stop // oversample)
            clean[i, :, rows, :] = block_mean(fine, oversample, (1, 2)).numpy()
    return truth, clean


def simulate_recording(volume: np.ndarray | torch.Tensor, angles_deg: Sequence[float] | np.ndarray,
                       *, noise: float = 0.0, seed: int = 0, time: np.ndarray | None = None,
                       attrs: dict[str, Any] | None = None) -> Recording:
    """Forward-project a volume f[t, z, y, x] into a recording, keeping it as truth.

    Args:
        volume: (T, Z, Y, X) with Y = X (a (Z, Y, X) array is one frame).
        angles_deg: view angles in degrees, (V,) or (T, V).
        noise: Gaussian noise, standard deviation ``noise * max(clean projections)``.
        seed: seed of the noise.
        time: (T,) frame times, default 0 .. T-1.
        attrs: root attributes of the recording (description, pixel_size_m, ...).

    Returns:
        a ``line_integral`` :class:`~xray4d.data.Recording` (T, V, Z, X) with the
        volume as ``truth``. The projector is the dense one of ``projector.py``
        at the volume's own resolution.
    """
    vol = torch.as_tensor(np.asarray(volume, dtype=np.float32))
    if vol.dim() == 3:
        vol = vol[None]
    if vol.dim() != 4 or vol.shape[2] != vol.shape[3]:
        raise ValueError(f"volume must have shape (T, Z, Y, X) with Y = X, got {tuple(vol.shape)}")
    if not torch.isfinite(vol).all():
        raise ValueError("volume contains NaN or Inf values")
    frames, height, width = vol.shape[0], vol.shape[1], vol.shape[3]
    angles = angles_per_frame(angles_deg, frames)
    geometry = Geometry.from_angles(angles, frames, height, width,
                                    (attrs or {}).get("pixel_size_m"))
    projector = Projector(geometry)
    clean = np.zeros((frames, angles.shape[1], height, width), dtype=np.float32)
    with torch.no_grad():
        for i in range(frames):
            clean[i] = projector.forward(vol[i:i + 1], frames=[i])[0].numpy()
    data = add_noise(clean, noise, seed)
    if time is None:
        time = np.arange(frames, dtype=np.float64)
    time = np.asarray(time, dtype=np.float64)
    if time.shape != (frames,):
        raise ValueError(f"time must have shape ({frames},), got {time.shape}")
    return Recording(data, geometry, "line_integral", time=time, truth=vol.numpy().copy(),
                     attrs=dict(attrs or {}))
