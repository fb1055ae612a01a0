"""The flow prior: a learned velocity field that transports the density.

Liquid is neither made nor lost between frames: the density f (here the field's value
over its bound) obeys mass transport, ``df/dt + div(f v) = 0``, for some velocity v, and
a liquid is incompressible, ``div v = 0``. The prior fits a small velocity field
(:class:`~xray4d.fields.velocity.VelocityField`) beside the density field and penalises
both residuals at random space-time collocation points, differentiated by autograd
(:func:`transport_residuals`): two loss terms, ``flow_transport`` (mean squared mass
residual) and ``flow_divergence`` (mean squared divergence), with the weights and the
warm-up of the config's ``flow`` section. Space and time are the fields' normalised
coordinates ([-1, 1] each); both residuals are the same in any per-axis scaling of space,
so a detector of H != W rows needs no correction.

The terms ramp in linearly over ``flow.warmup_iterations`` steps (zero before any
iteration), so the density takes shape from the data before it is asked to move.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..fields.base import Field
from ..fields.velocity import VelocityField, to_voxels_per_second
from .losses import LossTerm, Step

__all__ = ["transport_residuals", "FlowResiduals", "MassTransport", "Incompressibility",
           "build_flow_terms", "render_velocity"]

#: f(points (N, 3), times (N,)) -> (N,), or v(points, times) -> (N, 3)
PointFunction = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def transport_residuals(density: PointFunction, velocity: PointFunction, points: torch.Tensor,
                        times: torch.Tensor, create_graph: bool = True
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """Residuals of mass transport and incompressibility at collocation points.

    Args:
        density: f(points, times) -> (N,).
        velocity: v(points, times) -> (N, 3), components along (x, y, z) as the points.
        points: (N, 3) positions (x, y, z); times: (N,).
        create_graph: keep the graph so that the residuals can be trained through.

    Returns:
        ``(mass, divergence)``, each (N,): ``df/dt + v . grad f + f div v`` (which is
        ``df/dt + div(f v)``) and ``div v``.
    """
    points = points.detach().requires_grad_(True)
    times = times.detach().requires_grad_(True)
    f = density(points, times)
    v = velocity(points, times)
    grad_f, f_t = torch.autograd.grad(f.sum(), (points, times), create_graph=create_graph,
                                      retain_graph=True)
    div = torch.zeros_like(f)
    for i in range(3 if v.requires_grad else 0):   # a velocity that ignores the points: 0
        d, = torch.autograd.grad(v[:, i].sum(), points, create_graph=create_graph,
                                 retain_graph=True, allow_unused=True)
        if d is not None:
            div = div + d[:, i]
    mass = f_t + (v * grad_f).sum(1) + f * div
    return mass, div


class FlowResiduals:
    """Both residuals at fresh random collocation points, computed once per step and shared
    by the two terms; owns the velocity field.

    Args:
        velocity: the velocity field being fitted.
        points: collocation points per step (uniform in the volume and the movie's span).
        value_scale: the density field's bound (the residual sees f / value_scale).
        lr: the velocity field's learning rate.
        seed: seed of the collocation points.
    """

    def __init__(self, velocity: VelocityField, points: int, value_scale: float, lr: float,
                 seed: int) -> None:
        self.velocity, self.points, self.lr = velocity, int(points), float(lr)
        self.value_scale = float(value_scale) or 1.0
        self.generator = torch.Generator().manual_seed(seed)
        self._step: Step | None = None
        self._values: tuple[torch.Tensor, torch.Tensor] | None = None

    def density(self, field: Field) -> PointFunction:
        """The density seen by the residual: the field's first channel over its bound."""
        def f(points: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
            out = field(points, times)
            return (out[:, 0] if out.dim() == 2 else out) / self.value_scale
        return f

    def at(self, step: Step) -> tuple[torch.Tensor, torch.Tensor]:
        """(mass, divergence) residuals of this step (N,) each."""
        if self._step is not step or self._values is None:
            dev = next(self.velocity.parameters()).device
            xyzt = torch.rand(self.points, 4, generator=self.generator) * 2 - 1
            xyzt = xyzt.to(dev)
            self._values = transport_residuals(self.density(step.field), self.velocity,
                                               xyzt[:, :3], xyzt[:, 3])
            self._step = step
        return self._values


class _FlowTerm(LossTerm):
    """A flow term: its weight ramps in over ``warmup`` iterations (the trainer reads the
    weight after the value, so the ramp applies to the same step)."""

    def __init__(self, residuals: FlowResiduals, weight: float, warmup: int,
                 owns_velocity: bool) -> None:
        super().__init__(weight)
        self.residuals, self.full_weight, self.warmup = residuals, float(weight), int(warmup)
        self.owns_velocity = owns_velocity

    def ramp(self, iteration: int) -> float:
        """The share of the full weight at ``iteration`` (steps done before this one)."""
        return 1.0 if self.warmup <= 0 else min(1.0, iteration / self.warmup)

    def parameter_groups(self) -> list[dict[str, Any]]:
        if not self.owns_velocity:
            return []
        return [{"params": list(self.residuals.velocity.parameters()), "lr": self.residuals.lr}]

    def state(self) -> dict[str, Any]:
        return self.residuals.velocity.state_dict() if self.owns_velocity else {}

    def load_state(self, state: dict[str, Any]) -> None:
        self.residuals.velocity.load_state_dict(state)

    def residual(self, step: Step) -> torch.Tensor:
        raise NotImplementedError

    def value(self, step: Step) -> torch.Tensor:
        share = self.ramp(step.iteration)
        self.weight = self.full_weight * share
        if share == 0.0:  # warming up: nothing to compute
            return step.volume.new_zeros(())
        return self.residual(step).pow(2).mean()


class MassTransport(_FlowTerm):
    """Mean squared residual of ``df/dt + div(f v) = 0`` (f over the field's bound)."""

    name = "flow_transport"

    def residual(self, step: Step) -> torch.Tensor:
        return self.residuals.at(step)[0]


class Incompressibility(_FlowTerm):
    """Mean squared divergence of the velocity field."""

    name = "flow_divergence"

    def residual(self, step: Step) -> torch.Tensor:
        return self.residuals.at(step)[1]


def build_flow_terms(flow: Any, shape: tuple[int, int, int], time_nodes: int,
                     value_scale: float, seed: int, device: torch.device
                     ) -> tuple[list[LossTerm], VelocityField | None]:
    """The flow terms of the config's ``flow`` section (none when both weights are 0) and
    the velocity field they fit.

    The velocity field's spatial nodes are ``flow.velocity_space_scale`` of the grid
    ``shape`` (at least 2 per axis), its time nodes ``time_nodes``.
    """
    if not (flow.transport_weight or flow.divergence_weight):
        return [], None
    space = tuple(max(2, int(round(flow.velocity_space_scale * n))) for n in shape)
    velocity = VelocityField(space, max(2, time_nodes), channels=flow.velocity_channels,
                             seed=seed).to(device)
    residuals = FlowResiduals(velocity, flow.points, value_scale, flow.lr_velocity, seed)
    terms: list[LossTerm] = []
    for cls, weight in ((MassTransport, flow.transport_weight),
                        (Incompressibility, flow.divergence_weight)):
        if weight:
            terms.append(cls(residuals, weight, flow.warmup_iterations, owns_velocity=not terms))
    return terms, velocity


@torch.no_grad()
def render_velocity(velocity: VelocityField, times: torch.Tensor, shape: tuple[int, int, int],
                    time_span_s: float, chunk: int) -> np.ndarray:
    """The velocity at normalised ``times`` (T,) on the grid ``shape``, in voxels per second:
    (T, 3, Z, Y, X) float32, components (vx, vy, vz)."""
    parts = [velocity.render_frames(times[i:i + chunk], shape).float().cpu().numpy()
             for i in range(0, times.shape[0], chunk)]
    return to_voxels_per_second(np.concatenate(parts), shape, time_span_s)
