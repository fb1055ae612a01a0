"""Where a fit's error lies: the volumes that ``bench_physics.py --save-volumes`` keeps.

For each case of one seed, against ``seed{S}_truth.npy`` (frames, z, y, x; the beam at
0 degrees runs along y, see shared/docs/data-format.md):

- PSNR, overall and per frame (min, max);
- the value in the drops' core over the truth's peak (core: the truth above half its
  peak, eroded by 2 voxels) and each frame's total over the truth's;
- the RMS width of the profile along the beam (y) and across it (x), relative error;
- the relative L2 error of the projections at 0 degrees (seen) and 90 degrees (never
  seen by the 0 / 23.8 degree views);
- the share of the squared error in the one-voxel shell of the surface, the core
  and outside;
- the PSNR after clipping the volume at the truth's peak (what a bound at the
  material's value would give if it cost nothing in the fit).

Usage: python benchmarks/analyse_saved_volumes.py DIR SEED CASE [CASE ...]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage

from xray4d.evaluation.metrics import psnr


def rms_width(profile: np.ndarray) -> np.ndarray:
    """RMS width (voxels) of non-negative profiles along their last axis."""
    coord = np.arange(profile.shape[-1], dtype=np.float64)
    mass = profile.sum(-1)
    centre = (profile * coord).sum(-1) / mass
    return np.sqrt((profile * (coord - centre[..., None]) ** 2).sum(-1) / mass)


def analyse(volume: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Error measures of a (frames, z, y, x) volume against the truth (see module doc)."""
    v, t = volume.astype(np.float64), truth.astype(np.float64)
    peak = t.max()
    inside = t > 0.5 * peak
    core = ndimage.binary_erosion(inside, iterations=2)
    shell = ndimage.binary_dilation(inside) & ~ndimage.binary_erosion(inside)
    err2 = (v - t) ** 2
    total_ratio = v.sum((1, 2, 3)) / t.sum((1, 2, 3)) - 1

    def width_error(axes: tuple[int, int]) -> float:
        ratio = rms_width(v.sum(axes)) / rms_width(t.sum(axes)) - 1
        return float(np.sqrt(np.mean(ratio ** 2)))

    def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(a - b) / np.linalg.norm(b))

    per_frame = [psnr(v[i], t[i]) for i in range(t.shape[0])]
    return {
        "psnr_db": psnr(v, t),
        "psnr_per_frame_min_db": min(per_frame), "psnr_per_frame_max_db": max(per_frame),
        "core_median_over_peak": float(np.median(v[core]) / peak),
        "max_over_peak": float(v.max() / peak),
        "frame_total_rel_err_mean": float(total_ratio.mean()),
        "frame_total_rel_err_max_abs": float(np.abs(total_ratio).max()),
        "width_along_beam_y_rel_err_rms": width_error((1, 3)),
        "width_across_x_rel_err_rms": width_error((1, 2)),
        "proj_0deg_rel_l2": rel_l2(v.sum(2), t.sum(2)),
        "proj_90deg_rel_l2": rel_l2(v.sum(3), t.sum(3)),
        "error_share_shell": float(err2[shell].sum() / err2.sum()),
        "error_share_core": float(err2[core].sum() / err2.sum()),
        "error_share_outside": float(err2[~inside & ~shell].sum() / err2.sum()),
        "psnr_clipped_at_peak_db": psnr(np.minimum(v, peak), t),
    }


def main() -> None:
    if len(sys.argv) < 4:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    folder, seed, cases = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    try:
        truth = np.load(folder / f"seed{seed}_truth.npy")
        report = {case: analyse(np.load(folder / f"seed{seed}_{case}.npy"), truth)
                  for case in cases}
    except (OSError, ValueError) as err:  # missing or unreadable .npy, mismatched shapes
        print(f"analyse_saved_volumes: {err}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
