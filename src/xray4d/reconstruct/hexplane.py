"""X-Hexplane as a method: its field model for the trainer, and the registered method.

:class:`HexPlaneModel` tells the :class:`~xray4d.reconstruct.trainer.Trainer` how to
build an X-Hexplane field (planes at a fraction of the grid's resolution, a linear or
MLP decoder, a sigmoid output bounded by the value bound), refine it coarse-to-fine,
optimise it (planes and decoder at their own learning rates) and render it. The
ablations (:mod:`.ablations`) change the model only.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
import torch

from ..config import ReconstructionConfig
from ..data import FitResult, Recording
from ..fields.base import Field
from ..fields.hexplane import HexPlaneField
from .measurement import MeasuredData, finish
from .flow import render_velocity
from .registry import Method, register_method
from .times import normalise_to, recorded_index
from .fit import fit_field
from .trainer import FieldModel
from .value_bound import resolve_value_max

__all__ = ["HexPlaneModel", "HexPlaneMethod", "HexPlaneReconstructor"]


class HexPlaneModel(FieldModel):
    """An X-Hexplane field for the trainer.

    Args:
        data: what is fitted (its geometry sets the grid; its channels and physical
            bounds set the output head).
        config: the run's config (``field`` and ``train`` sections).
        time_nodes: override of the final time resolution (1: time ignored).
    """

    def __init__(self, data: MeasuredData, config: ReconstructionConfig,
                 time_nodes: int | None = None) -> None:
        fc, rec = config.field, data.recording
        self.config = config
        self.device = torch.device(config.train.device)
        self.shape = rec.geometry.volume_shape
        self.channels = data.channels
        self.upsample_at = list(fc.upsample_at)
        # on a fine grid the planes keep the resolution asked for relative to the voxel grid
        space_scale = fc.space_scale / data.oversample
        self.final_space = tuple(max(2, int(round(space_scale * n))) for n in self.shape)
        t = rec.frames
        self.final_time = (max(2, int(round(fc.time_scale * t))) if t > 1 else 1) \
            if time_nodes is None else time_nodes
        self.value_max, self.value_max_source = resolve_value_max(data, config)
        self.bounds: float | list[float] = self.value_max
        self.init: float | list[float] = fc.init_value
        if data.channels > 1:  # second channel: beta / delta, started at the material's
            ratio, ratio_max = data.beta_ratio
            self.bounds, self.init = [self.value_max, ratio_max], [fc.init_value, ratio / ratio_max]
        self.stages = self._stages()

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

    def field_options(self) -> dict[str, Any]:
        """Arguments of the field's constructor shared by the X-Hexplane variants."""
        fc = self.config.field
        return dict(channels=fc.channels, decoder=fc.decoder, mlp_hidden=fc.mlp_hidden,
                    activation=fc.activation, value_max=self.bounds, init_value=self.init,
                    init_scale=fc.init_scale, seed=self.config.train.seed)

    def make_field(self) -> Field:
        space, tr = self.stages[0]
        return HexPlaneField(space_resolution=space, time_resolution=tr, outputs=self.channels,
                             relative=self.channels > 1, **self.field_options()).to(self.device)

    def refine(self, field: Field, stage: int) -> None:
        field.upsample(*self.stages[stage])

    def parameter_groups(self, field: Field) -> list[dict[str, Any]]:
        tc = self.config.train
        return [{"params": field.plane_parameters(), "lr": tc.lr_planes},
                {"params": field.decoder_parameters(), "lr": tc.lr_decoder}]

    def prior_volume(self, volume: torch.Tensor) -> torch.Tensor:
        """The volume, or each output channel over its bound times the first channel's bound
        (the volume priors divide by that)."""
        if self.channels == 1:
            return volume
        bounds = torch.as_tensor(self.bounds, dtype=volume.dtype, device=volume.device)
        bounds = torch.cumprod(bounds, 0)  # the second channel is at most the product
        return volume / (bounds / self.value_max).view(1, -1, 1, 1, 1)

    def resolved(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value_max": self.value_max,
                               "value_max_source": self.value_max_source, "stages": self.stages}
        if self.channels > 1:
            out["output_bounds"] = list(self.bounds)
            out["second_output"] = "ratio to the first"
        return out


class HexPlaneMethod(Method):
    """Base of the X-Hexplane family: a field model fitted by the trainer."""

    fits_measurement_model = True
    fits_field = True
    continuous_time = True
    fits_masked_pixels = True

    @torch.no_grad()
    def at_times(self, result: FitResult, data: MeasuredData, config: ReconstructionConfig,
                 times: np.ndarray) -> FitResult:
        """The fitted field at ``times``: the frames rendered at recorded times are kept as
        they are (so recorded times reproduce the plain output exactly), the others are
        rendered from the field (the averaged weights) at their normalised times, in chunks
        of ``train.render_chunk``, on the fitting grid like the recorded ones."""
        rec, r = data.recording, result.reconstruction
        idx = recorded_index(times, rec.time)
        between = np.flatnonzero(idx < 0)
        volume = np.empty((times.size,) + r.volume.shape[1:], np.float32)
        beta = None if r.volume_beta is None else np.empty_like(volume)
        kept = idx >= 0
        volume[kept] = r.volume[idx[kept]]
        if beta is not None:
            beta[kept] = r.volume_beta[idx[kept]]
        fld, shape = result.field, rec.geometry.volume_shape
        device = next(fld.parameters()).device
        norm = normalise_to(times[between], rec.time)
        chunk = config.train.render_chunk
        for start in range(0, between.size, chunk):
            sel = between[start:start + chunk]
            t = torch.as_tensor(norm[start:start + chunk], dtype=torch.float32, device=device)
            frames = fld.render_frames(t, shape).float().cpu().numpy()
            if beta is None:
                volume[sel] = frames
            else:
                volume[sel], beta[sel] = frames[:, 0], frames[:, 1]
        if r.velocity is not None and result.velocity_field is not None:
            velocity = np.empty((times.size,) + r.velocity.shape[1:], np.float32)
            velocity[kept] = r.velocity[idx[kept]]
            if between.size:
                t = torch.as_tensor(norm, dtype=torch.float32, device=device)
                velocity[between] = render_velocity(result.velocity_field, t, shape,
                                                    float(rec.time[-1] - rec.time[0]), chunk)
            r.velocity = velocity
        r.volume, r.volume_beta = volume, beta
        r.time = np.asarray(times, np.float64)
        return result

    def model(self, data: MeasuredData, config: ReconstructionConfig) -> FieldModel:
        """The field model this method fits."""
        return HexPlaneModel(data, config)

    def fit(self, data: MeasuredData, config: ReconstructionConfig, *,
            checkpoint_path: str | os.PathLike | None = None, progress: bool = True,
            resume: bool = False, on_step: Callable[[int, float, float], None] | None = None
            ) -> FitResult:
        """Fit with :func:`~xray4d.reconstruct.fit.fit_field`; ``on_step`` is called with
        (iteration, data loss, elapsed s) after each step."""
        return fit_field(self.model(data, config), data, config, method=self.name,
                         checkpoint_path=checkpoint_path, progress=progress, resume=resume,
                         on_step=on_step)


@register_method
class HexPlane(HexPlaneMethod):
    """X-Hexplane (the default method)."""

    name = "hexplane"
    description = "X-Hexplane: six feature planes shared over time, tiny decoder"


class HexPlaneReconstructor:
    """A method of the X-Hexplane family on one recording, with a step callback: for scripts
    and tests that watch a fit (``method`` picks ``hexplane``, ``static`` or ``perframe``).

    Args:
        recording: the recording (line integrals or intensities).
        config: the resolved config.
        checkpoint_path: where checkpoints go (None: none).
        progress: show a progress bar.
        on_step: callback(iteration, data loss, elapsed s) after each step.
    """

    def __init__(self, recording: Recording, config: ReconstructionConfig,
                 checkpoint_path: str | os.PathLike | None = None, progress: bool = True,
                 on_step: Callable[[int, float, float], None] | None = None,
                 method: HexPlaneMethod | None = None) -> None:
        self.recording, self.config = recording, config
        self.checkpoint_path, self.progress, self.on_step = checkpoint_path, progress, on_step
        self.method = method or HexPlane()
        self.data = self.method.measured(recording, config)

    def model(self) -> FieldModel:
        """The field model the method fits to this recording."""
        return self.method.model(self.data, self.config)

    def fit(self, resume: bool = False) -> FitResult:
        """Check, fit and finish as the method's ``reconstruct`` does."""
        self.method.check(self.recording, self.config)
        result = self.method.fit(self.data, self.config, checkpoint_path=self.checkpoint_path,
                                 progress=self.progress, resume=resume, on_step=self.on_step)
        return finish(result, self.data)
