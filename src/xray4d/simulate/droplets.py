"""The droplet collision scene: a binary droplet collision as truth volumes and a recording.

Two drops approach, touch, coalesce through a growing neck and the merged drop
oscillates (or, with ``separation``, stretch apart and pinch off into two
drops); the model, its units and its timeline are in :mod:`.droplet_kinematics`.
Each frame the liquid is rendered as an anti-aliased occupancy on the fine grid
of :mod:`.sampling`, inside the box that holds it: :func:`droplet_truth` averages
it into voxels, :func:`simulate_droplets` also projects it on the fine detector
(:class:`~.acquisition.BoxProjector`, so the cost scales with the liquid's box).
"""
from __future__ import annotations

import json
import math
from typing import Any, Sequence

import numpy as np
import torch

from ..data import Recording
from ..geometry import DetectorGeometry, Geometry
from .acquisition import BoxProjector, acquire, add_noise, angles_per_frame
from .droplet_kinematics import DropletCollision, DropletState, Kinematics
from .sampling import (FineBox, FineFrame, check_render_args, fine_coordinates, normalised_times,
                       voxelise)

__all__ = ["droplet_truth", "simulate_droplets"]


# ---------------------------------------------------------------- rendering

def _box(state: DropletState, kin: Kinematics, n_fine: int, oversample: int) -> FineBox | None:
    """Fine-voxel index ranges (z, y, x) that hold the liquid, aligned to blocks of
    ``oversample``; None when the liquid is outside the field of view."""
    lam = state.stretch
    grow = max(lam, lam ** -0.5)
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for c, r in zip(state.centres, (kin.r1, kin.r2)):
        # inside the smooth union min(d1, d2) <= k/4; plus one fine voxel of anti-aliasing
        reach = grow * (state.scale * (r + state.blend / 4) + 1.0 / n_fine)
        lo = np.minimum(lo, c - reach)
        hi = np.maximum(hi, c + reach)
    half = (n_fine - 1) / 2.0
    # x, y, z -> index; one voxel of margin for the anti-aliasing ramp
    i_lo = np.floor(lo * n_fine + half).astype(int) - 1
    i_hi = np.ceil(hi * n_fine + half).astype(int) + 2
    i_lo = np.clip((i_lo // oversample) * oversample, 0, n_fine)
    i_hi = np.clip(-(-i_hi // oversample) * oversample, 0, n_fine)
    if np.any(i_hi <= i_lo):
        return None
    sx, sy, sz = (slice(int(a), int(b)) for a, b in zip(i_lo, i_hi))
    return sz, sy, sx


def _render_fine(state: DropletState, kin: Kinematics, n_fine: int, oversample: int,
                 value: float) -> FineFrame:
    """Anti-aliased occupancy of the liquid on the fine grid, inside its bounding box.

    Returns the fine-voxel index ranges (z, y, x) of the box and the occupancy
    there, or None when the liquid is outside the field of view.
    """
    box = _box(state, kin, n_fine, oversample)
    if box is None:
        return None
    coords = torch.as_tensor(fine_coordinates(n_fine), dtype=torch.float32)
    z, y, x = coords[box[0]], coords[box[1]], coords[box[2]]
    e0, e1, e2 = (float(c) for c in state.axis)
    s, lam = state.scale, state.stretch
    # world -> canonical frame: axial coordinate and squared distance from the axis,
    # undoing the scale s and the volume-preserving stretch (lam along, lam^-1/2 across)
    along = (e0 * x)[None, None, :] + (e1 * y)[None, :, None] + (e2 * z)[:, None, None]
    radial2 = (x * x)[None, None, :] + (y * y)[None, :, None] + (z * z)[:, None, None]
    radial2.addcmul_(along, along, value=-1.0).clamp_min_(0.0).mul_(lam / (s * s))
    along.mul_(1.0 / (s * lam))
    d = state.distance
    a1, a2 = -kin.m2 / kin.mass * d, kin.m1 / kin.mass * d
    d1 = (along - a1).square_().add_(radial2).sqrt_().sub_(kin.r1)
    d2 = along.sub_(a2).square_().add_(radial2).sqrt_().sub_(kin.r2)
    del radial2
    k = state.blend
    if k > 0:
        # polynomial smooth minimum, in place: d2 + (d1 - d2) h - k h (1 - h)
        h = torch.sub(d2, d1).mul_(0.5 / k).add_(0.5).clamp_(0.0, 1.0)
        diff = d1.sub_(d2)
        sdf = d2.addcmul_(diff, h)
        sdf.addcmul_(h, h.neg().add_(1.0), value=-k)
    else:
        sdf = torch.minimum(d1, d2)
    # back to world units, then to fine voxels: clamp(0.5 - sdf) is the
    # anti-aliased fraction of a voxel inside
    occ = sdf.mul_(-s * n_fine).add_(0.5).clamp_(0.0, 1.0)
    if value != 1.0:
        occ.mul_(value)
    return box, occ



def droplet_truth(params: DropletCollision, size: int = 64, frames: int = 40, *,
                  times: Sequence[float] | np.ndarray | None = None,
                  oversample: int = 2) -> np.ndarray:
    """Ground-truth volumes f[t, z, y, x] of a droplet collision, float32.

    Args:
        params: the collision.
        size: voxels along each axis (Z = Y = X = size; voxel = detector pixel).
        frames: number of frames, at normalised times ``i / (frames - 1)``;
            ignored when ``times`` is given.
        times: normalised times to render instead (any real values).
        oversample: sub-voxels per axis averaged into each voxel; each
            sub-voxel is anti-aliased as ``clamp(0.5 - sdf, 0, 1)``.

    Returns:
        array (T, size, size, size), ``params.value`` inside, 0 outside.
    """
    check_render_args(size, oversample)
    tt = normalised_times(frames) if times is None else np.asarray(times, np.float64).reshape(-1)
    kin = Kinematics(params)
    n_fine = size * oversample

    def render(i: int) -> FineFrame:
        return _render_fine(kin.state(tt[i]), kin, n_fine, oversample, float(params.value))

    return voxelise(render, len(tt), size, oversample)


# ---------------------------------------------------------------- recording

def simulate_droplets(params: DropletCollision | None = None, size: int = 64, frames: int = 40,
                      angles_deg: Sequence[float] | np.ndarray = (0.0, 23.8), noise: float = 0.01,
                      seed: int = 0, *, oversample: int = 2, frame_interval_s: float = 1.0,
                      pixel_size_m: float | None = None,
                      detector: DetectorGeometry | None = None) -> Recording:
    """Simulate a recording of a droplet collision, with its ground truth.

    The liquid is rendered on a grid ``oversample`` times finer than the voxel
    grid; the truth is the block average of that grid and the projections are
    its line integrals on a detector ``oversample`` times finer, averaged over
    detector pixel blocks (so the data are not made by the projector that
    reconstructs them).

    Args:
        params: the collision (default :class:`DropletCollision()`).
        size: detector width and height W = H = size; the volume is size^3.
        frames: number of frames T, at normalised times ``i / (T - 1)``.
        angles_deg: view angles in degrees, shape (V,) or (T, V).
        noise: Gaussian noise, standard deviation ``noise * max(clean projections)``.
        seed: seed of the noise.
        oversample: fine sub-voxels (and sub-pixels) per axis, >= 1.
        frame_interval_s: time between frames written to ``/exchange/time``.
        pixel_size_m: optional pixel size recorded in the attributes.
        detector: per-view detector geometry the projections are recorded with
            (:func:`~.acquisition.fine_to_detectors`), kept in the geometry; None: ideal.

    Returns:
        a :class:`~xray4d.data.Recording` of ``line_integral`` projections
        (T, V, size, size) float32 with ``truth`` (T, size, size, size) float32;
        its ``description`` attribute names the phase of each frame.
    """
    params = DropletCollision() if params is None else params
    check_render_args(size, oversample)
    if not (frame_interval_s > 0 and math.isfinite(frame_interval_s)):
        raise ValueError(f"frame_interval_s must be > 0, got {frame_interval_s}")
    if not (noise >= 0 and math.isfinite(noise)):
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    tt = normalised_times(frames)
    angles = angles_per_frame(angles_deg, frames)
    kin = Kinematics(params)
    n_fine = size * oversample
    phases: list[str] = []

    def render(i: int) -> FineFrame:
        state = kin.state(tt[i])
        phases.append(state.phase)
        return _render_fine(state, kin, n_fine, oversample, float(params.value))

    truth, clean = acquire(render, frames, size, angles.shape[1], oversample,
                           BoxProjector(angles, n_fine), detector=detector)
    description = {
        "phantom": "droplet_collision",
        "parameters": params.to_dict(),
        "size": int(size), "frames": int(frames), "oversample": int(oversample),
        "noise": float(noise), "seed": int(seed),
        "normalised_times": "frame i at i / (frames - 1)",
        "phases": phases,
    }
    attrs: dict[str, Any] = {"description": json.dumps(description)}
    if pixel_size_m is not None:
        attrs["pixel_size_m"] = float(pixel_size_m)
    geometry = Geometry.from_angles(angles, frames, size, size, pixel_size_m, detector)
    return Recording(add_noise(clean, noise, seed), geometry, "line_integral",
                     time=np.arange(frames, dtype=np.float64) * frame_interval_s,
                     truth=truth, attrs=attrs)
