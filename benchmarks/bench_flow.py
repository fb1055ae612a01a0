"""The flow prior (``flow`` config section): volume quality with and without it, and the
direction of the recovered velocity in the approach phase of a droplet collision.

Each scene is simulated at 2 views (0 and 23.8 degrees, 1 % noise) and fitted by
X-Hexplane at a fixed iteration count without the prior and with it (variants below).
Reported: PSNR (mean over frames, the truth movie's range) and IoU (half the truth's
maximum) of every frame against the truth. For the droplet collisions, the velocity in the
approach phase: the truth's two drops are found as the two connected components of
``truth > half its maximum`` in the frames where there are two; each drop's true velocity
is the central difference of its centroid (voxels per second, from the truth alone, not
the droplet model), and the reconstructed velocity is read in the voxels of that drop.
``angle_voxels_deg`` is the mean angle between the two over those voxels,
``angle_mean_deg`` the angle between the drop's mean reconstructed velocity and the true
one, ``speed_ratio`` the mean reconstructed speed over the true speed.

Writes benchmarks/results/flow.json and prints a Markdown table.

    PYTHONPATH=src python benchmarks/bench_flow.py [--size 32] [--frames 20]
        [--iterations 2000] [--scenes droplets off-centre jet two-liquids] [--variants ...]
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
from scipy import ndimage

from xray4d.api import reconstruct, resolve_config
from xray4d.data import Recording
from xray4d.evaluation.cases import case_overrides, simulate_case
from xray4d.evaluation.metrics import iou

#: variant -> flow section overrides (none: the prior off)
VARIANTS: dict[str, dict[str, Any]] = {
    "none": {},
    "flow-1e-3": {"transport_weight": 1e-3, "divergence_weight": 1e-4},
    "flow-1e-2": {"transport_weight": 1e-2, "divergence_weight": 1e-3},
    "flow-1e-1": {"transport_weight": 1e-1, "divergence_weight": 1e-2},
}
COLLISIONS = ("droplets", "off-centre", "head-on")


def drop_velocities(truth: np.ndarray, time_s: np.ndarray) -> list[tuple[int, list[np.ndarray],
                                                                          list[np.ndarray]]]:
    """For each frame t with two drops in it and in both neighbours: (t, the two drops' voxel
    masks, their true velocities (vx, vy, vz) in voxels per second)."""
    thr = 0.5 * float(truth.max())
    comps: list[list[tuple[np.ndarray, np.ndarray]]] = []
    for frame in truth:
        labels, n = ndimage.label(frame > thr)
        if n != 2:
            comps.append([])
            continue
        found = []
        for k in (1, 2):
            mask = labels == k
            z, y, x = np.nonzero(mask)
            found.append((mask, np.array([x.mean(), y.mean(), z.mean()])))
        comps.append(found)
    out = []
    for t in range(1, truth.shape[0] - 1):
        if not (comps[t - 1] and comps[t] and comps[t + 1]):
            continue
        masks, velocities = [], []
        for mask, centre in comps[t]:
            before = min(comps[t - 1], key=lambda c: np.linalg.norm(c[1] - centre))[1]
            after = min(comps[t + 1], key=lambda c: np.linalg.norm(c[1] - centre))[1]
            masks.append(mask)
            velocities.append((after - before) / (time_s[t + 1] - time_s[t - 1]))
        out.append((t, masks, velocities))
    return out


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles between vectors a (..., 3) and b (3,)."""
    cos = (a @ b) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b), 1e-30)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def velocity_direction(rec: Recording, velocity: np.ndarray) -> dict[str, Any]:
    """Angles between reconstructed and true drop velocities in the approach frames."""
    per_voxel, per_drop, ratios, frames = [], [], [], []
    for t, masks, truths in drop_velocities(rec.truth, rec.time):
        frames.append(t)
        v = np.moveaxis(velocity[t], 0, -1)          # (Z, Y, X, 3) = (vx, vy, vz)
        for mask, true in zip(masks, truths):
            inside = v[mask]
            per_voxel += list(angle_deg(inside, true))
            per_drop.append(float(angle_deg(inside.mean(0), true)))
            ratios.append(float(np.linalg.norm(inside, axis=1).mean() / np.linalg.norm(true)))
    if not frames:
        return {}
    return {"approach_frames": frames, "angle_voxels_deg": float(np.mean(per_voxel)),
            "angle_mean_deg": float(np.mean(per_drop)), "speed_ratio": float(np.mean(ratios))}


def run(scene: str, variant: str, rec: Recording, iterations: int) -> dict[str, Any]:
    """Fit one variant and score it."""
    over = case_overrides(scene, {"train": {"iterations": iterations, "time_budget_s": None}})
    if VARIANTS[variant]:
        over["flow"] = dict(VARIANTS[variant])
    t0 = time.perf_counter()
    result = reconstruct(rec, resolve_config("default", over), progress=False)
    wall = time.perf_counter() - t0
    r = result.reconstruction
    rng, thr = float(rec.truth.max() - rec.truth.min()), 0.5 * float(rec.truth.max())
    mse = ((r.volume.astype(np.float64) - rec.truth) ** 2).reshape(rec.frames, -1).mean(1)
    out: dict[str, Any] = {
        "scene": scene, "variant": variant, "wall_s": wall,
        "psnr": float(np.mean(10 * np.log10(rng ** 2 / np.maximum(mse, 1e-30)))),
        "iou": float(np.mean([iou(v, t, thr) for v, t in zip(r.volume, rec.truth)])),
        "final_terms": {k: v[-1] for k, v in result.loss_terms.items()}}
    if r.velocity is not None and (scene in COLLISIONS):
        out.update(velocity_direction(rec, r.velocity))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--scenes", nargs="+", default=["droplets", "off-centre", "jet",
                                                    "two-liquids"])
    ap.add_argument("--variants", nargs="+", default=["none", "flow-1e-3"],
                    choices=list(VARIANTS))
    ap.add_argument("--out", default="benchmarks/results/flow.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out_path = Path(args.out)
    runs: dict[str, Any] = (json.loads(out_path.read_text())["runs"] if out_path.exists()
                            else {})
    for scene in args.scenes:
        rec = simulate_case(scene, 2, args.size, args.frames, args.noise, args.seed)
        for variant in args.variants:
            r = run(scene, variant, rec, args.iterations)
            runs[f"{scene}/{variant}"] = r
            angle = (f"  angle {r['angle_voxels_deg']:.1f} deg (drop mean "
                     f"{r['angle_mean_deg']:.1f}), speed x{r['speed_ratio']:.2f}"
                     if "angle_voxels_deg" in r else "")
            print(f"{scene:12s} {variant:10s} PSNR {r['psnr']:6.2f} dB  IoU {r['iou']:.3f}"
                  f"{angle}  {r['wall_s']:.0f} s", flush=True)
            doc = {"settings": {"size": args.size, "frames": args.frames, "views_deg": [0, 23.8],
                                "noise": args.noise, "seed": args.seed,
                                "iterations": args.iterations, "threads": args.threads,
                                "torch": torch.__version__, "machine": platform.machine()},
                   "variants": VARIANTS, "runs": runs}
            out_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = out_path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(doc, indent=1))
            tmp.replace(out_path)
    print("\n| scene | variant | PSNR dB | IoU | approach angle deg (voxels / drop mean) | speed ratio |")
    print("|---|---|---|---|---|---|")
    for r in runs.values():
        ang = (f"{r['angle_voxels_deg']:.1f} / {r['angle_mean_deg']:.1f}"
               if "angle_voxels_deg" in r else "")
        spd = f"{r['speed_ratio']:.2f}" if "speed_ratio" in r else ""
        print(f"| {r['scene']} | {r['variant']} | {r['psnr']:.2f} | {r['iou']:.3f} | {ang} | {spd} |")


if __name__ == "__main__":
    main()
