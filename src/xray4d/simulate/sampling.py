"""The fine sampling grid that scenes are rendered on, and its reduction to voxels.

A scene is sampled on a grid ``oversample`` times finer than the voxel grid
(``size * oversample`` sub-voxels per axis, lengths in units of the field of
view W, which spans -0.5 .. 0.5); the truth is the mean of each block of
``oversample^3`` sub-voxels, and the projections are taken on a detector
``oversample`` times finer and averaged over each block of pixels. A scene
hands one frame over as a :data:`FineFrame`: a box of the fine grid (aligned
to blocks) that holds the object, and the sampled values there.
"""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ..geometry import centred_coordinates

__all__ = ["FineBox", "FineFrame", "normalised_times", "fine_coordinates", "block_mean",
           "check_render_args", "coarse_index", "whole_box", "central", "voxelise"]

#: fine-voxel index ranges (z, y, x), each a multiple of ``oversample`` long
FineBox = tuple[slice, slice, slice]

#: one frame of a scene on the fine grid: the box holding the object and the values in it
#: (a tensor of the box's shape); None when nothing is inside the field of view
FineFrame = Optional[tuple[FineBox, torch.Tensor]]


def normalised_times(frames: int) -> np.ndarray:
    """Normalised time of each frame: ``i / (frames - 1)`` (0 for a single frame)."""
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if frames == 1:
        return np.zeros(1)
    return np.arange(frames, dtype=np.float64) / (frames - 1)


def fine_coordinates(n_fine: int) -> np.ndarray:
    """Centres of the fine voxels in W units (the volume spans -0.5 .. 0.5)."""
    return centred_coordinates(n_fine) / n_fine


def block_mean(a: torch.Tensor, factor: int, dims: Sequence[int]) -> torch.Tensor:
    """Average non-overlapping blocks of ``factor`` along the given dimensions."""
    if factor == 1:
        return a
    shape: list[int] = []
    red: list[int] = []
    for i, n in enumerate(a.shape):
        if i in dims:
            shape += [n // factor, factor]
            red.append(len(shape) - 1)
        else:
            shape.append(n)
    return a.reshape(shape).mean(dim=red)


def check_render_args(size: int, oversample: int) -> None:
    """Refuse (ValueError) a grid size below 2 or an oversampling below 1, or non-integers."""
    if int(size) != size or size < 2:
        raise ValueError(f"size must be an integer >= 2, got {size}")
    if int(oversample) != oversample or oversample < 1:
        raise ValueError(f"oversample must be an integer >= 1, got {oversample}")


def coarse_index(box: FineBox, oversample: int) -> tuple[slice, slice, slice]:
    """The voxel index ranges (z, y, x) of a block-aligned fine box."""
    return tuple(slice(b.start // oversample, b.stop // oversample)  # type: ignore[return-value]
                 for b in box)


def whole_box(n_fine: int) -> FineBox:
    """The box of the whole fine grid."""
    return slice(0, n_fine), slice(0, n_fine), slice(0, n_fine)


def central(frame: FineFrame, n_fine: int, pad: int) -> FineFrame:
    """The part of a frame inside the field of view, in the indices of the unpadded grid.

    A scene wider than the field of view renders on a grid padded by ``pad`` fine
    voxels on each side along y and x (``n_fine + 2 pad`` columns; z is not
    padded), so that the rays through the field of view cross all of it. ``pad``
    and the box are multiples of the oversampling, so the crop stays block-aligned.
    None when nothing of the frame is inside.
    """
    if frame is None or pad == 0:
        return frame
    (bz, by, bx), values = frame
    y0, y1 = max(by.start, pad), min(by.stop, pad + n_fine)
    x0, x1 = max(bx.start, pad), min(bx.stop, pad + n_fine)
    if y1 <= y0 or x1 <= x0:
        return None
    inner = values[:, y0 - by.start:y1 - by.start, x0 - bx.start:x1 - bx.start]
    return (bz, slice(y0 - pad, y1 - pad), slice(x0 - pad, x1 - pad)), inner


def voxelise(render: Callable[[int], FineFrame], frames: int, size: int,
             oversample: int, pad: int = 0) -> np.ndarray:
    """Voxel-averaged truth f[t, z, y, x] (frames, size, size, size) float32 of a scene.

    ``render(i)`` gives frame i on the grid ``oversample`` times finer (padded by
    ``pad`` fine voxels along y and x, see :func:`central`); voxels outside its
    box are 0.
    """
    out = np.zeros((frames, size, size, size), dtype=np.float32)
    for i in range(frames):
        got = central(render(i), size * oversample, pad)
        if got is None:
            continue
        box, fine = got
        out[(i,) + coarse_index(box, oversample)] = block_mean(fine, oversample, (0, 1, 2)).numpy()
    return out
