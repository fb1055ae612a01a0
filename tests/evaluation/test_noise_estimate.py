"""The noise level estimated from projections alone, on noise of known sigma."""
from __future__ import annotations

import numpy as np
import pytest

from xray4d.evaluation.noise import noise_level, noise_sigma


def ball_projections(size: int = 32, radius: float = 9.0, views: int = 2,
                     frames: int = 4) -> np.ndarray:
    """Analytic projections of a ball of value 1: the chord 2 sqrt(R^2 - d^2)."""
    u = np.arange(size) - (size - 1) / 2
    d2 = u[:, None] ** 2 + u[None, :] ** 2
    chord = 2 * np.sqrt(np.clip(radius ** 2 - d2, 0, None))
    return np.broadcast_to(chord, (frames, views, size, size)).copy()


@pytest.mark.parametrize("sigma", [0.01, 0.2, 3.0])
def test_noise_sigma_of_pure_gaussian_noise(sigma: float) -> None:
    rng = np.random.default_rng(0)
    images = 5.0 + sigma * rng.standard_normal((6, 2, 48, 48))   # an offset changes nothing
    per_image = noise_sigma(images)
    assert per_image.shape == (6, 2)
    np.testing.assert_allclose(per_image, sigma, rtol=0.12)
    assert noise_level(images)[0] == pytest.approx(sigma, rel=0.04)


@pytest.mark.parametrize("share", [0.005, 0.01, 0.05])
def test_noise_level_of_projections_with_known_noise(share: float) -> None:
    """Noise of sigma = share x the largest line integral on a ball's projections (the edges
    of the ball are what the estimator has to set aside)."""
    clean = ball_projections()
    sigma = share * clean.max()
    noisy = clean + sigma * np.random.default_rng(1).standard_normal(clean.shape)
    level, per_frame = noise_level(noisy)
    assert level == pytest.approx(sigma, rel=0.06)
    assert per_frame.shape == (4,) and np.allclose(per_frame, sigma, rtol=0.15)


def test_noise_free_projections_give_almost_no_noise() -> None:
    clean = ball_projections()
    assert noise_level(clean)[0] < 1e-3 * clean.max()


def test_noise_sigma_refuses_too_small_images() -> None:
    with pytest.raises(ValueError):
        noise_sigma(np.zeros((4, 2)))
