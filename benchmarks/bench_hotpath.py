"""The training step's hot path (dense render, projection, their backward, Adam), the
previous implementation against the current one, in one run: points per second and ratio.

    python benchmarks/bench_hotpath.py [--sizes 64 128] [--frames 4] [--reps 20]
                                       [--threads 1] [--profile]

``reference``: a frozen copy of the step as it was before issue 26 (the linear decoder's
frames from interpolation matrices of every plane and three batched products with
expanded operands, row-major; the dense Joseph matrix (V*W, W*W) applied by one matrix
product; Adam's per-parameter loop). ``fast``: the package's path (``HexPlaneField.
render_frames``, the CSR ``Projector`` as ``fit_field`` builds it, Adam fused), in float32 and
with the rendering under bfloat16 autocast. The variants are interleaved (A, B, C, A, B,
C, ...) and each one's fastest repetition is kept: on a shared machine the minimum is the
least disturbed figure. Writes benchmarks/results/hotpath.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Callable

import torch

from xray4d.fields import HexPlaneField
from xray4d.fields.hexplane import _grid, interpolation_matrix
from xray4d.geometry import Geometry
from xray4d.projector import Projector, slice_projection_matrix

ANGLES = [0.0, 23.8]


# ------------------------------------------------------------------ the frozen reference
def reference_render(f: HexPlaneField, times: torch.Tensor, shape: tuple[int, int, int]
                     ) -> torch.Tensor:
    """The linear decoder's frames (B, Z, Y, X) as rendered before (one output, sigmoid)."""
    z, y, x = shape
    dev, dt = f.planes["xy"].device, f.planes["xy"].dtype
    rz, ry, rx = f.space_resolution
    mats = {"x": interpolation_matrix(_grid(x, dev, dt), rx),
            "y": interpolation_matrix(_grid(y, dev, dt), ry),
            "z": interpolation_matrix(_grid(z, dev, dt), rz),
            "t": interpolation_matrix(times.to(dev, dt), f.time_resolution)}
    g = {n: torch.matmul(torch.matmul(mats[n[1]], p), mats[n[0]].t()) for n, p in f.planes.items()}
    b, c, w, bias = times.shape[0], f.channels, f.weight[0], f.bias[0]
    zt = (g["zt"] * w[0][:, None, None]).permute(1, 2, 0).reshape(b * z, c)
    raw = torch.addmm(bias.expand(b * z, y * x), zt, g["xy"].reshape(c, y * x)).view(b * z, y, x)
    yt = (g["yt"] * w[1][:, None, None]).permute(1, 2, 0)
    left = yt[:, None].expand(b, z, y, c).reshape(b * z, y, c)
    right = g["xz"].permute(1, 0, 2)[None].expand(b, z, c, x).reshape(b * z, c, x)
    raw = torch.baddbmm(raw, left, right)
    yz = (g["yz"] * w[2][:, None, None]).permute(1, 2, 0)
    left = yz[None].expand(b, z, y, c).reshape(b * z, y, c)
    right = g["xt"].permute(1, 0, 2)[:, None].expand(b, z, c, x).reshape(b * z, c, x)
    raw = torch.baddbmm(raw, left, right).view(b, 1, z, y, x)
    return (torch.sigmoid(raw) * f.value_bounds.view(1, 1, 1, 1, 1))[:, 0]


def reference_projector(size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The dense Joseph operator applied to row-major frames: (B, Z, Y, X) -> (B, V, Z, W)."""
    op = torch.cat([slice_projection_matrix(a, size) for a in ANGLES])        # (V*W, W*W)

    def project(volume: torch.Tensor) -> torch.Tensor:
        b, z = volume.shape[:2]
        out = volume.reshape(b * z, -1) @ op.t()
        return out.reshape(b, z, len(ANGLES), size).permute(0, 2, 1, 3)
    return project


# ------------------------------------------------------------------ the steps
def make_step(kind: str, size: int, frames: int) -> Callable[[], float]:
    """One training step of ``kind`` (reference, fast, fast-bfloat16); returns the loss."""
    torch.manual_seed(0)
    field = HexPlaneField(channels=16, space_resolution=(size,) * 3, time_resolution=40)
    times = torch.linspace(-1, 1, 40)[:frames]
    target = torch.rand(frames, len(ANGLES), size, size)
    shape = (size,) * 3
    if kind == "reference":
        project = reference_projector(size)
        render = lambda: reference_render(field, times, shape)                  # noqa: E731
        opt = torch.optim.Adam(field.parameters(), lr=1e-3, foreach=False)
    else:
        projector = Projector(Geometry.from_angles(ANGLES, frames, size, size), sparse=True)
        project = projector.forward
        dtype = torch.bfloat16 if kind == "fast-bfloat16" else None

        def render() -> torch.Tensor:
            with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
                return field.render_frames(times, shape).float()
        opt = torch.optim.Adam(field.parameters(), lr=1e-3, fused=True)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = (project(render()) - target).pow(2).mean()
        loss.backward()
        opt.step()
        return float(loss.detach())
    return step


def measure(kinds: list[str], size: int, frames: int, reps: int) -> dict[str, dict]:
    """Fastest step of each kind over interleaved repetitions, and the first losses."""
    steps = {k: make_step(k, size, frames) for k in kinds}
    losses = {k: [steps[k]() for _ in range(3)] for k in kinds}       # warm-up, and a check
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(reps):
        for k in kinds:
            t0 = time.perf_counter()
            steps[k]()
            times[k].append(time.perf_counter() - t0)
    points = frames * size ** 3
    return {k: {"step_ms_min": 1000 * min(v), "step_ms_median": 1000 * sorted(v)[len(v) // 2],
                "points_per_s": points / min(v), "first_losses": losses[k]}
            for k, v in times.items()}


def profile(kind: str, size: int, frames: int, steps: int = 10, rows: int = 12) -> str:
    """The top operators (self CPU time) of ``steps`` steps of ``kind``."""
    from torch.profiler import profile as torch_profile
    step = make_step(kind, size, frames)
    for _ in range(3):
        step()
    with torch_profile() as prof:
        for _ in range(steps):
            step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--frames", type=int, default=4, help="frames per step")
    ap.add_argument("--reps", type=int, default=20, help="repetitions at 64^3 (fewer above)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="print each path's top operators")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "hotpath.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    kinds = ["reference", "fast", "fast-bfloat16"]
    result = {"machine": f"{platform.machine()}, {args.threads} thread(s), torch {torch.__version__}",
              "load_average_at_start": os.getloadavg()[0], "frames_per_step": args.frames,
              "views": len(ANGLES), "channels": 16, "sizes": {}}
    for size in args.sizes:
        reps = max(3, args.reps * 64 ** 3 // size ** 3) if size > 64 else args.reps
        r = measure(kinds, size, args.frames, reps)
        for k in kinds[1:]:
            r[k]["speed_up"] = r["reference"]["step_ms_min"] / r[k]["step_ms_min"]
        result["sizes"][str(size)] = r
        print(f"{size}^3: " + ", ".join(f"{k} {v['step_ms_min']:.1f} ms ({v['points_per_s']:.3g} pts/s)"
                                      for k, v in r.items())
              + f"; fast {r['fast']['speed_up']:.2f}x, bfloat16 {r['fast-bfloat16']['speed_up']:.2f}x",
              flush=True)
        if args.profile:
            for k in kinds[:2]:
                print(f"--- {k}, {size}^3\n{profile(k, size, args.frames)}", flush=True)
    result["load_average_at_end"] = os.getloadavg()[0]
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
