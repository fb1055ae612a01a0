"""X-Hexplane's quality with the value bound its default estimator gives, at fixed iterations.

Each case is simulated (32^3 x 10 frames by default, 1 % noise, seed 0, views 0 and 23.8 deg
unless ``--views 4``), the bound is estimated from its projections by
:func:`xray4d.reconstruct.value_bound.estimate_value_bound` (what ``xray4d reconstruct``
does without ``--value-max`` or ``--material``), passed explicitly as ``field.value_max``, and
the fit runs a fixed number of iterations on one thread; PSNR, IoU and SSIM against the
simulated truth are written as JSON to ``--out`` (one file per label, so a run before and one
after a change of the estimator can be compared). ``--truth-bound F`` puts the bound at F
times the truth's maximum instead (the quality's sensitivity to the bound).

    python benchmarks/bench_value_bound_quality.py --label after \
        --cases droplets,bubble-column,tripod,jet --iterations 1500
"""
from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from xray4d.api import reconstruct, resolve_config
from xray4d.evaluation.metrics import evaluate_volumes
from xray4d.reconstruct.value_bound import estimate_value_bound
from xray4d.simulate import get_scene

VIEWS = {2: (0.0, 23.8), 4: (0.0, 23.8, 67.5, 112.5)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", required=True, help="name of this run (before, after, ...)")
    ap.add_argument("--cases", default="droplets,bubble-column,tripod,jet")
    ap.add_argument("--views", type=int, default=2, choices=sorted(VIEWS))
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=1500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--truth-bound", type=float, default=None, metavar="FACTOR",
                    help="bound at FACTOR times the truth's largest value instead of the "
                         "estimate (how the quality depends on the bound)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"value_bound_quality_{args.label}_{args.views}views.json"
    rows = json.loads(path.read_text())["rows"] if path.exists() else []
    done = {r["case"] for r in rows}
    for name in args.cases.split(","):
        if name in done:
            continue
        rec = get_scene(name).recording(size=args.size, frames=args.frames,
                                        angles_deg=VIEWS[args.views], noise=0.01, seed=0)
        top = float(rec.truth.max())
        if args.truth_bound is None:
            bound, source = estimate_value_bound(rec.projections, rec.geometry.angles_deg)
        else:
            bound, source = args.truth_bound * top, "truth"
        cfg = resolve_config("default", {"train": {"iterations": args.iterations,
                                                   "time_budget_s": None},
                                         "field": {"value_max": bound}})
        res = reconstruct(rec, cfg, progress=False)
        m = evaluate_volumes(res.reconstruction.volume, rec.truth)["mean"]
        row = {"case": name, "views": args.views, "bound": bound, "source": source,
               "truth_max": top, "ratio": bound / top, "iterations": res.iterations,
               **{k: float(m[k]) for k in ("psnr", "iou", "ssim")}}
        rows.append(row)
        print(json.dumps(row), flush=True)
        path.write_text(json.dumps({
            "machine": f"{platform.machine()}, {args.threads} torch threads, "
                       f"torch {torch.__version__}",
            "size": args.size, "frames": args.frames, "iterations": args.iterations,
            "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
