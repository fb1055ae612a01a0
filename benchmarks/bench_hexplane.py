"""X-Hexplane hot path: dense whole-frame rendering + projection vs the ray-sampled path.

Same field, same run: points (field evaluations) per second for forward +
backward, seconds per pass over all frames, and peak memory. Writes
benchmarks/results/hexplane_speed.json and prints a Markdown table.

    python benchmarks/bench_hexplane.py [--size 64] [--frames 40] [--views 2] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

from xray4d.fields import HexPlaneField
from xray4d.geometry import Geometry
from xray4d.projector import Projector, project_rays


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--views", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8, help="frames per dense step")
    ap.add_argument("--rays", type=int, default=4096, help="rays per ray-sampled step")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--decoder", default="linear", choices=("linear", "mlp"))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "hexplane_speed.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    n, t, b = args.size, args.frames, args.batch
    angles = [0.0, 23.8, 67.5, 112.5][: args.views]
    g = Geometry.from_angles(angles, t, n, n)
    proj = Projector(g)
    field = HexPlaneField(channels=16, space_resolution=(n, n, n), time_resolution=t,
                          decoder=args.decoder)
    times = torch.linspace(-1, 1, t)
    target = torch.rand(b, args.views, n, n)

    def dense_step() -> None:
        field.zero_grad(set_to_none=True)
        vol = field.render_frames(times[:b], (n, n, n))
        loss = (proj.forward(vol, frames=np.arange(b)) - target).pow(2).mean()
        loss.backward()

    n_samples = 2 * n
    rng = torch.Generator().manual_seed(0)
    rows = torch.randint(0, n, (args.rays,), generator=rng)
    cols = torch.randint(0, n, (args.rays,), generator=rng)
    ray_angles = torch.tensor(angles)[torch.randint(0, args.views, (args.rays,), generator=rng)]
    ray_times = times[torch.randint(0, t, (args.rays,), generator=rng)]
    ray_target = torch.rand(args.rays)

    def ray_step() -> None:
        field.zero_grad(set_to_none=True)
        pred = project_rays(field, g, ray_angles, rows, cols, n_samples, times=ray_times)
        (pred - ray_target).pow(2).mean().backward()

    t_dense = timed(dense_step, args.repeats)
    t_ray = timed(ray_step, args.repeats)
    pts_dense = b * n ** 3 / t_dense
    pts_ray = args.rays * n_samples / t_ray
    # a pass over all frames and views: dense renders every voxel of every frame once;
    # the ray path needs views * H * W rays per frame
    pass_dense = t_dense * t / b
    pass_ray = t_ray * (t * args.views * n * n) / args.rays
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res = {
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
                   f"torch {torch.__version__}",
        "size": n, "frames": t, "views": args.views, "decoder": args.decoder,
        "dense_points_per_s": pts_dense, "ray_points_per_s": pts_ray,
        "ratio_points_per_s": pts_dense / pts_ray,
        "dense_s_per_pass": pass_dense, "ray_s_per_pass": pass_ray,
        "ratio_pass": pass_ray / pass_dense,
        "dense_step_s": t_dense, "ray_step_s": t_ray, "peak_rss_mb": peak_mb,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1))
    print(f"| path | points/s (fwd+bwd) | s per pass over {t} frames x {args.views} views |")
    print("|---|---|---|")
    print(f"| dense (whole frames, {args.decoder}) | {pts_dense:.3g} | {pass_dense:.2f} |")
    print(f"| ray-sampled ({n_samples} samples/ray) | {pts_ray:.3g} | {pass_ray:.2f} |")
    print(f"ratio: {pts_dense / pts_ray:.1f}x points/s, {pass_ray / pass_dense:.1f}x per pass; "
          f"peak RSS {peak_mb:.0f} MB; {res['machine']}")


if __name__ == "__main__":
    main()
