"""4D-ONIX trained on several droplet collisions, evaluated on unseen ones, next to X-Hexplane.

    python benchmarks/bench_onix.py [--size 32 --frames 12 --train 6 --test 2
        --onix-budget 300 --hexplane-budget 10,60 --threads 1 --out benchmarks/results/onix.json]

The training set and the unseen recordings are collisions of
:mod:`xray4d.simulate.droplet_set` (two views at 0 and 23.8 degrees, 1 % noise): the
training seeds 0 .. train - 1, the unseen ones 1000 .. 1000 + test - 1. 4D-ONIX trains one
network on the training set for ``--onix-budget`` seconds (the default preset, frames in
batches of 2, the material prior at ``--material-prior``) and is then applied to each unseen recording without fitting; X-Hexplane
fits each unseen recording on its own for each of the ``--hexplane-budget`` seconds (the
``fast`` preset). Quality is PSNR and IoU against the truth (:func:`xray4d.evaluation.metrics.
evaluate_volumes`, the mean over frames); times are wall seconds on this machine.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from xray4d.config import resolve_config
from xray4d.evaluation.metrics import evaluate_volumes
from xray4d.reconstruct.measurement import finish, measured_data
from xray4d.reconstruct.onix import apply_network, fit_recordings
from xray4d.reconstruct.registry import get_method
from xray4d.simulate.droplet_set import simulate_droplet_set

UNSEEN_SEED = 1000


def _scores(volume: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    mean = evaluate_volumes(volume, truth)["mean"]
    return {"psnr_db": round(float(mean["psnr"]), 2), "iou": round(float(mean["iou"]), 3)}


def _onix(train, test, args) -> tuple[dict, list[dict]]:
    cfg = resolve_config("default", {"train": {"time_budget_s": args.onix_budget,
                                               "iterations": None, "frames_per_batch": 2},
                                     "regularizers": {"material_prior": args.material_prior}})
    datas = [measured_data(r, cfg) for r in train]
    t0 = time.perf_counter()
    results, network = fit_recordings(datas, cfg, progress=False)
    train_s = time.perf_counter() - t0
    seen = [_scores(finish(r, d).reconstruction.volume, d.recording.truth)
            for r, d in zip(results, datas)]
    rows = []
    for rec in test:
        data = measured_data(rec, cfg)
        t0 = time.perf_counter()
        result = finish(apply_network(network, data, cfg), data)
        rows.append({"seconds": round(time.perf_counter() - t0, 2),
                     **_scores(result.reconstruction.volume, rec.truth)})
    summary = {"train_seconds": round(train_s, 1), "iterations": results[0].iterations,
               "final_data_loss": results[0].losses[-1],
               "seen_mean": {k: round(float(np.mean([s[k] for s in seen])), 3)
                             for k in ("psnr_db", "iou")}}
    return summary, rows


def _hexplane(test, budget: float) -> list[dict]:
    cfg = resolve_config("fast", {"train": {"time_budget_s": budget, "iterations": None}})
    rows = []
    for rec in test:
        t0 = time.perf_counter()
        result = get_method("hexplane").reconstruct(rec, cfg, progress=False)
        rows.append({"seconds": round(time.perf_counter() - t0, 1),
                     "iterations": result.iterations,
                     **_scores(result.reconstruction.volume, rec.truth)})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--train", type=int, default=6)
    p.add_argument("--test", type=int, default=2)
    p.add_argument("--onix-budget", type=float, default=300.0)
    p.add_argument("--hexplane-budget", type=lambda t: [float(v) for v in t.split(",")],
                   default=[60.0], help="seconds per X-Hexplane fit, comma-separated")
    p.add_argument("--material-prior", type=float, default=0.05,
                   help="onix: weight of the material prior (the double well of 0 and the bound)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="benchmarks/results/onix.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    common = dict(size=args.size, frames=args.frames, angles_deg=(0.0, 23.8), noise=0.01)
    train = [r for _, r in simulate_droplet_set(args.train, seed=0, **common)]
    test = [r for _, r in simulate_droplet_set(args.test, seed=UNSEEN_SEED, **common)]
    onix, onix_rows = _onix(train, test, args)
    mean = lambda rows, k: round(float(np.mean([r[k] for r in rows])), 3)  # noqa: E731
    hexplane = {}
    for budget in args.hexplane_budget:
        rows = _hexplane(test, budget)
        hexplane[f"{budget:g}s"] = {"unseen": rows, "unseen_mean": {
            k: mean(rows, k) for k in ("psnr_db", "iou", "seconds")}}
    out = {
        "setup": {"size": args.size, "frames": args.frames, "views_deg": [0.0, 23.8],
                  "noise": 0.01, "train_recordings": args.train, "train_seeds": [0, args.train - 1],
                  "unseen_recordings": args.test,
                  "unseen_seeds": [UNSEEN_SEED, UNSEEN_SEED + args.test - 1],
                  "onix_budget_s": args.onix_budget, "onix_material_prior": args.material_prior, "hexplane_budgets_s": args.hexplane_budget,
                  "torch_threads": args.threads, "torch": torch.__version__,
                  "python": sys.version.split()[0], "machine": platform.machine(),
                  "note": "2 CPU cores shared with other work: timings are indicative"},
        "onix": {**onix, "unseen": onix_rows,
                 "unseen_mean": {k: mean(onix_rows, k) for k in ("psnr_db", "iou", "seconds")}},
        "hexplane": hexplane,
    }
    out["ratios"] = {}
    for name, h in hexplane.items():
        hex_s = h["unseen_mean"]["seconds"]
        out["ratios"][name] = {
            "onix_training_over_hexplane_fit": round(onix["train_seconds"] / hex_s, 2),
            "hexplane_fit_over_onix_inference":
                round(hex_s / out["onix"]["unseen_mean"]["seconds"], 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=1))
    tmp.replace(args.out)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
