"""One X-Hexplane training step (dense render, projection, loss, backward, Adam), eager
against ``torch.compile``: milliseconds per step and the compile time.

    python benchmarks/bench_step.py [--size 64] [--frames 4] [--threads 2] [--steps 30]

Writes benchmarks/results/step_compile.json and prints the numbers. The field is at its
final resolution (one coarse-to-fine stage): a real run changes the planes' shapes at each
refinement, and a compiled step compiles again for each shape.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from xray4d.fields import HexPlaneField
from xray4d.geometry import Geometry
from xray4d.projector import Projector


def measure(compiled: bool, size: int, frames: int, steps: int) -> dict[str, float]:
    """Milliseconds per step after three warm-up steps, and the warm-up's seconds."""
    torch.manual_seed(0)
    geometry = Geometry.from_angles([0.0, 23.8], 40, size, size)
    projector = Projector(geometry, sparse=True)     # as the training path builds it
    field = HexPlaneField(channels=16, space_resolution=(size, size, size), time_resolution=40)
    times = torch.linspace(-1, 1, 40)[:frames]
    target = torch.rand(frames, 2, size, size)
    opt = torch.optim.Adam(field.parameters(), lr=1e-3)

    def loss_of(t: torch.Tensor) -> torch.Tensor:
        projections = projector(field.render_frames(t, (size, size, size)), list(range(frames)))
        return (projections - target).pow(2).mean()

    loss_fn = torch.compile(loss_of) if compiled else loss_of

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(times).backward()
        opt.step()

    t0 = time.perf_counter()
    for _ in range(3):
        step()
    warmup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return {"step_ms": 1000 * (time.perf_counter() - t0) / steps, "warmup_s": warmup}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--frames", type=int, default=4, help="frames per step")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "step_compile.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    eager = measure(False, args.size, args.frames, args.steps)
    compiled = measure(True, args.size, args.frames, args.steps)
    result = {"machine": f"{platform.machine()}, {args.threads} threads, torch {torch.__version__}",
              "size": args.size, "frames_per_step": args.frames, "eager": eager,
              "compiled": compiled, "speed_up": eager["step_ms"] / compiled["step_ms"]}
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
