"""The ``calibration`` config section: per-view detector geometry refined with the field.

With ``enabled`` (``xray4d reconstruct --calibrate``) the field methods fit, beside the
field, a correction of each view's detector shift, tilt and magnification
(:class:`~xray4d.reconstruct.calibration.DetectorCalibration`): the projections of the
field on the virtual detector are resampled onto each real detector
(:mod:`xray4d.alignment`), differentiably in the parameters. View 0 is the reference and
stays fixed, and so does the column shift of view 1 (a common translation of the object;
see ``docs/data-format.md``). Its rules join :data:`xray4d.config.RULES` under
``calibration``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config_rules import Flag, Rule, check_fields, fraction, positive

__all__ = ["CalibrationConfig", "CALIBRATION_RULES"]


@dataclass
class CalibrationConfig:
    """Self-calibration of the detector geometry (``xray4d reconstruct --calibrate``)."""

    #: refine the per-view detector shift, tilt and magnification with the field
    enabled: bool = False
    #: share of training, at the start, with the geometry held (the field first fits)
    warmup_fraction: float = 0.1
    #: Adam learning rate of the shifts, pixels per step
    lr_shift_px: float = 0.02
    #: Adam learning rate of the tilts, degrees per step
    lr_tilt_deg: float = 0.01
    #: Adam learning rate of the logarithm of the magnifications, per step
    lr_log_magnification: float = 0.001
    #: refine the tilts
    tilt: bool = True
    #: refine the magnifications
    magnification: bool = True

    def validate(self) -> None:
        """ConfigError (one line) for an option out of its rule (:data:`CALIBRATION_RULES`)."""
        check_fields(self, CALIBRATION_RULES, "calibration")


#: the rule of every field of :class:`CalibrationConfig`
CALIBRATION_RULES: dict[str, Rule] = {
    "enabled": Flag(),
    "warmup_fraction": fraction(),
    "lr_shift_px": positive(10.0),
    "lr_tilt_deg": positive(10.0),
    "lr_log_magnification": positive(1.0),
    "tilt": Flag(),
    "magnification": Flag(),
}
