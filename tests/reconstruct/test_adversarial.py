"""The adversarial term on novel views (issue 22, ``reconstruct --adversarial``).

References the code under test did not make: analytic chords of balls (the projection of
a ball at every angle), the labels of real and degraded patches (known by construction),
the chance value 2 log 2 of the non-saturating discriminator loss, angles worked out by
hand, and an uninterrupted run for resume.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from xray4d.cli import main
from xray4d.config import ReconstructionConfig, resolve_config
from xray4d.config_adversarial import AdversarialConfig
from xray4d.geometry import Geometry
from xray4d.io import load_reconstruction, save_recording
from xray4d.projector import Projector
from xray4d.reconstruct.adversarial import (AdversarialTerm, PatchDiscriminator,
                                            discriminator_loss, novel_angle_bank,
                                            patch_accuracy, sample_patches)
from xray4d.reconstruct.checkpoint import load_checkpoint
from xray4d.reconstruct.hexplane import HexPlaneReconstructor
from xray4d.reconstruct.losses import ProjectionDataTerm

from xray4d.data import Recording


def sphere_volume(size: int, radius: float, supersample: int = 4) -> np.ndarray:
    """Voxel-averaged centred ball (Z, Y, X), built without xray4d's simulator."""
    c = (np.arange(size * supersample) + 0.5) / supersample - 0.5 - (size - 1) / 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    inside = (x ** 2 + y ** 2 + z ** 2) < radius ** 2
    return inside.reshape(size, supersample, size, supersample, size, supersample).mean((1, 3, 5))


def analytic_sphere_recording(size: int, frames: int, radius: float, angles=(0.0, 23.8),
                              noise: float = 0.0, seed: int = 0) -> Recording:
    """A static centred ball seen at ``angles``: its analytic chords 2 sqrt(R^2 - d^2)."""
    proj = np.broadcast_to(ball_chords(size, radius, 0.0, 0.0),
                           (frames, len(angles), size, size)).astype(np.float32).copy()
    if noise:
        rng = np.random.default_rng(seed)
        proj += noise * proj.max() * rng.standard_normal(proj.shape).astype(np.float32)
    truth = np.broadcast_to(sphere_volume(size, radius), (frames, size, size, size))
    return Recording(proj, Geometry.from_angles(angles, frames, size, size),
                     truth=truth.astype(np.float32))


def ball_chords(size: int, radius: float, cz: float, cu: float) -> np.ndarray:
    """(size, size) analytic projection of a ball centred at row offset cz, column offset cu."""
    u = np.arange(size) - (size - 1) / 2
    d2 = (u[:, None] - cz) ** 2 + (u[None, :] - cu) ** 2
    return 2 * np.sqrt(np.clip(radius ** 2 - d2, 0, None))


def measured_and_degraded(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Projections of balls of random radius and position (real), and the same blurred
    (Gaussian, sigma 1.5 px) with 5 % noise (fake), each over the largest value."""
    rng = np.random.default_rng(seed)
    real, fake = [], []
    for _ in range(n):
        p = ball_chords(size, rng.uniform(4, 9), *rng.uniform(-6, 6, 2))
        real.append(p)
        fake.append(gaussian_filter(p, 1.5) + 0.05 * p.max() * rng.standard_normal(p.shape))
    scale = max(np.max(real), 1e-9)
    return (torch.as_tensor(np.stack(real) / scale, dtype=torch.float32),
            torch.as_tensor(np.stack(fake) / scale, dtype=torch.float32))


def test_discriminator_separates_measured_from_degraded_patches() -> None:
    torch.manual_seed(0)
    real, fake = measured_and_degraded(16, 32, seed=0)
    d = PatchDiscriminator(channels=8, seed=0)
    opt = torch.optim.Adam(d.parameters(), lr=2e-3, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(160):
        r, f = sample_patches(real, 12, 32, gen), sample_patches(fake, 12, 32, gen)
        loss = discriminator_loss(d(r), d(f), "non-saturating")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    # judged on patches of other balls than those it was trained on
    real_t, fake_t = measured_and_degraded(16, 32, seed=1)
    acc_real, acc_fake = patch_accuracy(d, sample_patches(real_t, 12, 256, gen),
                                        sample_patches(fake_t, 12, 256, gen))
    assert (acc_real + acc_fake) / 2 > 0.7, (acc_real, acc_fake)       # chance: 0.5
    assert np.mean(losses[-20:]) < 0.9 * 2 * math.log(2)    # chance: 2 log 2


def test_spectral_norm_bounds_each_layer() -> None:
    """Each convolution's weight (as a matrix) has largest singular value about 1."""
    d = PatchDiscriminator(channels=4, seed=0)
    d(torch.rand(2, 1, 8, 8))
    for conv in (m for m in d.layers if isinstance(m, torch.nn.Conv2d)):
        for _ in range(30):  # power iterations to converge
            conv.weight
        w = conv.weight.detach().flatten(1)
        assert torch.linalg.matrix_norm(w, ord=2) == pytest.approx(1.0, rel=0.05)


def test_novel_angles_keep_away_from_measured_ones_modulo_180() -> None:
    bank, allowed = novel_angle_bank(np.array([[0.0, 23.8]]), 36, 180.0, 5.0)
    np.testing.assert_allclose(bank, 2.5 + 5.0 * np.arange(36))
    # within 5 deg of 0 (or 180): 2.5, 177.5; of 23.8: 22.5 (1.3), 27.5 (3.7)
    assert sorted(bank[~allowed[0]]) == [2.5, 22.5, 27.5, 177.5]
    # a rotating scan: each frame its own angles
    _, allowed = novel_angle_bank(np.array([[0.0], [90.0]]), 4, 180.0, 30.0)  # 22.5, 67.5, ...
    assert allowed.tolist() == [[False, True, True, False], [True, False, False, True]]


def test_patches_are_windows_of_the_images_and_respect_allowed_corners() -> None:
    images = torch.arange(2 * 10 * 12, dtype=torch.float32).reshape(2, 10, 12)
    gen = torch.Generator().manual_seed(0)
    p = sample_patches(images, 4, 50, gen)
    assert p.shape == (50, 1, 4, 4)
    for patch in p[:, 0]:
        k, rest = divmod(int(patch[0, 0]), 120)
        r, c = divmod(rest, 12)
        assert torch.equal(patch, images[k, r:r + 4, c:c + 4])
    allowed = torch.zeros(2, 7, 9, dtype=torch.bool)
    allowed[1, 3, 5] = True
    p = sample_patches(images, 4, 10, gen, allowed)
    assert all(torch.equal(q, images[1, 3:7, 5:9]) for q in p[:, 0])


def test_novel_views_of_a_ball_are_its_analytic_chords() -> None:
    """The rendered novel views of a ball (at every drawn angle) match the chord."""
    size, radius = 24, 7.0
    rec = analytic_sphere_recording(size=size, frames=2, radius=radius)
    term = AdversarialTerm(ProjectionDataTerm(Projector(rec.geometry),
                                              torch.as_tensor(rec.projections)),
                           AdversarialConfig(enabled=True, novel_angles=12), seed=0)
    vol = torch.as_tensor(np.stack([sphere_volume(size, radius)] * 2), dtype=torch.float32)
    views = term.render_novel(vol, torch.tensor([0, 1]))
    assert views.shape == (4, size, size)
    chord = torch.as_tensor(ball_chords(size, radius, 0.0, 0.0), dtype=torch.float32)
    for v in views:   # voxelised ball against exact chords: 3.4 % at the measured 0 deg
        assert float((v - chord).norm() / chord.norm()) < 0.06


def small_adversarial_config(iterations: int, **adversarial) -> ReconstructionConfig:
    cfg = resolve_config("default", {"train": {"iterations": iterations, "time_budget_s": None,
                                               "frames_per_batch": 2},
                                     "adversarial": {"enabled": True, "warmup_fraction": 0.25,
                                                     "channels": 4, "patches": 8,
                                                     **adversarial}})
    return cfg


class _Killed(Exception):
    pass


def test_resume_with_the_adversarial_term_matches_uninterrupted_run(tmp_path: Path) -> None:
    rec = analytic_sphere_recording(size=16, frames=3, radius=4.5, noise=0.01)
    cfg = small_adversarial_config(40)
    cfg.train.checkpoint_every_s = 0.0
    full = HexPlaneReconstructor(rec, cfg, progress=False).fit()
    adv = full.loss_terms["adversarial"]
    assert adv[:10] == [0.0] * 10 and all(v > 0 for v in adv[10:])   # warm-up: 25 % of 40

    ckpt = tmp_path / "run.ckpt"

    def kill_at_30(it: int, loss: float, elapsed: float) -> None:
        if it == 30:
            raise _Killed

    with pytest.raises(_Killed):
        HexPlaneReconstructor(rec, cfg, ckpt, progress=False, on_step=kill_at_30).fit()
    # tensors and plain values only: the safe loader reads it
    state = torch.load(ckpt, weights_only=True)
    assert any("parametrizations" in k for k in state["terms"]["adversarial"]["discriminator"])
    assert state["iteration"] == 29
    resumed = HexPlaneReconstructor(rec, cfg, ckpt, progress=False).fit(resume=True)
    assert resumed.iterations == 40
    np.testing.assert_allclose(resumed.loss_terms["adversarial"], adv, rtol=1e-4)
    np.testing.assert_allclose(resumed.reconstruction.volume, full.reconstruction.volume,
                               atol=1e-4)


def test_a_checkpoint_without_the_discriminator_is_refused(tmp_path: Path) -> None:
    """The config's fingerprint differs, so the loader refuses it in one line."""
    rec = analytic_sphere_recording(size=16, frames=3, radius=4.5)
    plain = resolve_config("default", {"train": {"iterations": 5, "time_budget_s": None}})
    ckpt = tmp_path / "run.ckpt"
    HexPlaneReconstructor(rec, plain, ckpt, progress=False).fit()
    from xray4d.errors import InputError
    with pytest.raises(InputError, match="adversarial"):
        HexPlaneReconstructor(rec, small_adversarial_config(5), ckpt, progress=False
                              ).fit(resume=True)
    assert load_checkpoint  # (the module's safe loader is what the trainer uses)


def test_reconstruct_cli_with_adversarial_records_the_term(tmp_path: Path) -> None:
    rec = analytic_sphere_recording(size=16, frames=3, radius=4.5, noise=0.01)
    rec_path, out = tmp_path / "rec.h5", tmp_path / "out.h5"
    save_recording(rec, rec_path)
    assert main(["reconstruct", str(rec_path), "--out", str(out), "--iterations", "20",
                 "--quiet", "--adversarial"]) == 0
    result = load_reconstruction(out)
    assert result.config["adversarial"]["enabled"] is True
    assert result.config["adversarial"] == {**AdversarialConfig().__dict__, "enabled": True}
    terms = result.config["resolved"]["loss_terms"]
    assert terms["adversarial"]["weight"] == 0.001
    assert terms["adversarial"]["first"] == 0.0 and terms["adversarial"]["final"] > 0
    disc = result.config["resolved"]["adversarial"]
    assert disc["discriminator_updates"] == 14          # 20 steps, 30 % warm-up
    assert disc["patch_px"] == 16
    assert (tmp_path / "out_preview" / "loss.png").stat().st_size > 0


@pytest.mark.parametrize("argv, fault", [
    (["--adversarial-weight", "0"], "--adversarial-weight"),
    (["--adversarial-weight", "nan"], "--adversarial-weight"),
    (["--adversarial", "--method", "fbp"], "--adversarial"),
])
def test_reconstruct_cli_refuses_bad_adversarial_input(tmp_path: Path, capsys, argv, fault) -> None:
    rec = analytic_sphere_recording(size=8, frames=2, radius=2.5)
    rec_path, out = tmp_path / "rec.h5", tmp_path / "out.h5"
    save_recording(rec, rec_path)
    try:
        code = main(["reconstruct", str(rec_path), "--out", str(out), "--quiet", *argv])
    except SystemExit as exc:          # argparse's own refusals
        code = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) in (1, 2) and fault in err[-1]    # argparse adds its usage
    assert not out.exists()


def test_no_novel_angle_left_is_refused_in_one_line() -> None:
    rec = analytic_sphere_recording(size=8, frames=2, radius=2.5, angles=(0.0, 90.0))
    from xray4d.errors import InputError
    data = ProjectionDataTerm(Projector(rec.geometry), torch.as_tensor(rec.projections))
    with pytest.raises(InputError, match="no novel angle"):
        AdversarialTerm(data, AdversarialConfig(novel_angles=1, angle_gap_deg=45.0), seed=0)


def test_real_patches_never_hold_held_out_pixels() -> None:
    """With a fit mask (held-out pixels, --stop auto, validate) the discriminator sees no
    held-out pixel: they carry a marker value here that no patch may contain."""
    rec = analytic_sphere_recording(size=16, frames=2, radius=4.5)
    measured = torch.as_tensor(rec.projections).clone()
    mask = torch.ones(measured.shape, dtype=torch.bool)
    mask[:, :, 4:8, 4:8] = False
    mask[:, 1, 10:12, 0:3] = False
    measured[~mask] = 1e3
    term = AdversarialTerm(ProjectionDataTerm(Projector(rec.geometry), measured, mask=mask),
                           AdversarialConfig(patch_px=6, patches=200, match_noise=False), seed=0)
    patches = term._real_patches(torch.tensor([0, 1]))
    assert patches.shape == (200, 1, 6, 6)
    assert float(patches.max()) < 1e3 / term.data.scale


def test_adversarial_fit_of_intensities_through_the_propagation_model(tiny_intensity_recording
                                                                      ) -> None:
    """The rendered novel views go through the same measurement model as the data term."""
    cfg = resolve_config("default", {"train": {"iterations": 4, "time_budget_s": None},
                                     "adversarial": {"enabled": True, "warmup_fraction": 0.0,
                                                     "channels": 4, "patches": 4}},
                         quantity="intensity")
    res = HexPlaneReconstructor(tiny_intensity_recording, cfg, progress=False).fit()
    adv = res.loss_terms["adversarial"]
    assert len(adv) == 4 and all(math.isfinite(v) and v > 0 for v in adv)
    assert res.reconstruction.config["resolved"]["adversarial"]["patch_px"] == 12
