"""Metrics against references the code under test did not produce: scikit-image
(SSIM, PSNR, MSE) and hand-counted overlaps (IoU)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from skimage.metrics import mean_squared_error as sk_mse
from skimage.metrics import peak_signal_noise_ratio as sk_psnr
from skimage.metrics import structural_similarity as sk_ssim

from xray4d.evaluation import metrics as M

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _pair(kind: str, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A (estimate, truth) pair of float64 volumes of one of several characters."""
    rng = np.random.default_rng(seed)
    if kind == "random":  # white noise truth, noisy estimate
        t = rng.random(shape)
        return t + 0.2 * rng.standard_normal(shape), t
    if kind == "smooth":  # smooth truth, smooth-ish estimate with a bias
        t = gaussian_filter(rng.standard_normal(shape), 2.0)
        v = gaussian_filter(t + 0.05 * rng.standard_normal(shape), 1.0) + 0.01
        return v, t
    if kind == "offset":  # large mean, small variations: float cancellation trap
        t = 100.0 + rng.random(shape)
        return t + 0.1 * rng.standard_normal(shape), t
    if kind == "uncorrelated":  # unrelated volumes: SSIM near 0
        return rng.random(shape), rng.random(shape)
    raise ValueError(kind)


# ------------------------------------------------------------------ SSIM

@pytest.mark.parametrize("kind", ["random", "smooth", "offset", "uncorrelated"])
@pytest.mark.parametrize("shape", [(7, 7, 7), (12, 17, 9), (20, 18, 16)])
def test_ssim_matches_skimage(kind: str, shape: tuple[int, int, int]) -> None:
    v, t = _pair(kind, shape, seed=sum(shape) + len(kind))
    r = float(t.max() - t.min())
    ref = sk_ssim(v, t, data_range=r)
    assert M.ssim(v, t, data_range=r) == pytest.approx(ref, abs=1e-6)
    # data_range defaults to the truth's max - min, the same number here
    assert M.ssim(v, t) == pytest.approx(ref, abs=1e-6)
    assert M.dssim(v, t) == pytest.approx((1 - ref) / 2, abs=1e-6)


@pytest.mark.parametrize("win_size", [3, 5, 9])
def test_ssim_other_windows_match_skimage(win_size: int) -> None:
    v, t = _pair("smooth", (16, 14, 12), seed=3)
    ref = sk_ssim(v, t, data_range=2.5, win_size=win_size)
    assert M.ssim(v, t, 2.5, win_size=win_size) == pytest.approx(ref, abs=1e-6)


def test_ssim_float32_input_and_explicit_range() -> None:
    v, t = _pair("smooth", (20, 20, 20), seed=4)
    ref = sk_ssim(v.astype(np.float32).astype(np.float64), t.astype(np.float32).astype(np.float64),
                  data_range=1.0)
    assert M.ssim(v.astype(np.float32), t.astype(np.float32), 1.0) == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize("device", DEVICES)
def test_ssim_identical_is_one(device: str) -> None:
    _, t = _pair("smooth", (10, 11, 12), seed=5)
    tt = torch.as_tensor(t, device=device)
    assert M.ssim(tt, tt) == pytest.approx(1.0, abs=1e-12)
    assert M.dssim(tt, tt) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_tensors_on_device(device: str) -> None:
    v, t = _pair("random", (9, 9, 9), seed=6)
    ref = sk_ssim(v, t, data_range=1.0)
    got = M.ssim(torch.as_tensor(v, dtype=torch.float32, device=device),
                 torch.as_tensor(t, dtype=torch.float32, device=device), 1.0)
    # float32 inputs, float64 arithmetic: only the input rounding differs
    assert got == pytest.approx(ref, abs=1e-5)
    res = M.evaluate_volumes(v[None], t[None], data_range=1.0, device=device)
    assert res["per_frame"]["ssim"][0] == pytest.approx(ref, abs=1e-6)


def test_ssim_errors() -> None:
    a = np.zeros((8, 8, 8))
    with pytest.raises(ValueError, match=r"shape mismatch.*\(8, 8, 8\).*\(8, 8, 9\)"):
        M.ssim(a, np.zeros((8, 8, 9)), 1.0)
    with pytest.raises(ValueError, match="window 7 exceeds"):
        M.ssim(np.zeros((6, 8, 8)), np.ones((6, 8, 8)), 1.0)
    with pytest.raises(ValueError, match="odd"):
        M.ssim(a, a, 1.0, win_size=4)
    with pytest.raises(ValueError, match="rank 3"):
        M.ssim(np.zeros((8, 8)), np.zeros((8, 8)), 1.0)
    with pytest.raises(ValueError, match="constant"):
        M.ssim(a, a)  # constant truth and no data_range


# ------------------------------------------------------------------ PSNR, MSE

@pytest.mark.parametrize("kind", ["random", "smooth", "offset"])
def test_psnr_and_mse_match_skimage(kind: str) -> None:
    v, t = _pair(kind, (10, 12, 14), seed=7)
    assert M.mse(v, t) == pytest.approx(sk_mse(t, v), rel=1e-12)
    r = float(t.max() - t.min())
    assert M.psnr(v, t) == pytest.approx(sk_psnr(t, v, data_range=r), rel=1e-12)
    assert M.psnr(v, t, data_range=3.0) == pytest.approx(sk_psnr(t, v, data_range=3.0), rel=1e-12)


def test_psnr_identical_is_inf_and_mismatch_raises() -> None:
    _, t = _pair("random", (5, 5, 5), seed=8)
    assert M.psnr(t, t) == math.inf
    with pytest.raises(ValueError, match="shape mismatch"):
        M.psnr(t, t[:4])
    with pytest.raises(ValueError, match="shape mismatch"):
        M.mse(t, t[:, :4])
    with pytest.raises(ValueError, match="positive"):
        M.psnr(t, t, data_range=0.0)


# ------------------------------------------------------------------ IoU

def _box(shape: tuple[int, int, int], lo: int, hi: int, value: float) -> np.ndarray:
    a = np.zeros(shape)
    a[lo:hi, lo:hi, lo:hi] = value
    return a


def test_iou_of_shifted_boxes_counts_analytically() -> None:
    shape = (10, 10, 10)
    truth = _box(shape, 2, 6, 1.0)  # 4^3 = 64 voxels
    est = _box(shape, 4, 8, 0.8)  # 64 voxels, above the 0.5 threshold; overlap [4:6]^3 = 8
    assert M.iou(est, truth) == pytest.approx(8 / (64 + 64 - 8))
    assert M.iou(truth, truth) == 1.0
    # disjoint boxes
    assert M.iou(_box(shape, 7, 9, 1.0), truth) == 0.0
    # a box inside another: 2^3 of 4^3
    assert M.iou(_box(shape, 3, 5, 1.0), truth) == pytest.approx(8 / 64)


def test_iou_threshold_is_strict_and_shared() -> None:
    shape = (6, 6, 6)
    truth = _box(shape, 1, 5, 2.0)  # threshold 1.0
    assert M.iou(_box(shape, 1, 5, 1.0), truth) == 0.0  # exactly at threshold: not in the shape
    assert M.iou(_box(shape, 1, 5, 1.0001), truth) == 1.0
    # an explicit threshold applies to both volumes
    assert M.iou(_box(shape, 1, 5, 1.0), truth, threshold=0.5) == 1.0
    # both empty: they agree
    assert M.iou(np.zeros(shape), np.zeros(shape)) == 1.0


# ------------------------------------------------------------------ movies

def _movie(seed: int = 9, frames: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.stack([gaussian_filter(rng.random((9, 10, 10)), 1.0) * (i + 1) for i in range(frames)])
    v = t + 0.02 * rng.standard_normal(t.shape)
    return v.astype(np.float32), t.astype(np.float32)


def test_evaluate_volumes_per_frame_and_mean_are_consistent() -> None:
    v, t = _movie()
    res = M.evaluate_volumes(v, t)
    v64, t64 = v.astype(np.float64), t.astype(np.float64)
    r = float(t64.max() - t64.min())
    thr = 0.5 * float(t.max())
    assert res["frames"] == 4 and res["shape"] == list(t.shape)
    assert res["data_range"] == pytest.approx(r) and res["iou_threshold"] == pytest.approx(thr)
    assert res["ssim_win_size"] == 7
    for name in M.METRIC_NAMES:
        assert len(res["per_frame"][name]) == 4
        assert res["mean"][name] == pytest.approx(np.mean(res["per_frame"][name]), rel=1e-12)
    # equal frame sizes: the mean of per-frame MSE is the MSE of the whole movie
    assert res["mean"]["mse"] == pytest.approx(M.mse(v, t), rel=1e-9)
    for i in range(4):
        # every frame is scored on the whole movie's data range and threshold
        assert res["per_frame"]["ssim"][i] == pytest.approx(sk_ssim(v64[i], t64[i], data_range=r),
                                                            abs=1e-6)
        assert res["per_frame"]["psnr"][i] == pytest.approx(sk_psnr(t64[i], v64[i], data_range=r),
                                                            rel=1e-9)
        assert res["per_frame"]["iou"][i] == pytest.approx(M.iou(v[i], t[i], threshold=thr))
        assert res["per_frame"]["dssim"][i] == pytest.approx((1 - res["per_frame"]["ssim"][i]) / 2)


def test_evaluate_volumes_frame_scale_is_the_movie_not_the_frame() -> None:
    v, t = _movie()
    res = M.evaluate_volumes(v, t)
    # frame 0 has about a quarter of the movie's range: scored on its own range, its
    # errors would look 4x larger (12 dB worse) than the same errors in frame 3
    own = M.psnr(v[0], t[0])
    assert res["per_frame"]["psnr"][0] > own + 6
    assert res["per_frame"]["psnr"][0] == pytest.approx(M.psnr(v[0], t[0], res["data_range"]))


def test_evaluate_volumes_options_and_errors() -> None:
    v, t = _movie(frames=2)
    res = M.evaluate_volumes(v[0], t[0], data_range=2.0, threshold=0.1)  # 3D: one frame
    assert res["frames"] == 1 and res["data_range"] == 2.0 and res["iou_threshold"] == 0.1
    with pytest.raises(ValueError, match=r"shape mismatch.*\(2, 9, 10, 10\).*\(1, 9, 10, 10\)"):
        M.evaluate_volumes(v, t[:1])
    with pytest.raises(ValueError, match="rank"):
        M.evaluate_volumes(v[None], t[None])
    with pytest.raises(ValueError, match="constant"):
        M.evaluate_volumes(v, np.ones_like(t))
    bad = v.copy()
    bad[1, 2, 3, 4] = np.nan
    with pytest.raises(ValueError, match="volume contains NaN or Inf"):
        M.evaluate_volumes(bad, t)
    with pytest.raises(ValueError, match="truth contains NaN or Inf"):
        M.psnr(v, np.where(t > 0.5, np.inf, t))
    # volumes thinner than the window: the largest odd window that fits, reported
    small = M.evaluate_volumes(v[:, :5], t[:, :5])
    assert small["ssim_win_size"] == 5
    assert small["per_frame"]["ssim"][0] == pytest.approx(
        sk_ssim(v[0, :5].astype(float), t[0, :5].astype(float), data_range=small["data_range"],
                win_size=5), abs=1e-6)
    tiny = M.evaluate_volumes(v[:, :2], t[:, :2])
    assert tiny["ssim_win_size"] is None and math.isnan(tiny["mean"]["ssim"])
    exact = M.evaluate_volumes(t, t)
    assert exact["mean"]["psnr"] == math.inf and exact["mean"]["iou"] == 1.0


# ------------------------------------------------------------------ the trap

def _droplet(n: int = 32, radius: float = 4.0) -> np.ndarray:
    z, y, x = np.meshgrid(*(np.arange(n) - (n - 1) / 2,) * 3, indexing="ij")
    return (z ** 2 + y ** 2 + x ** 2 <= radius ** 2).astype(np.float64)


def test_empty_reconstruction_of_a_droplet_fools_ssim_but_not_iou() -> None:
    """Why we report all metrics: predicting nothing at all scores a high SSIM.

    The droplet fills 0.8 % of the volume; everywhere else the empty estimate
    matches the empty background exactly, so the SSIM map is 1 there. IoU sees
    that the shape was missed entirely; PSNR is poor (0.8 % of the voxels are
    wrong by the full range: about 21 dB). Measured on this scene:

    ==================  =====  =======  ====
    estimate            SSIM   PSNR dB  IoU
    ==================  =====  =======  ====
    all zero            0.87   20.7     0
    truth + noise 0.1   0.17   19.9     1
    truth blurred 0.7   0.96   30.5     1
    ==================  =====  =======  ====

    SSIM alone would rank "found nothing" far above "found the droplet, noisily".
    """
    truth = _droplet()
    empty = np.zeros_like(truth)
    noisy = truth + 0.1 * np.random.default_rng(10).standard_normal(truth.shape)
    blurred = gaussian_filter(truth, 0.7)
    r = 1.0
    assert M.ssim(empty, truth, r) == pytest.approx(sk_ssim(empty, truth, data_range=r), abs=1e-6)
    assert M.ssim(empty, truth, r) > 0.85  # looks good...
    assert M.iou(empty, truth) == 0.0  # ...but nothing was found
    assert M.psnr(empty, truth) < 21.0
    # a noisy estimate of the right shape: found it, yet a far lower SSIM than "nothing"
    assert M.iou(noisy, truth) > 0.99
    assert M.ssim(noisy, truth, r) < 0.5 * M.ssim(empty, truth, r)
    # a good estimate beats the empty one on every metric
    assert M.ssim(blurred, truth, r) > M.ssim(empty, truth, r)
    assert M.psnr(blurred, truth) > M.psnr(empty, truth) + 5
    assert M.iou(blurred, truth) > 0.99
    res = M.evaluate_volumes(empty[None], truth[None])
    assert res["mean"]["ssim"] > 0.85 and res["mean"]["iou"] == 0.0 and res["mean"]["psnr"] < 21.0
