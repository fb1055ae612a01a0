"""Quality of X-Hexplane on the project's droplet simulations, at fixed wall-time budgets.

Cases (64^3, 40 frames, 1 % noise, seed 0):
  head-on collision, 2 views (0, 23.8 deg), budgets 120 s and 300 s
  head-on collision, 4 views (0, 23.8, 67.5, 112.5 deg), budget 120 s
  off-centre collision with unequal radii, 2 views, budget 120 s

Writes benchmarks/results/quality.json and quality.md (PSNR, SSIM, DSSIM, IoU,
MSE, iterations, wall seconds, peak memory) and prints the table.

    python benchmarks/bench_quality.py [--threads 2] [--only NAME ...] [--scale 1.0]
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch

from xray4d.api import reconstruct, resolve_config
from xray4d.evaluation.metrics import evaluate_volumes
from xray4d.simulate import DropletCollision, simulate_droplets

TWO = (0.0, 23.8)
FOUR = (0.0, 23.8, 67.5, 112.5)
CASES = {
    "head-on, 2 views, 120 s": (DropletCollision(), TWO, 120.0),
    "head-on, 2 views, 300 s": (DropletCollision(), TWO, 300.0),
    "head-on, 4 views, 120 s": (DropletCollision(), FOUR, 120.0),
    "off-centre unequal, 2 views, 120 s": (
        DropletCollision(radius_1=0.15, radius_2=0.11, impact_parameter=0.4), TWO, 120.0),
}
TARGETS = {"head-on, 2 views, 120 s": (40.0, 0.9), "head-on, 2 views, 300 s": (45.0, None),
           "head-on, 4 views, 120 s": (45.0, None)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", nargs="*", help="substrings of case names to run")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every budget (quick checks)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    machine = f"{platform.machine()}, {args.threads} torch threads, torch {torch.__version__}"
    rows = []
    for name, (params, angles, budget) in CASES.items():
        if args.only and not any(s in name for s in args.only):
            continue
        rec = simulate_droplets(params, size=64, frames=40, angles_deg=angles, noise=0.01, seed=0)
        cfg = resolve_config("default", {"train": {"time_budget_s": budget * args.scale,
                                                   "iterations": None}})
        t0 = time.perf_counter()
        res = reconstruct(rec, cfg, progress=False)
        wall = time.perf_counter() - t0
        m = evaluate_volumes(res.reconstruction.volume, rec.truth)["mean"]
        target = TARGETS.get(name)
        ok = None
        if target and args.scale == 1.0:
            ok = m["psnr"] >= target[0] and (target[1] is None or m["iou"] >= target[1])
        row = {"case": name, "budget_s": budget * args.scale, "wall_s": wall,
               "iterations": res.iterations, **{k: m[k] for k in ("psnr", "ssim", "dssim", "iou", "mse")},
               "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "target": target, "meets_target": ok}
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "quality.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    lines = [f"Machine: {machine}", "",
             "| case | wall s | iterations | PSNR dB | SSIM | DSSIM | IoU | MSE | target (PSNR, IoU) | met |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        tgt = "" if not r["target"] else f"{r['target'][0]:g} dB" + (
            f", {r['target'][1]:g}" if r["target"][1] else "")
        met = "" if r["meets_target"] is None else ("yes" if r["meets_target"] else "NO")
        lines.append(f"| {r['case']} | {r['wall_s']:.1f} | {r['iterations']} | {r['psnr']:.2f} | "
                     f"{r['ssim']:.4f} | {r['dssim']:.4f} | {r['iou']:.4f} | {r['mse']:.2e} | {tgt} | {met} |")
    (out / "quality.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
