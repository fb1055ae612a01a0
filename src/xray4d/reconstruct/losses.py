"""Loss terms: what the trainer minimises, each with a name and a weight.

The training loss is the sum of ``weight * value`` over the terms, in order; the
trainer records each term's unweighted value per step (the loss figure and the
output's metadata show every term). A term sees one optimisation :class:`Step`: the
field, the frames of the batch and their rendered volumes. The data term compares
predicted with measured projections; the regularisers (:mod:`.regularizers`) are
terms too, and so is the flow prior (:mod:`.flow`), which fits parameters of its own
(:meth:`LossTerm.parameter_groups`, kept in checkpoints through
:meth:`LossTerm.state_dict`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch

from ..fields.base import Field
from ..projector import Projector

if TYPE_CHECKING:
    from .calibration import DetectorCalibration

__all__ = ["Step", "LossTerm", "ProjectionDataTerm"]


@dataclass
class Step:
    """What the loss terms see of one optimisation step.

    Attributes:
        field: the field being fitted.
        frames: indices of the batch's frames (B,), on the CPU.
        times: their normalised times (B,), on the field's device.
        volume: the frames rendered on the fitting grid, (B, Z, Y, X) or (B, O, Z, Y, X).
        prior_volume: what the volume priors see: ``volume``, or with several output
            channels each channel rescaled to the first channel's bound.
        iteration: steps done before this one.
        fraction: share of training done before this step (of the iterations, or of the
            time budget without them), as the schedule sees it.
    """

    field: Field
    frames: torch.Tensor
    times: torch.Tensor
    volume: torch.Tensor
    prior_volume: torch.Tensor
    iteration: int = 0
    fraction: float = 0.0


class LossTerm:
    """A named, weighted term of the training loss; subclasses implement :meth:`value`."""

    name = "term"

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = float(weight)

    def value(self, step: Step) -> torch.Tensor:
        """The term's unweighted value (a scalar tensor) for this step."""
        raise NotImplementedError

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimiser groups (each with its ``lr``) of parameters the term fits itself (e.g.
        the flow prior's velocity field); none by default."""
        return []

    def state(self) -> dict[str, Any]:
        """What the term keeps between steps, for the checkpoint: tensors and plain values
        only (default: nothing)."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state` on resume (KeyError, ValueError or RuntimeError when it
        does not fit)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(weight={self.weight:g})"


class ProjectionDataTerm(LossTerm):
    """Mean squared error between predicted and measured projections, relative to the data's
    scale: ``mean((M(P f) - d)^2) / scale^2``.

    ``P`` is the projector (line integrals of every output channel), ``M`` the measurement
    model (identity for line-integral data; e.g.
    :class:`~xray4d.physics.measurement.IntensityModel` for intensities). ``scale`` is the
    largest absolute datum, or with a measurement model the largest contrast about 1 (the
    flat-corrected transmission of empty space).

    Args:
        projector: projects rendered frames at the recording's angles.
        measured: (T, V, H, W) measured projections on the device.
        measurement: predicted line integrals -> the measured quantity, or None.
        channels: output channels of the field (1, or 2 for delta and beta).
        mask: (T, V, H, W) bool on the device, the pixels the term sees (None: all). The
            mean is then over those pixels, and ``scale`` is theirs: nothing of the other
            pixels reaches the fit (held-out pixels, :mod:`.holdout`).
        calibration: the detector geometry fitted with the field
            (:class:`~.calibration.DetectorCalibration`), or None: the projector's own.
    """

    name = "data"

    def __init__(self, projector: Projector, measured: torch.Tensor,
                 measurement: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 channels: int = 1, weight: float = 1.0,
                 mask: torch.Tensor | None = None,
                 calibration: "DetectorCalibration | None" = None) -> None:
        super().__init__(weight)
        self.calibration = calibration
        self.projector = projector
        self.measured = measured
        self.measurement = measurement
        self.channels = channels
        self.mask = mask
        contrast = measured if measurement is None else measured - 1
        if mask is not None:
            contrast = contrast[mask]
        self.scale = float(contrast.abs().max()) if contrast.numel() else 0.0
        self.scale = self.scale or 1.0

    def _project(self, volume: torch.Tensor, frames: np.ndarray, hold: bool) -> torch.Tensor:
        if self.calibration is None:
            return self.projector.forward(volume, frames=frames)
        return self.calibration(self.projector.project_virtual(volume, frames=frames), frames,
                                hold)

    def predict(self, volume: torch.Tensor, frames: np.ndarray, hold: bool = False
                ) -> torch.Tensor:
        """The measured quantity predicted from rendered frames (B, [O,] Z, Y, X);
        ``hold``: a calibrated detector geometry enters without gradient."""
        if self.channels == 1:
            lines = self._project(volume, frames, hold)
        else:
            b, o = volume.shape[:2]
            lines = self._project(volume.flatten(0, 1), np.repeat(frames, o), hold)
            lines = lines.unflatten(0, (b, o))
        return lines if self.measurement is None else self.measurement(lines)

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The calibrated detector geometry's groups, if any."""
        return [] if self.calibration is None else self.calibration.parameter_groups()

    def state(self) -> dict[str, Any]:
        """The calibrated detector geometry, if any (for the checkpoint)."""
        if self.calibration is None:
            return {}
        return {k: v.detach().clone() for k, v in self.calibration.state_dict().items()}

    def load_state(self, state: dict[str, Any]) -> None:
        if self.calibration is not None:
            self.calibration.load_state_dict(state)

    def value(self, step: Step) -> torch.Tensor:
        hold = self.calibration is not None and \
            step.fraction < self.calibration.config.warmup_fraction
        pred = self.predict(step.volume, step.frames.numpy(), hold)
        frames = step.frames.to(self.measured.device)
        target = self.measured[frames]
        if self.mask is None:
            return (pred - target).pow(2).mean() / self.scale ** 2
        seen = self.mask[frames]
        # where(), not a product: what is held out never enters, not even as 0 * value
        sq = torch.where(seen, pred - target, torch.zeros((), dtype=pred.dtype,
                                                          device=pred.device)).pow(2)
        return sq.sum() / seen.sum().clamp_min(1) / self.scale ** 2
