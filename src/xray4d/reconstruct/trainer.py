"""The one training loop, and fitting a field to measured projections with it.

:class:`Trainer` optimises a field (built and refined by a :class:`FieldModel`) under a
list of loss terms (:mod:`.losses`): frame batches, the coarse-to-fine schedule, the
learning-rate schedule, a time budget or an iteration count (and optionally a
:class:`StopCriterion` that ends the run earlier), checkpoints and resume, a moving
average of the weights, a divergence guard and a progress bar. It knows nothing of file
formats, methods or physics.

:func:`fit_field` is what a field method's ``fit`` calls: it builds the projector, the
data term (through the measurement model) and the regularisers, runs the trainer,
renders every frame from the averaged weights and assembles the
:class:`~xray4d.data.FitResult`. With the config's ``flow`` weights the
flow prior's terms join them (:mod:`.flow`) and the velocity is rendered beside the
frames. The data term sees only the pixels of ``data.fit_mask`` when it is set; with
``validation.stop: auto`` a share of the pixels is watched instead of fitted and ends the
run (:mod:`.holdout`).
"""
from __future__ import annotations

import copy
import math
import os
import time
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import ReconstructionConfig, TrainConfig
from ..data import FitResult, Reconstruction
from ..errors import DivergenceError, InputError
from ..fields.base import Field
from ..projector import Projector
from .adversarial import AdversarialTerm
from .checkpoint import load_checkpoint, run_fingerprint, save_checkpoint
from .distributed import agree, average_gradients, is_writer, shard, world
from .flow import build_flow_terms, render_velocity
from .holdout import HeldOutStop, auto_stop_masks
from .losses import LossTerm, ProjectionDataTerm, Step
from .regularizers import build_regularizers
from .schedule import learning_rate_factor, normalised_times
from .value_bound import bound_diagnostic, distinct_views, warn_about_bound

if TYPE_CHECKING:
    from .measurement import MeasuredData

__all__ = ["FieldModel", "WeightAverage", "StopCriterion", "Trainer", "TrainOutcome",
           "fit_field", "masked_error"]


class FieldModel:
    """How a method's field is built, refined, optimised and rendered; the trainer asks it.

    Attributes:
        shape: the grid (Z, Y, X) the field is rendered on while fitting.
        upsample_at: fractions of training at which the field is refined (coarse to
            fine); stage ``k`` starts at ``upsample_at[k - 1]``.
        channels: output channels of the field (1, or 2 for delta and beta).
    """

    shape: tuple[int, int, int]
    upsample_at: list[float] = []
    channels: int = 1

    def make_field(self) -> Field:
        """A new field at the first stage (on the training device)."""
        raise NotImplementedError

    def refine(self, field: Field, stage: int) -> None:
        """Bring ``field`` to ``stage`` (from stage 0 or the stage before)."""

    def parameter_groups(self, field: Field) -> list[dict[str, Any]]:
        """Optimiser parameter groups, each with its base learning rate ``lr``."""
        raise NotImplementedError

    def render(self, field: Field, times: torch.Tensor) -> torch.Tensor:
        """Frames at normalised times (B,) on :attr:`shape`: (B, Z, Y, X) or (B, O, Z, Y, X)."""
        return field.render_frames(times, self.shape)

    def prior_volume(self, volume: torch.Tensor) -> torch.Tensor:
        """What the volume priors see of rendered frames (default: the frames)."""
        return volume

    def resolved(self) -> dict[str, Any]:
        """Values this model resolved for the run (e.g. a value bound), for the output."""
        return {}


class WeightAverage:
    """A moving average of a field's weights (``decay`` 0: off).

    A plain mean since the (re)start until the window ``1 / (1 - decay)`` is reached,
    then exponential: with two views the raw weights keep wandering along directions the
    data do not fix, and the average removes most of that.
    """

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.average: list[torch.Tensor] | None = None
        self.steps = 0

    def reset(self, field: Field) -> None:
        """Start afresh from the field's weights (at the start and at each refinement)."""
        self.average = [p.detach().clone() for p in field.parameters()] if self.decay else None
        self.steps = 0

    @torch.no_grad()
    def update(self, field: Field) -> None:
        """Fold the field's current weights into the average."""
        if self.average is None:
            return
        self.steps += 1
        decay = min(self.decay, (self.steps - 1) / self.steps)
        torch._foreach_lerp_(self.average, [p.detach() for p in field.parameters()], 1 - decay)

    def averaged(self, field: Field) -> Field:
        """A copy of ``field`` with the averaged weights (``field`` itself when off)."""
        if self.average is None:
            return field
        out = copy.deepcopy(field)
        with torch.no_grad():
            for p, a in zip(out.parameters(), self.average):
                p.copy_(a)
        return out


class StopCriterion(Protocol):
    """A rule that ends training before the iterations or the time budget are spent
    (e.g. :class:`~xray4d.reconstruct.holdout.HeldOutStop`)."""

    #: what the run's ``stopped_by`` says when this rule ended it
    name: str

    def update(self, iteration: int, trainer: "Trainer", final_stage: bool) -> bool:
        """Called after each step (``iteration`` steps done; ``final_stage``: the last
        coarse-to-fine refinement is done); True ends the run."""
        ...

    def chosen(self, field: Field, iteration: int, elapsed: float) -> Field:
        """The field the run returns, given its last averaged ``field``."""
        ...


@dataclass
class TrainOutcome:
    """What a training run leaves: the field (averaged weights) and its history."""

    field: Field
    #: unweighted value of every loss term at every step, by term name
    history: dict[str, list[float]]
    loss_times: list[float]
    iterations: int
    stopped_by: str
    weights: dict[str, float] = dataclasses.field(default_factory=dict)


def _progress_bar(tc: TrainConfig, it: int, elapsed: float, progress: bool, desc: str):
    total = tc.iterations if tc.iterations else int(math.ceil(tc.time_budget_s))
    return tqdm(total=total, initial=min(it, total) if tc.iterations else int(elapsed),
                disable=not progress, unit="it" if tc.iterations else "s", desc=desc,
                dynamic_ncols=True, leave=False)


class Trainer:
    """Optimises a field under loss terms; see the module docstring.

    Args:
        model: builds, refines and renders the field.
        terms: the loss terms, data term first (its values are the run's ``losses``).
        times: normalised times (T,) of the frames, on the training device.
        train: the schedule (iterations or time budget, batch, learning rates, seed, ...).
        fingerprint: what a checkpoint must match to be resumed (:func:`run_fingerprint`).
        checkpoint_path: where checkpoints go (None: no checkpoints).
        progress: show a progress bar (labelled ``desc``).
        on_step: callback(iteration, data loss, elapsed s) after each step.
        start: the clock's start (``time.perf_counter()``); the budget covers the set-up
            before the trainer, the fit and the final render (estimated while fitting).
        stop: a rule that may end the run earlier and choose the field it returns (None:
            the iterations or the time budget alone).
    """

    def __init__(self, model: FieldModel, terms: list[LossTerm], times: torch.Tensor,
                 train: TrainConfig, *, fingerprint: dict[str, Any] | None = None,
                 checkpoint_path: str | os.PathLike | None = None, progress: bool = True,
                 on_step: Callable[[int, float, float], None] | None = None, desc: str = "",
                 start: float | None = None, stop: StopCriterion | None = None) -> None:
        if not train.iterations and not train.time_budget_s:
            raise ValueError("set iterations, a time budget, or both")
        self.model, self.terms, self.times, self.train = model, terms, times, train
        self.fingerprint = fingerprint or {}
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.progress, self.on_step, self.desc = progress, on_step, desc
        self.stop = stop
        self.start = time.perf_counter() if start is None else start
        self.average = WeightAverage(train.ema_decay)
        self.elapsed_before = 0.0
        self.current_field: Field | None = None

    def elapsed(self) -> float:
        """Seconds of this run, including those before a resume."""
        return self.elapsed_before + time.perf_counter() - self.start

    def _optimizer(self, fld: Field) -> torch.optim.Optimizer:
        own = [g for term in self.terms for g in term.parameter_groups()]
        groups = [{**g, "base_lr": g["lr"]} for g in self.model.parameter_groups(fld) + own]
        return torch.optim.Adam(groups)

    def _progress_fraction(self, it: int, elapsed: float) -> float:
        tc = self.train
        if tc.iterations:
            return min(1.0, it / tc.iterations)
        return min(1.0, elapsed / tc.time_budget_s)

    def _resume(self, s: dict[str, Any]) -> dict[str, Any]:
        """Load the checkpoint into the run's state ``s`` (field, optimiser, batch order, ...)."""
        m = self.model
        ckpt = load_checkpoint(self.checkpoint_path, fingerprint=self.fingerprint,
                               frames=self.times.shape[0], stages=len(m.upsample_at) + 1,
                               iterations=self.train.iterations, device=self.times.device)
        try:
            s["stage"] = ckpt["stage"]
            m.refine(s["field"], s["stage"])
            s["field"].load_state_dict(ckpt["field"])
            s["opt"] = self._optimizer(s["field"])
            s["opt"].load_state_dict(ckpt["optimizer"])
            s["gen"].set_state(ckpt["generator"])
            for t in self.terms:
                if t.state():    # a term with a state of its own needs it back
                    kept = ckpt.get("terms", {}).get(t.name)
                    if kept is None:
                        raise ValueError(f"no state of the loss term {t.name}")
                    t.load_state(kept)
            self.average.reset(s["field"])
            if self.average.average is not None and ckpt.get("average") is not None:
                avg = [a.to(self.times.device) for a in ckpt["average"]]
                if [a.shape for a in avg] != [a.shape for a in self.average.average]:
                    raise ValueError("the weight average does not match the field")
                self.average.average, self.average.steps = avg, int(ckpt["average_steps"])
        except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as exc:
            raise InputError(self.checkpoint_path, "checkpoint",
                             f"does not fit this run ({str(exc).splitlines()[0][:100]}); "
                             "remove it to start afresh") from None
        s["it"], self.elapsed_before = ckpt["iteration"], ckpt["elapsed"]
        s["history"] = ckpt["history"] if "history" in ckpt else {"data": ckpt["losses"]}
        s["loss_times"], s["order"], s["cursor"] = ckpt["loss_times"], ckpt["order"], ckpt["cursor"]
        return s

    def _checkpoint(self, s: dict[str, Any]) -> None:
        history = s["history"]
        save_checkpoint(self.checkpoint_path, {
            "iteration": s["it"], "stage": s["stage"], "elapsed": self.elapsed(),
            "field": s["field"].state_dict(), "optimizer": s["opt"].state_dict(),
            "generator": s["gen"].get_state(), "losses": list(history[self.terms[0].name]),
            "history": history, "loss_times": s["loss_times"], "order": s["order"],
            "cursor": s["cursor"], "fingerprint": self.fingerprint,
            "average": self.average.average, "average_steps": self.average.steps,
            "terms": {t.name: t.state() for t in self.terms if t.state()}})

    def _step(self, s: dict[str, Any], idx: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Render the batch and evaluate every term: (total loss, unweighted values)."""
        fld = s["field"]
        times = self.times[idx.to(self.times.device)]
        volume = self.model.render(fld, times)
        step = Step(fld, idx, times, volume, self.model.prior_volume(volume), s["it"],
                    s.get("fraction", 0.0))
        values = [term.value(step) for term in self.terms]
        total = values[0] if self.terms[0].weight == 1.0 else self.terms[0].weight * values[0]
        for term, value in zip(self.terms[1:], values[1:]):
            total = total + term.weight * value
        return total, values

    def _guard(self, s: dict[str, Any], value: float, bar) -> None:
        first = s["history"][self.terms[0].name][:1]
        if not math.isfinite(value) or (first and value > 1e6 * max(first[0], 1e-12)):
            bar.close()
            kept = self.checkpoint_path is not None and self.checkpoint_path.exists()
            raise DivergenceError(
                f"loss diverged at iteration {s['it']} ({value:.3g}); lower the learning rates"
                + (f"; last good checkpoint kept at {self.checkpoint_path}" if kept else ""))

    def _schedule(self, s: dict[str, Any], frac: float) -> None:
        """Refine at the schedule's marks, then set this step's learning rates."""
        marks, tc = self.model.upsample_at, self.train
        while s["stage"] < len(marks) and frac >= marks[s["stage"]]:
            s["stage"] += 1
            self.model.refine(s["field"], s["stage"])
            self.current_field = s["field"]
            s["opt"] = self._optimizer(s["field"])
            self.average.reset(s["field"])
        stage, s["fraction"] = s["stage"], frac
        factor = learning_rate_factor(frac, marks[stage - 1] if stage else 0.0,
                                      tc.lr_final_ratio, tc.warmup_fraction)
        for group in s["opt"].param_groups:
            group["lr"] = group["base_lr"] * factor

    def _next_batch(self, s: dict[str, Any], n_frames: int, batch: int) -> torch.Tensor:
        if s["cursor"] + batch > n_frames:
            s["order"], s["cursor"] = torch.randperm(n_frames, generator=s["gen"]), 0
        idx = s["order"][s["cursor"]:s["cursor"] + batch]
        s["cursor"] += batch
        return idx

    def _initial_state(self, resume: bool) -> dict[str, Any]:
        tc = self.train
        torch.manual_seed(tc.seed)
        fld = self.model.make_field()
        self.current_field = fld
        s: dict[str, Any] = {"field": fld, "opt": self._optimizer(fld), "stage": 0, "it": 0,
                             "gen": torch.Generator().manual_seed(tc.seed),
                             "history": {t.name: [] for t in self.terms}, "loss_times": []}
        s["order"], s["cursor"] = torch.randperm(self.times.shape[0], generator=s["gen"]), 0
        self.average.reset(fld)
        if resume and self.checkpoint_path is not None and self.checkpoint_path.exists():
            s = self._resume(s)
            self.current_field = s["field"]
        return s

    def fit(self, resume: bool = False) -> TrainOutcome:
        """Train until the iterations or the time budget are spent (resuming from the
        checkpoint if ``resume``); returns the field with averaged weights."""
        tc = self.train
        s = self._initial_state(resume)
        n_frames = self.times.shape[0]
        rank, size = world()
        if n_frames < size:
            raise InputError("recording", "frames", f"{n_frames} frames cannot be shared "
                             f"between {size} processes; start at most {n_frames}")
        # data-parallel (:mod:`.distributed`): the step's batch of frames is shared between
        # the processes (at least one frame each), so N processes take one process's steps
        batch = max(1, min(max(tc.frames_per_batch, size), n_frames))
        render_cost, last_ckpt = 0.0, time.perf_counter()
        bar = _progress_bar(tc, s["it"], self.elapsed_before, self.progress and is_writer(),
                            self.desc)
        stopped_by = "iterations"
        dev = self.times.device
        while True:
            el = self.elapsed()
            if tc.iterations and s["it"] >= tc.iterations:
                break
            over_budget = bool(tc.time_budget_s) and el + render_cost >= tc.time_budget_s
            if size > 1:        # every process stops at the same step
                _, over_budget = agree([], over_budget, dev)
            if over_budget:
                stopped_by = "time budget"
                break
            self._schedule(s, self._progress_fraction(s["it"], el))
            drawn = self._next_batch(s, n_frames, batch)
            idx = shard(drawn, rank, size)
            t0 = time.perf_counter()
            loss, values = self._step(s, idx)
            if size > 1:    # weighted by the share, the processes' mean is the batch's mean
                share = idx.numel() * size / drawn.numel()
                loss, values = loss * share, [v * share for v in values]
            agreed, _ = agree([float(v.detach()) for v in (loss, *values)], False, dev)
            self._guard(s, agreed[0], bar)
            s["opt"].zero_grad(set_to_none=True)
            loss.backward()
            average_gradients([p for g in s["opt"].param_groups for p in g["params"]])
            s["opt"].step()
            self.average.update(s["field"])
            s["it"] += 1
            for term, value in zip(self.terms, agreed[1:]):
                s["history"][term.name].append(value)
            s["loss_times"].append(self.elapsed())
            # rendering all frames at the end costs about a forward pass per batch
            render_cost = 0.5 * (time.perf_counter() - t0) * math.ceil(n_frames / batch)
            data_loss = s["history"][self.terms[0].name][-1]
            if self.on_step:
                self.on_step(s["it"], data_loss, self.elapsed())
            self._show(bar, s, data_loss)
            if (self.checkpoint_path and is_writer()
                    and time.perf_counter() - last_ckpt >= tc.checkpoint_every_s):
                self._checkpoint(s)
                last_ckpt = time.perf_counter()
            if self.stop is not None:
                done = self.stop.update(s["it"], self, s["stage"] >= len(self.model.upsample_at))
                if size > 1:
                    _, done = agree([], done, dev)
                if done:
                    stopped_by = self.stop.name
                    break
        bar.close()
        if self.checkpoint_path and is_writer():
            self._checkpoint(s)
        fld = self.average.averaged(s["field"])
        if self.stop is not None:
            fld = self.stop.chosen(fld, s["it"], self.elapsed())
        return TrainOutcome(fld, s["history"], s["loss_times"], s["it"], stopped_by,
                            {t.name: t.weight for t in self.terms})

    def _show(self, bar, s: dict[str, Any], data_loss: float) -> None:
        if self.train.iterations:
            bar.update(1)
        else:
            seconds = min(bar.total, int(self.elapsed()))
            if seconds != bar.n:  # redraw once a second, not every step (logs stay short)
                bar.n = seconds
                bar.refresh()
        if s["it"] % 10 == 0:
            bar.set_postfix(loss=f"{data_loss:.3e}", stage=s["stage"], refresh=False)

    def averaged_field(self) -> Field:
        """The field being fitted with its averaged weights (for callbacks during training)."""
        return self.average.averaged(self.current_field)


@torch.no_grad()
def render_all(model: FieldModel, fld: Field, times: torch.Tensor, chunk: int) -> np.ndarray:
    """Every frame on the model's grid, in chunks: (T, [O,] Z, Y, X) float32 on the CPU."""
    parts = [model.render(fld, times[i:i + chunk]).float().cpu().numpy()
             for i in range(0, times.shape[0], chunk)]
    return np.concatenate(parts).astype(np.float32)


@torch.no_grad()
def predict_all(data_term: ProjectionDataTerm, volume: np.ndarray, chunk: int) -> np.ndarray:
    """The measured quantity predicted from rendered frames, in chunks: (T, V, H, W)."""
    dev = data_term.measured.device
    n = volume.shape[0]
    return np.concatenate([
        data_term.predict(torch.as_tensor(volume[i:i + chunk], device=dev),
                          np.arange(i, min(i + chunk, n))).cpu().numpy()
        for i in range(0, n, chunk)])


@torch.no_grad()
def masked_error(model: FieldModel, fld: Field, times: torch.Tensor,
                 data_term: ProjectionDataTerm, mask: torch.Tensor, chunk: int) -> float:
    """Mean squared error of ``fld``'s prediction on the ``mask`` pixels (T, V, H, W bool on
    the device), relative to the data term's scale squared as the data term is."""
    total, count = 0.0, 0
    for i in range(0, times.shape[0], chunk):
        frames = np.arange(i, min(i + chunk, times.shape[0]))
        m = mask[i:i + chunk]
        if not bool(m.any()):
            continue
        pred = data_term.predict(model.render(fld, times[i:i + chunk]), frames)
        total += float((pred - data_term.measured[i:i + chunk])[m].double().pow(2).sum())
        count += int(m.sum())
    return total / max(count, 1) / data_term.scale ** 2


def fit_field(model: FieldModel, data: "MeasuredData", config: ReconstructionConfig, *,
              method: str, checkpoint_path: str | os.PathLike | None = None,
              progress: bool = True, resume: bool = False,
              on_step: Callable[[int, float, float], None] | None = None,
              extra_terms: list[LossTerm] | None = None,
              stop: StopCriterion | None = None) -> FitResult:
    """Fit ``model``'s field to ``data`` through its measurement model; render the result.

    The loss terms are the data term, the config's regularisers (scaled by the model's
    value bound, ``model.value_max`` when it has one) and ``extra_terms``. The
    reconstruction's ``volume`` is channel 0 on the fitting grid, ``volume_beta``
    channel 1 when there are two (:func:`~xray4d.reconstruct.measurement.finish` brings
    both to the voxel grid and labels them). A bounded output's diagnostic (the bound, its
    source, the share of the object at it: :func:`~.value_bound.bound_diagnostic`) goes to
    ``resolved.value_bound`` and warns (:class:`~xray4d.errors.ValueBoundWarning`) when the
    bound may cap the truth or is a shape guess.
    ``stop`` is a stop rule of the caller's (e.g.
    one that watches the fit); ``validation.stop: auto`` brings its own instead.
    """
    start = time.perf_counter()
    tc = config.train
    if not tc.iterations and not tc.time_budget_s:
        raise ValueError("set iterations, a time budget, or both")
    rec = data.recording
    dev = torch.device(tc.device)
    vc, fit_mask, watched = config.validation, data.fit_mask, None
    if vc.stop == "auto":
        fit_mask, watched = auto_stop_masks(vc, fit_mask, rec.projections.shape)
    data_term = ProjectionDataTerm(Projector(rec.geometry, device=dev),
                                   torch.as_tensor(rec.projections, dtype=torch.float32, device=dev),
                                   data.model, channels=model.channels,
                                   mask=None if fit_mask is None
                                   else torch.as_tensor(fit_mask, device=dev))
    times = torch.as_tensor(normalised_times(rec.time), dtype=torch.float32, device=dev)
    regs = build_regularizers(config.regularizers.weights(), getattr(model, "value_max", 1.0))
    if watched is not None and stop is not None:
        raise ValueError("validation.stop 'auto' brings its own stop rule; give none")
    if watched is not None:
        watched_t = torch.as_tensor(watched, device=dev)
        stop = HeldOutStop(lambda f: masked_error(model, f, times, data_term, watched_t,
                                                  tc.render_chunk),
                           vc.stop_every, vc.stop_patience, vc.stop_min_improvement)
    flow, velocity = build_flow_terms(config.flow, model.shape,
                                      getattr(model, "final_time", rec.frames),
                                      getattr(model, "value_max", 1.0), tc.seed, dev)
    if config.adversarial.enabled:
        extra_terms = [*(extra_terms or []), AdversarialTerm(data_term, config.adversarial, tc.seed)]
    trainer = Trainer(model, [data_term, *regs, *flow, *(extra_terms or [])], times, tc,
                      fingerprint=run_fingerprint(rec, config.to_dict()),
                      checkpoint_path=checkpoint_path, progress=progress, on_step=on_step,
                      desc=method, start=start, stop=stop)
    outcome = trainer.fit(resume=resume)
    volume = render_all(model, outcome.field, times, tc.render_chunk)
    predicted = predict_all(data_term, volume, tc.render_chunk)
    cfg = config.to_dict()
    cfg["method"] = method
    resolved = model.resolved()
    if getattr(model, "value_max", None) and config.field.activation == "sigmoid":
        diag = bound_diagnostic(volume[:, 0] if model.channels > 1 else volume, model.value_max,
                                resolved.get("value_max_source", "config"),
                                distinct_views(rec.geometry.angles_deg))
        resolved["value_bound"] = diag
        if is_writer():
            warn_about_bound(diag)
    cfg["resolved"] = {**resolved, "iterations_run": outcome.iterations,
                       "stopped_by": outcome.stopped_by, "world_size": world()[1],
                       "loss_terms": {name: {"weight": outcome.weights[name],
                                             "first": values[0] if values else None,
                                             "final": values[-1] if values else None}
                                      for name, values in outcome.history.items()}}
    for term in trainer.terms:   # e.g. the adversarial term's discriminator
        if hasattr(term, "summary"):
            cfg["resolved"][term.name] = term.summary()
    if stop is not None and hasattr(stop, "summary"):
        cfg["resolved"]["stop"] = stop.summary()
    if fit_mask is not None:
        cfg["resolved"]["fitted_pixel_share"] = float(np.mean(fit_mask))
    two = model.channels > 1
    recon = Reconstruction(volume=np.ascontiguousarray(volume[:, 0]) if two else volume,
                           time=np.asarray(rec.time, np.float64), method=method, config=cfg,
                           wall_seconds=trainer.elapsed(), source=str(rec.path or ""),
                           volume_beta=np.ascontiguousarray(volume[:, 1]) if two else None)
    if velocity is not None:
        recon.velocity = render_velocity(velocity, times, model.shape,
                                         float(rec.time[-1] - rec.time[0]), tc.render_chunk)
    return FitResult(recon, outcome.field, outcome.history[data_term.name], outcome.loss_times,
                     outcome.iterations, outcome.stopped_by, predicted,
                     loss_terms=outcome.history, velocity_field=velocity)
