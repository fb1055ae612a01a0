"""Priors for X-Hexplane on the whole scene library at once, at fixed iterations.

Every scene of the library (``xray4d simulate --list``) is simulated (32^3 x 10 frames by
default, 1 % noise, seed 0) at 2 and 4 views, and fitted by X-Hexplane with the default
preset and each named variant of it (config overrides), the bound estimated from the
projections as ``xray4d reconstruct`` does, for a fixed number of iterations on one thread;
SIRT (the best conventional method in docs/results/baselines.md) is run once per recording
for the margin the scene-library issue asks for. PSNR, IoU and SSIM against the simulated
truth, and the wall time, go to ``benchmarks/results/priors.json`` (rows appended, so an
interrupted run continues); a summary table per variant (mean, worst scene) is printed.

Defaults are chosen on the library as a whole: a variant is worth taking only if it helps
across the scenes, not on one.

    python benchmarks/bench_priors.py [--variants default,volume_tv,...] [--views 2,4]
        [--size 32 --frames 10 --iterations 1500] [--table]
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xray4d.api import reconstruct, resolve_config
from xray4d.evaluation.metrics import evaluate_volumes
from xray4d.simulate import get_scene, scene_names

VIEWS = {2: (0.0, 23.8), 3: (0.0, 23.8, 67.5), 4: (0.0, 23.8, 67.5, 112.5)}

#: the variants tried, each a set of overrides of the default preset
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "volume_tv": {"regularizers": {"volume_tv": 3e-3}},
    "plane_tv_x10": {"regularizers": {"plane_tv": 1e-3}},
    "time_smooth_x10": {"regularizers": {"temporal_smoothness": 1e-3}},
    "l1": {"regularizers": {"l1_sparsity": 1e-3}},
    "channels_16": {"field": {"channels": 16}},
    "channels_32": {"field": {"channels": 32}},
    "space_0.5": {"field": {"space_scale": 0.5}},
}


def score(volume: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Mean PSNR, IoU and SSIM over the frames (:func:`evaluate_volumes`)."""
    m = evaluate_volumes(volume, truth)["mean"]
    return {k: float(m[k]) for k in ("psnr", "iou", "ssim")}


def run_one(rec, variant: str, iterations: int) -> dict[str, Any]:
    """One fit of ``rec``: X-Hexplane with ``variant``'s overrides, or SIRT."""
    train = {"iterations": iterations, "time_budget_s": None}
    if variant == "sirt":     # its own iteration count (the conventional section's)
        cfg = resolve_config("default", {"method": "sirt"})
    else:
        over = {k: dict(v) for k, v in VARIANTS[variant].items()}
        over.setdefault("train", {}).update(train)
        cfg = resolve_config("default", over)
    t0 = time.perf_counter()
    res = reconstruct(rec, cfg, progress=False)
    return {"wall_s": time.perf_counter() - t0, **score(res.reconstruction.volume, rec.truth)}


def table(rows: list[dict[str, Any]]) -> str:
    """Per view count and variant: mean PSNR and IoU over the scenes, the worst scene, and
    the PSNR per scene."""
    lines = []
    for views in sorted({r["views"] for r in rows}):
        sub = [r for r in rows if r["views"] == views]
        scenes = sorted({r["scene"] for r in sub})
        lines += [f"\n{views} views", "| variant | mean PSNR | mean IoU | worst PSNR | "
                  + " | ".join(scenes) + " |", "|---|---|---|---|" + "---|" * len(scenes)]
        for variant in dict.fromkeys(r["variant"] for r in sub):
            got = {r["scene"]: r for r in sub if r["variant"] == variant}
            if len(got) < len(scenes):
                continue
            psnr = [got[s]["psnr"] for s in scenes]
            iou = [got[s]["iou"] for s in scenes]
            lines.append(f"| {variant} | {np.mean(psnr):.2f} | {np.mean(iou):.3f} | "
                         f"{min(psnr):.2f} | "
                         + " | ".join(f"{got[s]['psnr']:.1f} / {got[s]['iou']:.2f}"
                                      for s in scenes) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="sirt,default," + ",".join(list(VARIANTS)[1:]))
    ap.add_argument("--scenes", default=",".join(scene_names()))
    ap.add_argument("--views", default="2,4")
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "priors.json"))
    ap.add_argument("--table", action="store_true", help="print the stored table and stop")
    args = ap.parse_args()
    path = Path(args.out)
    stored = json.loads(path.read_text()) if path.exists() else {}
    rows: list[dict[str, Any]] = stored.get("rows", [])
    if args.table:
        print(table(rows))
        return
    torch.set_num_threads(args.threads)
    done = {(r["scene"], r["views"], r["variant"]) for r in rows}
    for views in (int(v) for v in args.views.split(",")):
        for scene in args.scenes.split(","):
            rec = get_scene(scene).recording(size=args.size, frames=args.frames,
                                             angles_deg=VIEWS[views], noise=0.01, seed=0)
            for variant in args.variants.split(","):
                if (scene, views, variant) in done:
                    continue
                row = {"scene": scene, "views": views, "variant": variant,
                       **run_one(rec, variant, args.iterations)}
                rows.append(row)
                print(json.dumps(row), flush=True)
                path.write_text(json.dumps({
                    "machine": f"{platform.machine()}, {args.threads} torch threads, "
                               f"torch {torch.__version__}",
                    "size": args.size, "frames": args.frames, "iterations": args.iterations,
                    "noise": 0.01, "seed": 0, "rows": rows}, indent=1))
    print(table(rows))


if __name__ == "__main__":
    main()
