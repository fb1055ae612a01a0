"""The ``flow`` config section: the flow prior (a learned velocity field and the residuals
of mass transport and incompressibility, :mod:`xray4d.reconstruct.flow`). Its rules sit
here, beside the dataclass, and join :data:`xray4d.config.RULES` under ``flow``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config_rules import (ITERATION_LIMIT, WEIGHT_LIMIT, Integer, Number, Rule, check_fields,
                           positive)

__all__ = ["FlowConfig", "FLOW_RULES"]

@dataclass
class FlowConfig:
    """The flow prior (:mod:`xray4d.reconstruct.flow`): a learned velocity field v(x, t) and
    the residuals of mass transport, df/dt + div(f v) = 0, and incompressibility, div v = 0,
    at random space-time points. Off while both weights are 0 (the default)."""

    #: weight of the mean squared mass-transport residual (f over the field's bound)
    transport_weight: float = 0.0
    #: weight of the mean squared divergence of the velocity
    divergence_weight: float = 0.0
    #: both weights ramp linearly from 0 over this many iterations
    warmup_iterations: int = 500
    #: random collocation points per iteration
    points: int = 1024
    #: feature channels of the velocity field's planes
    velocity_channels: int = 4
    #: spatial nodes of the velocity field as a fraction of the voxel grid
    velocity_space_scale: float = 0.25
    #: learning rate of the velocity field
    lr_velocity: float = 0.02

    def validate(self) -> None:
        """ConfigError (one line) for an option out of its rule (:data:`FLOW_RULES`)."""
        check_fields(self, FLOW_RULES, "flow")


#: the rule of every field of :class:`FlowConfig`
FLOW_RULES: dict[str, Rule] = {
    "transport_weight": Number(0.0, WEIGHT_LIMIT),
    "divergence_weight": Number(0.0, WEIGHT_LIMIT),
    "warmup_iterations": Integer(0, ITERATION_LIMIT),
    "points": Integer(1, 10**7),
    "velocity_channels": Integer(1, 256),
    "velocity_space_scale": positive(1.0),
    "lr_velocity": positive(10.0),
}
