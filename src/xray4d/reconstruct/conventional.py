"""Conventional reconstruction, frame by frame: FBP, SIRT and CGLS.

The baselines X-Hexplane is compared with. Each treats every frame as an
independent tomography problem (no sharing over time) and uses the project's
own :class:`~xray4d.projector.Projector` and its exact adjoint, so the
geometry is the one of ``data-format.md`` for any angle set, shared or per
frame. All frames, views and detector rows are processed at once: one
iteration is one batched forward and one batched adjoint projection.

* :func:`fbp`: filtered back-projection. Ramp filter (zero-padded FFT of the
  band-limited spatial kernel, so the mean is right) times a window, then the
  adjoint weighted per view by its share of the half circle of angles.
* :func:`sirt`: simultaneous iterative reconstruction,
  ``x <- P(x + lambda C A^T R (b - A x))`` with ``R``, ``C`` the inverse row
  and column sums of ``A`` and ``P`` the projection onto ``x >= 0`` (optional).
* :func:`cgls`: conjugate gradients on the normal equations, one set of
  scalars per frame; unconstrained (the residual norm then decreases at every
  iteration), negatives clipped once at the end when asked.

Recorded residuals (``FitResult.losses``) use the data term of X-Hexplane,
``mean((A x - b)^2) / max|b|^2`` over all frames, so curves compare across methods.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import replace
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import FBP_FILTERS, ReconstructionConfig
from ..data import FitResult, Reconstruction, Recording
from ..errors import InputError
from ..fields.voxel import FrameVolumeField
from ..geometry import Geometry
from ..projector import Projector
from .measurement import MeasuredData
from .registry import Method, register_method
from .schedule import normalised_times

__all__ = ["ramp_filter", "angular_weights", "fbp", "sirt", "cgls", 
           "DEFAULT_ITERATIONS"]

#: iterations when ``conventional.iterations`` is null
DEFAULT_ITERATIONS = {"sirt": 100, "cgls": 20}


# ---------------------------------------------------------------- filtering

def _filter_response(width: int, window: str, cutoff: float, dtype: torch.dtype,
                     device: torch.device) -> tuple[torch.Tensor, int]:
    """Frequency response (n_pad // 2 + 1,) of the windowed ramp and the padded length."""
    if window not in FBP_FILTERS:
        raise ValueError(f"unknown filter window {window!r}; choose one of {', '.join(FBP_FILTERS)}")
    n_pad = max(64, 1 << math.ceil(math.log2(2 * width)))
    # band-limited ramp kernel in space (pixel spacing 1): h[0] = 1/4,
    # h[n odd] = -1 / (pi n)^2, h[n even] = 0; its DFT keeps the DC term right
    n = np.concatenate([np.arange(0, n_pad // 2 + 1), np.arange(-(n_pad // 2) + 1, 0)])
    h = np.zeros(n_pad)
    h[0] = 0.25
    odd = n % 2 == 1
    h[odd] = -1.0 / (np.pi * n[odd]) ** 2
    ramp = np.real(np.fft.rfft(h))
    freq = np.fft.rfftfreq(n_pad)          # cycles per pixel, 0 .. 0.5
    nu = freq / (0.5 * cutoff)             # 1 at the cut-off
    if window == "ram-lak":
        win = np.ones_like(nu)
    elif window == "shepp-logan":
        win = np.sinc(nu / 2)              # sin(pi nu / 2) / (pi nu / 2)
    elif window == "cosine":
        win = np.cos(np.pi * nu / 2)
    elif window == "hamming":
        win = 0.54 + 0.46 * np.cos(np.pi * nu)
    else:  # hann
        win = 0.5 * (1 + np.cos(np.pi * nu))
    win = np.where(nu <= 1.0, win, 0.0)
    return torch.as_tensor(ramp * win, dtype=dtype, device=device), n_pad


def ramp_filter(projections: torch.Tensor, window: str = "hann", cutoff: float = 1.0) -> torch.Tensor:
    """Ramp-filter projections along the detector columns (last axis).

    Args:
        projections: (..., W) line integrals in pixel units.
        window: one of :data:`~xray4d.config.FBP_FILTERS`.
        cutoff: cut-off as a fraction of the Nyquist frequency, in (0, 1].

    Returns:
        filtered projections, same shape and dtype (zero padding to at least 2W
        avoids wrap-around between the detector's edges).
    """
    if not 0 < cutoff <= 1:
        raise ValueError(f"cutoff must be in (0, 1], got {cutoff}")
    w = projections.shape[-1]
    work = torch.float64 if projections.dtype == torch.float64 else torch.float32
    resp, n_pad = _filter_response(w, window, cutoff, work, projections.device)
    spec = torch.fft.rfft(projections.to(work), n=n_pad, dim=-1)
    return torch.fft.irfft(spec * resp, n=n_pad, dim=-1)[..., :w].to(projections.dtype)


def angular_weights(angles_deg: np.ndarray) -> np.ndarray:
    """Quadrature weights (radians) of parallel-beam views for the back-projection integral.

    Parallel-beam data repeat every 180 deg, so angles are folded onto [0, 180)
    and each view gets half the gap to its neighbours on that circle (equal
    angles share their gap). The weights of one frame sum to pi; for V angles
    evenly spread over 180 or 360 deg they are all pi / V.

    Args:
        angles_deg: (V,) or (T, V) view angles in degrees.

    Returns:
        weights of the same shape.
    """
    a = np.asarray(angles_deg, dtype=np.float64)
    if a.ndim == 1:
        return angular_weights(a[None])[0]
    folded = np.mod(a, 180.0)
    out = np.empty_like(folded)
    for t, row in enumerate(folded):
        v = row.size
        if v == 1:
            out[t] = np.pi
            continue
        order = np.argsort(row, kind="stable")
        s = row[order]
        gaps = np.diff(np.concatenate([s, s[:1] + 180.0]))       # gap after each sorted angle
        w_sorted = 0.5 * (gaps + np.roll(gaps, 1))
        # views at the same angle share the weight of the group equally
        uniq, inverse, counts = np.unique(np.round(s, 9), return_inverse=True, return_counts=True)
        group_w = np.bincount(inverse, weights=w_sorted, minlength=uniq.size) / counts
        w_sorted = group_w[inverse]
        out[t, order] = w_sorted * np.pi / 180.0
    return out


# ---------------------------------------------------------------- helpers

def _residual_metric(pred: torch.Tensor, data: torch.Tensor, scale: float) -> float:
    return float((pred - data).pow(2).mean()) / scale ** 2


def _frame_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-frame inner products of two (T, ...) tensors as float64 (T,) (one batched BLAS call)."""
    t = a.shape[0]
    return torch.bmm(a.reshape(t, 1, -1), b.reshape(t, -1, 1)).reshape(t).double()


def _safe_div(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)),
                       torch.zeros_like(num))


def _per_frame(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return x.to(like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


class _Stopper:
    """Iteration count and time budget, with a progress bar."""

    def __init__(self, name: str, iterations: int, budget_s: float | None, start: float,
                 progress: bool) -> None:
        self.iterations, self.budget_s, self.start = iterations, budget_s, start
        self.bar = tqdm(total=iterations, disable=not progress, unit="it", desc=name,
                        dynamic_ncols=True, leave=False)
        self.step_s = 0.0
        self.stopped_by = "iterations"

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def more(self, it: int) -> bool:
        if it >= self.iterations:
            return False
        # one more step plus the final forward projection must fit in the budget
        if self.budget_s and self.elapsed() + 1.5 * self.step_s >= self.budget_s:
            self.stopped_by = "time budget"
            return False
        return True

    def tick(self, t0: float, loss: float) -> None:
        self.step_s = time.perf_counter() - t0
        self.bar.update(1)
        self.bar.set_postfix(residual=f"{loss:.3e}", refresh=False)

    def close(self) -> None:
        self.bar.close()


# ---------------------------------------------------------------- algorithms

def fbp(projections: torch.Tensor, projector: Projector, window: str = "hann",
        cutoff: float = 1.0, frames=None) -> torch.Tensor:
    """Filtered back-projection of projections (B, V, H, W) to volumes (B, Z, Y, X).

    Exact (up to discretisation) when the views cover 180 deg densely; with
    2-4 views it shows the streaks a conventional method gives.

    Args:
        projections: line integrals (B, V, H, W) of the frames ``frames``.
        projector: the projector of the recording's geometry.
        window: ramp-filter window (:data:`~xray4d.config.FBP_FILTERS`).
        cutoff: filter cut-off as a fraction of Nyquist.
        frames: frame indices of the batch in the geometry (default all).
    """
    fr = np.arange(projector.geometry.frames) if frames is None else np.asarray(frames).reshape(-1)
    w = torch.as_tensor(angular_weights(projector.geometry.angles_deg[fr]),
                        dtype=projections.dtype, device=projections.device)
    q = ramp_filter(projections, window, cutoff) * w[:, :, None, None]
    return projector.adjoint(q, frames=fr)


def sirt(data: torch.Tensor, projector: Projector, iterations: int, relaxation: float = 1.0,
         nonnegative: bool = True, x0: torch.Tensor | None = None,
         value_max: float | None = None,
         should_continue: Callable[[int], bool] | None = None,
         on_step: Callable[[int, float, float], None] | None = None,
         scale: float | None = None) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """SIRT on all frames at once.

    ``x <- P(x + relaxation * C A^T R (b - A x))``; ``R = 1 / A 1`` and
    ``C = 1 / A^T 1`` (zero where a ray or voxel is never touched). With
    ``0 < relaxation < 2`` it is a projected gradient descent on the
    R-weighted least squares ``||A x - b||_R^2`` in the C metric, which then
    decreases at every iteration.

    Args:
        data: measured projections b, (T, V, H, W).
        projector: the recording's projector (all frames).
        iterations: maximum number of iterations.
        relaxation: lambda, in (0, 2).
        nonnegative: project every iterate onto x >= 0.
        x0: starting volume (default zeros).
        value_max: project every iterate onto x <= value_max (None: no upper bound).
        should_continue: called with the iteration count before each step; False stops.
        on_step: called with (iteration, residual, step seconds) after each step.
        scale: residual normalisation (default ``max|b|``).

    Returns:
        the volumes (T, Z, Y, X), their projections A x, and the residual
        ``mean((A x - b)^2) / scale^2`` after every iteration.
    """
    if not 0 < relaxation < 2:
        raise ValueError(f"relaxation must be in (0, 2), got {relaxation}")
    t, g = data.shape[0], projector.geometry
    scale = scale or float(data.abs().max()) or 1.0
    ones_vol = torch.ones((t, *g.volume_shape), dtype=data.dtype, device=data.device)
    row = projector.forward(ones_vol)
    inv_row = _safe_div(torch.ones_like(row), row)
    col = projector.adjoint(torch.ones_like(data))
    step = relaxation * _safe_div(torch.ones_like(col), col)
    del ones_vol, row, col
    x = torch.zeros_like(step) if x0 is None else x0.clone()
    pred = projector.forward(x) if x0 is not None else torch.zeros_like(data)
    losses: list[float] = []
    it = 0
    while it < iterations and (should_continue is None or should_continue(it)):
        t0 = time.perf_counter()
        r = (data - pred).mul_(inv_row)
        x.addcmul_(step, projector.adjoint(r))
        if nonnegative or value_max is not None:
            x.clamp_(min=0 if nonnegative else None, max=value_max)
        pred = projector.forward(x)
        it += 1
        losses.append(_residual_metric(pred, data, scale))
        if on_step:
            on_step(it, losses[-1], time.perf_counter() - t0)
    return x, pred, losses


def cgls(data: torch.Tensor, projector: Projector, iterations: int,
         should_continue: Callable[[int], bool] | None = None,
         on_step: Callable[[int, float, float], None] | None = None,
         scale: float | None = None) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """CGLS (conjugate gradients on ``A^T A x = A^T b``), every frame its own problem.

    Frames run in one batch with their own step sizes; the residual norm
    ``||A x_k - b||`` of each frame does not increase from one iteration to the
    next (CGLS minimises it over a growing Krylov subspace). Unconstrained:
    clip the result for a non-negative volume.

    Args:
        data: measured projections b, (T, V, H, W).
        projector: the recording's projector (all frames).
        iterations: maximum number of iterations (CGLS semi-converges on noisy
            data: too many amplify the noise).
        should_continue, on_step, scale: as for :func:`sirt`.

    Returns:
        the volumes (T, Z, Y, X), their projections A x, and the residual
        ``mean((A x - b)^2) / scale^2`` after every iteration.
    """
    scale = scale or float(data.abs().max()) or 1.0
    r = data.clone()
    s = projector.adjoint(r)
    x = torch.zeros_like(s)
    p = s.clone()
    gamma = _frame_dot(s, s)
    losses: list[float] = []
    it = 0
    while it < iterations and (should_continue is None or should_continue(it)):
        t0 = time.perf_counter()
        q = projector.forward(p)
        alpha = _safe_div(gamma, _frame_dot(q, q))
        x.addcmul_(p, _per_frame(alpha, x))
        r.addcmul_(q, _per_frame(-alpha, r))
        s = projector.adjoint(r)
        gamma_new = _frame_dot(s, s)
        beta = _safe_div(gamma_new, gamma)
        p = s.addcmul_(p, _per_frame(beta, p))
        gamma = gamma_new
        it += 1
        losses.append(float(_frame_dot(r, r).sum()) / r.numel() / scale ** 2)
        if on_step:
            on_step(it, losses[-1], time.perf_counter() - t0)
    return x, data - r, losses


# ---------------------------------------------------------------- methods

def check_request(name: str, recording: Recording, config: ReconstructionConfig) -> None:
    """ValueError (one line) when a conventional method cannot run this recording and config:
    options out of range, data other than line integrals, a non-positive time budget."""
    config.conventional.validate()
    if recording.quantity != "line_integral":
        raise ValueError(f"quantity {recording.quantity!r} is not supported by {name}; "
                         "convert to line integrals first")
    budget = config.train.time_budget_s
    if budget is not None and not budget > 0:
        raise ValueError(f"train.time_budget_s must be positive, got {budget}")


def _run(name: str, recording: Recording, config: ReconstructionConfig, progress: bool):

    start = time.perf_counter()
    cc, tc = config.conventional, config.train
    check_request(name, recording, config)
    dev = torch.device(tc.device)
    g: Geometry = recording.geometry
    projector = Projector(g, device=dev)
    data = torch.as_tensor(np.asarray(recording.projections, np.float32), device=dev)
    scale = float(data.abs().max()) or 1.0
    iterations = 1 if name == "fbp" else (cc.iterations or DEFAULT_ITERATIONS[name])
    stop = _Stopper(name, iterations, tc.time_budget_s, start, progress)
    loss_times: list[float] = []

    def on_step(it: int, loss: float, step_s: float) -> None:
        loss_times.append(stop.elapsed())
        stop.tick(time.perf_counter() - step_s, loss)

    with torch.no_grad():
        if name == "fbp":
            x = fbp(data, projector, cc.filter, cc.cutoff)
            if cc.nonnegative or cc.value_max is not None:
                x.clamp_(min=0 if cc.nonnegative else None, max=cc.value_max)
            pred = projector.forward(x)
            losses = [_residual_metric(pred, data, scale)]
            on_step(1, losses[0], stop.elapsed())
            it = 1
        elif name == "sirt":
            x, pred, losses = sirt(data, projector, iterations, cc.relaxation, cc.nonnegative,
                                   value_max=cc.value_max, should_continue=stop.more, on_step=on_step, scale=scale)
            it = len(losses)
        else:
            x, pred, losses = cgls(data, projector, iterations, should_continue=stop.more,
                                   on_step=on_step, scale=scale)
            it = len(losses)
            if cc.nonnegative or cc.value_max is not None:
                x.clamp_(min=0 if cc.nonnegative else None, max=cc.value_max)
                pred = projector.forward(x)
    stop.close()
    volume = x.float().cpu().numpy()
    cfg = config.to_dict()
    cfg["method"] = name
    cfg["resolved"] = {"iterations_run": it, "stopped_by": stop.stopped_by,
                       "final_residual": _residual_metric(pred, data, scale)}
    times = torch.as_tensor(normalised_times(recording.time), dtype=torch.float32)
    recon = Reconstruction(volume=volume, time=np.asarray(recording.time, np.float64), method=name,
                           config=cfg, wall_seconds=stop.elapsed(), source=str(recording.path or ""))
    return FitResult(recon, FrameVolumeField(x.float().cpu(), times), losses, loss_times, it,
                     stop.stopped_by, pred.float().cpu().numpy())


class ConventionalMethod(Method):
    """A conventional method run on every frame at once (no checkpoints: seconds long).

    Reads the ``conventional`` config section; intensity data reach it as line integrals
    retrieved by ``physics.intensity: paganin`` or ``log``.
    """

    def check(self, recording: Recording, config: ReconstructionConfig) -> None:
        super().check(recording, config)
        try:   # the data reach the method as line integrals (see Method.reconstruct)
            check_request(self.name, replace(recording, quantity="line_integral"), config)
        except ValueError as exc:
            raise InputError(recording.path or "recording", "config", str(exc)) from None

    def fit(self, data: MeasuredData, config: ReconstructionConfig, *,
            checkpoint_path: str | os.PathLike | None = None, progress: bool = True,
            resume: bool = False) -> FitResult:
        """Run on every frame of ``data.recording`` (line integrals)."""
        return _run(self.name, data.recording, config, progress)


@register_method
class FBP(ConventionalMethod):
    """Filtered back-projection on every frame."""

    name = "fbp"
    description = "filtered back-projection per frame (windowed ramp filter, no iterations)"


@register_method
class SIRT(ConventionalMethod):
    """SIRT on every frame."""

    name = "sirt"
    description = "SIRT per frame, non-negative iterates (conventional baseline)"


@register_method
class CGLS(ConventionalMethod):
    """CGLS on every frame."""

    name = "cgls"
    description = "CGLS per frame, negatives clipped at the end (conventional baseline)"
