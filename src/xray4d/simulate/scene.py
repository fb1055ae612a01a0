"""What the scene families share: anti-aliased shapes on the fine grid, boxes, and the recording.

A scene module describes its object at a normalised time as a signed distance
(negative inside, in units of the field of view W) or directly as values on a
box of the fine grid (:mod:`.sampling`). The helpers here turn a world box into
a block-aligned fine box (:func:`fine_box`), give the coordinates of its fine
voxels (:func:`box_coordinates`), turn a signed distance into the anti-aliased
fraction of each fine voxel inside (:func:`occupancy`: ``clamp(0.5 - sdf, 0,
1)`` with the distance in fine voxels, as the droplet scene does), and make the
``line_integral`` recording of a scene (:func:`record`: the truth is the block
mean of the fine frames, the projections the fine line integrals on a detector
``oversample`` times finer averaged over pixel blocks, see
:func:`~.acquisition.acquire`). Rotations (:func:`rotation`) serve the rigid
bodies.
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..data import Recording
from ..geometry import DetectorGeometry, Geometry
from .acquisition import BoxProjector, acquire, add_noise, angles_per_frame
from .sampling import FineBox, FineFrame, check_render_args, voxelise

__all__ = ["occupancy", "fine_box", "box_coordinates", "rotation", "smoothstep", "pad_for",
           "scene_truth", "record", "check_simulation_args"]

#: coordinates of a box's fine voxels: z (nz, 1, 1), y (1, ny, 1), x (1, 1, nx), W units
BoxCoordinates = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def occupancy(sdf: torch.Tensor, n_fine: int) -> torch.Tensor:
    """Anti-aliased fraction of each fine voxel inside: ``clamp(0.5 - sdf * n_fine, 0, 1)``.

    ``sdf`` is a signed distance in W units (negative inside), exact or correct
    to first order near the surface; ``n_fine`` fine voxels span W.
    """
    return (0.5 - sdf * n_fine).clamp_(0.0, 1.0)


def smoothstep(x: float) -> float:
    """``3 x^2 - 2 x^3`` of x clipped to [0, 1]: 0 below 0, 1 above 1, flat at both ends."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


def pad_for(half_width: float, n_fine: int, oversample: int) -> int:
    """Fine voxels to add on each side along y and x so that the grid reaches ``half_width``
    (W units; the field of view reaches 0.5), a multiple of ``oversample``; 0 when it fits."""
    extra = max(0.0, half_width - 0.5) * n_fine
    return int(math.ceil(extra / oversample)) * oversample


def fine_box(lo: Sequence[float], hi: Sequence[float], n_fine: int, oversample: int, *,
             pad: int = 0) -> FineBox | None:
    """Block-aligned fine-voxel index ranges (z, y, x) holding the world box ``lo`` .. ``hi``.

    Args:
        lo, hi: corners (x, y, z) in W units.
        n_fine: fine voxels across the field of view (``size * oversample``).
        oversample: the box is aligned to blocks of this many fine voxels.
        pad: fine voxels added on each side along y and x (see :func:`pad_for`).

    Returns:
        the ranges with two fine voxels of margin for the anti-aliasing, clipped to
        the grid (``n_fine`` rows, ``n_fine + 2 pad`` columns along y and x); None
        when the box is outside.
    """
    half = (n_fine - 1) / 2.0
    sizes = (n_fine + 2 * pad, n_fine + 2 * pad, n_fine)           # x, y, z
    offsets = (pad, pad, 0)
    out = []
    for a, b, n, off in zip(lo, hi, sizes, offsets):
        i0 = int(math.floor(a * n_fine + half)) - 2 + off
        i1 = int(math.ceil(b * n_fine + half)) + 3 + off
        i0 = min(max((i0 // oversample) * oversample, 0), n)
        i1 = min(max(-(-i1 // oversample) * oversample, 0), n)
        if i1 <= i0:
            return None
        out.append(slice(i0, i1))
    sx, sy, sz = out
    return sz, sy, sx


def box_coordinates(box: FineBox, n_fine: int, *, pad: int = 0,
                    dtype: torch.dtype = torch.float32) -> BoxCoordinates:
    """Centres of a box's fine voxels in W units, shaped to broadcast: z (nz, 1, 1),
    y (1, ny, 1), x (1, 1, nx); y and x indices count from the padded grid's edge."""
    def axis(s: slice, off: int) -> torch.Tensor:
        i = torch.arange(s.start, s.stop, dtype=torch.float64) - off
        return ((i - (n_fine - 1) / 2.0) / n_fine).to(dtype)
    bz, by, bx = box
    return axis(bz, 0)[:, None, None], axis(by, pad)[None, :, None], axis(bx, pad)[None, None, :]


def rotation(axis: Sequence[float], angle_deg: float) -> np.ndarray:
    """Rotation matrix (3, 3) by ``angle_deg`` about ``axis`` (x, y, z), right-handed."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    phi = math.radians(angle_deg)
    return np.eye(3) + math.sin(phi) * k + (1 - math.cos(phi)) * (k @ k)


def check_simulation_args(size: int, frames: int, noise: float, oversample: int,
                          frame_interval_s: float) -> None:
    """Refuse (ValueError, one line) sizes, noise or a frame interval out of range."""
    check_render_args(size, oversample)
    if int(frames) != frames or frames < 1:
        raise ValueError(f"frames must be an integer >= 1, got {frames}")
    if not (noise >= 0 and math.isfinite(noise)):
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    if not (frame_interval_s > 0 and math.isfinite(frame_interval_s)):
        raise ValueError(f"frame_interval_s must be > 0, got {frame_interval_s}")


def scene_truth(make_render: Callable[[int, int], Callable[[int], FineFrame]], size: int,
                frames: int, oversample: int, pad: int = 0) -> np.ndarray:
    """Voxel-averaged truth (T, size, size, size) float32 of a scene.

    ``make_render(n_fine, pad)`` gives the scene's ``render(i)`` (frame i at normalised
    time ``i / (frames - 1)``) on a grid of ``n_fine = size * oversample`` fine voxels
    across the field of view, padded by ``pad``.
    """
    check_render_args(size, oversample)
    n_fine = size * oversample
    return voxelise(make_render(n_fine, pad), frames, size, oversample, pad)


def record(make_render: Callable[[int, int], Callable[[int], FineFrame]], name: str,
           params: Any, *, size: int, frames: int, angles_deg: Sequence[float] | np.ndarray,
           noise: float, seed: int, oversample: int, frame_interval_s: float, pad: int = 0,
           extra: dict[str, Any] | None = None,
           detector: DetectorGeometry | None = None) -> Recording:
    """The ``line_integral`` recording of a scene, with its voxel-averaged truth.

    Args:
        make_render: as for :func:`scene_truth`.
        name: the scene's name, written to the ``description`` attribute.
        params: the scene's parameters (a dataclass), written there too.
        size: detector width and height; the volume is size^3.
        frames: frames T, at normalised times ``i / (T - 1)``.
        angles_deg: view angles in degrees, (V,) or (T, V).
        noise: Gaussian noise, standard deviation ``noise * max(clean projections)``.
        seed: seed of the noise.
        oversample: fine sub-voxels (and detector sub-pixels) per axis.
        frame_interval_s: time between frames written to ``/exchange/time``.
        pad: fine voxels added along y and x for a scene wider than the field of view.
        extra: more entries of the description.
        detector: per-view detector geometry the projections are recorded with (shift,
            tilt, magnification; :func:`~.acquisition.fine_to_detectors`), kept in the
            recording's geometry; None: ideal.
    """
    check_simulation_args(size, frames, noise, oversample, frame_interval_s)
    angles = angles_per_frame(angles_deg, frames)
    n_fine = size * oversample
    truth, clean = acquire(make_render(n_fine, pad), frames, size, angles.shape[1], oversample,
                           BoxProjector(angles, n_fine + 2 * pad), pad=pad, detector=detector)
    description = {"phantom": name, "parameters": dataclasses.asdict(params),
                   "size": int(size), "frames": int(frames), "oversample": int(oversample),
                   "noise": float(noise), "seed": int(seed),
                   "normalised_times": "frame i at i / (frames - 1)", **(extra or {})}
    return Recording(add_noise(clean, noise, seed),
                     Geometry.from_angles(angles, frames, size, size, detector=detector),
                     "line_integral",
                     time=np.arange(frames, dtype=np.float64) * frame_interval_s, truth=truth,
                     attrs={"description": json.dumps(description)})

