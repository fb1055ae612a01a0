"""The value bound estimated from projections against the simulated truth, on every scene.

For every scene of the library (``xray4d simulate --list``) at 2 views (0, 23.8 deg) and
4 views (0, 23.8, 67.5, 112.5 deg), and for each ``--sizes`` (10 frames each, 1 % noise,
seed 0), and for the demo's droplet collision (64^3 x 40 frames, 2 views), the bound that
:func:`xray4d.reconstruct.value_bound.estimate_value_bound` gives (what
``xray4d reconstruct`` uses without ``--value-max`` or ``--material``) is divided by the
truth's largest value. The issue's criterion is a ratio in [1, 1.3]. Writes
``value_bound.json`` (or ``--name``) into ``--out`` and prints a Markdown table.

    python benchmarks/bench_value_bound.py --threads 1
"""
from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import torch

from xray4d.reconstruct.value_bound import estimate_value_bound
from xray4d.simulate import get_scene
from xray4d.simulate.library import SCENES

VIEWS = {2: (0.0, 23.8), 4: (0.0, 23.8, 67.5, 112.5)}


def bound_ratio(scene: str, size: int, frames: int, views: int) -> dict[str, object]:
    """The estimated bound over the truth's largest value for one simulated recording."""
    rec = get_scene(scene).recording(size=size, frames=frames, angles_deg=VIEWS[views],
                                     noise=0.01, seed=0)
    bound, source = estimate_value_bound(rec.projections, rec.geometry.angles_deg)
    top = float(rec.truth.max())
    return {"scene": scene, "size": size, "frames": frames, "views": views, "bound": bound,
            "source": source, "truth_max": top, "ratio": bound / top,
            "holds": bool(top <= bound <= 1.3 * top)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="32,48", help="comma-separated voxels per side")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--name", default="value_bound")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        for scene in SCENES:
            for views in VIEWS:
                rows.append(bound_ratio(scene, size, args.frames, views))
                print(json.dumps(rows[-1]), flush=True)
    rows.append(bound_ratio("droplets", 64, 40, 2))          # the demo's recording
    print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps({"rows": rows}, indent=1))
    print("| scene | size x frames | 2 views | 4 views |\n|---|---|---|---|")
    keyed = {(r["scene"], r["size"], r["frames"], r["views"]): r for r in rows}
    for (scene, size, frames, views), r in keyed.items():
        if views != 2:
            continue
        four = keyed.get((scene, size, frames, 4))
        cell = "" if four is None else f"{four['ratio']:.2f} ({four['source']})"
        print(f"| {scene} | {size}^3 x {frames} | {r['ratio']:.2f} ({r['source']}) | {cell} |")


if __name__ == "__main__":
    main()
