"""Does the adversarial term (``reconstruct --adversarial``) help X-Hexplane at two views?

For each scene of the library, simulated at ``--size``^3 x ``--frames`` frames with three
views (0, 23.8 and 67.5 degrees; 1 % noise), X-Hexplane is fitted on the first two views
only, for a fixed number of iterations, without and with the adversarial term (one run
per weight of ``--weights``), the runs of a scene one after another under the same
conditions (one torch thread). Each fit is scored against the truth (PSNR and IoU as
``xray4d evaluate``: means over frames) and by the view it never saw: the reconstruction
projected at 67.5 degrees against the measured third view (relative error
``||P f - d|| / ||d||``, frame by frame, then the mean) and against the truth projected
the same way (no noise). Training time is reported per iteration (mean over the run's
steps, from the trainer's clock) and as the ratio to the run without the term; and, as the
machine may be shared, by pairs of short fits alternated without and with the term (no
warm-up), whose median ratio is the number to quote.

Writes ``benchmarks/results/adversarial.json`` (or ``--out``) and prints a Markdown table.

    PYTHONPATH=src python benchmarks/bench_adversarial.py [--scenes droplets tripod jet
        bubble-column] [--size 32] [--frames 10] [--iterations 1500] [--weights 0.01]
        [--seed 0] [--threads 1] [--timing-rounds 3] [--timing-iterations 200]
        [--out benchmarks/results/adversarial.json]
"""
from __future__ import annotations

import argparse
import copy
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
from xray4d.evaluation.metrics import evaluate_volumes
from xray4d.evaluation.validation import heldout_errors
from xray4d.geometry import Geometry
from xray4d.projector import Projector

SCENES = ("droplets", "tripod", "jet", "bubble-column")


def first_views(rec: Recording, views: int) -> Recording:
    """The recording seen from its first ``views`` views only (same frames, same truth)."""
    g = rec.geometry
    geometry = Geometry(g.angles_deg[:, :views].copy(), g.height, g.width, g.pixel_size_m)
    return Recording(np.ascontiguousarray(rec.projections[:, :views]), geometry,
                     quantity=rec.quantity, time=rec.time, truth=rec.truth,
                     attrs=dict(rec.attrs))


def held_out_view_error(volume: np.ndarray, rec3: Recording) -> dict[str, float]:
    """Relative error of the third view predicted from ``volume``: against the measured view
    and against the truth's projection (both by the same projector)."""
    g = rec3.geometry
    one = Geometry(g.angles_deg[:, 2:3].copy(), g.height, g.width)
    proj = Projector(one)
    with torch.no_grad():
        pred = proj(torch.as_tensor(volume)).numpy()
        clean = proj(torch.as_tensor(rec3.truth.astype(np.float32))).numpy()
    mask = np.ones(pred.shape, bool)
    measured = rec3.projections[:, 2:3]
    return {"heldout_view_error": float(np.nanmean(heldout_errors(pred, measured, mask)["relative"])),
            "heldout_view_error_vs_truth":
                float(np.nanmean(heldout_errors(pred, clean, mask)["relative"])),
            "truth_view_error_vs_measured":
                float(np.nanmean(heldout_errors(clean, measured, mask)["relative"]))}


def run(scene: str, rec3: Recording, iterations: int, seed: int,
        adversarial: dict[str, Any] | None) -> dict[str, Any]:
    """One fit on the first two views, scored."""
    over = copy.deepcopy(case_overrides(scene, {"train": {"iterations": iterations,
                                                          "time_budget_s": None, "seed": seed}}))
    if adversarial is not None:
        over["adversarial"] = {"enabled": True, **adversarial}
    cfg = resolve_config("default", over)
    rec2 = first_views(rec3, 2)
    t0 = time.perf_counter()
    res = reconstruct(rec2, cfg, progress=False)
    wall = time.perf_counter() - t0
    vol = res.reconstruction.volume
    scores = evaluate_volumes(vol, rec3.truth)["mean"]
    lt = np.asarray(res.loss_times)
    steps = np.diff(lt)
    warm = int(np.ceil(cfg.adversarial.warmup_fraction * iterations)) if adversarial else 0
    row = {"scene": scene, "adversarial": adversarial, "iterations": res.iterations,
           "psnr": float(scores["psnr"]), "iou": float(scores["iou"]),
           "ssim": float(scores["ssim"]), "wall_s": wall,
           "s_per_iteration": float(steps.mean()),
           "s_per_iteration_after_warmup": float(steps[warm:].mean()),
           "final_data_loss": res.losses[-1],
           "final_terms": {k: v[-1] for k, v in res.loss_terms.items()},
           **held_out_view_error(vol, rec3)}
    resolved = res.reconstruction.config["resolved"].get("adversarial")
    if resolved:
        row["discriminator"] = {k: v for k, v in resolved.items() if k != "novel_angles_deg"}
    return row


def interleaved_timing(scene: str, rec3: Recording, iterations: int, rounds: int, seed: int,
                       weight: float) -> dict[str, Any]:
    """Seconds per iteration without and with the term (no warm-up: every step pays for
    it), fits alternated (A B, B A, ...) so that a change in the machine's load reaches
    both; the ratio of each pair and their median."""
    pairs = []
    for k in range(rounds):
        order = [None, {"weight": weight, "warmup_fraction": 0.0}]
        times = {}
        for adv in (order if k % 2 == 0 else order[::-1]):
            times[adv is not None] = run(scene, rec3, iterations, seed, adv)["s_per_iteration"]
        pairs.append({"without": times[False], "with": times[True],
                      "ratio": times[True] / times[False]})
    return {"scene": scene, "iterations": iterations, "pairs": pairs,
            "median_ratio": float(np.median([p["ratio"] for p in pairs]))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", nargs="+", default=list(SCENES))
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--iterations", type=int, default=1500)
    p.add_argument("--weights", type=float, nargs="+", default=[0.01])
    p.add_argument("--noise", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--timing-rounds", type=int, default=3,
                   help="pairs of short fits for the interleaved timing (0: none)")
    p.add_argument("--timing-iterations", type=int, default=200)
    p.add_argument("--out", default="benchmarks/results/adversarial.json")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for scene in a.scenes:
        rec3 = simulate_case(scene, 3, a.size, a.frames, a.noise, a.seed)
        assert tuple(rec3.geometry.angles_deg[0]) == VIEW_ANGLES[3]
        for adv in [None] + [{"weight": w} for w in a.weights]:
            row = run(scene, rec3, a.iterations, a.seed, adv)
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("scene", "adversarial", "psnr", "iou",
                                                  "heldout_view_error", "s_per_iteration")}),
                  flush=True)
    base = {r["scene"]: r for r in rows if r["adversarial"] is None}
    for r in rows:
        b = base[r["scene"]]
        r["time_ratio"] = r["s_per_iteration"] / b["s_per_iteration"]
        # the steps with the term (after its warm-up) against the run without it
        r["time_ratio_after_warmup"] = r["s_per_iteration_after_warmup"] / b["s_per_iteration"]
        r["delta_psnr_db"] = r["psnr"] - b["psnr"]
        r["delta_iou"] = r["iou"] - b["iou"]
        r["heldout_view_error_ratio"] = r["heldout_view_error"] / b["heldout_view_error"]
    timing = None
    if a.timing_rounds:
        rec3 = simulate_case(a.scenes[0], 3, a.size, a.frames, a.noise, a.seed)
        timing = interleaved_timing(a.scenes[0], rec3, a.timing_iterations, a.timing_rounds,
                                    a.seed, a.weights[0])
        print(f"interleaved timing ({a.scenes[0]}, {a.timing_iterations} it, "
              f"{a.timing_rounds} pairs): median ratio {timing['median_ratio']:.2f}", flush=True)
    out = {"settings": vars(a), "interleaved_timing": timing, "views_fitted": list(VIEW_ANGLES[2]),
           "held_out_view_deg": VIEW_ANGLES[3][2], "torch": torch.__version__,
           "platform": platform.platform(), "rows": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    print("\n| scene | weight | PSNR dB | IoU | 3rd-view err (meas.) | 3rd-view err (truth) "
          "| s/it ratio (all / after warm-up) |\n|---|---|---|---|---|---|---|")
    for r in rows:
        w = "-" if r["adversarial"] is None else f"{r['adversarial']['weight']:g}"
        print(f"| {r['scene']} | {w} | {r['psnr']:.2f} | {r['iou']:.3f} | "
              f"{r['heldout_view_error']:.4f} | {r['heldout_view_error_vs_truth']:.4f} | "
              f"{r['time_ratio']:.2f} / {r['time_ratio_after_warmup']:.2f} |")


if __name__ == "__main__":
    main()
