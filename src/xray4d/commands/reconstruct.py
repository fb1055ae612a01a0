"""The ``xray4d reconstruct`` verb: recording in, 4D reconstruction + previews out."""
from __future__ import annotations

import argparse
import math
import time

from ..cli import (ITERATIONS, SEED, TIME_BUDGET_S, UsageError, float_range,
                   read_config_overrides, with_range)
from ..config import PRECISIONS
from ..geometry import describe_detectors

#: the largest value of the object a user may state: values of f per voxel (attenuation or
#: refractive decrement times the voxel size, or a simulation's 1) lie far below; measured
#: on a 24^3 droplet recording: 1e9 fits nothing, 1e15 explodes, 1e30 diverges at once
VALUE_MAX = float_range(0.0, 1e6, lo_open=True)
#: the adversarial term's weight on the command line (the config allows up to 1e9; beside a
#: data term of O(1) at the start, weights above 100 leave the measured views unexplained)
ADVERSARIAL_WEIGHT = float_range(0.0, 100.0, lo_open=True)
#: the lateral margin of the field of view, a share of the detector's width on each side
LATERAL_MARGIN = float_range(0.0, 2.0)
from .convert import add_import_arguments, import_options


def add_precision_argument(p: argparse.ArgumentParser) -> None:
    """``--precision``: the dtype of the field's rendering while fitting (``train.precision``)."""
    p.add_argument("--precision", choices=PRECISIONS,
                   help="dtype of the field's rendering while fitting (default float32; "
                        "float16 on CUDA only)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``xray4d reconstruct``."""
    p = sub.add_parser(
        "reconstruct", help="reconstruct a 4D movie from a recording",
        description="Fit a space-time field to the recording's projections (self-supervised) "
                    "and write the reconstruction file, a preview folder beside it "
                    "(slices, MIPs, projections, movie, loss) and the resolved config.")
    p.add_argument("recording", metavar="RECORDING", nargs="+",
                   help="recording file (ours, or another format: see the input options "
                        "below); several: each is reconstructed on its own into the folder "
                        "(with --method onix: one network trained on all of them) "
                        "--out (DIR/NAME.h5), a failure in one loses none of the others, "
                        "and a summary table is printed and written to DIR/summary.json")
    p.add_argument("--out", required=True, metavar="REC.h5",
                   help="reconstruction file to write (a folder with several recordings)")
    p.add_argument("--method", default=None, help="reconstruction method (default: the preset's, hexplane)")
    p.add_argument("--preset", default="auto", choices=("auto", "fast", "default", "quality", "ct"),
                   help="auto (default): ct for a recording with 32 or more distinct view "
                        "directions per frame (static CT, many angles), else default (a few "
                        "views per frame, a rotating sample)")
    p.add_argument("--config", metavar="YAML", help="YAML file of config overrides")
    p.add_argument("--time-budget", type=TIME_BUDGET_S, metavar="SECONDS",
                   help=with_range("stop fitting after this wall time", TIME_BUDGET_S))
    p.add_argument("--iterations", type=ITERATIONS, metavar="N",
                   help=with_range("number of iterations", ITERATIONS))
    p.add_argument("--seed", type=SEED, help=with_range("random seed (default 0)", SEED))
    p.add_argument("--device", choices=("cpu", "cuda"), help="where to compute (default cpu)")
    add_precision_argument(p)
    p.add_argument("--value-max", type=VALUE_MAX, metavar="V",
                   help=with_range("known largest value of the object (e.g. the liquid's); "
                                   "default: estimated", VALUE_MAX))
    p.add_argument("--lateral-margin", type=LATERAL_MARGIN, metavar="M",
                   help=with_range("widen the field of view by M times the detector's width on "
                                   "each side, for an object wider than the detector (fitted "
                                   "on the measured columns, cropped after; field methods); "
                                   "0: never; default: 0.5 when the projections are truncated",
                                   LATERAL_MARGIN))
    p.add_argument("--intensity", choices=("model", "paganin", "log"),
                   help="intensity recordings: fit through the propagation model (default, "
                        "hexplane), or convert to line integrals of delta by Paganin retrieval "
                        "or -log (any method); the output volume is delta, volume_beta beta")
    p.add_argument("--material", metavar="FORMULA",
                   help="the sample's material (density in the config's physics.density_g_cm3): "
                        "intensity recordings (default H2O); line integrals of delta (needs the "
                        "recording's energy_keV) and phase data (also pixel_size_m): the value "
                        "bound follows from it instead of an estimate")
    p.add_argument("--beta", choices=("material", "fitted"),
                   help="intensity recordings: beta from delta by the material's delta/beta "
                        "(default), or fitted as the field's second channel (--intensity model)")
    p.add_argument("--stop", choices=("fixed", "auto"),
                   help="fixed (default): train for the iterations or the time budget; auto: "
                        "hold out 5 %% of the detector pixels in blocks and stop when their "
                        "error stops improving (the iterations or the time budget still cap "
                        "the run; config section validation)")
    p.add_argument("--times", type=_times, metavar="T1,T2,...|xN",
                   help="write the frames at these times in seconds (within the recording), or "
                        "xN: N times the recorded frame rate (N - 1 frames between each pair of "
                        "recorded ones; N 1 to 1000); /reconstruction/time records them. Between "
                        "recorded frames only for methods continuous in time (hexplane, static); "
                        "default: the recorded frames")
    p.add_argument("--adversarial", action="store_true",
                   help="add the adversarial term: a patch discriminator judges projections "
                        "of the field at unmeasured angles against the measured ones (field "
                        "methods; config section adversarial)")
    p.add_argument("--adversarial-weight", type=ADVERSARIAL_WEIGHT, metavar="W",
                   help=with_range("weight of the adversarial term (implies --adversarial; "
                                   "default 0.001)", ADVERSARIAL_WEIGHT))
    p.add_argument("--calibrate", action="store_true",
                   help="refine each view's detector shift, tilt and magnification with the "
                        "field (view 0 is the reference); the values found go to "
                        "/reconstruction/geometry and the config (field methods, 2+ views; "
                        "config section calibration)")
    p.add_argument("--save-model", metavar="MODEL", default=None,
                   help="--method onix: save the trained network to this file (tensors and "
                        "plain values only)")
    p.add_argument("--model", metavar="MODEL", default=None,
                   help="apply a saved onix network (--save-model) to the recordings without "
                        "training (implies --method onix)")
    p.add_argument("--resume", action="store_true", help="continue from OUT.ckpt of a killed run")
    p.add_argument("--force", action="store_true",
                   help="overwrite an existing output file, preview folder or checkpoint")
    p.add_argument("--no-preview", action="store_true", help="skip the preview folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_import_arguments(p)
    p.set_defaults(func=cmd_reconstruct)


def _times(text: str):
    """argparse type of ``--times``: a :class:`~xray4d.reconstruct.times.TimeRequest`."""
    from ..reconstruct.times import parse_times
    try:
        return parse_times(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_config(args: argparse.Namespace):
    """The resolved config: preset, then the YAML overrides, then the command-line options."""
    from ..api import resolve_config
    from ..io import peek_quantity, peek_recording

    overrides: dict = read_config_overrides(args.config) if args.config else {}
    train: dict = {}
    if args.time_budget is not None:
        if not (math.isfinite(args.time_budget) and args.time_budget > 0):
            raise UsageError(f"--time-budget: must be a positive number of seconds, got {args.time_budget}")
        train["time_budget_s"] = args.time_budget
        if args.iterations is None:
            train["iterations"] = None
    if args.iterations is not None:
        if args.iterations <= 0:
            raise UsageError(f"--iterations: must be positive, got {args.iterations}")
        train["iterations"] = args.iterations
        if args.time_budget is None:
            train["time_budget_s"] = None
    if args.seed is not None:
        train["seed"] = args.seed
    if args.device:
        import torch
        if args.device == "cuda" and not torch.cuda.is_available():
            raise UsageError("--device: cuda requested but no CUDA device is available")
        train["device"] = args.device
    if getattr(args, "precision", None):
        train["precision"] = args.precision
    field = {}
    if args.value_max is not None:
        if not (math.isfinite(args.value_max) and args.value_max > 0):
            raise UsageError(f"--value-max: must be positive, got {args.value_max}")
        field["value_max"] = args.value_max
    if getattr(args, "lateral_margin", None) is not None:
        field["lateral_margin"] = args.lateral_margin
    # the conventional methods (fbp, sirt, cgls) count their iterations in their own section
    conventional = {"iterations": args.iterations} if args.iterations is not None else {}
    physics = {k: v for k, v in (("intensity", args.intensity), ("material", args.material),
                                 ("beta", args.beta)) if v is not None}
    validation = {"stop": args.stop} if getattr(args, "stop", None) else {}
    adversarial: dict = {}
    if getattr(args, "adversarial", False) or getattr(args, "adversarial_weight", None):
        adversarial["enabled"] = True
    if getattr(args, "adversarial_weight", None) is not None:
        adversarial["weight"] = args.adversarial_weight
    calibration = {"enabled": True} if getattr(args, "calibrate", False) else {}
    for key, val in (("train", train), ("field", field), ("conventional", conventional),
                     ("physics", physics), ("validation", validation),
                     ("adversarial", adversarial), ("calibration", calibration)):
        if val:
            overrides.setdefault(key, {}).update(val)
    recording = args.recording[0] if isinstance(args.recording, list) else args.recording
    declared = peek_recording(recording)          # the quantity picks the measurement preset
    quantity = declared[3] if declared else peek_quantity(recording, **import_options(args)
                                                            if hasattr(args, "format") else {})
    if args.material is not None and declared and declared[3] in ("line_integral", "phase"):
        overrides.setdefault("physics", {})["value_from_material"] = True
    views = _directions_per_frame(args) if args.preset == "auto" else None
    try:
        return resolve_config(args.preset, overrides, args.method, quantity=quantity,
                              views=views)
    except ValueError as exc:
        text = str(exc)
        raise UsageError(text if text.startswith("config") else f"config: {text}") from None


def _directions_per_frame(args: argparse.Namespace) -> int | None:
    """Distinct view directions per frame of the recording, for ``--preset auto``: from the
    angles of our own file, or from ``--angles`` (same every frame) without ``--views``;
    None when not known before loading (``auto`` is then ``default``)."""
    from ..geometry import distinct_directions
    from ..io import peek_angles

    opts = import_options(args) if hasattr(args, "format") else {}
    angles = opts.get("angles") if "views" not in opts else None
    if angles is None and opts.get("format", "xray4d") == "xray4d":
        angles = peek_angles(args.recording)
    return None if angles is None else distinct_directions(angles)


def cmd_reconstruct(args: argparse.Namespace) -> int:
    """Run a reconstruction from the command line (several: :mod:`.reconstruct_many`)."""
    if args.method == "onix" or args.model or args.save_model:
        if args.method not in (None, "onix"):
            raise UsageError(f"--model/--save-model: onix networks only, not --method {args.method}")
        from .reconstruct_joint import reconstruct_joint
        return reconstruct_joint(args, build_config)
    if len(args.recording) > 1:
        from .reconstruct_many import reconstruct_many
        return reconstruct_many(args, build_config)
    args.recording = args.recording[0]
    from ..api import checkpoint_file, preview_dir, reconstruct_file, reconstruct_outputs
    from ..io.checks import check_inputs, check_outputs
    from ..reconstruct.distributed import init_from_environment
    from ..reconstruct.registry import available_methods, get_method, unavailable_reason

    # under torchrun (WORLD_SIZE > 1) every process trains its share of the frames and
    # rank 0 alone checks and writes the outputs (a refusal there ends every process)
    rank, size = init_from_environment(args.device or "cpu")
    if rank:
        cfg = build_config(args)
        reconstruct_file(args.recording, args.out, cfg, resume=args.resume, progress=False,
                         previews=False, import_options=import_options(args),
                         times=args.times)
        return 0
    # inputs and outputs before anything is read or computed; reconstruct_file checks the
    # outputs again once it holds the output's lock
    if args.resume and not checkpoint_file(args.out).exists():
        raise UsageError(f"{checkpoint_file(args.out)}: --resume: no checkpoint to resume from")
    check_inputs([(args.recording, "/")] + ([(args.config, "--config")] if args.config else [])
                 + ([(checkpoint_file(args.out), "--resume")] if args.resume else []))
    check_outputs(reconstruct_outputs(args.out, previews=not args.no_preview, resume=args.resume),
                  [args.recording, args.config], force=args.force)
    cfg = build_config(args)
    if cfg.method not in available_methods():
        raise UsageError(f"--method: unknown method {cfg.method!r}; available: "
                         f"{', '.join(available_methods())}")
    missing = unavailable_reason(cfg.method)      # an optional extra that is not installed
    if missing:
        raise UsageError(f"--method: {missing}")
    if cfg.validation.stop == "auto" and not get_method(cfg.method).fits_field:
        raise UsageError(f"--stop auto: needs a method that trains a field (e.g. hexplane), "
                         f"not {cfg.method!r}")
    for flag, on in (("--adversarial", cfg.adversarial.enabled),
                     ("--calibrate", cfg.calibration.enabled)):
        if on and not get_method(cfg.method).fits_field:
            raise UsageError(f"{flag}: needs a method that trains a field (e.g. hexplane), "
                             f"not {cfg.method!r}")
    t0 = time.perf_counter()
    result = reconstruct_file(args.recording, args.out, cfg, resume=args.resume,
                              progress=not args.quiet, previews=not args.no_preview,
                              force=args.force, import_options=import_options(args),
                              times=args.times)
    r = result.reconstruction
    print(f"wrote {args.out}: {r.volume.shape[0]} frames of {r.volume.shape[1]} x "
          f"{r.volume.shape[2]} x {r.volume.shape[3]} voxels, method {r.method}, "
          f"{result.iterations} iterations (stopped by {result.stopped_by}), "
          f"final loss {result.losses[-1] if result.losses else float('nan'):.3e}, "
          f"{time.perf_counter() - t0:.1f} s" + (f", {size} processes" if size > 1 else ""))
    found = r.config.get("resolved", {}).get("calibration")
    if found:
        print("calibrated detectors (shift columns, rows): " + describe_detectors(
            found["detector_shift_px"], found["detector_tilt_deg"], found["magnification"],
            digits=3))
    if not args.no_preview:
        print(f"previews in {preview_dir(args.out)}/")
    return 0
