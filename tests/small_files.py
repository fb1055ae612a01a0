"""Tiny recording and reconstruction files written with h5py directly (not through xray4d's
writers), for the tests of how the verbs treat their inputs and outputs."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

#: frames, detector rows and columns of :func:`write_recording` (two views at 0 and 90 deg)
T, H, W = 2, 8, 8


def write_recording(path: Path) -> Path:
    """A small valid recording with truth: a cube seen at 0 and 90 degrees."""
    truth = np.zeros((T, H, W, W), np.float32)
    truth[:, 2:6, 2:6, 2:6] = 1.0
    with h5py.File(path, "w") as f:
        f["/exchange/data"] = np.stack([truth.sum(axis=2), truth.sum(axis=3)], axis=1)
        f["/exchange/theta"] = np.array([0.0, 90.0])
        f["/ground_truth/volume"] = truth
    return path


def write_recon(path: Path, size: int = W) -> Path:
    """A reconstruction file of ``T`` frames of ``size``^3 voxels, all 0.5."""
    with h5py.File(path, "w") as f:
        f["/reconstruction/volume"] = np.full((T, size, size, size), 0.5, np.float32)
    return path
