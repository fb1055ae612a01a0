"""The one training loop.

:class:`Trainer` optimises a field (built and refined by a :class:`FieldModel`) under a
list of loss terms (:mod:`.losses`): frame batches, the coarse-to-fine schedule, the
learning-rate schedule, a time budget or an iteration count (and optionally a
:class:`StopCriterion` that ends the run earlier), checkpoints and resume, a moving
average of the weights, a divergence guard, a progress bar, and data-parallel batches
under ``torchrun`` (:mod:`.distributed`). It knows nothing of file formats, methods or
physics; :func:`xray4d.reconstruct.fit.fit_field` builds what it optimises.
"""
from __future__ import annotations

import copy
import math
import os
import time
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from tqdm.auto import tqdm

from ..config import TrainConfig
from ..errors import DivergenceError, InputError
from ..fields.base import Field
from .checkpoint import load_checkpoint, save_checkpoint
from .distributed import agree, average_gradients, is_writer, shard, world
from .losses import LossTerm, Step
from .precision import grad_scaler, render_precision
from .schedule import learning_rate_factor

__all__ = ["FieldModel", "WeightAverage", "StopCriterion", "Trainer", "TrainOutcome"]


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
    #: normalised time of each training frame when the frames are not one recording's
    #: (several recordings trained together, each over its own frames: :mod:`.onix`);
    #: None: the recording's times
    frame_times: torch.Tensor | None = None

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

    def render_batch(self, field: Field, frames: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Frames of a batch: their indices (B,) among the training frames and their
        normalised times (B,). A field of space and time needs the times alone (the default,
        :meth:`render`); a field conditioned on each frame's projections needs the indices."""
        return self.render(field, times)

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


def _backward(loss: torch.Tensor, scaler) -> None:
    """Back-propagate ``loss``, through the loss scaler of float16 training when there is one."""
    if scaler is None:
        loss.backward()
    else:
        scaler.scale(loss).backward()


def _optimizer_step(opt: torch.optim.Optimizer, scaler) -> None:
    """The optimiser's step, through the loss scaler of float16 training when there is one."""
    if scaler is None:
        opt.step()
    else:
        scaler.step(opt)
        scaler.update()


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
        # one fused update of every parameter, not a loop over them (CPU and CUDA)
        return torch.optim.Adam(groups, fused=True)

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
        with render_precision(self.train.precision, times.device):
            volume = self.model.render_batch(fld, idx, times)
        volume = volume.float()         # the projection and the loss terms in float32
        step = Step(fld, idx, times, volume, self.model.prior_volume(volume), s["it"],
                    s.get("fraction", 0.0))
        values = [term.value(step) for term in self.terms]
        total = values[0] if self.terms[0].weight == 1.0 else self.terms[0].weight * values[0]
        for term, value in zip(self.terms[1:], values[1:]):
            total = total + term.weight * value
        return total, values

    def _budget_spent(self, elapsed: float, render_cost: float) -> bool:
        """True when the time budget leaves no room for another step and the final render."""
        budget = self.train.time_budget_s
        return bool(budget) and elapsed + render_cost >= budget

    def _backward_together(self, s: dict[str, Any], loss: torch.Tensor,
                           values: list[torch.Tensor], share: float, render_cost: float,
                           scaler=None) -> tuple[list[float], bool]:
        """Several processes: each weights its loss by its share of the batch (so that the
        processes' mean is the batch's mean), back-propagates, and one all-reduce averages
        the gradients, the loss values and whether the budget is spent after this step."""
        loss, values = loss * share, [v * share for v in values]
        s["opt"].zero_grad(set_to_none=True)
        _backward(loss, scaler)
        return average_gradients([p for g in s["opt"].param_groups for p in g["params"]],
                                 [float(v.detach()) for v in (loss, *values)],
                                 self._budget_spent(self.elapsed(), render_cost))

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
        scaler = grad_scaler(tc.precision, dev)
        # with several processes, whether the budget is spent is agreed on with each step's
        # gradients (one all-reduce), for the step after; before the first, on its own
        spent = self._budget_spent(self.elapsed(), render_cost)
        if size > 1:
            _, spent = agree([], spent, dev)
        while True:
            el = self.elapsed()
            if tc.iterations and s["it"] >= tc.iterations:
                break
            over_budget = spent if size > 1 else self._budget_spent(el, render_cost)
            if over_budget:
                stopped_by = "time budget"
                break
            self._schedule(s, self._progress_fraction(s["it"], el))
            drawn = self._next_batch(s, n_frames, batch)
            idx = shard(drawn, rank, size)
            t0 = time.perf_counter()
            loss, values = self._step(s, idx)
            if size > 1:
                agreed, spent = self._backward_together(s, loss, values, idx.numel() * size
                                                        / drawn.numel(), render_cost, scaler)
                self._guard(s, agreed[0], bar)
            else:
                agreed = [float(v.detach()) for v in (loss, *values)]
                self._guard(s, agreed[0], bar)
                s["opt"].zero_grad(set_to_none=True)
                _backward(loss, scaler)
            _optimizer_step(s["opt"], scaler)
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
