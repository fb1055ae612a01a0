"""Adversarial novel views: a patch discriminator and the field's loss term against it.

Two views leave most of a shape open: many fields explain them equally well. A
discriminator (:class:`PatchDiscriminator`, a small convolutional net with spectral
normalisation) learns what the measured projections look like, patch by patch; the
field is rendered at angles that were never measured (novel views) and its term
(:class:`AdversarialTerm`) rewards novel views the discriminator takes for measured ones.

* **real**: square patches of the measured projections of the step's frames (every
  measured view; with a fit mask only patches wholly of fitted pixels, so that nothing
  held out reaches the fit through the discriminator);
* **fake**: patches of projections of the step's rendered frames at novel angles, through
  the same measurement model as the data term. The novel angles are drawn each step, per
  frame, from ``novel_angles`` evenly spaced angles in ``[0, angle_range_deg)`` that keep
  ``angle_gap_deg`` from every measured angle of the frame (modulo 180 degrees); each has
  a precomputed projector view;
* both are normalised as the data term is (the contrast over the data's scale); with
  ``match_noise`` the rendered patches get white noise of the level estimated from the
  measured projections (:func:`~xray4d.evaluation.noise.noise_level`), which the
  noise-free renders otherwise lack: the discriminator would tell them by that alone,
  and push the field to paint noise;
* the loss is non-saturating (``softplus``) or hinge; the discriminator is trained
  ``discriminator_steps`` times per step, on the rendered patches detached, with its own
  Adam at a constant learning rate; the field's term is evaluated after that;
* for the first ``warmup_fraction`` of training the term is 0 and the discriminator
  rests (the field first explains the measured views).

The term's :meth:`~AdversarialTerm.state` (the discriminator's weights, its optimiser,
the random generator of patches and angles, running averages) is tensors and plain
values, saved in the trainer's checkpoint and restored on resume.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..config_adversarial import AdversarialConfig
from ..errors import InputError
from ..evaluation.noise import noise_level
from ..geometry import Geometry
from ..projector import Projector
from .losses import LossTerm, ProjectionDataTerm, Step

__all__ = ["PatchDiscriminator", "AdversarialTerm", "novel_angle_bank", "sample_patches",
           "discriminator_loss", "generator_loss", "patch_accuracy"]


class PatchDiscriminator(nn.Module):
    """A patch discriminator: (N, 1, P, P) patches -> (N, M) local logits (high: measured).

    Four convolutions (3x3, two 4x4 of stride 2, 3x3) of ``channels``, ``2 channels``,
    ``4 channels`` and 1 output channels, leaky ReLUs between, each weight under spectral
    normalisation (:func:`torch.nn.utils.parametrizations.spectral_norm`), after an input
    gain: the net is about ``gain``-Lipschitz, which keeps the field's gradient bounded.
    Its output is the (P/4, P/4) map of local logits, flattened (PatchGAN: each judges
    the part of the patch it sees; the losses average over them). With ``gain`` 1 a
    5 % difference in the data moves the logits by too little to learn from in a few
    hundred steps (measured on the ball patches of the tests); 4 does.

    Args:
        channels: channels of the first convolution.
        seed: seed of the initial weights (the global random state is left alone).
        gain: the input's factor (the net's Lipschitz bound).
    """

    def __init__(self, channels: int = 16, seed: int = 0, gain: float = 4.0) -> None:
        super().__init__()
        c = channels
        self.gain = gain
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            self.layers = nn.Sequential(
                spectral_norm(nn.Conv2d(1, c, 3, 1, 1)), nn.LeakyReLU(0.2),
                spectral_norm(nn.Conv2d(c, 2 * c, 4, 2, 1)), nn.LeakyReLU(0.2),
                spectral_norm(nn.Conv2d(2 * c, 4 * c, 4, 2, 1)), nn.LeakyReLU(0.2),
                spectral_norm(nn.Conv2d(4 * c, 1, 3, 1, 1)))
        finally:
            torch.random.set_rng_state(gen_state)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Local logits (N, M) of patches (N, 1, P, P), P >= 4."""
        return self.layers(self.gain * patches).flatten(1)


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, kind: str) -> torch.Tensor:
    """The discriminator's loss on logits of measured (``real``) and rendered (``fake``)
    patches: ``softplus(-r) + softplus(f)`` (non-saturating; 2 log 2 at chance) or
    ``relu(1 - r) + relu(1 + f)`` (hinge), each averaged over its logits."""
    if kind == "hinge":
        return F.relu(1 - real).mean() + F.relu(1 + fake).mean()
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def generator_loss(fake: torch.Tensor, kind: str) -> torch.Tensor:
    """The field's loss on logits of its rendered patches: ``softplus(-f)`` (non-saturating:
    log 2 when the discriminator cannot tell) or ``-f`` (hinge), averaged."""
    if kind == "hinge":
        return -fake.mean()
    return F.softplus(-fake).mean()


@torch.no_grad()
def patch_accuracy(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor
                   ) -> tuple[float, float]:
    """Shares of measured patches judged measured (mean local logit > 0) and of rendered
    patches judged rendered (< 0): 0.5 each is chance. Evaluated in eval mode (spectral
    normalisation's power iteration is not advanced)."""
    was_training = discriminator.training
    discriminator.eval()
    try:
        return (float((discriminator(real).mean(1) > 0).float().mean()),
                float((discriminator(fake).mean(1) < 0).float().mean()))
    finally:
        discriminator.train(was_training)


def sample_patches(images: torch.Tensor, size: int, count: int, generator: torch.Generator,
                   allowed: torch.Tensor | None = None) -> torch.Tensor:
    """``count`` square patches (count, 1, size, size) cut from images (N, H, W) at random.

    Args:
        images: the images (any device); the patches keep their gradient.
        size: side of a patch, at most min(H, W).
        count: patches to cut (with replacement).
        generator: a CPU generator (the draws do not depend on the device).
        allowed: (N, H - size + 1, W - size + 1) bool, the corners a patch may start at
            (None: all). At least one must be allowed.
    """
    n, h, w = images.shape
    rows, cols = h - size + 1, w - size + 1
    if allowed is None:
        flat = torch.randint(n * rows * cols, (count,), generator=generator)
    else:
        weights = allowed.reshape(-1).float().cpu()
        flat = torch.multinomial(weights, count, replacement=True, generator=generator)
    img, rest = flat // (rows * cols), flat % (rows * cols)
    top, left = rest // cols, rest % cols
    ar = torch.arange(size)
    r = (top[:, None, None] + ar[None, :, None]).expand(count, size, size)
    c = (left[:, None, None] + ar[None, None, :]).expand(count, size, size)
    dev = images.device
    patches = images[img[:, None, None].expand(count, size, size).to(dev), r.to(dev), c.to(dev)]
    return patches[:, None]


def novel_angle_bank(measured_deg: np.ndarray, count: int, range_deg: float, gap_deg: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Candidate novel angles and which of them each frame may use.

    Args:
        measured_deg: (T, V) measured angles of each frame.
        count: candidates, at ``(i + 1/2) range_deg / count``.
        range_deg: the candidates span ``[0, range_deg)``.
        gap_deg: a candidate is allowed for a frame when it is at least this far from each
            of the frame's measured angles, modulo 180 degrees.

    Returns:
        the candidates (K,) in degrees and (T, K) bool, the allowed ones per frame.
    """
    bank = (np.arange(count) + 0.5) * (range_deg / count)
    diff = np.abs((bank[None, None, :] - measured_deg[:, :, None] + 90.0) % 180.0 - 90.0)
    return bank, diff.min(axis=1) >= gap_deg


class AdversarialTerm(LossTerm):
    """The field's adversarial loss on novel views; trains its discriminator as it goes.

    See the module docstring. ``value`` is 0 during the warm-up; afterwards it first
    updates the discriminator, then returns the field's loss (its gradient reaches the
    field through the rendered novel views, not the discriminator's weights).

    Args:
        data_term: the run's data term: measured projections, their scale, fit mask,
            measurement model and geometry.
        config: the ``adversarial`` section.
        seed: seed of the discriminator's weights and of the draws of patches and angles.
    """

    name = "adversarial"

    def __init__(self, data_term: ProjectionDataTerm, config: AdversarialConfig,
                 seed: int = 0) -> None:
        super().__init__(config.weight)
        self.config, self.data = config, data_term
        geometry = data_term.projector.geometry
        dev = data_term.measured.device
        self.bank, allowed = novel_angle_bank(geometry.angles_deg, config.novel_angles,
                                              config.angle_range_deg, config.angle_gap_deg)
        if not allowed.any(axis=1).all():
            raise InputError("config", "adversarial", f"no novel angle of {config.novel_angles} "
                             f"in [0, {config.angle_range_deg:g}) deg is {config.angle_gap_deg:g}"
                             " deg from every measured angle of some frame; raise "
                             "novel_angles or angle_range_deg, or lower angle_gap_deg")
        self.allowed = torch.as_tensor(allowed, dtype=torch.float32)
        bank_geometry = Geometry.from_angles(self.bank[:, None], len(self.bank),
                                             geometry.height, geometry.width)
        self.projector = Projector(bank_geometry, device=dev, sparse=True)    # voxel-major frames
        h, w = data_term.measured.shape[-2:]
        self.patch = min(config.patch_px, h, w)
        self.baseline = 0.0 if data_term.measurement is None else 1.0
        #: noise added to the rendered patches: the measured projections' (normalised)
        self.noise_sigma = 0.0
        if config.match_noise and min(h, w) >= 3:
            self.noise_sigma = noise_level(data_term.measured.cpu().numpy())[0] / data_term.scale
        self.discriminator = PatchDiscriminator(config.channels, seed).to(dev)
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=config.lr,
                                          betas=(0.5, 0.999))
        self.generator = torch.Generator().manual_seed(seed + 1)
        #: running averages (decay 0.98) of the discriminator's loss and its accuracies
        self.running = {"discriminator_loss": float("nan"), "real_accuracy": float("nan"),
                        "fake_accuracy": float("nan")}
        self.updates = 0

    def _normalised(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.baseline) / self.data.scale

    def render_novel(self, volume: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Projections (B * V, h, w) of rendered frames (B, [O,] Z, Y, X) at V novel angles
        each (V: the measured views), drawn from the angles the frames allow, through the
        data term's measurement model."""
        views = self.data.measured.shape[1]
        choice = torch.multinomial(self.allowed[frames.cpu()], views, replacement=True,
                                   generator=self.generator).reshape(-1).numpy()
        vol = volume.repeat_interleave(views, dim=0)
        if vol.dim() == 4:
            lines = self.projector.forward(vol, frames=choice)
        else:
            o = vol.shape[1]
            lines = self.projector.forward(vol.flatten(0, 1), frames=np.repeat(choice, o))
            lines = lines.unflatten(0, (vol.shape[0], o))
        out = lines if self.data.measurement is None else self.data.measurement(lines)
        return out.reshape(-1, *out.shape[-2:])

    def _real_patches(self, frames: torch.Tensor) -> torch.Tensor | None:
        measured = self.data.measured[frames.to(self.data.measured.device)]
        images = self._normalised(measured).flatten(0, 1)
        allowed = None
        if self.data.mask is not None:   # corners of patches wholly of fitted pixels
            held = (~self.data.mask[frames.to(self.data.mask.device)]).flatten(0, 1).float()
            allowed = F.max_pool2d(held[:, None], self.patch, stride=1)[:, 0] == 0
            if not bool(allowed.any()):
                return None
        return sample_patches(images, self.patch, self.config.patches, self.generator, allowed)

    def _train_discriminator(self, real: torch.Tensor, fake: torch.Tensor) -> None:
        kind, d = self.config.loss, self.discriminator
        for _ in range(self.config.discriminator_steps):
            logits_real, logits_fake = d(real), d(fake)
            loss = discriminator_loss(logits_real, logits_fake, kind)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        # judged before the last update (no extra pass)
        acc_real = float((logits_real.detach().mean(1) > 0).float().mean())
        acc_fake = float((logits_fake.detach().mean(1) < 0).float().mean())
        for key, v in (("discriminator_loss", float(loss.detach())), ("real_accuracy", acc_real),
                       ("fake_accuracy", acc_fake)):
            old = self.running[key]
            self.running[key] = v if self.updates == 0 else 0.98 * old + 0.02 * v
        self.updates += 1

    def value(self, step: Step) -> torch.Tensor:
        zero = step.volume.new_zeros(())
        if step.fraction < self.config.warmup_fraction:
            return zero
        real = self._real_patches(step.frames)
        if real is None:
            return zero
        novel = self._normalised(self.render_novel(step.volume, step.frames))
        fake = sample_patches(novel, self.patch, self.config.patches, self.generator)
        if self.noise_sigma > 0:   # the measured views' noise: not a cue to tell them by
            noise = torch.randn(fake.shape, generator=self.generator) * self.noise_sigma
            fake = fake + noise.to(fake.device)
        self._train_discriminator(real, fake.detach())
        params = list(self.discriminator.parameters())
        for p in params:   # the field's gradient only: none into the discriminator's weights
            p.requires_grad_(False)
        try:
            return generator_loss(self.discriminator(fake), self.config.loss)
        finally:
            for p in params:
                p.requires_grad_(True)

    def state(self) -> dict[str, Any]:
        return {"discriminator": self.discriminator.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(), "running": dict(self.running),
                "updates": self.updates}

    def load_state(self, state: dict[str, Any]) -> None:
        self.discriminator.load_state_dict(state["discriminator"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"].cpu())
        self.running = {k: float(state["running"][k]) for k in self.running}
        self.updates = int(state["updates"])

    def summary(self) -> dict[str, Any]:
        """What the output's metadata shows of the discriminator (running averages over
        about the last 50 updates; accuracies of 0.5 are chance)."""
        return {"discriminator_updates": self.updates, **self.running,
                "patch_px": self.patch, "added_noise_sigma": self.noise_sigma,
                "novel_angles_deg": [float(a) for a in self.bank]}
