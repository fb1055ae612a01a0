"""The ``xray4d info`` verb: summarise a recording or reconstruction file.

``xray4d info FILE`` prints what the file holds (:func:`xray4d.io.describe_file`):
frames, views, detector, angles, quantity, value range, times, truth and root
attributes of a recording; frames, volume, method, value range, channels and
wall time of a reconstruction.
"""
from __future__ import annotations

import argparse

from ..geometry import describe_detectors
from ..io import describe_file


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``xray4d info``."""
    s = sub.add_parser("info", help="summarise a recording or reconstruction file")
    s.add_argument("file")
    s.set_defaults(func=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    """Print the summary of ``args.file``."""
    d = describe_file(args.file)
    lo, hi = d["value_range"]
    print(f"file:        {args.file}")
    print(f"kind:        {d['kind']}")
    print(f"frames:      {d['frames']}")
    if d["kind"] == "reconstruction":
        z, y, x = d["shape"]
        print(f"volume:      {z} x {y} x {x} (z, y, x)")
        print(f"method:      {d['method']}")
        print(f"value range: {lo:.6g} .. {hi:.6g}")
        print(f"channels:    {'delta, beta' if d['channels'] == 2 else 'one'}")
        print(f"wall time:   {d['wall_seconds']:.1f} s")
        return 0
    ang = d["angles_deg"]
    print(f"views:       {d['views']}")
    print(f"detector:    {d['height']} rows x {d['width']} columns")
    if d["angles_shared"]:
        print("angles:      " + ", ".join(f"{a:g}" for a in ang) + " deg (same every frame)")
    else:
        print(f"angles:      per frame, {ang.min():g} .. {ang.max():g} deg")
    det = d.get("detector")
    if det is not None:
        frame0 = "" if not det.per_frame else " (frame 0; it changes per frame)"
        print("detectors:   " + describe_detectors(det.shift_px[0], det.tilt_deg[0],
                                                   det.magnification[0]) + frame0)
    print(f"quantity:    {d['quantity']}")
    print(f"value range: {lo:.6g} .. {hi:.6g}")
    print(f"time:        {d['time_range'][0]:g} .. {d['time_range'][1]:g} s")
    print(f"truth:       {'yes' if d['has_truth'] else 'no'}")
    for k, v in d["attrs"].items():
        print(f"{k + ':':<13}{v}")
    return 0
