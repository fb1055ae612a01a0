"""Self-calibration of the detector geometry (``reconstruct --calibrate``) on misaligned recordings.

For each scene (``--scenes``) and number of views (``--views``, angles of
:data:`xray4d.evaluation.cases.VIEW_ANGLES`), a recording is simulated at ``--size``^3 x
``--frames`` frames twice: on ideal detectors, and on detectors with a known misalignment
(:data:`MISALIGNMENT`: shifts of 1.5-3 pixels, a 1 degree tilt, a 5 % magnification of one
view), made by the simulator from its fine projections (each real pixel's footprint on a
grid ``oversample`` times finer), not by the reconstruction's resampling. X-Hexplane is
fitted (same iterations and seed, one torch thread) three times: on the aligned recording;
on the misaligned one believed aligned (its detector geometry dropped: uncalibrated); and
on the misaligned one believed aligned with ``calibration.enabled`` (calibrated). Each is
scored against the truth (PSNR, mean over frames, as ``xray4d evaluate``); the calibrated
run's detector geometry is compared with the true one (the gauge, view 0 and view 1's
column shift, is held and not counted). By default every fit is given the scene's material
value as its bound (``--bound known``), so that the comparison is of the geometry alone:
the bound estimated from misaligned projections can be far off (``--bound estimated``).

Writes ``benchmarks/results/calibration.json`` (or ``--out``) and prints a Markdown table.

    PYTHONPATH=src python benchmarks/bench_calibration.py [--scenes droplets tripod]
        [--views 2 4] [--size 32] [--frames 8] [--iterations 1500] [--noise 0.01]
        [--seed 0] [--bound known|estimated] [--out benchmarks/results/calibration.json]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from xray4d.api import reconstruct, resolve_config
from xray4d.data import Recording
from xray4d.evaluation.cases import VIEW_ANGLES
from xray4d.evaluation.metrics import evaluate_volumes
from xray4d.geometry import DetectorGeometry
from xray4d.reconstruct.calibration import free_parameters
from xray4d.config_calibration import CalibrationConfig
from xray4d.simulate import get_scene

#: the true misalignment by number of views: shift (columns, rows) px, tilt deg, magnification.
#: View 0 is the reference; view 1's column shift is the gauge (a translation of the object)
MISALIGNMENT = {
    2: {"shift": [[0.0, 0.0], [0.0, 2.0]], "tilt": [0.0, 1.0], "magnification": [1.0, 1.05]},
    4: {"shift": [[0.0, 0.0], [0.0, 1.5], [2.5, -1.0], [-3.0, 2.0]],
        "tilt": [0.0, 1.0, 0.0, 0.0], "magnification": [1.0, 1.0, 1.05, 1.0]},
}


def believed_aligned(rec: Recording) -> Recording:
    """The same recording with its detector geometry dropped (as if nobody had measured it)."""
    return dataclasses.replace(rec, geometry=dataclasses.replace(rec.geometry, detector=None))


def fit(rec: Recording, iterations: int, seed: int, calibrate: bool,
        value_max: float | None) -> tuple[dict, Any, float]:
    """Fit X-Hexplane; (metrics vs truth, the resolved calibration or None, seconds)."""
    cfg = resolve_config("default", {"train": {"iterations": iterations, "time_budget_s": None,
                                               "seed": seed},
                                     "field": {"value_max": value_max},
                                     "calibration": {"enabled": calibrate}})
    t0 = time.perf_counter()
    result = reconstruct(rec, cfg, progress=False)
    seconds = time.perf_counter() - t0
    m = evaluate_volumes(result.reconstruction.volume, rec.truth)["mean"]
    resolved = result.reconstruction.config["resolved"]
    m["value_max"], m["value_max_source"] = resolved["value_max"], resolved["value_max_source"]
    return m, resolved.get("calibration"), seconds


def errors(found: dict, truth: dict, views: int) -> dict[str, Any]:
    """Absolute errors of the fitted (free) parameters against the true ones."""
    ms, mt, mm = free_parameters(views, CalibrationConfig())
    ds = np.abs(np.asarray(found["detector_shift_px"]) - np.asarray(truth["shift"]))[ms > 0]
    dt = np.abs(np.asarray(found["detector_tilt_deg"]) - np.asarray(truth["tilt"]))[mt > 0]
    dm = np.abs(np.asarray(found["magnification"]) - np.asarray(truth["magnification"]))[mm > 0]
    return {"shift_max_px": float(ds.max()), "tilt_max_deg": float(dt.max()),
            "magnification_max": float(dm.max())}


def run_case(scene: str, views: int, args: argparse.Namespace) -> dict[str, Any]:
    angles, truth = VIEW_ANGLES[views], MISALIGNMENT[views]
    det = DetectorGeometry.build(args.frames, views, truth["shift"], truth["tilt"],
                                 truth["magnification"])
    kw = dict(size=args.size, frames=args.frames, angles_deg=angles, noise=args.noise,
              seed=args.seed)
    aligned = get_scene(scene).recording(**kw)
    misaligned = believed_aligned(get_scene(scene).recording(**kw, detector=det))
    row: dict[str, Any] = {"scene": scene, "views": views, "angles_deg": list(angles),
                           "true": truth}
    for name, rec, cal in (("aligned", aligned, False), ("uncalibrated", misaligned, False),
                           ("calibrated", misaligned, True)):
        known = get_scene(scene).values[0] if args.bound == "known" else None
        m, found, seconds = fit(rec, args.iterations, args.seed, cal, known)
        row[name] = {"psnr": m["psnr"], "iou": m.get("iou"), "seconds": round(seconds, 1),
                     "value_max": m["value_max"], "value_max_source": m["value_max_source"]}
        if found is not None:
            row[name]["found"] = found
            row[name]["errors"] = errors(found, truth, views)
        print(f"{scene} {views} views {name}: PSNR {m['psnr']:.2f} dB, bound "
              f"{m['value_max']:.3f} ({m['value_max_source']}) "
              f"({seconds:.0f} s){' ' + json.dumps(row[name].get('errors')) if found else ''}",
              flush=True)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| scene | views | PSNR aligned | misaligned, uncalibrated | misaligned, calibrated "
             "| max shift error (px) | max tilt error (deg) | max magnification error |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e = r["calibrated"]["errors"]
        lines.append(f"| {r['scene']} | {r['views']} | {r['aligned']['psnr']:.2f} | "
                     f"{r['uncalibrated']['psnr']:.2f} | {r['calibrated']['psnr']:.2f} | "
                     f"{e['shift_max_px']:.3f} | {e['tilt_max_deg']:.3f} | "
                     f"{e['magnification_max']:.4f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenes", nargs="+", default=["droplets", "tripod"])
    p.add_argument("--views", nargs="+", type=int, default=[2, 4], choices=sorted(MISALIGNMENT))
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--iterations", type=int, default=1500)
    p.add_argument("--noise", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--bound", choices=("known", "estimated"), default="known",
                   help="the field's value bound: the scene's material value (known), or "
                        "estimated from the projections as by default (a misaligned "
                        "recording misleads the estimate, which confounds the comparison)")
    p.add_argument("--out", default="benchmarks/results/calibration.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = [run_case(s, v, args) for s in args.scenes for v in args.views]
    out = {"args": vars(args), "torch": torch.__version__, "machine": platform.machine(),
           "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(table(rows))


if __name__ == "__main__":
    main()
