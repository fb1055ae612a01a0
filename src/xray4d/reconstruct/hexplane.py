"""Fit a field to a recording (self-supervised): the Reconstructor.

Knows nothing of file formats: it takes a :class:`~xray4d.io.Recording` and a
:class:`~xray4d.config.ReconstructionConfig` and returns a
:class:`~xray4d.io.Reconstruction`. Training minimises the error between the
projections of the field and the measured projections, plus named
regularisers; it follows a coarse-to-fine schedule, honours a time budget,
writes checkpoints atomically and resumes from them.
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..config import ReconstructionConfig
from ..data import FitResult, Reconstruction, Recording
from ..errors import DivergenceError
from ..fields.hexplane import HexPlaneField
from ..projector import Projector
from .regularizers import build_regularizers
from .schedule import learning_rate_factor, normalised_times
from .value_bound import estimate_value_max_auto

__all__ = ["HexPlaneReconstructor"]


def remove_stale_checkpoint_temps(checkpoint_path: str | os.PathLike) -> None:
    """Delete temporary checkpoint files left by a run killed while saving.

    The checkpoint itself is only ever replaced by a complete file (rename), so
    what a kill can leave behind is a partial temporary file beside it.
    """
    p = Path(checkpoint_path)
    for stale in p.parent.glob(f".{p.name}.*.tmp"):
        stale.unlink(missing_ok=True)


class HexPlaneReconstructor:
    """Fits an X-Hexplane field to a recording.

    Args:
        recording: projections (line integrals) and geometry.
        config: the resolved run configuration.
        checkpoint_path: where checkpoints go (None: no checkpoints).
        progress: show a progress bar.
        on_step: optional callback(iteration, loss, elapsed_s) after each step.
        measurement: optional differentiable map applied to the predicted line
            integrals before the data term; the recording then holds its output
            (e.g. flat/dark-corrected intensities, see ``xray4d.intensity``).
        output_bounds: fit a field of ``len(output_bounds)`` output channels
            sharing the planes, each bounded by its entry (e.g. the delta and beta
            bounds of a two-channel refractive index); the measurement then gets
            the line integrals of every channel, (B, O, V, H, W). The output's
            ``volume`` is channel 0 and ``volume_beta`` channel 1. None: one
            channel bounded by ``field.value_max`` (or its estimate).
        output_init: initial value of each output channel as a fraction of its
            bound (default ``field.init_value`` for all).
        relative: the second output is the first times a bounded ratio
            (``output_bounds[1]`` bounds the ratio; see :class:`HexPlaneField`).
    """

    def __init__(self, recording: Recording, config: ReconstructionConfig,
                 checkpoint_path: str | os.PathLike | None = None, progress: bool = True,
                 on_step: Callable[[int, float, float], None] | None = None,
                 measurement: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 output_bounds: tuple[float, ...] | None = None,
                 output_init: tuple[float, ...] | None = None, relative: bool = False) -> None:
        if recording.quantity != "line_integral" and measurement is None:
            raise ValueError(f"quantity {recording.quantity!r} is not supported yet by hexplane; "
                             "convert to line integrals first")
        # measurement: predicted line integrals -> what the recording holds (e.g.
        # xray4d.intensity.IntensityModel: flat/dark-corrected intensity, flat = 1)
        self.measurement = measurement
        self.recording = recording
        self.config = config
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.progress = progress
        self.on_step = on_step
        fc = config.field
        self.device = torch.device(config.train.device)
        g = recording.geometry
        self.shape = g.volume_shape
        t = recording.frames
        self.final_space = tuple(max(2, int(round(fc.space_scale * n))) for n in self.shape)
        self.final_time = max(2, int(round(fc.time_scale * t))) if t > 1 else 1
        self.output_bounds = None if output_bounds is None else tuple(map(float, output_bounds))
        self.output_init = None if output_init is None else tuple(map(float, output_init))
        self.relative = bool(relative)
        if self.output_bounds is not None:
            if len(self.output_bounds) not in (1, 2) or min(self.output_bounds) <= 0:
                raise ValueError(f"output_bounds: one or two positive bounds, got {output_bounds}")
            self.value_max, self.value_max_source = self.output_bounds[0], "output_bounds"
        elif fc.value_max:
            self.value_max, self.value_max_source = float(fc.value_max), "config"
        else:
            # three or more distinct angles determine the value of an elliptical slice;
            # with two views a round cross-section is assumed (see value_estimate)
            self.value_max, self.value_max_source = estimate_value_max_auto(
                recording.projections, g.angles_deg)
        self.stages = self._stages()

    # ------------------------------------------------------------ schedule
    def _stages(self) -> list[tuple[tuple[int, int, int], int]]:
        """Resolutions of the planes at the start and after each upsampling."""
        fc = self.config.field
        n_up = len(fc.upsample_at)
        out = []
        for i in range(n_up + 1):
            frac = fc.initial_scale ** (1 - i / n_up) if n_up else 1.0
            space = tuple(max(2, int(round(frac * r))) for r in self.final_space)
            tr = max(2, int(round(frac * self.final_time))) if self.final_time > 1 else 1
            out.append((space, tr))
        return out

    def _progress_fraction(self, it: int, elapsed: float) -> float:
        tc = self.config.train
        if tc.iterations:
            return min(1.0, it / tc.iterations)
        return min(1.0, elapsed / tc.time_budget_s)

    def _make_optimizer(self, fld: HexPlaneField) -> torch.optim.Optimizer:
        tc = self.config.train
        return torch.optim.Adam([{"params": fld.plane_parameters(), "lr": tc.lr_planes, "base_lr": tc.lr_planes},
                                 {"params": fld.decoder_parameters(), "lr": tc.lr_decoder,
                                  "base_lr": tc.lr_decoder}])

    @property
    def outputs(self) -> int:
        """Output channels of the field (1, or 2 for delta and beta)."""
        return 1 if self.output_bounds is None else len(self.output_bounds)

    def make_field(self) -> HexPlaneField:
        fc = self.config.field
        space, tr = self.stages[0]
        bounds = self.value_max if self.outputs == 1 else list(self.output_bounds)
        init = fc.init_value if self.output_init is None else list(self.output_init)
        return HexPlaneField(channels=fc.channels, space_resolution=space, time_resolution=tr,
                             decoder=fc.decoder, mlp_hidden=fc.mlp_hidden, activation=fc.activation,
                             value_max=bounds, init_value=init,
                             init_scale=fc.init_scale, seed=self.config.train.seed,
                             outputs=self.outputs, relative=self.relative).to(self.device)

    def _project(self, projector: Projector, volume: torch.Tensor, frames: np.ndarray
                 ) -> torch.Tensor:
        """Line integrals of rendered frames: (B, V, H, W), or (B, O, V, H, W) with O outputs."""
        if self.outputs == 1:
            return projector.forward(volume, frames=frames)
        b, o = volume.shape[:2]
        out = projector.forward(volume.flatten(0, 1), frames=np.repeat(frames, o))
        return out.unflatten(0, (b, o))

    def _for_regularizers(self, volume: torch.Tensor) -> torch.Tensor:
        """What the volume regularisers see: the volume, or each output channel over its bound
        (times the first channel's bound, which the regularisers divide by)."""
        if self.outputs == 1:
            return volume
        bounds = torch.as_tensor(self.output_bounds, dtype=volume.dtype, device=volume.device)
        if self.relative:  # the second channel is at most the product of the bounds
            bounds = torch.cumprod(bounds, 0)
        return volume / (bounds / self.value_max).view(1, -1, 1, 1, 1)

    # ------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, state: dict) -> None:
        if self.checkpoint_path is None:
            return
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_checkpoint_temps(self.checkpoint_path)
        tmp = self.checkpoint_path.with_name(f".{self.checkpoint_path.name}.{os.getpid()}.tmp")
        try:
            torch.save(state, tmp)
            os.replace(tmp, self.checkpoint_path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def _load_checkpoint(self) -> dict | None:
        if self.checkpoint_path is None or not self.checkpoint_path.exists():
            return None
        return torch.load(self.checkpoint_path, map_location=self.device, weights_only=False)

    # ------------------------------------------------------------ fitting
    def fit(self, resume: bool = False) -> FitResult:
        """Train, then render every frame. Returns the reconstruction and its history."""
        from tqdm.auto import tqdm

        start = time.perf_counter()  # the budget covers set-up, fitting and the final render
        tc = self.config.train
        if not tc.iterations and not tc.time_budget_s:
            raise ValueError("set iterations, a time budget, or both")
        torch.manual_seed(tc.seed)
        rec = self.recording
        g = rec.geometry
        dev = self.device
        data = torch.as_tensor(rec.projections, dtype=torch.float32, device=dev)
        # transmissions (with a measurement model): the contrast about 1 sets the scale
        scale = float((data if self.measurement is None else data - 1).abs().max()) or 1.0
        projector = Projector(g, device=dev)
        times = torch.as_tensor(normalised_times(rec.time), dtype=torch.float32, device=dev)
        regs = build_regularizers(dataclasses.asdict(self.config.regularizers), self.value_max)
        n_frames = rec.frames
        batch = max(1, min(tc.frames_per_batch, n_frames))

        fld = self.make_field()
        self.current_field = fld  # for callbacks (e.g. validation during training)
        opt = self._make_optimizer(fld)
        gen = torch.Generator().manual_seed(tc.seed)
        it, stage, elapsed_before = 0, 0, 0.0
        losses: list[float] = []
        loss_times: list[float] = []
        order = torch.randperm(n_frames, generator=gen)
        cursor = 0
        self._reset_average(fld)
        ckpt = self._load_checkpoint() if resume else None
        if ckpt is not None:
            stage = ckpt["stage"]
            space, tr = self.stages[stage]
            fld.upsample(space, tr)
            fld.load_state_dict(ckpt["field"])
            opt = self._make_optimizer(fld)
            opt.load_state_dict(ckpt["optimizer"])
            gen.set_state(ckpt["generator"])
            it, elapsed_before = ckpt["iteration"], ckpt["elapsed"]
            losses, loss_times = ckpt["losses"], ckpt["loss_times"]
            order, cursor = ckpt["order"], ckpt["cursor"]
            self._reset_average(fld)
            if self._average is not None and ckpt.get("average") is not None:
                self._average = [a.to(dev) for a in ckpt["average"]]
                self._average_steps = ckpt["average_steps"]

        def state() -> dict:
            return {"iteration": it, "stage": stage, "elapsed": elapsed_now(),
                    "field": fld.state_dict(), "optimizer": opt.state_dict(),
                    "generator": gen.get_state(), "losses": losses, "loss_times": loss_times,
                    "order": order, "cursor": cursor, "config": self.config.to_dict(),
                    "value_max": self.value_max, "average": self._average,
                    "average_steps": self._average_steps}

        def elapsed_now() -> float:
            return elapsed_before + time.perf_counter() - start

        render_cost = 0.0
        last_ckpt = time.perf_counter()
        total = tc.iterations if tc.iterations else int(math.ceil(tc.time_budget_s))
        bar = tqdm(total=total, initial=min(it, total) if tc.iterations else int(elapsed_before),
                   disable=not self.progress, unit="it" if tc.iterations else "s",
                   desc=self.config.method, dynamic_ncols=True, leave=False)
        stopped_by = "iterations"
        fc = self.config.field
        while True:
            el = elapsed_now()
            if tc.iterations and it >= tc.iterations:
                break
            if tc.time_budget_s and el + render_cost >= tc.time_budget_s:
                stopped_by = "time budget"
                break
            frac = self._progress_fraction(it, el)
            # coarse-to-fine: upsample when the schedule passes a mark
            while stage < len(fc.upsample_at) and frac >= fc.upsample_at[stage]:
                stage += 1
                fld.upsample(*self.stages[stage])
                self.current_field = fld
                opt = self._make_optimizer(fld)
                self._reset_average(fld)
            factor = learning_rate_factor(frac, fc.upsample_at[stage - 1] if stage else 0.0,
                                          tc.lr_final_ratio, tc.warmup_fraction)
            for group in opt.param_groups:
                group["lr"] = group["base_lr"] * factor
            if cursor + batch > n_frames:
                order, cursor = torch.randperm(n_frames, generator=gen), 0
            idx = order[cursor:cursor + batch]
            cursor += batch
            t0 = time.perf_counter()
            vol = fld.render_frames(times[idx.to(dev)], self.shape)
            pred = self._measure(self._project(projector, vol, idx.numpy()))
            data_loss = (pred - data[idx.to(dev)]).pow(2).mean() / scale ** 2
            loss = data_loss
            reg_vol = self._for_regularizers(vol)
            for r in regs:
                loss = loss + r(fld, reg_vol)
            value = float(loss.detach())
            if not math.isfinite(value) or (losses and value > 1e6 * max(losses[0], 1e-12)):
                bar.close()
                # the checkpoint on disk predates this step: it is the last good state
                kept = self.checkpoint_path is not None and self.checkpoint_path.exists()
                raise DivergenceError(
                    f"loss diverged at iteration {it} ({value:.3g}); lower the learning rates"
                    + (f"; last good checkpoint kept at {self.checkpoint_path}" if kept else ""))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            self._update_average(fld)
            it += 1
            losses.append(float(data_loss.detach()))
            loss_times.append(elapsed_now())
            step_s = time.perf_counter() - t0
            # rendering all frames at the end costs about a forward pass per batch
            render_cost = 0.5 * step_s * math.ceil(n_frames / batch)
            if self.on_step:
                self.on_step(it, losses[-1], elapsed_now())
            if tc.iterations:
                bar.update(1)
            else:
                seconds = min(total, int(elapsed_now()))
                if seconds != bar.n:  # redraw once a second, not every step (logs stay short)
                    bar.n = seconds
                    bar.refresh()
            if it % 10 == 0:
                bar.set_postfix(loss=f"{losses[-1]:.3e}", stage=stage, refresh=False)
            if self.checkpoint_path and time.perf_counter() - last_ckpt >= tc.checkpoint_every_s:
                self._save_checkpoint(state())
                last_ckpt = time.perf_counter()
        bar.close()
        if self.checkpoint_path:
            self._save_checkpoint(state())
        fld = self.averaged_field()
        volume = self.render_all(fld, times)
        with torch.no_grad():
            predicted = np.concatenate([
                self._measure(self._project(
                    projector, torch.as_tensor(volume[i:i + tc.render_chunk], device=dev),
                    np.arange(i, min(i + tc.render_chunk, n_frames)))).cpu().numpy()
                for i in range(0, n_frames, tc.render_chunk)])
        wall = elapsed_now()
        cfg = self.config.to_dict()
        cfg["resolved"] = {"value_max": self.value_max, "value_max_source": self.value_max_source,
                           "stages": self.stages,
                           "iterations_run": it, "stopped_by": stopped_by}
        if self.outputs > 1:
            cfg["resolved"]["output_bounds"] = list(self.output_bounds)
            cfg["resolved"]["second_output"] = ("ratio to the first" if self.relative
                                                else "independent")
        recon = Reconstruction(volume=np.ascontiguousarray(volume[:, 0]) if self.outputs > 1
                               else volume, time=np.asarray(rec.time, np.float64),
                               method="hexplane", config=cfg, wall_seconds=wall,
                               source=str(rec.path or ""),
                               volume_beta=np.ascontiguousarray(volume[:, 1])
                               if self.outputs > 1 else None)
        return FitResult(recon, fld, losses, loss_times, it, stopped_by, predicted)

    # ------------------------------------------------------------ weight averaging
    def _reset_average(self, fld: HexPlaneField) -> None:
        """Start the moving average of the weights afresh (at the start and at each upsampling)."""
        decay = self.config.train.ema_decay
        self._average = [p.detach().clone() for p in fld.parameters()] if decay else None
        self._average_steps = 0

    @torch.no_grad()
    def _update_average(self, fld: HexPlaneField) -> None:
        if self._average is None:
            return
        self._average_steps += 1
        n = self._average_steps
        # warm-up: a plain mean of the weights since the (re)start until the window
        # 1 / (1 - ema_decay) is reached, then the exponential average
        decay = min(self.config.train.ema_decay, (n - 1) / n)
        torch._foreach_lerp_(self._average, [p.detach() for p in fld.parameters()], 1 - decay)

    def averaged_field(self) -> HexPlaneField:
        """The field being fitted with its weights replaced by their moving average.

        The field itself when averaging is off. A copy otherwise, so training
        can continue (callbacks use this to validate during training).
        """
        fld = self.current_field
        if getattr(self, "_average", None) is None:
            return fld
        out = copy.deepcopy(fld)
        with torch.no_grad():
            for p, a in zip(out.parameters(), self._average):
                p.copy_(a)
        return out

    def _measure(self, pred: torch.Tensor) -> torch.Tensor:
        """Predicted line integrals -> the recorded quantity (identity without a measurement)."""
        return pred if self.measurement is None else self.measurement(pred)

    @torch.no_grad()
    def render_all(self, fld: HexPlaneField, times: torch.Tensor) -> np.ndarray:
        """Render every frame on the voxel grid, in chunks: (T, Z, Y, X) float32
        ((T, O, Z, Y, X) with O > 1 output channels)."""
        chunk = self.config.train.render_chunk
        parts = [fld.render_frames(times[i:i + chunk], self.shape).float().cpu().numpy()
                 for i in range(0, times.shape[0], chunk)]
        return np.concatenate(parts).astype(np.float32)
