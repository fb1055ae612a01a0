"""The Python API: reconstruct a recording (in memory or on disk).

The CLI and the demo are thin layers over these functions.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .config import ReconstructionConfig, load_preset
from .data import FitResult, Recording
from .errors import InputError, OutputError
from .io import atomic_path, load_recording, peek_recording, save_reconstruction
from .io.files import Output, check_inputs, locked_outputs, remove_own_stale_temps
from .reconstruct.measurement import reconstruct_intensity_recording
from .reconstruct.registry import get_method
from .resources import MemoryEstimate, check_reconstruction

__all__ = ["reconstruct", "reconstruct_file", "resolve_config", "preview_dir", "checkpoint_file",
           "reconstruct_outputs", "check_memory"]


def resolve_config(preset: str = "default", overrides: dict[str, Any] | None = None,
                   method: str | None = None) -> ReconstructionConfig:
    """A preset with nested overrides applied (and the method, if given)."""
    cfg = load_preset(preset)
    if overrides:
        cfg = cfg.updated(overrides)
    if method:
        cfg.method = method
    return cfg


def reconstruct(recording: Recording, config: ReconstructionConfig | None = None, *,
                checkpoint_path: str | os.PathLike | None = None, resume: bool = False,
                progress: bool = True) -> FitResult:
    """Reconstruct a 4D movie from a recording with the configured method.

    Returns a :class:`~xray4d.reconstruct.FitResult`; its ``reconstruction``
    holds the volume (T, Z, Y, X) on the recording's voxel grid. An ``intensity``
    recording is reconstructed as ``config.physics.intensity`` says (through the
    propagation model by default, see :mod:`xray4d.intensity`): then ``volume`` is
    delta and ``volume_beta`` beta.

    Raises:
        xray4d.errors.ResourceError: the run cannot fit in the available memory
            (checked before the method allocates anything; see :func:`check_memory`).
    """
    config = config or load_preset("default")
    method = get_method(config.method)
    check_memory(recording, config)
    if recording.quantity == "intensity":  # as config.physics.intensity says; volume = delta
        return reconstruct_intensity_recording(recording, config, checkpoint_path, progress,
                                               resume)
    return method(recording, config, checkpoint_path, progress, resume)


def check_memory(recording: Recording, config: ReconstructionConfig) -> MemoryEstimate:
    """Estimate what reconstructing ``recording`` allocates; ResourceError if it cannot fit.

    The recording's own arrays are in memory already and not counted again.
    """
    g = recording.geometry
    angle_sets = 1 if g.angles_shared else len(np.unique(g.angles_deg, axis=0))
    return check_reconstruction(g.frames, g.views, g.height, g.width, config,
                                angle_sets=angle_sets, in_memory=True,
                                intensity=recording.quantity == "intensity",
                                source=str(recording.path or ""))


def preview_dir(out: str | os.PathLike) -> Path:
    """The preview folder written beside a reconstruction file."""
    out = Path(out)
    return out.with_name(out.stem + "_preview")


def checkpoint_file(out: str | os.PathLike) -> Path:
    """The checkpoint written beside a reconstruction file while it is fitted."""
    out = Path(out)
    return out.with_name(out.name + ".ckpt")


def reconstruct_outputs(out: str | os.PathLike, previews: bool = True,
                        resume: bool = False) -> list[Output]:
    """What :func:`reconstruct_file` writes for ``out``, for
    :func:`xray4d.io.files.check_outputs`: the file, its checkpoint (consumed and
    replaced when resuming), and with ``previews`` the preview folder and its config copy."""
    out = Path(out)
    outputs = [Output(out, "--out"),
               Output(checkpoint_file(out), "checkpoint of --out", replace=resume,
                      exists_hint="an interrupted run's: --resume continues it, --force "
                                  "starts over")]
    if previews:
        pdir = preview_dir(out)
        outputs += [Output(pdir, "preview folder of --out", folder=True),
                    Output(pdir / "config.yaml", "config copy of --out")]
    return outputs


def reconstruct_file(recording_path: str | os.PathLike, out: str | os.PathLike,
                     config: ReconstructionConfig | None = None, *, resume: bool = False,
                     progress: bool = True, previews: bool = True,
                     force: bool = True) -> FitResult:
    """Load a recording, reconstruct it, write the reconstruction file and its previews.

    The checkpoint ``OUT.ckpt`` is kept while fitting (``resume=True`` continues
    from it) and removed once the output is complete. Before anything is loaded the
    outputs (:func:`reconstruct_outputs`) are checked and ``out`` is locked for the
    whole run (:func:`xray4d.io.files.locked_outputs`): never the recording, a second
    run writing the same ``out`` is refused, and with ``force=False`` existing
    outputs are refused too (:class:`~xray4d.errors.OutputError`).
    """
    config = config or load_preset("default")
    ckpt = checkpoint_file(out)
    if resume and not ckpt.exists():
        raise InputError(ckpt, "checkpoint", "no checkpoint to resume from")
    check_inputs([(recording_path, "/")] + ([(ckpt, "checkpoint")] if resume else []))
    with locked_outputs(reconstruct_outputs(out, previews, resume), [recording_path], force):
        declared = peek_recording(recording_path)
        if declared is not None:   # refuse what cannot fit before loading anything
            (t, v, h, w), angle_sets, truth, quantity = declared
            check_reconstruction(t, v, h, w, config, angle_sets=angle_sets, truth=truth,
                                 source=str(recording_path), intensity=quantity == "intensity")
        rec = load_recording(recording_path)
        if rec.quantity not in ("line_integral", "intensity"):
            raise InputError(recording_path, "/exchange/data",
                             f"quantity {rec.quantity!r} is not supported yet; reconstruct needs "
                             "line_integral or intensity data")
        result = reconstruct(rec, config, checkpoint_path=ckpt, resume=resume, progress=progress)
        try:
            save_reconstruction(result.reconstruction, out)
        except OutputError as exc:      # e.g. a full disk: the fit is not lost with it
            if not ckpt.exists():
                raise
            raise OutputError(exc.path, exc.option, f"{exc.fault}; the fit is kept in {ckpt}, "
                              "--resume --force writes it once there is room") from None
        if previews:
            from .viz.preview import write_previews
            pdir = preview_dir(out)
            measured = rec.projections if result.measured is None else result.measured
            write_previews(pdir, result.reconstruction.volume, measured, result.predicted,
                           result.losses, result.loss_times, truth=rec.truth,
                           angles_deg=rec.geometry.angles_deg,
                           title=f"{config.method}: {Path(recording_path).name}")
            with atomic_path(pdir / "config.yaml") as tmp:
                tmp.write_text(config.to_yaml())
        ckpt.unlink(missing_ok=True)
        remove_own_stale_temps(ckpt)
    return result
