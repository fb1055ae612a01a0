"""The demo's report: the metric table and the figures, as Markdown and as HTML.

:func:`write_report` writes ``report.md`` and ``report.html`` into the demo's
folder, linking the previews of the reconstruction (``reconstruction_preview/``)
and the per-frame quality figure of :func:`plot_metrics_per_frame`.
"""
from __future__ import annotations

import html
from pathlib import Path

from ..io import atomic_path
from ..reconstruct.value_bound import describe_bound

__all__ = ["html_page", "plot_metrics_per_frame", "write_report"]


def html_page(title: str, heading: str, body: str) -> str:
    """A self-contained HTML report page: ``title``, an ``<h1>`` ``heading`` (escaped) and
    ``body`` (HTML)."""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
            f"</title><style>body{{font-family:sans-serif;max-width:1000px;margin:auto}}"
            f"td{{padding:2px 12px;border-bottom:1px solid #ddd}}</style></head><body>"
            f"<h1>{html.escape(heading)}</h1>{body}</body></html>")


def _metric_rows(result: dict) -> list[tuple[str, str]]:
    """(name, formatted mean) of each metric of one channel of an evaluation result."""
    m = result["mean"]
    return [("PSNR [dB]", f"{m['psnr']:.2f}"), ("SSIM", f"{m['ssim']:.4f}"),
            ("DSSIM", f"{m['dssim']:.4f}"), ("IoU (threshold 0.5 x max)", f"{m['iou']:.4f}"),
            ("MSE", f"{m['mse']:.3e}")]


def plot_metrics_per_frame(result: dict, path: Path) -> None:
    """PSNR, SSIM and IoU over the frames of one channel of an evaluation result, as PNG."""
    # matplotlib (~0.5 s to import) only when a figure is drawn
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    """report.md and report.html with the figures and the metric table.

    Args:
        out: the demo's folder.
        summary: the demo's settings and run (``size``, ``frames``, ``angles_deg``,
            ``noise``, ``method``, ``reconstruct_seconds``, ``iterations``, ``device``, and
            ``value_bound``: the bound's diagnostic, when the method has one).
        result: one channel of :func:`xray4d.evaluation.score.evaluate_files` (``mean``).

    Returns:
        the paths of report.md and report.html.
    """
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
    if s.get("value_bound"):
        intro += f" The {describe_bound(s['value_bound'])}."
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
    page = html_page("xray4d demo", "xray4d demo report",
                     f"<p>{html.escape(intro)}</p>"
                     f"<table><tr><th>metric (mean over frames)</th><th>value</th></tr>{table}"
                     f"</table><p>SSIM is high for mostly empty volumes whatever the "
                     f"reconstruction; read it together with PSNR and IoU.</p>{body}")
    html_path = out / "report.html"
    with atomic_path(html_path) as tmp:
        tmp.write_text(page)
    return md_path, html_path
