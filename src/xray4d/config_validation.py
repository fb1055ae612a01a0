"""The ``validation`` config section: held-out detector pixels for ``xray4d validate`` and
the automatic stop of training (``--stop auto``). Its rules sit here, beside the
dataclass, and join :data:`xray4d.config.RULES` under ``validation``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config_rules import Choice, Integer, Number, Rule, check_fields, fraction

__all__ = ["ValidationConfig", "VALIDATION_RULES", "STOP_RULES"]

#: how training ends (``validation.stop``)
STOP_RULES = ("fixed", "auto")


@dataclass
class ValidationConfig:
    """Held-out detector pixels: the automatic stop of training and ``xray4d validate``.

    A share of each view's detector pixels, in square blocks (so that neighbouring pixels do
    not leak what was held out), is kept out of the data term and predicted from the fit
    (:mod:`xray4d.reconstruct.holdout`).
    """

    #: share of each view's detector pixels held out, in (0, 0.5]
    holdout: float = 0.1
    #: side of the held-out square blocks, detector pixels
    block_px: int = 4
    #: seed of the held-out blocks (the same blocks for every fit of a validation)
    holdout_seed: int = 0
    #: ``fixed``: train for the iterations or the time budget; ``auto``: stop when the error on
    #: held-out pixels stops improving (the iterations or the time budget still cap the run)
    stop: str = "fixed"
    #: share of each view's detector pixels watched instead of fitted (``stop: auto``), in
    #: (0, 0.5]: every watched pixel is data the fit loses (0.05 ended within 0.5 dB of the
    #: best PSNR along the run on the simulated settings, 0.1 within 1.1 dB)
    stop_holdout: float = 0.05
    #: steps between two evaluations of the held-out error (``stop: auto``)
    stop_every: int = 50
    #: evaluations without an improvement, after the last coarse-to-fine refinement, before
    #: the run stops (``stop: auto``)
    stop_patience: int = 4
    #: an improvement is a relative decrease of the held-out error by at least this
    stop_min_improvement: float = 0.002

    def validate(self) -> None:
        """ConfigError (one line) for an option out of its rule (:data:`VALIDATION_RULES`)."""
        check_fields(self, VALIDATION_RULES, "validation")


#: the rule of every field of :class:`ValidationConfig`
VALIDATION_RULES: dict[str, Rule] = {
    "holdout": Number(0.0, 0.5, low_open=True),
    "block_px": Integer(1, 1024),
    "holdout_seed": Integer(0, 2**63 - 1),
    "stop": Choice(STOP_RULES),
    "stop_holdout": Number(0.0, 0.5, low_open=True),
    "stop_every": Integer(1, 10**6),
    "stop_patience": Integer(1, 10**6),
    "stop_min_improvement": fraction(),
}
