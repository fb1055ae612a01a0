"""Mixed precision of the rendering (``train.precision``): quality and speed of a fit after a
fixed number of iterations, float32 against bfloat16, on a small droplet recording.

    python benchmarks/bench_precision.py [--size 32] [--frames 20] [--iterations 600]
                                         [--rounds 2] [--threads 1] [--device cpu]

The runs alternate (float32, bfloat16, float32, ...) and each keeps its fastest fit; the
quality is the same in every round (same seed). Writes benchmarks/results/precision.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from xray4d.api import reconstruct, resolve_config
from xray4d.evaluation.metrics import evaluate_volumes
from xray4d.simulate import DropletCollision, simulate_droplets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=600)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "precision.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rec = simulate_droplets(DropletCollision(), size=args.size, frames=args.frames,
                            angles_deg=(0.0, 23.8), noise=0.01, seed=0)
    rows: dict[str, dict] = {}
    for _ in range(args.rounds):
        for precision in args.precisions:
            cfg = resolve_config("default", {"train": {
                "iterations": args.iterations, "time_budget_s": None, "precision": precision,
                "device": args.device}})
            t0 = time.perf_counter()
            res = reconstruct(rec, cfg, progress=False)
            wall = time.perf_counter() - t0
            m = evaluate_volumes(res.reconstruction.volume, rec.truth)["mean"]
            best = rows.get(precision)
            if best is None or wall < best["wall_s"]:
                rows[precision] = {"wall_s": wall, "iterations": res.iterations,
                                   "final_data_loss": float(res.losses[-1]),
                                   **{k: float(m[k]) for k in ("psnr", "ssim", "iou", "mse")}}
            print(precision, json.dumps(rows[precision]), flush=True)
    result = {"machine": f"{platform.machine()}, {args.threads} thread(s), {args.device}, "
                         f"torch {torch.__version__}",
              "case": f"head-on droplet collision {args.size}^3 x {args.frames} frames, 2 views, "
                      f"1 % noise, default preset, {args.iterations} iterations",
              "rows": rows}
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
