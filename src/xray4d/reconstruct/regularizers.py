"""Regularisers: loss terms (:class:`~xray4d.reconstruct.losses.LossTerm`) with a name
and a weight, built from the config's ``regularizers`` section.

Each has a ``penalty(field, rendered)`` of the field being fitted and the frames rendered
in the step (unweighted); as a loss term it is that penalty on the step's
``prior_volume``.
"""
from __future__ import annotations

import torch

from ..fields.base import Field
from .losses import LossTerm, Step

__all__ = ["Regularizer", "PlaneTV", "TemporalSmoothness", "L1Sparsity", "VolumeTV",
           "MaterialPrior", "VolumeConservation", "build_regularizers", "VALUE_MARGIN"]

#: the field's bound over the value of the material it stands for: the value estimates and
#: the intensity path bound the field at this times the material's value, and
#: :class:`MaterialPrior` divides the bound by it to find that value again
VALUE_MARGIN = 1.02


class Regularizer(LossTerm):
    """Base: a name, a weight and a penalty of the field and the rendered frames."""

    name = "regularizer"

    def penalty(self, field: Field, rendered: torch.Tensor) -> torch.Tensor:
        """The unweighted penalty of ``field`` and the frames ``rendered`` in this step."""
        raise NotImplementedError

    def value(self, step: Step) -> torch.Tensor:
        return self.penalty(step.field, step.prior_volume)

    def __call__(self, field: Field, rendered: torch.Tensor) -> torch.Tensor:
        """The weighted penalty."""
        return self.weight * self.penalty(field, rendered)


def _planes(field: Field) -> dict[str, torch.Tensor]:
    planes = getattr(field, "planes", None)
    return dict(planes.items()) if planes is not None else {}


class PlaneTV(Regularizer):
    """Squared total variation of the feature planes along their spatial axes."""

    name = "plane_tv"

    def penalty(self, field: Field, rendered: torch.Tensor) -> torch.Tensor:
        total = rendered.new_zeros(())
        for name, p in _planes(field).items():
            # stored as (C, rows, cols): cols is always a spatial axis
            total = total + (p[:, :, 1:] - p[:, :, :-1]).pow(2).mean()
            if "t" not in name:
                total = total + (p[:, 1:, :] - p[:, :-1, :]).pow(2).mean()
        return total


class TemporalSmoothness(Regularizer):
    """Squared second differences of the time planes along time (smooth motion)."""

    name = "temporal_smoothness"

    def penalty(self, field: Field, rendered: torch.Tensor) -> torch.Tensor:
        total = rendered.new_zeros(())
        for name, p in _planes(field).items():
            if "t" in name and p.shape[1] > 2:
                total = total + (p[:, 2:] - 2 * p[:, 1:-1] + p[:, :-2]).pow(2).mean()
        return total


class L1Sparsity(Regularizer):
    """Mean absolute value of the rendered frames (most of a droplet scene is empty)."""

    name = "l1_sparsity"

    def __init__(self, weight: float, value_scale: float = 1.0) -> None:
        super().__init__(weight)
        self.value_scale = value_scale

    def penalty(self, field: Field, rendered: torch.Tensor) -> torch.Tensor:
        return rendered.abs().mean() / self.value_scale


class VolumeTV(Regularizer):
    """Isotropic total variation of the rendered frames (mean |grad f|, forward differences).

    For a homogeneous object this is proportional to its surface area: the
    penalty prefers, among shapes that explain the projections, the one of least
    surface, which is what surface tension does to a liquid. Sharp edges are not
    penalised more than soft ones (unlike a squared gradient).
    """

    name = "volume_tv"

    def __init__(self, weight: float, value_scale: float = 1.0, eps: float = 1e-8) -> None:
        super().__init__(weight)
        self.value_scale = value_scale
        self.eps = eps

    def penalty(self, field: Field, rendered: torch.Tensor) -> torch.Tensor:
        f = rendered / self.value_scale
        dz = f[..., 1:, :-1, :-1] - f[..., :-1, :-1, :-1]
        dy = f[..., :-1, 1:, :-1] - f[..., :-1, :-1, :-1]
        dx = f[..., :-1, :-1, 1:] - f[..., :-1, :-1, :-1]
        return torch.sqrt(dz * dz + dy * dy + dx * dx + self.eps).mean()


class MaterialPrior(Regularizer):
    """Double-well penalty ``mean(f^2 (1 - f)^2)``, f the value over the material's value.

    A sample of one known material in vacuum (water droplets) has values 0 or
    the material's value and partial values only where a voxel is cut by the
    surface. The penalty is zero at both and pulls every other value towards the
    nearer one: it decides what the data barely determine (phase contrast at
    Fresnel number ~1 transfers the low spatial frequencies of delta weakly).
    ``value_scale`` is the field's bound; the material's value is that over
    ``margin`` (:data:`VALUE_MARGIN`, as the intensity path and the value
    estimates set the bound). With several output channels (B, O, Z, Y, X) only
    the first (delta) is penalised.
    """

    name = "material_prior"

    def __init__(self, weight: float, value_scale: float = 1.0,
                 margin: float = VALUE_MARGIN) -> None:
        super().__init__(weight)
        self.level = value_scale / margin

    def penalty(self, field: Field, rendered: torch.Tensor) -> torch.Tensor:
        if rendered.dim() == 5:  # (B, O, Z, Y, X): the first channel is the material's value
            rendered = rendered[:, 0]
        f = rendered / self.level
        return (f * (1 - f)).pow(2).mean()


class VolumeConservation(Regularizer):
    """Relative variance of the frames' totals: ``var_t(S_t) / mean_t(S_t)^2``, S_t the sum
    of the values of frame t, over the frames of the batch.

    A closed sample (droplets that stay in the field of view; nothing evaporates in
    microseconds) holds the same amount of material in every frame, so the sum of delta
    over the volume is the same at every time, whatever the shapes do (for one material
    it is the volume of the liquid times its delta). The penalty is zero for any set of
    frames with equal totals and does not depend on the scale of the values. It decides
    what the data barely determine: in phase contrast at Fresnel number ~1 the extent
    of the drops along the beam (their thickness, a low spatial frequency of the
    projected phase) is weakly transferred, and a fit's drops came out up to 8 % too
    large in one frame and 6 % too small in another (docs/design-notes.md). Not for
    samples that enter or leave the field of view. With several output channels
    (B, O, Z, Y, X) only the first (delta) is used; a batch of one frame gives zero.
    """

    name = "volume_conservation"

    def penalty(self, field: Field, rendered: torch.Tensor) -> torch.Tensor:
        if rendered.dim() == 5:  # (B, O, Z, Y, X): the first channel is delta
            rendered = rendered[:, 0]
        if rendered.shape[0] < 2:
            return rendered.new_zeros(())
        totals = rendered.flatten(1).mean(1)
        tiny = torch.finfo(totals.dtype).tiny
        return totals.var(unbiased=False) / totals.mean().pow(2).clamp_min(tiny)


def build_regularizers(weights: dict[str, float], value_scale: float = 1.0) -> list[Regularizer]:
    """Regularisers with non-zero weight, from a name -> weight mapping."""
    classes = {c.name: c for c in (PlaneTV, TemporalSmoothness, L1Sparsity, VolumeTV,
                                   MaterialPrior, VolumeConservation)}
    out: list[Regularizer] = []
    for name, w in weights.items():
        if name not in classes:
            raise ValueError(f"unknown regulariser {name!r}")
        if w:
            scaled = name in ("l1_sparsity", "volume_tv", "material_prior")
            out.append(classes[name](w, value_scale) if scaled else classes[name](w))
    return out
