"""The demo: simulate, reconstruct, evaluate, report: the main job end to end.

:func:`run_demo` simulates the default droplet collision
(:data:`~.cases.DEMO_SIMULATION`), reconstructs it with X-Hexplane (the ``fast``
preset under a time budget), scores the reconstruction against the truth and
writes the report (:mod:`xray4d.viz.report`): the benchmark's smallest
instance, one case and one method, with every file it makes kept in one folder.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from ..api import reconstruct_file, resolve_config
from ..io import atomic_path, save_recording
from ..resources import check_fits, check_reconstruction, estimate_simulation
from ..simulate import DropletCollision, simulate_droplets
from ..viz.report import plot_metrics_per_frame, write_report
from .cases import DEMO_SIMULATION
from .score import evaluate_files, write_json

__all__ = ["DEMO_OUTPUTS", "run_demo"]

#: what the demo writes into its folder (an earlier demo's results are replaced only with --force)
DEMO_OUTPUTS = ("recording.h5", "reconstruction.h5", "metrics.json", "metrics_per_frame.png",
                "report.md", "report.html", "summary.json", "reconstruction_preview")


def _say(line: str) -> None:
    print(line, flush=True)


def run_demo(out: str | Path, *, size: int = DEMO_SIMULATION["size"],
             frames: int = DEMO_SIMULATION["frames"], time_budget_s: float = 90.0,
             progress: bool = True, log: Callable[[str], None] = _say) -> dict[str, Any]:
    """Simulate a droplet collision, reconstruct it, evaluate it and write the report.

    Refuses (:class:`~xray4d.errors.ResourceError`) a size that cannot fit in memory
    before simulating anything. Writes :data:`DEMO_OUTPUTS` into ``out`` (replacing
    what is there).

    Args:
        out: the demo's folder (made if missing).
        size, frames: of the simulated recording (voxels per side, frames).
        time_budget_s: wall time of the reconstruction in seconds.
        progress: show the reconstruction's progress bar.
        log: receives a line at each of the four steps and the mean scores.

    Returns:
        the summary written to ``summary.json``: the simulation's settings, the method,
        ``reconstruct_seconds``, ``iterations`` and the ``device``.
    """
    out = Path(out)
    sim = dict(DEMO_SIMULATION, size=size, frames=frames)
    cfg = resolve_config("fast", {"train": {"time_budget_s": time_budget_s, "iterations": None}})
    # the sizes are the user's: refuse what cannot fit before simulating anything
    n, t, v = sim["size"], sim["frames"], len(sim["angles_deg"])
    check_fits(estimate_simulation(n, t, v))
    check_reconstruction(t, v, n, n, cfg, truth=True)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    log(f"[1/4] simulating a droplet collision: {sim['size']}^3, {sim['frames']} frames, "
        f"views {sim['angles_deg']} deg, noise {sim['noise']}")
    rec = simulate_droplets(DropletCollision(), **sim)
    rec_path = out / "recording.h5"
    save_recording(rec, rec_path)
    log(f"[2/4] reconstructing with X-Hexplane, time budget {time_budget_s:g} s")
    t1 = time.perf_counter()
    result = reconstruct_file(rec_path, out / "reconstruction.h5", cfg, progress=progress)
    t_rec = time.perf_counter() - t1
    log("[3/4] evaluating against the ground truth")
    metrics = evaluate_files(out / "reconstruction.h5", rec_path)
    write_json(metrics, out / "metrics.json")
    plot_metrics_per_frame(metrics["volume"], out / "metrics_per_frame.png")
    summary = dict(sim, method="hexplane", reconstruct_seconds=t_rec, iterations=result.iterations,
                   device=cfg.train.device,
                   value_bound=result.reconstruction.config.get("resolved", {}).get("value_bound"))
    md, page = write_report(out, summary, metrics["volume"])
    m = metrics["volume"]["mean"]
    log(f"[4/4] report: {md} and {page}")
    log(f"mean PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}, IoU {m['iou']:.4f}; "
        f"total {time.perf_counter() - t0:.0f} s")
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1, default=str))
    return summary
