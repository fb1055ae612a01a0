"""Beyond multi-projection imaging: static many-angle CT and a rotating evolving sample.

Two measurements (issue 25), at fixed iteration counts on one torch thread (no wall-clock
claims; each record carries the iterations run):

* ``static``: one frame (T = 1) of a library scene seen at ``--angles`` angles spread over
  180 degrees, 1 % noise. X-Hexplane with the ``ct`` preset (what ``--preset auto`` picks
  for it) and with the ``default`` preset (made for 2-4 views), FBP, and SIRT at the same
  iteration count; PSNR against the truth.
* ``rotating``: an evolving library scene recorded by a rotating sample, one projection
  every ``--step`` degrees over ``--rotations`` turns (``xray4d simulate --rotating``),
  truth at every projection time. X-Hexplane (``auto``: the default preset, two frames per
  time node for one view per frame) against FBP per half rotation (sliding window,
  :func:`xray4d.reconstruct.sliding.sliding_window_fbp`); PSNR per time step, with the
  scene's motion within each frame's half-rotation window, and a figure of both over time.

    PYTHONPATH=src python benchmarks/bench_tomography.py static [--size 32]
        [--scenes tripod ellipsoid] [--angles 180] [--iterations 2000]
        [--runs hexplane-ct hexplane-default fbp sirt]
    PYTHONPATH=src python benchmarks/bench_tomography.py rotating [--size 32]
        [--scene ellipsoid] [--rotations 4] [--step 6] [--iterations 2000]

Writes benchmarks/results/tomography_static_<size>.json, tomography_rotating_<scene>_<size>
.json and its figure (.png beside it).
"""
from __future__ import annotations

import argparse
import json
import platform
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xray4d.api import reconstruct, resolve_config
from xray4d.data import Recording
from xray4d.evaluation.metrics import psnr
from xray4d.reconstruct.sliding import half_rotation_windows, sliding_window_fbp
from xray4d.simulate import get_scene, rotating_angles

RESULTS = Path(__file__).parent / "results"


def _fixed(iterations: int) -> dict[str, Any]:
    return {"train": {"iterations": iterations, "time_budget_s": None},
            "conventional": {"iterations": iterations}}


def _fit(rec: Recording, preset: str, method: str, iterations: int) -> tuple[np.ndarray, int]:
    """The volume (T, Z, Y, X) and the iterations run (``auto``: as the command line
    resolves it from the recording's view directions per frame)."""
    cfg = resolve_config(preset, _fixed(iterations), method,
                         views=rec.geometry.directions_per_frame)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = reconstruct(rec, cfg, progress=False)
    return res.reconstruction.volume, int(res.iterations)


#: the runs of ``static``: label, preset, method
STATIC_RUNS = (("hexplane-ct", "ct", "hexplane"), ("hexplane-default", "default", "hexplane"),
               ("fbp", "default", "fbp"), ("sirt", "default", "sirt"))


def run_static(args: argparse.Namespace) -> dict[str, Any]:
    """X-Hexplane (ct, default presets), FBP and SIRT on T = 1 with many angles."""
    angles = np.arange(args.angles) * (180.0 / args.angles)
    out: dict[str, Any] = {}
    for name in args.scenes:
        rec = get_scene(name).recording(size=args.size, frames=1, angles_deg=angles,
                                        noise=args.noise, seed=args.seed)
        rows = {}
        for label, preset, method in STATIC_RUNS:
            if label not in args.runs:
                continue
            vol, its = _fit(rec, preset, method, args.iterations)
            rows[label] = {"psnr_db": round(psnr(vol, rec.truth), 2),
                           "iterations": its if method != "fbp" else 0}
            print(f"{name} {label}: {rows[label]}", flush=True)
        out[name] = rows
    return out


def window_motion(truth: np.ndarray, windows: list[np.ndarray]) -> np.ndarray:
    """Per frame, how much the scene moves within its window: the RMS difference between
    the frame's truth and the mean truth over the window, over the truth's range."""
    rng = float(truth.max() - truth.min())
    return np.array([float(np.sqrt(np.mean((truth[idx].mean(axis=0) - truth[t]) ** 2))) / rng
                     for t, idx in enumerate(windows)])


def run_rotating(args: argparse.Namespace) -> dict[str, Any]:
    """X-Hexplane against sliding-window FBP, PSNR per time step."""
    angles = rotating_angles(args.rotations, args.step)
    rec = get_scene(args.scene).recording(size=args.size, frames=angles.shape[0],
                                          angles_deg=angles, noise=args.noise, seed=args.seed)
    truth = rec.truth
    rng = float(truth.max() - truth.min())
    hexvol, its = _fit(rec, "auto", "hexplane", args.iterations)
    window = sliding_window_fbp(rec)
    windows = half_rotation_windows(rec.geometry.angles_deg)
    motion = window_motion(truth, windows)
    per_t = {"hexplane": [round(psnr(hexvol[t], truth[t], rng), 2) for t in range(len(truth))],
             "fbp_half_rotation": [round(psnr(window[t], truth[t], rng), 2)
                                   for t in range(len(truth))]}
    moving = motion > args.moving
    ahead = np.array(per_t["hexplane"]) > np.array(per_t["fbp_half_rotation"])
    summary = {
        "frames": int(len(truth)), "window_frames": int(len(windows[0])),
        "hexplane_iterations": its,
        "mean_psnr_db": {k: round(float(np.mean(v)), 2) for k, v in per_t.items()},
        "min_psnr_db": {k: round(float(np.min(v)), 2) for k, v in per_t.items()},
        "moving_frames": int(moving.sum()),
        "hexplane_ahead_where_moving": int((ahead & moving).sum()),
        "hexplane_ahead_overall": int(ahead.sum()),
    }
    print(json.dumps(summary), flush=True)
    return {"summary": summary, "psnr_per_frame_db": per_t,
            "window_motion": [round(float(m), 4) for m in motion],
            "angles_deg": angles[:, 0].tolist()}


def figure(result: dict[str, Any], path: Path, title: str) -> None:
    """PSNR per time step of both methods, and the motion within each window."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    per_t = result["psnr_per_frame_db"]
    t = np.arange(len(per_t["hexplane"]))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(t, per_t["hexplane"], label="X-Hexplane")
    ax.plot(t, per_t["fbp_half_rotation"], label="FBP per half rotation (sliding window)")
    ax.set_xlabel("time step (one projection each)")
    ax.set_ylabel("PSNR against the truth (dB)")
    ax2 = ax.twinx()
    ax2.plot(t, result["window_motion"], color="grey", ls=":", label="motion in window")
    ax2.set_ylabel("RMS change within the half rotation / range", color="grey")
    ax.legend(loc="lower left")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    """Parse the arguments, run one measurement, write its JSON (and figure)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("static", "rotating"))
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--noise", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iterations", type=int, default=2000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--scenes", nargs="+", default=["tripod", "ellipsoid"])
    p.add_argument("--angles", type=int, default=180)
    p.add_argument("--runs", nargs="+", default=[r[0] for r in STATIC_RUNS],
                   choices=[r[0] for r in STATIC_RUNS], help="static: which fits to run")
    p.add_argument("--scene", default="ellipsoid")
    p.add_argument("--rotations", type=float, default=4.0)
    p.add_argument("--step", type=float, default=6.0)
    p.add_argument("--out", type=Path, default=None, help="JSON to write (default: by the "
                   "measurement, size and scene in benchmarks/results/)")
    p.add_argument("--moving", type=float, default=0.02,
                   help="a frame counts as moving when the motion in its window exceeds this")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    meta = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "torch": torch.__version__, "platform": platform.platform()}
    RESULTS.mkdir(exist_ok=True)
    if args.what == "static":
        result = {"meta": meta, "results": run_static(args)}
        path = args.out or RESULTS / f"tomography_static_{args.size}.json"
    else:
        result = {"meta": meta, **run_rotating(args)}
        path = args.out or RESULTS / f"tomography_rotating_{args.scene}_{args.size}.json"
        figure(result, path.with_suffix(".png"),
               f"{args.scene} {args.size}^3, {args.rotations:g} rotations, one projection "
               f"every {args.step:g} deg")
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
