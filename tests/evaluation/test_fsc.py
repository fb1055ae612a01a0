"""Fourier shell correlation: identities, independent noise, a known band limit, the thresholds."""
from __future__ import annotations

import numpy as np
import pytest

from xray4d.evaluation.fsc import ONE_SEVENTH, fourier_shell_correlation, half_bit_threshold


def band_limited(shape: tuple[int, int, int], cutoff: float, rng: np.random.Generator) -> np.ndarray:
    """White noise with every Fourier component at |q| >= cutoff (cycles/voxel) removed."""
    q = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
    radius = np.sqrt(sum(c ** 2 for c in q))
    spectrum = np.fft.fftn(rng.standard_normal(shape))
    return np.fft.ifftn(np.where(radius < cutoff, spectrum, 0)).real


@pytest.mark.parametrize("shape", [(24, 24, 24), (16, 24, 24)])
def test_fsc_of_a_volume_with_itself_is_one_in_every_shell(shape) -> None:
    a = np.random.default_rng(0).random(shape)
    c = fourier_shell_correlation(a, a)
    assert c.fsc.shape == (min(shape) // 2 + 1,)
    np.testing.assert_allclose(c.fsc, 1.0, atol=1e-12)
    assert not c.crossed and c.resolution_voxels == pytest.approx(2.0)   # Nyquist: a bound
    # a scaled copy correlates fully as well (FSC is blind to the scale)
    np.testing.assert_allclose(fourier_shell_correlation(a, 3 * a).fsc, 1.0, atol=1e-12)


def test_fsc_of_independent_noise_volumes_is_near_zero() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((32, 32, 32)), rng.standard_normal((32, 32, 32))
    c = fourier_shell_correlation(a, b)
    # each shell's FSC has a standard deviation of about 1 / sqrt(voxels in the shell)
    bound = 4 / np.sqrt(c.n_voxels[1:])
    assert np.all(np.abs(c.fsc[1:]) < bound)
    assert np.abs(c.fsc[4:]).max() < 0.1
    assert c.crossed and c.resolution_voxels > 8      # crosses 1/7 in the first shells


def test_shells_count_every_fourier_voxel_once() -> None:
    c = fourier_shell_correlation(np.zeros((20, 20, 20)) + 1, np.ones((20, 20, 20)))
    assert c.n_voxels[0] == 1 and c.n_voxels[1] == 18   # the 6 faces and 12 edges of a cube
    assert c.fsc[0] == pytest.approx(1.0) and np.all(c.fsc[1:] == 0)   # empty shells: 0


@pytest.mark.parametrize("shell", [4, 7, 10])
def test_threshold_crossing_of_a_band_limited_pair(shell: int) -> None:
    """A common signal band-limited at ``cutoff`` (the outer edge of a shell) plus
    independent white noise: the FSC is about SNR / (1 + SNR) = 0.96 below the cut-off and
    about 0 above, so both thresholds are crossed at the cut-off, within half a shell."""
    n = 32
    cutoff = (shell + 0.5) / n
    rng = np.random.default_rng(2)
    signal = 5.0 * band_limited((n, n, n), cutoff, rng)
    a = signal + rng.standard_normal((n, n, n))
    b = signal + rng.standard_normal((n, n, n))
    c = fourier_shell_correlation(a, b, voxel_size_m=2e-6)
    inside = c.frequency < cutoff - 1 / n
    outside = c.frequency > cutoff + 1 / n
    assert np.all(c.fsc[inside] > 0.9) and np.all(np.abs(c.fsc[outside]) < 0.25)
    assert c.crossed and c.crossed_half_bit
    assert abs(1 / c.resolution_voxels - cutoff) <= 0.5 / n
    assert abs(1 / c.resolution_voxels_half_bit - cutoff) <= 0.5 / n
    assert c.resolution_m == pytest.approx(2e-6 * c.resolution_voxels)


def test_half_bit_threshold_values() -> None:
    """van Heel & Schatz (2005), eq. 17: 1 for a one-voxel shell, 0.2071 / 1.2071 = 0.1716
    for large shells; the 1/7 threshold is 0.1429."""
    t = half_bit_threshold(np.array([1, 100, 1e12]))
    assert t[0] == pytest.approx(1.0, abs=1e-4)
    assert t[1] == pytest.approx((0.2071 + 0.19102) / (1.2071 + 0.09102))
    assert t[2] == pytest.approx(0.1716, abs=1e-4)
    assert ONE_SEVENTH == pytest.approx(0.142857, abs=1e-6)


def test_fsc_refuses_mismatched_or_tiny_volumes() -> None:
    with pytest.raises(ValueError):
        fourier_shell_correlation(np.zeros((8, 8, 8)), np.zeros((8, 8, 9)))
    with pytest.raises(ValueError):
        fourier_shell_correlation(np.zeros((3, 8, 8)), np.zeros((3, 8, 8)))
