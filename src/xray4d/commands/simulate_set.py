"""``xray4d simulate droplet-set --count 16 --frames 75 --size 32 --out DIR``: a training set
of droplet collisions (:mod:`xray4d.simulate.droplet_set`), one recording per collision.

Writes ``DIR/collision_00.h5``, ``DIR/collision_01.h5``, ... (each a line-integral recording
with its ground truth, its parameters in its description) and ``DIR/set.json`` (the
parameters of every collision). Every output is checked before the first is simulated.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from ..cli import NOISE, UsageError, claim_outputs, int_range, with_range
from ..io import atomic_path, save_recording
from ..io.checks import Output
from ..resources import check_fits, estimate_simulation

__all__ = ["add_set_parser", "cmd_simulate_set", "set_files"]

#: collisions one command writes
COUNT = int_range(1, 10_000)


def add_set_parser(phantoms: argparse._SubParsersAction, sampling) -> None:
    """Register ``xray4d simulate droplet-set``; ``sampling(parser)`` adds the arguments
    every scene shares (size, frames, angles, seed, oversampling, frame interval)."""
    s = phantoms.add_parser(
        "droplet-set", help="a training set of droplet collisions with random parameters",
        description="Simulate --count droplet collisions, each with its parameters drawn from "
                    "its seed (radii, speed, contact time, impact offset and direction, "
                    "oscillation, one in four a separation), into DIR/collision_NN.h5 and "
                    "DIR/set.json. The seeds are --seed .. --seed + count - 1. Defaults: 16 "
                    "collisions of 75 frames at 0 and 23.8 deg (the 4D-ONIX paper's set) on "
                    "32 x 32 pixels.")
    s.add_argument("--out", required=True, metavar="DIR", help="folder to write the set into")
    s.add_argument("--count", type=COUNT, default=16,
                   help=with_range("collisions (default 16)", COUNT))
    s.add_argument("--noise", type=NOISE, default=0.01,
                   help=with_range("Gaussian noise sigma as a fraction of the largest line "
                                   "integral (default 0.01)", NOISE))
    sampling(s, size=32, frames=75)
    s.set_defaults(frames=75)
    s.add_argument("--force", action="store_true", help="overwrite existing files of the set")
    s.set_defaults(func=cmd_simulate_set)


def set_files(out: str | Path, count: int) -> list[Path]:
    """The recordings of a set of ``count`` collisions: ``out/collision_NN.h5`` (two digits
    at least)."""
    digits = max(2, len(str(count - 1)))
    return [Path(out) / f"collision_{i:0{digits}d}.h5" for i in range(count)]


def cmd_simulate_set(args: argparse.Namespace) -> int:
    """Simulate the set and write it."""
    from ..simulate.droplet_set import simulate_droplet_set
    from .simulate import views_of

    if args.rotating is not None:
        raise UsageError("--rotating: the set is recorded with fixed views (--angles)")
    angles, frames = views_of(args)
    if not (math.isfinite(args.noise) and args.noise >= 0):
        raise UsageError(f"--noise: must be a finite number >= 0, got {args.noise}")
    files = set_files(args.out, args.count)
    out = Path(args.out)
    claim_outputs(args, [Output(out, "--out", folder=True, replace=True),
                         *(Output(f, "--out") for f in files),
                         Output(out / "set.json", "--out")], force=args.force)
    check_fits(estimate_simulation(args.size, frames, len(angles), args.oversample))
    t0 = time.perf_counter()
    params = []
    for path, (p, rec) in zip(files, simulate_droplet_set(
            args.count, size=args.size, frames=frames, angles_deg=angles, noise=args.noise,
            seed=args.seed, oversample=args.oversample, frame_interval_s=args.frame_interval)):
        save_recording(rec, path)
        params.append({"file": path.name, "seed": args.seed + len(params), **p.to_dict()})
    with atomic_path(out / "set.json") as tmp:
        tmp.write_text(json.dumps({"size": args.size, "frames": frames,
                                   "angles_deg": [float(a) for a in angles],
                                   "noise": args.noise, "collisions": params}, indent=1))
    print(f"wrote {len(files)} collisions to {out}/ ({files[0].name} .. {files[-1].name}, "
          f"{frames} frames x {len(angles)} views of {args.size} x {args.size} pixels, angles "
          f"{', '.join(f'{a:g}' for a in angles)} deg) and set.json; "
          f"{time.perf_counter() - t0:.1f} s")
    return 0
