"""Frames between the recorded ones: does X-Hexplane's field beat linear interpolation?

For each scene of the library, a 2-view recording (0 and 23.8 degrees, 1 % noise) of 40
frames is simulated; every other frame is dropped (frames 0, 2, ..., 38 kept: 20 frames at
half the rate), X-Hexplane is fitted to the 20 and queried at the dropped times with
``times="x2"`` (:meth:`xray4d.reconstruct.registry.Method.reconstruct`). The 19 dropped
frames inside the kept span (1, 3, ..., 37) are scored against the truth:

* ``field``: the fitted field at those times;
* ``linear``: the mean of the two reconstructed neighbours (linear interpolation in time
  between the reconstructed frames the field gives at the kept times);
* ``logit``: the neighbours interpolated before the field's bounded output, i.e.
  ``vmax * sigmoid(mean(logit(f0 / vmax), logit(f1 / vmax)))`` with the fit's bound
  ``vmax``. With the linear decoder and a time node at every kept frame (the default:
  ``field.time_scale`` 1) this is what the field itself computes between two nodes (its
  features are linear in time there), so ``field`` and ``logit`` agree up to rounding;
* ``recorded-40`` (``--reference``): X-Hexplane fitted to all 40 frames, scored at the same
  odd frames: what recording them would have given.

``recorded`` is the PSNR of the kept frames themselves (what a time regulariser must not
spoil). PSNR is the mean over frames of ``10 log10(range^2 / MSE)``, the range that of the
whole 40-frame truth (as ``xray4d evaluate``); IoU at half the truth's maximum.

Variants (``--variants``): ``default`` (the default preset's regularisers), and the
time regularisers tried: a stronger ``temporal_smoothness`` (second differences of the time
planes), a node between every two kept frames (``field.time_scale`` 1.95: 39 nodes for 20
frames, the in-between nodes set by the smoothness term alone), and the MLP decoder
(nonlinear in the features, so not the logit interpolation).

Writes benchmarks/results/times.json and prints a Markdown table.

    PYTHONPATH=src python benchmarks/bench_times.py [--size 32] [--iterations 1500]
        [--scenes droplets jet bubble-column two-liquids ...] [--variants default ...]
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
from xray4d.data import Recording
from xray4d.evaluation.cases import VIEW_ANGLES, case_overrides, simulate_case
from xray4d.evaluation.metrics import iou

#: variant name -> config overrides on top of the default preset (fixed iterations)
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "smooth-1e-2": {"regularizers": {"temporal_smoothness": 1e-2}},
    "smooth-1e-1": {"regularizers": {"temporal_smoothness": 1e-1}},
    "nodes-x2": {"field": {"time_scale": 1.95}},
    "nodes-x2-smooth-1e-2": {"field": {"time_scale": 1.95},
                             "regularizers": {"temporal_smoothness": 1e-2}},
    "mlp": {"field": {"decoder": "mlp"}},
}

SCENES = ["droplets", "off-centre", "jet", "bubble-column", "two-liquids", "ellipsoid", "spray"]


def psnr_frames(volume: np.ndarray, truth: np.ndarray, data_range: float) -> list[float]:
    """PSNR of each frame in dB on a fixed data range (the whole truth movie's)."""
    mse = ((volume.astype(np.float64) - truth) ** 2).reshape(truth.shape[0], -1).mean(axis=1)
    return [float(10 * np.log10(data_range ** 2 / max(m, 1e-30))) for m in mse]


def iou_frames(volume: np.ndarray, truth: np.ndarray, threshold: float) -> list[float]:
    """IoU of each frame at one threshold (half the truth movie's maximum)."""
    return [iou(v, t, threshold) for v, t in zip(volume, truth)]


def half_rate(rec: Recording) -> Recording:
    """The recording with every other frame dropped (frames 0, 2, 4, ... kept)."""
    g = rec.geometry
    geometry = type(g)(g.angles_deg[::2].copy(), g.height, g.width, g.pixel_size_m)
    return Recording(np.ascontiguousarray(rec.projections[::2]), geometry, rec.quantity,
                     rec.time[::2].copy(), truth=np.ascontiguousarray(rec.truth[::2]),
                     attrs=dict(rec.attrs))


def logit_interpolation(f0: np.ndarray, f1: np.ndarray, vmax: float) -> np.ndarray:
    """``vmax * sigmoid`` of the mean of the neighbours' logits (see the module docstring)."""
    def logit(f: np.ndarray) -> np.ndarray:
        p = np.clip(f.astype(np.float64) / vmax, 1e-7, 1 - 1e-7)
        return np.log(p) - np.log1p(-p)
    return (vmax / (1 + np.exp(-0.5 * (logit(f0) + logit(f1))))).astype(np.float32)


def config_for(scene: str, variant: str, iterations: int):
    """The default preset at a fixed iteration count, the case's known material, the variant."""
    over = case_overrides(scene, {"train": {"iterations": iterations, "time_budget_s": None}})
    for key, val in VARIANTS[variant].items():
        over.setdefault(key, {}).update(val)
    return resolve_config("default", over)


def reference(scene: str, full: Recording, iterations: int) -> dict[str, Any]:
    """X-Hexplane fitted to all frames, scored at the odd ones (the frames the others drop)."""
    t0 = time.perf_counter()
    movie = reconstruct(full, config_for(scene, "default", iterations),
                        progress=False).reconstruction.volume
    wall = time.perf_counter() - t0
    n = 2 * ((full.frames + 1) // 2) - 1          # the kept span: frames 0 .. 2 (K - 1)
    rng = float(full.truth.max() - full.truth.min())
    thr = 0.5 * float(full.truth.max())
    out = {"scene": scene, "variant": "recorded-40", "wall_s": wall,
           "psnr_field": psnr_frames(movie[1:n:2], full.truth[1:n:2], rng),
           "iou_field": iou_frames(movie[1:n:2], full.truth[1:n:2], thr)}
    for key in ("psnr_field", "iou_field"):
        out[f"mean_{key}"] = float(np.mean(out[key]))
    return out


def score(scene: str, variant: str, full: Recording, iterations: int) -> dict[str, Any]:
    """Fit the half-rate recording, query the dropped times, score field and interpolation."""
    kept = half_rate(full)
    cfg = config_for(scene, variant, iterations)
    t0 = time.perf_counter()
    result = reconstruct(kept, cfg, progress=False, times="x2")
    wall = time.perf_counter() - t0
    movie = result.reconstruction.volume               # (39, Z, Y, X): kept, dropped, kept, ...
    assert movie.shape[0] == 2 * kept.frames - 1
    np.testing.assert_allclose(result.reconstruction.time, full.time[:movie.shape[0]])
    recorded, between = movie[0::2], movie[1::2]
    linear = 0.5 * (recorded[:-1] + recorded[1:])
    vmax = float(result.reconstruction.config["resolved"]["value_max"])
    logit = logit_interpolation(recorded[:-1], recorded[1:], vmax)
    truth = full.truth[:movie.shape[0]]
    rng = float(full.truth.max() - full.truth.min())
    thr = 0.5 * float(full.truth.max())
    out = {"scene": scene, "variant": variant, "wall_s": wall,
           "psnr_field": psnr_frames(between, truth[1::2], rng),
           "psnr_linear": psnr_frames(linear, truth[1::2], rng),
           "psnr_logit": psnr_frames(logit, truth[1::2], rng),
           "field_minus_logit_max": float(np.abs(between - logit).max() / vmax),
           "psnr_recorded": psnr_frames(recorded, truth[0::2], rng),
           "iou_field": iou_frames(between, truth[1::2], thr),
           "iou_linear": iou_frames(linear, truth[1::2], thr),
           "iou_logit": iou_frames(logit, truth[1::2], thr),
           "iou_recorded": iou_frames(recorded, truth[0::2], thr)}
    for key in [k for k in out if k.startswith(("psnr_", "iou_"))]:
        out[f"mean_{key}"] = float(np.mean(out[key]))
    out["gain_db"] = out["mean_psnr_field"] - out["mean_psnr_linear"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--frames", type=int, default=40, help="frames of the full recording")
    ap.add_argument("--iterations", type=int, default=1500)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--scenes", nargs="+", default=SCENES)
    ap.add_argument("--variants", nargs="+", default=["default"], choices=list(VARIANTS))
    ap.add_argument("--reference", action="store_true",
                    help="also fit all frames and score the odd ones (recorded-40)")
    ap.add_argument("--out", default="benchmarks/results/times.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out_path = Path(args.out)
    done: dict[str, Any] = json.loads(out_path.read_text()) if out_path.exists() else {}
    runs = done.get("runs", {})
    for scene in args.scenes:
        full = simulate_case(scene, 2, args.size, args.frames, args.noise, args.seed)
        for variant in args.variants + (["recorded-40"] if args.reference else []):
            if variant == "recorded-40":
                r = reference(scene, full, args.iterations)
                print(f"{scene:14s} {variant:22s} field {r['mean_psnr_field']:6.2f} dB  "
                      f"IoU {r['mean_iou_field']:.3f}  {r['wall_s']:.0f} s", flush=True)
            else:
                r = score(scene, variant, full, args.iterations)
                print(f"{scene:14s} {variant:22s} field {r['mean_psnr_field']:6.2f} dB  linear "
                      f"{r['mean_psnr_linear']:6.2f} dB  logit {r['mean_psnr_logit']:6.2f} dB  "
                      f"gain {r['gain_db']:+5.2f} dB  recorded {r['mean_psnr_recorded']:6.2f} dB  "
                      f"IoU field {r['mean_iou_field']:.3f} linear {r['mean_iou_linear']:.3f}  "
                      f"{r['wall_s']:.0f} s", flush=True)
            runs[f"{scene}/{variant}"] = r
            done = {"settings": {"size": args.size, "frames": args.frames, "kept": "every other",
                                 "views_deg": list(VIEW_ANGLES[2]), "noise": args.noise,
                                 "seed": args.seed, "iterations": args.iterations,
                                 "threads": args.threads, "torch": torch.__version__,
                                 "machine": platform.machine()},
                    "runs": runs}
            out_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = out_path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(done, indent=1))
            tmp.replace(out_path)
    print("\n| scene | variant | field dB | linear dB | logit dB | gain dB | recorded dB | "
          "IoU field | IoU linear |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in runs.values():
        if "mean_psnr_linear" not in r:
            print(f"| {r['scene']} | {r['variant']} | {r['mean_psnr_field']:.2f} | | | | | "
                  f"{r['mean_iou_field']:.3f} | |")
            continue
        print(f"| {r['scene']} | {r['variant']} | {r['mean_psnr_field']:.2f} | "
              f"{r['mean_psnr_linear']:.2f} | {r.get('mean_psnr_logit', float('nan')):.2f} | "
              f"{r['gain_db']:+.2f} | {r['mean_psnr_recorded']:.2f} | "
              f"{r['mean_iou_field']:.3f} | {r['mean_iou_linear']:.3f} |")


if __name__ == "__main__":
    main()
