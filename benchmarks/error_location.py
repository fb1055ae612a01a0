"""Where a reconstruction's squared error lies: the object's interior (the truth above half
its maximum, eroded by 2 voxels), its surface, outside it, and the top and bottom slices.

One X-Hexplane fit (default preset, the bound estimated, 1500 iterations, two threads) of a
library scene at 32^3 x 10 frames, 1 % noise, seed 0:

    python benchmarks/error_location.py [SCENE] [VIEWS]      (default bubble-column 4)
"""
from __future__ import annotations

import sys
import warnings

import numpy as np
import torch
from scipy.ndimage import binary_erosion

from xray4d.api import reconstruct, resolve_config
from xray4d.simulate import get_scene

VIEWS = {2: (0.0, 23.8), 4: (0.0, 23.8, 67.5, 112.5)}


def main() -> None:
    scene = sys.argv[1] if len(sys.argv) > 1 else "bubble-column"
    views = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    torch.set_num_threads(2)
    rec = get_scene(scene).recording(size=32, frames=10, angles_deg=VIEWS[views], noise=0.01,
                                     seed=0)
    truth = rec.truth
    cfg = resolve_config("default", {"train": {"iterations": 1500, "time_budget_s": None}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        volume = reconstruct(rec, cfg, progress=False).reconstruction.volume
    err = (volume - truth) ** 2
    obj = truth > 0.5 * truth.max()
    inner = np.stack([binary_erosion(o, iterations=2) for o in obj])
    total = err.sum()
    by_z = err.sum(axis=(0, 2, 3))
    print(f"{scene}, {views} views: share of the squared error in the interior "
          f"{err[inner].sum() / total:.3f}, surface {err[obj & ~inner].sum() / total:.3f}, "
          f"outside {err[~obj].sum() / total:.3f}; top and bottom 4 slices "
          f"{by_z[:4].sum() / total:.3f} and {by_z[-4:].sum() / total:.3f}; mean value in the "
          f"interior {volume[inner].mean():.4f} (truth {truth[inner].mean():.4f})")


if __name__ == "__main__":
    main()
