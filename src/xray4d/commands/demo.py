"""The ``xray4d demo`` verb: simulate, reconstruct, evaluate, report: the main job end to end."""
from __future__ import annotations

import argparse
import html
import json
import time
from pathlib import Path

from ..cli import UsageError, claim_outputs

DEMO_SIMULATION = {"size": 64, "frames": 40, "angles_deg": (0.0, 23.8), "noise": 0.01, "seed": 0}

#: what the demo writes into its folder (an earlier demo's results are replaced only with --force)
DEMO_OUTPUTS = ("recording.h5", "reconstruction.h5", "metrics.json", "metrics_per_frame.png",
                "report.md", "report.html", "summary.json", "reconstruction_preview")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``xray4d demo``."""
    p = sub.add_parser("demo", help="simulate a droplet collision, reconstruct it, write a report",
                       description="Simulate the default droplet collision (64^3, 40 frames, views "
                                   "at 0 and 23.8 deg, 1%% noise), reconstruct it with X-Hexplane, "
                                   "evaluate against the truth and write report.md/report.html.")
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--time-budget", type=float, default=90.0,
                   help="seconds for the reconstruction (default 90)")
    p.add_argument("--size", type=int, default=DEMO_SIMULATION["size"], help="voxels per side")
    p.add_argument("--frames", type=int, default=DEMO_SIMULATION["frames"])
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true", help="overwrite the results of an earlier demo in OUT")
    p.set_defaults(func=cmd_demo)


def _metric_rows(result: dict) -> list[tuple[str, str]]:
    m = result["mean"]
    return [("PSNR [dB]", f"{m['psnr']:.2f}"), ("SSIM", f"{m['ssim']:.4f}"),
            ("DSSIM", f"{m['dssim']:.4f}"), ("IoU (threshold 0.5 x max)", f"{m['iou']:.4f}"),
            ("MSE", f"{m['mse']:.3e}")]


def _per_frame_plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import atomic_path

    pf = result["per_frame"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 2.8))
    for ax, key, label in zip(axes, ("psnr", "ssim", "iou"), ("PSNR [dB]", "SSIM", "IoU")):
        ax.plot(pf[key], marker=".", lw=1)
        ax.set_xlabel("frame")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def write_report(out: Path, summary: dict, result: dict) -> tuple[Path, Path]:
    """report.md and report.html with the figures and the metric table."""
    from ..io import atomic_path

    rows = _metric_rows(result)
    figs = [("Central slices and maximum-intensity projections (truth beside reconstruction)",
             "reconstruction_preview/slices.png"),
            ("The movie: truth (top) and reconstruction (bottom); columns: x-y, x-z, y-z; "
             "row 1 slices, row 2 MIPs", "reconstruction_preview/movie.gif"),
            ("Measured vs predicted projections", "reconstruction_preview/projections.png"),
            ("Quality per frame", "metrics_per_frame.png"),
            ("Training loss", "reconstruction_preview/loss.png")]
    s = summary
    intro = (f"Simulated binary droplet collision, {s['size']}^3 voxels, {s['frames']} frames, "
             f"views at {', '.join(f'{a:g}' for a in s['angles_deg'])} deg, "
             f"{100 * s['noise']:g} % noise; reconstructed with {s['method']} in "
             f"{s['reconstruct_seconds']:.1f} s ({s['iterations']} iterations) on {s['device']}.")
    md = ["# xray4d demo report", "", intro, "", "| metric (mean over frames) | value |", "|---|---|"]
    md += [f"| {k} | {v} |" for k, v in rows]
    md += ["", "SSIM is high for mostly empty volumes whatever the reconstruction; "
               "read it together with PSNR and IoU.", ""]
    for caption, fig in figs:
        md += [f"## {caption}", "", f"![{caption}]({fig})", ""]
    md += ["## Files", "", "- `recording.h5`: the simulated recording with ground truth",
           "- `reconstruction.h5`: the reconstruction (`/reconstruction/volume`)",
           "- `metrics.json`: per-frame and mean metrics",
           "- `reconstruction_preview/`: figures, movie, config", ""]
    md_path = out / "report.md"
    with atomic_path(md_path) as tmp:
        tmp.write_text("\n".join(md))
    table = "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in rows)
    body = "".join(f"<h2>{html.escape(c)}</h2><img src='{f}' style='max-width:100%'>" for c, f in figs)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>xray4d demo</title>"
            f"<style>body{{font-family:sans-serif;max-width:1000px;margin:auto}}"
            f"td{{padding:2px 12px;border-bottom:1px solid #ddd}}</style></head><body>"
            f"<h1>xray4d demo report</h1><p>{html.escape(intro)}</p>"
            f"<table><tr><th>metric (mean over frames)</th><th>value</th></tr>{table}</table>"
            f"<p>SSIM is high for mostly empty volumes whatever the reconstruction; read it "
            f"together with PSNR and IoU.</p>{body}</body></html>")
    html_path = out / "report.html"
    with atomic_path(html_path) as tmp:
        tmp.write_text(page)
    return md_path, html_path


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo."""
    from ..api import reconstruct_file, resolve_config
    from ..commands.evaluate import evaluate_files, write_json
    from ..io import atomic_path, save_recording
    from ..resources import check_fits, check_reconstruction, estimate_simulation
    from ..simulate import DropletCollision, simulate_droplets

    if args.time_budget <= 0:
        raise UsageError(f"--time-budget: must be positive, got {args.time_budget}")
    if args.size < 8 or args.frames < 2:
        raise UsageError("--size must be >= 8 and --frames >= 2")
    out = Path(args.out)
    from ..io.files import Output
    claim_outputs(args, [Output(out, "--out", folder=True, replace=True)]
                  + [Output(out / name, "--out", folder="." not in name)
                     for name in (*DEMO_OUTPUTS, "reconstruction.h5.ckpt")], force=args.force)
    sim = dict(DEMO_SIMULATION, size=args.size, frames=args.frames)
    cfg = resolve_config("fast", {"train": {"time_budget_s": args.time_budget, "iterations": None}})
    # the sizes are the user's: refuse what cannot fit before simulating anything
    n, t, v = sim["size"], sim["frames"], len(sim["angles_deg"])
    check_fits(estimate_simulation(n, t, v))
    check_reconstruction(t, v, n, n, cfg, truth=True)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(f"[1/4] simulating a droplet collision: {sim['size']}^3, {sim['frames']} frames, "
          f"views {sim['angles_deg']} deg, noise {sim['noise']}", flush=True)
    rec = simulate_droplets(DropletCollision(), **sim)
    rec_path = out / "recording.h5"
    save_recording(rec, rec_path)
    print(f"[2/4] reconstructing with X-Hexplane, time budget {args.time_budget:g} s", flush=True)
    t1 = time.perf_counter()
    result = reconstruct_file(rec_path, out / "reconstruction.h5", cfg, progress=not args.quiet)
    t_rec = time.perf_counter() - t1
    print("[3/4] evaluating against the ground truth", flush=True)
    metrics = evaluate_files(out / "reconstruction.h5", rec_path)
    write_json(metrics, out / "metrics.json")
    _per_frame_plot(metrics["volume"], out / "metrics_per_frame.png")
    summary = dict(sim, method="hexplane", reconstruct_seconds=t_rec, iterations=result.iterations,
                   device=cfg.train.device)
    md, page = write_report(out, summary, metrics["volume"])
    m = metrics["volume"]["mean"]
    print(f"[4/4] report: {md} and {page}", flush=True)
    print(f"mean PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}, IoU {m['iou']:.4f}; "
          f"total {time.perf_counter() - t0:.0f} s")
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=1, default=str))
    return 0
