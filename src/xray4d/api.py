"""The Python API: reconstruct a recording (in memory or on disk).

The CLI and the demo are thin layers over these functions.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .config import ReconstructionConfig, measurement_preset, resolve_config
from .data import FitResult, Recording
from .errors import InputError, OutputError
from .geometry import describe_detectors, distinct_directions
from .io import atomic_path, load_any, peek_angles, peek_recording, save_reconstruction
from .io.checks import Output, check_inputs, locked_outputs
from .io.files import remove_own_stale_temps
from .reconstruct.distributed import is_writer
from .reconstruct.registry import get_method
from .reconstruct.times import TimeRequest, parse_times
from .reconstruct.value_bound import describe_bound
from .resources import check_reconstruction
from .viz.preview import write_previews

__all__ = ["reconstruct", "reconstruct_file", "resolve_config", "preview_dir", "checkpoint_file",
           "reconstruct_outputs", "write_preview_folder", "parse_times", "TimeRequest"]


def reconstruct(recording: Recording, config: ReconstructionConfig | None = None, *,
                checkpoint_path: str | os.PathLike | None = None, resume: bool = False,
                progress: bool = True, times: TimeRequest | str | None = None) -> FitResult:
    """Reconstruct a 4D movie from a recording with the configured method.

    Returns a :class:`~xray4d.data.FitResult`; its ``reconstruction`` holds the volume
    (T, Z, Y, X) on the recording's voxel grid, at the recorded frames' times or at
    ``times`` (``"x2"``, ``"0.1,0.15"`` or a :class:`TimeRequest`, see
    :mod:`xray4d.reconstruct.times`; between recorded frames only for methods continuous
    in time, e.g. hexplane), which ``reconstruction.time`` records. An ``intensity`` recording is
    reconstructed as ``config.physics.intensity`` says (through the propagation model
    by default, see :mod:`xray4d.reconstruct.measurement`): then ``volume`` is delta and
    ``volume_beta`` beta. Without ``config`` the default preset is resolved for the
    recording's quantity and its view directions per frame (``auto``: the ``ct`` preset for
    many angles per frame, else ``default``).

    Raises:
        ValueError: ``config`` was resolved for another quantity (an intensity recording
            fitted through the propagation model needs ``resolve_config(...,
            quantity="intensity")``, which applies the ``intensity-model`` preset).
        xray4d.errors.InputError: the recording does not suit the method or the config, or
            ``times`` does not suit the recording or the method.
        xray4d.errors.ResourceError: the run cannot fit in the available memory
            (checked before the method allocates anything).
    """
    config = config or resolve_config("auto", quantity=recording.quantity,
                                      views=recording.geometry.directions_per_frame)
    expected = measurement_preset(recording.quantity, config.physics)
    if config.measurement != expected:
        raise ValueError(f"the config was resolved for measurement {config.measurement!r} but "
                         f"this {recording.quantity} recording needs {expected!r}: resolve it "
                         f"with resolve_config(..., quantity={recording.quantity!r})")
    if isinstance(times, str):
        try:
            times = parse_times(times)
        except ValueError as exc:
            raise InputError(recording.path or "recording", "--times", str(exc)) from None
    return get_method(config.method).reconstruct(recording, config,
                                                 checkpoint_path=checkpoint_path,
                                                 resume=resume, progress=progress, times=times)


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
    :func:`xray4d.io.checks.check_outputs`: the file, its checkpoint (consumed and
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
                     force: bool = True,
                     import_options: dict[str, Any] | None = None,
                     times: TimeRequest | str | None = None) -> FitResult:
    """Load a recording, reconstruct it, write the reconstruction file and its previews.

    The recording is read by :func:`xray4d.io.load_any` with ``import_options`` (``format``,
    ``angles``, ``views``, ...): our own file by default, or another format.
    The checkpoint ``OUT.ckpt`` is kept while fitting (``resume=True`` continues
    from it) and removed once the output is complete. Before anything is loaded the
    outputs (:func:`reconstruct_outputs`) are checked and ``out`` is locked for the
    whole run (:func:`xray4d.io.checks.locked_outputs`): never the recording, a second
    run writing the same ``out`` is refused, and with ``force=False`` existing
    outputs are refused too (:class:`~xray4d.errors.OutputError`). ``times`` as in
    :func:`reconstruct`: the file, the slices and the movie hold those frames. Under
    ``torchrun`` every process trains its share of the frames
    (:mod:`xray4d.reconstruct.distributed`) and only rank 0 checks, locks and writes.
    """
    ckpt = checkpoint_file(out)
    if resume and not ckpt.exists():
        raise InputError(ckpt, "checkpoint", "no checkpoint to resume from")
    check_inputs([(recording_path, "/")] + ([(ckpt, "checkpoint")] if resume else []))
    if not is_writer():     # another process of a torchrun: it trains, rank 0 writes
        rec = load_any(recording_path, **(import_options or {}))
        return reconstruct(rec, config, checkpoint_path=ckpt, resume=resume, progress=False,
                           times=times)
    with locked_outputs(reconstruct_outputs(out, previews, resume), [recording_path], force):
        declared = peek_recording(recording_path)
        if declared is not None:   # refuse what cannot fit before loading anything
            (t, v, h, w), angle_sets, truth, quantity = declared
            if config is None:
                angles = peek_angles(recording_path)
                config = resolve_config("auto", quantity=quantity, views=None if angles is None
                                        else distinct_directions(angles))
            check_reconstruction(t, v, h, w, config, angle_sets=angle_sets, truth=truth,
                                 source=str(recording_path), intensity=quantity == "intensity",
                                 field_method=get_method(config.method).fits_field)
        rec = load_any(recording_path, **(import_options or {}))
        config = config or resolve_config("auto", quantity=rec.quantity,
                                          views=rec.geometry.directions_per_frame)
        result = reconstruct(rec, config, checkpoint_path=ckpt, resume=resume, progress=progress,
                             times=times)
        try:
            save_reconstruction(result.reconstruction, out)
        except OutputError as exc:      # e.g. a full disk: the fit is not lost with it
            if not ckpt.exists():
                raise
            raise OutputError(exc.path, exc.option, f"{exc.fault}; the fit is kept in {ckpt}, "
                              "--resume --force writes it once there is room") from None
        if previews:
            write_preview_folder(result, rec, recording_path, out, config)
        ckpt.unlink(missing_ok=True)
        remove_own_stale_temps(ckpt)
    return result


def write_preview_folder(result: FitResult, rec: Recording, recording_path: str | os.PathLike,
                         out: str | os.PathLike, config: ReconstructionConfig) -> None:
    """The preview folder of ``out`` (:func:`preview_dir`): slices, MIPs, projections, movie,
    loss, and the config copy."""
    pdir = preview_dir(out)
    measured = rec.projections if result.measured is None else result.measured
    write_previews(pdir, result.reconstruction.volume, measured, result.predicted,
                   result.losses, result.loss_times, truth=rec.truth,
                   loss_terms=result.loss_terms, angles_deg=rec.geometry.angles_deg,
                   title=_preview_title(config.method, recording_path, result),
                   times=result.reconstruction.time, recorded_times=rec.time,
                   velocity=result.reconstruction.velocity)
    with atomic_path(pdir / "config.yaml") as tmp:
        tmp.write_text(config.to_yaml())


def _preview_title(method: str, recording_path: str | os.PathLike, result: FitResult) -> str:
    """The previews' title: method and file, and the value bound's diagnostic where there is one."""
    title = f"{method}: {Path(recording_path).name}"
    resolved = result.reconstruction.config.get("resolved", {})
    bound = resolved.get("value_bound")
    if bound:
        title += f"\n{describe_bound(bound)}"
    found = resolved.get("calibration")
    if found:       # view 0 is the reference
        title += "\ncalibrated detectors: " + describe_detectors(
            found["detector_shift_px"], found["detector_tilt_deg"], found["magnification"],
            digits=2, first_view=1)
    return title
