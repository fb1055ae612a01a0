"""The data types that flow through xray4d: a recording, a reconstruction, a fit's result.

No file formats here (see :mod:`xray4d.io`): the reconstructors and the simulator
work on these in memory.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .geometry import DetectorGeometry, Geometry

__all__ = ["Recording", "Reconstruction", "FitResult", "QUANTITIES"]

#: what ``/exchange/data`` may hold (its ``quantity`` attribute)
QUANTITIES = ("line_integral", "intensity", "phase")


@dataclass
class Recording:
    """A movie of T frames, each seen from V views: projections + geometry + metadata.

    Attributes:
        projections: (T, V, H, W) float32.
        geometry: view angles (T, V) and detector size.
        quantity: ``line_integral``, ``intensity`` or ``phase``.
        time: (T,) acquisition time of each frame, seconds.
        white, dark: flat and dark fields (for ``intensity``), or None.
        truth: (T, H, W, W) ground-truth volume f[t, z, y, x] (simulations), or None.
        attrs: root attributes (pixel_size_m, energy_keV, propagation_distance_m, description).
        path: file it came from, if any.
    """

    projections: np.ndarray
    geometry: Geometry
    quantity: str = "line_integral"
    time: np.ndarray | None = None
    white: np.ndarray | None = None
    dark: np.ndarray | None = None
    truth: np.ndarray | None = None
    truth_beta: np.ndarray | None = None
    attrs: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

    def __post_init__(self) -> None:
        if self.time is None:
            self.time = np.arange(self.projections.shape[0], dtype=np.float64)

    @property
    def frames(self) -> int:
        return self.projections.shape[0]

    @property
    def views(self) -> int:
        return self.projections.shape[1]

    @property
    def has_truth(self) -> bool:
        return self.truth is not None


@dataclass
class Reconstruction:
    """A reconstructed movie f[t, z, y, x] (delta, and beta when two channels)."""

    volume: np.ndarray
    time: np.ndarray
    method: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float = 0.0
    source: str = ""
    volume_beta: np.ndarray | None = None
    path: str | None = None
    #: further string attributes of ``/reconstruction``, e.g. ``quantity`` and ``units``
    #: (``delta``, ``dimensionless``) of a reconstruction from intensity data
    attrs: dict[str, str] = field(default_factory=dict)
    #: (T, 3, Z, Y, X) velocity (vx, vy, vz) in voxels per second of the flow prior, or None
    velocity: np.ndarray | None = None
    #: the detector geometry found by self-calibration (``--calibrate``), or None
    detector: DetectorGeometry | None = None


@dataclass
class FitResult:
    """What a fit returns: the reconstruction, the fitted field, and the fit's history."""

    reconstruction: Reconstruction
    field: torch.nn.Module
    losses: list[float] = field(default_factory=list)
    loss_times: list[float] = field(default_factory=list)
    iterations: int = 0
    stopped_by: str = "iterations"
    predicted: np.ndarray | None = None
    #: what ``predicted`` is compared with when it differs from the recording's projections
    #: (e.g. flat/dark-corrected intensities or retrieved line integrals of intensity data)
    measured: np.ndarray | None = None
    #: unweighted value of every loss term at every step, by term name (``losses`` is the
    #: data term's); empty for methods without loss terms
    loss_terms: dict[str, list[float]] = field(default_factory=dict)
    #: the flow prior's fitted velocity field (:mod:`xray4d.reconstruct.flow`), or None
    velocity_field: torch.nn.Module | None = None
