"""The ``adversarial`` config section: novel views judged by a patch discriminator.

With ``enabled`` the field methods (``hexplane``, ``static``, ``perframe``) add a loss term
(:class:`~xray4d.reconstruct.adversarial.AdversarialTerm`): a small convolutional
discriminator with spectral normalisation learns to tell patches of the measured
projections from patches of projections of the current field at angles that were not
measured, and the field is pushed to make the latter look like the former. Its rules sit
here, beside the dataclass, and join :data:`xray4d.config.RULES` under ``adversarial``.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config_rules import Choice, Flag, Integer, Number, Rule, check_fields, fraction, positive

__all__ = ["AdversarialConfig", "ADVERSARIAL_RULES", "GAN_LOSSES"]

#: the losses of the discriminator and of the field's term (``adversarial.loss``)
GAN_LOSSES = ("non-saturating", "hinge")


@dataclass
class AdversarialConfig:
    """The adversarial term on novel views (``xray4d reconstruct --adversarial``)."""

    #: add the term (field methods only)
    enabled: bool = False
    #: weight of the field's term beside the data term (a relative MSE, O(1) at the start);
    #: chosen on the head-on collision at 2 views (benchmarks/results/adversarial_tuning.json):
    #: 0.01 and 0.1 lost 3.5 and 5.9 dB of PSNR there, 0.001 and 0.0001 changed it by < 0.2 dB
    weight: float = 0.001
    #: share of training, at the start, without the term and without training the
    #: discriminator (the field first explains the measured views)
    warmup_fraction: float = 0.3
    #: learning rate of the discriminator's own Adam (constant)
    lr: float = 2e-4
    #: discriminator updates per training step
    discriminator_steps: int = 1
    #: side of the square patches, detector pixels (at most the detector's smaller side)
    patch_px: int = 16
    #: patches of each kind (measured, rendered) per step
    patches: int = 32
    #: channels of the discriminator's first convolution (doubled twice)
    channels: int = 16
    #: ``non-saturating`` (softplus) or ``hinge``
    loss: str = "non-saturating"
    #: novel views are drawn from ``novel_angles`` evenly spaced angles in [0, this) degrees
    angle_range_deg: float = 180.0
    #: how many candidate novel angles (each a precomputed projector view)
    novel_angles: int = 32
    #: add to the rendered views white noise of the level estimated from the measured ones
    #: (else the noise alone tells them apart)
    match_noise: bool = True
    #: a novel angle keeps at least this distance in degrees from every measured angle of
    #: its frame, modulo 180 (a parallel-beam view at theta + 180 mirrors the one at theta)
    angle_gap_deg: float = 5.0

    def validate(self) -> None:
        """ConfigError (one line) for an option out of its rule (:data:`ADVERSARIAL_RULES`)."""
        check_fields(self, ADVERSARIAL_RULES, "adversarial")


#: the rule of every field of :class:`AdversarialConfig`
ADVERSARIAL_RULES: dict[str, Rule] = {
    "enabled": Flag(),
    "weight": Number(0.0, 1e9),
    "warmup_fraction": fraction(),
    "lr": positive(1.0),
    "discriminator_steps": Integer(1, 100),
    "patch_px": Integer(4, 4096),
    "patches": Integer(1, 65536),
    "channels": Integer(1, 256),
    "loss": Choice(GAN_LOSSES),
    "angle_range_deg": positive(360.0),
    "novel_angles": Integer(1, 360),
    "match_noise": Flag(),
    "angle_gap_deg": Number(0.0, 45.0),
}
