"""The report of ``xray4d validate``: curves, maps, numbers and a verdict, as HTML.

:func:`write_validation_report` draws three figures into the validation folder
(``heldout.png``: the held-out error per frame against the noise floor, and per left-out
view; ``fsc.png``: the half-data FSC curves with the 1/7 and half-bit thresholds;
``uncertainty.png``: central slices of the reconstruction and of the ensemble's
standard deviation) and writes ``report.html`` around them.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..io import atomic_path
from .preview import _matplotlib, _save_png, pick_frames
from .report import html_page

if TYPE_CHECKING:
    from ..evaluation.validation import ValidationRun

__all__ = ["plot_heldout", "plot_fsc", "plot_uncertainty", "write_validation_report"]


def _values(x: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in x], dtype=np.float64)


def plot_heldout(summary: dict[str, Any], path: Path) -> None:
    """Held-out relative error per frame with the noise floor, and its ratio to the noise."""
    plt = _matplotlib()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 3.2))
    err = _values(summary["heldout_relative_error_per_frame"])
    frames = np.arange(err.size)
    ax.plot(frames, err, marker=".", label="held-out pixels")
    ax.plot(frames, _values(summary["heldout_noise_floor_per_frame"]), ls="--", c="grey",
            label="noise floor")
    for v, d in (summary.get("leave_view_out") or {}).items():
        ax.plot(frames, _values(d["relative_error_per_frame"]), lw=1, label=f"view {v} left out")
    ax.set_xlabel("frame")
    ax.set_ylabel("relative error")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    bx.plot(frames, _values(summary["heldout_noise_ratio_per_frame"]), marker=".")
    bx.axhline(1.0, c="grey", ls="--", lw=1)
    bx.axhline(summary["thresholds"]["heldout_noise_ratio"], c="red", ls=":", lw=1,
               label="warning above")
    bx.set_xlabel("frame")
    bx.set_ylabel("held-out rms error / noise")
    bx.set_ylim(bottom=0)
    bx.legend(fontsize=7)
    bx.grid(alpha=0.3)
    from matplotlib.ticker import MaxNLocator
    for a in (ax, bx):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    _save_png(fig, path)


def plot_fsc(run: "ValidationRun", path: Path) -> None:
    """The FSC of the two half-data reconstructions, per frame and median, with thresholds."""
    plt = _matplotlib()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    curves = run.fsc
    f = curves[0].frequency
    for c in curves:
        ax.plot(f, c.fsc, c="tab:blue", lw=0.6, alpha=0.35)
    ax.plot(f, np.median([c.fsc for c in curves], axis=0), c="tab:blue", lw=2,
            label="median over frames")
    ax.axhline(1 / 7, c="red", ls=":", lw=1, label="1/7")
    ax.plot(f[1:], curves[0].half_bit[1:], c="orange", ls="--", lw=1, label="half-bit")
    ax.set_xlabel("spatial frequency [1/voxel] (period = 1/frequency)")
    ax.set_ylabel("FSC")
    ax.set_xlim(0, f[-1])
    ax.set_ylim(min(-0.1, float(np.min([c.fsc for c in curves]))), 1.05)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save_png(fig, path)


def plot_uncertainty(run: "ValidationRun", path: Path, count: int = 4) -> None:
    """Central x-y and x-z slices of the reconstruction and of the uncertainty, a few frames."""
    plt = _matplotlib()
    vol = run.reconstructions["reconstruction"].volume
    unc = run.uncertainty
    frames = pick_frames(vol.shape[0], count)
    fig, axes = plt.subplots(len(frames), 4, figsize=(9, 2.3 * len(frames)), squeeze=False)
    vmax, umax = float(vol.max()) or 1.0, float(unc.max()) or 1.0
    for row, t in zip(axes, frames):
        z, y = vol.shape[1] // 2, vol.shape[2] // 2
        panels = [(vol[t, z], vmax, "magma", "x-y"), (unc[t, z], umax, "viridis", "x-y std"),
                  (vol[t, :, y][::-1], vmax, "magma", "x-z"),
                  (unc[t, :, y][::-1], umax, "viridis", "x-z std")]
        for ax, (img, vm, cmap, name) in zip(row, panels):
            im = ax.imshow(img, cmap=cmap, vmin=0, vmax=vm)
            ax.set_title(f"frame {t}, {name}", fontsize=8)
            ax.axis("off")
        fig.colorbar(im, ax=row[3], fraction=0.046)
    fig.tight_layout()
    _save_png(fig, path)


def _rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    def f(key: str, spec: str = ".4g", scale: float = 1.0) -> str:
        v = s.get(key)
        return "-" if v is None else format(v * scale, spec)
    rows = [("quality score [dB, higher is better; for ranking, not a PSNR]",
             f("quality_score", ".1f")),
            ("no-truth error estimate (ensemble spread over the volume + value deficit "
             "× object share)", f("quality_error", ".3g")),
            ("held-out relative error (mean over frames)", f("heldout_relative_error")),
            ("held-out rms error / noise level", f("heldout_noise_ratio", ".3f")),
            ("held-out error beyond the noise, share of the held-out signal",
             f("heldout_excess_relative_error", ".1%")),
            ("fitted rms error / noise level", f("fit_noise_ratio", ".3f")),
            ("noise level (sigma; share of the largest datum)",
             f"{f('noise_level')} ({f('noise_level_relative', '.2%')})"),
            ("FSC resolution, 1/7 (median over frames) [voxels]", f("fsc_resolution_voxels", ".2f")),
            ("FSC resolution, half-bit [voxels]", f("fsc_resolution_voxels_half_bit", ".2f"))]
    if s.get("fsc_resolution_m") is not None:
        rows.append(("FSC resolution, 1/7 [µm]", f("fsc_resolution_m", ".3g", 1e6)))
    if s.get("leave_view_out_relative_error") is not None:
        rows.append(("left-out view, relative error (mean over views)",
                     f("leave_view_out_relative_error")))
    rows += [("uncertainty: ensemble std, mean over all voxels", f("uncertainty_mean")),
             ("uncertainty: ensemble std, mean inside the object", f("uncertainty_mean_object")),
             ("value bound (source)", f"{f('value_max')} ({s.get('value_max_source', '-')})"),
             ("object voxels within 2 % of the bound", f("saturation_share", ".1%")),
             ("data term's fall over the second half of the fit", f("data_loss_drop", ".1%"))]
    if s.get("value_estimate") is not None:
        rows.append(("value the projections suggest (estimate)",
                     f"{f('value_estimate')} ({s.get('value_estimate_method')})"))
    return rows


def write_validation_report(out: Path, run: "ValidationRun", title: str) -> Path:
    """Draw the figures into ``out`` and write ``out/report.html``; returns its path."""
    out = Path(out)
    s = run.summary
    plot_heldout(s, out / "heldout.png")
    plot_fsc(run, out / "fsc.png")
    plot_uncertainty(run, out / "uncertainty.png")
    warn = "".join(f"<li>{html.escape(w)}</li>" for w in s["warnings"])
    warn_html = (f"<h2 style='color:#b00'>Warnings</h2><ul>{warn}</ul>" if warn
                 else "<p><b>No warnings.</b></p>")
    table = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
                    for k, v in _rows(s))
    figs = [("Held-out pixels: error per frame", "heldout.png"),
            ("Fourier shell correlation of the half-data reconstructions", "fsc.png"),
            ("Reconstruction and uncertainty (std over the ensemble)", "uncertainty.png")]
    body = "".join(f"<h2>{html.escape(c)}</h2><img src='{p}' style='max-width:100%'>"
                   for c, p in figs)
    fits = "".join(f"<li><code>{html.escape(n)}.h5</code>: seed {d['seed']}, "
                   f"{html.escape(d['pixels'])} pixels, {d['iterations']} iterations, "
                   f"{d['wall_s']:.1f} s</li>" for n, d in s["fits"].items())
    page = html_page("xray4d validation", f"xray4d validation: {title}",
            f"<h2>Verdict</h2><p>{html.escape(s['verdict'])}</p>{warn_html}"
            f"<table><tr><th>quantity</th><th>value</th></tr>{table}</table>{body}"
            f"<h2>Files</h2><ul>{fits}<li><code>uncertainty.h5</code>: the standard deviation "
            f"over the ensemble ({html.escape(', '.join(s['ensemble']))}) per voxel as "
            f"<code>/reconstruction/volume</code>, their mean as "
            f"<code>/reconstruction/ensemble_mean</code></li>"
            f"<li><code>validation.json</code>: every number of this page</li></ul>")
    path = out / "report.html"
    with atomic_path(path) as tmp:
        tmp.write_text(page)
    return path
