"""The widened field of view on truncated projections, at fixed iterations.

The wide cylinder of the scene library (``xray4d simulate wide-cylinder``: a liquid
cylinder 1.6 times as long as the detector is wide) at 32^3 and 48^3 x 10 frames, 1 %
noise, seed 0, 2 views (0, 23.8 deg) and 4 (0, 23.8, 67.5, 112.5 deg), fitted by
X-Hexplane (default preset, 1500 iterations, one torch thread) with the field of view
widened by ``field.lateral_margin`` times the width on each side (0: the detector's volume
only; the automatic choice is 0.5 for truncated projections), the bound estimated from the
projections or known (1.02 times the truth's maximum). PSNR and IoU against the truth on
the detector's volume -> ``benchmarks/results/field_of_view.json`` (rows appended, so an
interrupted run continues).

    python benchmarks/bench_field_of_view.py [--sizes 32,48] [--margins 0,0.25,0.5,0.75]
"""
from __future__ import annotations

import argparse
import json
import platform
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xray4d.api import reconstruct, resolve_config
from xray4d.evaluation.metrics import evaluate_volumes
from xray4d.simulate import get_scene

VIEWS = {2: (0.0, 23.8), 4: (0.0, 23.8, 67.5, 112.5)}


def run_one(rec, margin: float, bound: float | None, iterations: int,
            scene: str) -> dict[str, Any]:
    """One fit; ``bound`` None: estimated from the projections."""
    cfg = resolve_config("default", {
        "method": "sirt" if margin < 0 else "hexplane",
        "train": {"iterations": iterations, "time_budget_s": None},
        "field": {"lateral_margin": max(margin, 0.0), "value_max": bound}})
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = reconstruct(rec, cfg, progress=False)
    m = evaluate_volumes(res.reconstruction.volume, rec.truth)["mean"]
    r = res.reconstruction.config.get("resolved", {})
    return {"wall_s": time.perf_counter() - t0, "psnr": float(m["psnr"]), "iou": float(m["iou"]),
            "value_max": r.get("value_max"), "grid": r.get("field_of_view", {}).get("fitted_grid")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scene", default="wide-cylinder")
    ap.add_argument("--sizes", default="32,48")
    ap.add_argument("--views", default="2,4")
    ap.add_argument("--margins", default="-1,0,0.25,0.5,0.75",
                    help="-1: SIRT on the detector's volume")
    ap.add_argument("--bounds", default="estimated,known")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "field_of_view.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    path = Path(args.out)
    rows: list[dict[str, Any]] = json.loads(path.read_text())["rows"] if path.exists() else []
    done = {(r["scene"], r["size"], r["views"], r["margin"], r["bound"]) for r in rows}
    for size in (int(s) for s in args.sizes.split(",")):
        for views in (int(v) for v in args.views.split(",")):
            rec = get_scene(args.scene).recording(size=size, frames=args.frames,
                                                  angles_deg=VIEWS[views], noise=0.01, seed=0)
            top = float(rec.truth.max())
            for margin in (float(m) for m in args.margins.split(",")):
                for bound in args.bounds.split(","):
                    if margin < 0 and bound == "known":
                        continue
                    key = (args.scene, size, views, margin, bound)
                    if key in done:
                        continue
                    row = {"scene": args.scene, "size": size, "views": views, "margin": margin,
                           "bound": bound, **run_one(rec, margin, 1.02 * top if bound == "known"
                                                     else None, args.iterations, args.scene)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    path.write_text(json.dumps({
                        "machine": f"{platform.machine()}, {args.threads} torch threads, "
                                   f"torch {torch.__version__}",
                        "frames": args.frames, "iterations": args.iterations, "noise": 0.01,
                        "seed": 0, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
