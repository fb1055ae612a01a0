"""Shared test setup: one torch thread per worker, the device and dtype every operator test
runs on, and tiny recordings.

``make test`` runs two pytest workers on two cores: one torch thread per worker avoids
oversubscription, which slows small tensor ops by orders of magnitude on a loaded
machine. Tests are laid out like the package (``tests/io`` for ``xray4d/io``, ...);
``@pytest.mark.slow`` marks the long end-to-end ones (``make test`` runs them too;
``pytest -m "not slow"`` skips them while iterating).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from xray4d.data import Recording
from xray4d.io import save_recording
from xray4d.simulate import simulate_droplets, simulate_droplets_intensity

torch.set_num_threads(1)

# test modules may share helpers by importing another test module of this folder by name
# (pytest's importlib mode does not put test folders on sys.path itself)
sys.path.insert(0, str(Path(__file__).parent))

#: where operator tests run: the CPU always, CUDA when there is one
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
#: the dtypes operator tests run in
DTYPES = [torch.float32, torch.float64]


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    """Each available device in turn."""
    return request.param


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request) -> torch.dtype:
    """float32 and float64 in turn."""
    return request.param


@pytest.fixture(scope="session")
def tiny_recording() -> Recording:
    """A droplet collision: 12^3 voxels, 3 frames, views at 0 and 23.8 deg, 1 % noise."""
    return simulate_droplets(size=12, frames=3, noise=0.01, seed=0)


@pytest.fixture(scope="session")
def tiny_intensity_recording() -> Recording:
    """The same collision recorded as noise-free intensities (water, 15 keV, N_F = 1)."""
    return simulate_droplets_intensity(size=12, frames=2, fluence=None, seed=0)


@pytest.fixture
def tiny_recording_file(tmp_path: Path, tiny_recording: Recording) -> Path:
    """:func:`tiny_recording` written to ``tmp_path/rec.h5``."""
    path = tmp_path / "rec.h5"
    save_recording(tiny_recording, path)
    return path
