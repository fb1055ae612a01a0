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

from ..cli import NOISE, SEED, UsageError, claim_outputs, parse_angles, with_range
from ..errors import ResourceError
from ..io import load_volume, load_volume_times, peek_pixel_size, peek_volume, save_recording
from ..io.checks import Output, check_inputs
from ..resources import check_fits, estimate_projection
from ..simulate import simulate_recording


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``xray4d project``."""
    p = sub.add_parser(
        "project", help="forward-project a volume into a recording",
        description="Forward-project the volume of a file (/ground_truth/volume, else "
                    "/reconstruction/volume) at the given view angles into a recording "
                    "file that keeps the volume as ground truth.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("volume", metavar="VOLUME.h5", help="file holding the volume")
    p.add_argument("--angles", required=True,
                   help="view angles in degrees, comma-separated, each in [-360, 360]")
    p.add_argument("--out", required=True, metavar="RECORDING.h5", help="recording file to write")
    p.add_argument("--noise", type=NOISE, default=0.0,
                   help=with_range("Gaussian noise sigma as a fraction of the largest line "
                                   "integral", NOISE))
    p.add_argument("--seed", type=SEED, default=0, help=with_range("seed of the noise", SEED))
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(func=cmd_project)


def cmd_project(args: argparse.Namespace) -> int:
    """Project the volume of ``args.volume`` into the recording ``args.out``."""
    angles = parse_angles(args.angles)
    if not (math.isfinite(args.noise) and args.noise >= 0):
        raise UsageError(f"--noise: must be a finite number >= 0, got {args.noise}")
    check_inputs([(args.volume, "/")])
    claim_outputs(args, [Output(Path(args.out))], [args.volume], force=args.force)
    declared = peek_volume(args.volume)
    if declared is not None:     # refuse what cannot fit before loading anything
        (t, z, _, x), _ = declared
        try:
            check_fits(estimate_projection(t, len(angles), z, x))
        except ResourceError as exc:
            raise ResourceError(f"{args.volume}: {exc}") from None

    volume, dataset = load_volume(args.volume)        # InputError on any fault
    times, time_source = load_volume_times(args.volume, dataset, volume.shape[0])
    attrs: dict[str, object] = {"description": json.dumps({
        "source": str(args.volume), "dataset": dataset, "angles_deg": angles,
        "noise": float(args.noise), "seed": int(args.seed), "projector": "dense (Joseph)",
    })}
    pixel = peek_pixel_size(args.volume)
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
