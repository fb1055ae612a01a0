"""The ``xray4d project`` verb: forward-project a volume into a recording.

``xray4d project VOLUME.h5 --angles 0,23.8 --out RECORDING.h5 [--noise 0 --seed 0]``
reads ``/ground_truth/volume`` (else ``/reconstruction/volume``) of VOLUME.h5,
projects every frame at the given angles with the dense projector and writes a
``line_integral`` recording that keeps the volume as ground truth.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from ..cli import UsageError, claim_outputs, parse_angles


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``xray4d project``."""
    p = sub.add_parser(
        "project", help="forward-project a volume into a recording",
        description="Forward-project the volume of a file (/ground_truth/volume, else "
                    "/reconstruction/volume) at the given view angles into a recording "
                    "file that keeps the volume as ground truth.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("volume", metavar="VOLUME.h5", help="file holding the volume")
    p.add_argument("--angles", required=True, help="view angles in degrees, comma-separated")
    p.add_argument("--out", required=True, metavar="RECORDING.h5", help="recording file to write")
    p.add_argument("--noise", type=float, default=0.0,
                   help="Gaussian noise sigma as a fraction of the largest line integral")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(func=cmd_project)


def _frame_times(path: str, dataset: str, frames: int) -> tuple[np.ndarray, str]:
    """Times of the volume's frames from the file, else 0..T-1 when it has none.

    A times dataset that exists but cannot be read, or does not match the
    frames, is refused (InputError) rather than silently replaced.
    """
    import h5py

    from ..io import InputError

    name = "/reconstruction/time" if dataset.startswith("/reconstruction") else "/exchange/time"
    try:
        with h5py.File(path, "r") as f:
            if name not in f:
                return np.arange(frames, dtype=np.float64), "frame index"
            t = np.asarray(f[name][()], dtype=np.float64)
    except (OSError, RuntimeError, KeyError, ValueError, TypeError):
        raise InputError(path, name, "unreadable, file truncated or corrupt?") from None
    if t.shape != (frames,):
        raise InputError(path, name, f"wrong shape {t.shape}, expected ({frames},)")
    if not np.all(np.isfinite(t)) or (frames > 1 and not np.all(np.diff(t) > 0)):
        raise InputError(path, name, "times must be finite and strictly increasing")
    return t, name


def _pixel_size(path: str) -> float | None:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            val = float(np.asarray(f.attrs["pixel_size_m"]).reshape(-1)[0])
    except (OSError, KeyError, ValueError, TypeError, IndexError):
        return None
    return val if math.isfinite(val) and val > 0 else None


def cmd_project(args: argparse.Namespace) -> int:
    """Project the volume of ``args.volume`` into the recording ``args.out``."""
    from ..io import load_volume, save_recording
    from ..io.files import Output, check_inputs
    from ..simulate import simulate_recording

    angles = parse_angles(args.angles)
    if not (math.isfinite(args.noise) and args.noise >= 0):
        raise UsageError(f"--noise: must be a finite number >= 0, got {args.noise}")
    check_inputs([(args.volume, "/")])
    claim_outputs(args, [Output(Path(args.out))], [args.volume], force=args.force)

    volume, dataset = load_volume(args.volume)        # InputError on any fault
    times, time_source = _frame_times(args.volume, dataset, volume.shape[0])
    attrs: dict[str, object] = {"description": json.dumps({
        "source": str(args.volume), "dataset": dataset, "angles_deg": angles,
        "noise": float(args.noise), "seed": int(args.seed), "projector": "dense (Joseph)",
    })}
    pixel = _pixel_size(args.volume)
    if pixel is not None:
        attrs["pixel_size_m"] = pixel
    rec = simulate_recording(volume, angles, noise=args.noise, seed=args.seed, time=times,
                             attrs=attrs)
    save_recording(rec, args.out)
    t, v, h, w = rec.projections.shape
    print(f"wrote {args.out}: {t} frames x {v} view{'s' if v != 1 else ''} of {h} x {w} pixels "
          f"(angles {', '.join(f'{a:g}' for a in angles)} deg) from {args.volume}:{dataset}; "
          f"times from {time_source}; noise {args.noise:g}")
    return 0
