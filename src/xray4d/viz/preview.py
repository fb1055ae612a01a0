"""Figures a user checks at a glance: slices, maximum-intensity projections,
measured vs predicted projections, the movie as GIF/MP4, the loss curve, and the flow
prior's velocity as arrows.

All files are written atomically into one preview folder. Any detector shape
(a volume (T, H, W, W) with H != W: its slices differ in height) and any sign
of the values is shown: the colour range always spans zero and the data
(:func:`display_range`), and a maximum-intensity projection keeps, along each
ray, the value of largest magnitude (:func:`signed_mip`), which is the maximum
for a non-negative volume.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..io import atomic_path
from ..io.export import write_mp4

__all__ = ["frame_panel", "write_previews", "pick_frames", "display_range", "signed_mip",
           "truth_at", "velocity_figure"]


def _matplotlib():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def pick_frames(n_frames: int, count: int = 6) -> list[int]:
    """Up to ``count`` frame indices spread evenly over the movie, first and last included."""
    if n_frames <= count:
        return list(range(n_frames))
    return sorted({int(round(i)) for i in np.linspace(0, n_frames - 1, count)})


def display_range(*arrays: np.ndarray | None) -> tuple[float, float]:
    """Colour range ``(vmin, vmax)`` of the given arrays (None skipped): it spans zero and
    every finite value, so all-negative data show as well as non-negative ones, and
    ``vmin < vmax`` always holds (a constant or empty input gets a range of width 1)."""
    lo, hi = 0.0, 0.0
    for a in arrays:
        if a is None or np.size(a) == 0:
            continue
        finite = np.asarray(a)[np.isfinite(a)]
        if finite.size:
            lo, hi = min(lo, float(finite.min())), max(hi, float(finite.max()))
    if not hi > lo:           # all zero: any range will do
        return lo, lo + 1.0
    return lo, hi


def signed_mip(volume: np.ndarray, axis: int) -> np.ndarray:
    """Maximum-intensity projection along ``axis`` that keeps the sign: along each ray, the
    value of largest magnitude (the plain maximum for a non-negative volume; the most
    negative value where the object is negative)."""
    vol = np.asarray(volume)
    hi, lo = vol.max(axis=axis), vol.min(axis=axis)
    return np.where(-lo > hi, lo, hi)


def _colour(img: np.ndarray, vrange: tuple[float, float], cmap: str = "magma") -> np.ndarray:
    from matplotlib import colormaps
    lo, hi = vrange
    norm = np.clip((img - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(img)
    return (colormaps[cmap](norm)[..., :3] * 255).astype(np.uint8)


def _range_of(v: float | tuple[float, float]) -> tuple[float, float]:
    """A colour range from ``(vmin, vmax)``, or from ``vmax`` alone (then ``vmin`` is 0)."""
    return (float(v[0]), float(v[1])) if isinstance(v, tuple) else (0.0, float(v))


def frame_panel(frame: np.ndarray, vmax: float | tuple[float, float],
                mip_vmax: float | tuple[float, float] | None = None) -> np.ndarray:
    """One frame f[z, y, x] as an RGB image: central slices (top) and MIPs (bottom).

    Columns: the x-y plane (seen from above), x-z (seen along y, like view 0),
    y-z (seen along x). Separated by a 2-pixel gap. ``vmax`` (and ``mip_vmax``,
    default the same) is the top of the colour range, or a ``(vmin, vmax)`` pair
    (see :func:`display_range`). Any Z (the detector's rows) works: tiles shorter
    than their row are padded at the bottom.
    """
    z, y, x = frame.shape
    slices = [frame[z // 2], frame[:, y // 2, :], frame[:, :, x // 2]]
    mips = [signed_mip(frame, 0), signed_mip(frame, 1), signed_mip(frame, 2)]
    mip_vmax = vmax if mip_vmax is None else mip_vmax
    rows = []
    for imgs, vm in ((slices, _range_of(vmax)), (mips, _range_of(mip_vmax))):
        h = max(i.shape[0] for i in imgs)
        tiles = []
        for im in imgs:
            tile = np.zeros((h, im.shape[1], 3), np.uint8)
            tile[:im.shape[0]] = _colour(im[::-1] if im is not imgs[0] else im, vm)
            tiles.append(tile)
            tiles.append(np.full((h, 2, 3), 255, np.uint8))
        rows.append(np.concatenate(tiles[:-1], axis=1))
        rows.append(np.full((2, rows[-1].shape[1], 3), 255, np.uint8))
    width = max(r.shape[1] for r in rows)     # the slice and MIP rows can differ in width
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255)
            for r in rows]
    return np.concatenate(rows[:-1], axis=0)


def _side_by_side(images: Sequence[np.ndarray]) -> np.ndarray:
    """2D images next to each other, the shorter padded at the bottom with NaN (blank)."""
    h = max(im.shape[0] for im in images)
    return np.concatenate([np.pad(im.astype(np.float32), ((0, h - im.shape[0]), (0, 0)),
                                  constant_values=np.nan) for im in images], axis=1)


def _save_png(fig, path: Path) -> None:
    plt = _matplotlib()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _upscale(img: np.ndarray, factor: int) -> np.ndarray:
    return np.repeat(np.repeat(img, factor, axis=0), factor, axis=1)


def _time_bar(width: int, fraction: float) -> np.ndarray:
    """A 4-pixel strip whose filled share is the frame's place in the movie's time span."""
    bar = np.full((4, width, 3), 255, np.uint8)
    bar[1:3, :max(1, int(round(fraction * width)))] = (80, 80, 80)
    return bar


def write_movie(volume: np.ndarray, out_dir: Path, fps: float = 8.0,
                truth: np.ndarray | None = None,
                times: np.ndarray | None = None) -> list[Path]:
    """movie.gif (and movie.mp4 where ffmpeg is available) of the frame panels, one video
    frame per reconstructed frame. With ``times`` (T',) each panel gets a bar under it
    whose length is the frame's time within the movie's span, so unevenly spaced times
    show as uneven steps."""
    import imageio.v3 as iio

    vrange = display_range(volume, truth)
    factor = max(1, 256 // max(volume.shape[1:]))
    span = None
    if times is not None and len(times) > 1 and float(times[-1]) > float(times[0]):
        span = (float(times[0]), float(times[-1]))
    frames = []
    for t in range(volume.shape[0]):
        panel = frame_panel(volume[t], vrange)
        if truth is not None:
            gap = np.full((4, panel.shape[1], 3), 255, np.uint8)
            panel = np.concatenate([frame_panel(truth[t], vrange), gap, panel], axis=0)
        if span is not None:
            share = (float(times[t]) - span[0]) / (span[1] - span[0])
            panel = np.concatenate([panel, _time_bar(panel.shape[1], share)], axis=0)
        frames.append(_upscale(panel, factor))
    written = []
    gif = out_dir / "movie.gif"
    with atomic_path(gif) as tmp:
        iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=1000 / fps, loop=0)
    written.append(gif)
    mp4 = out_dir / "movie.mp4"
    try:
        # even sizes for the H.264 encoder
        hh, ww = (frames[0].shape[0] // 2) * 2, (frames[0].shape[1] // 2) * 2
        write_mp4([np.ascontiguousarray(f[:hh, :ww, :3]) for f in frames], mp4, fps)
        written.append(mp4)
    except (ImportError, OSError, RuntimeError):  # no usable ffmpeg: the GIF is enough
        pass
    return written


def _loss_figure(path: Path, losses: Sequence[float], loss_times: Sequence[float],
                 loss_terms: dict[str, Sequence[float]] | None) -> Path:
    """The training loss over wall time: the data term, and every other term beside it."""
    plt = _matplotlib()
    terms = {k: v for k, v in (loss_terms or {}).items() if len(v) == len(losses)}
    others = {k: v for k, v in terms.items() if k != "data"}
    fig, axes = plt.subplots(1, 2 if others else 1, figsize=(10 if others else 5, 3),
                             squeeze=False)
    timed = len(loss_times) == len(losses)
    xs = np.asarray(loss_times) if timed else np.arange(len(losses))
    axes[0, 0].semilogy(xs, np.maximum(np.asarray(losses, float), 1e-30), lw=0.8)
    axes[0, 0].set_ylabel("data term (relative MSE)")
    if others:
        for name, values in others.items():
            axes[0, 1].semilogy(xs, np.maximum(np.abs(np.asarray(values, float)), 1e-30),
                                lw=0.8, label=name)
        axes[0, 1].set_ylabel("other terms (unweighted)")
        axes[0, 1].legend(fontsize=7)
    for ax in axes.ravel():
        ax.set_xlabel("wall time [s]" if timed else "iteration")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save_png(fig, path)
    return path


def truth_at(truth: np.ndarray | None, times: np.ndarray | None,
             recorded_times: np.ndarray | None) -> np.ndarray | None:
    """The truth (T, Z, Y, X) at the reconstruction's ``times`` (T'): its frames at those
    times when every one is a recorded frame's, else None (the truth exists at the recorded
    frames only, and is never interpolated). Without times the truth as it is."""
    if truth is None or times is None or recorded_times is None:
        return truth
    from ..reconstruct.times import recorded_index
    idx = recorded_index(np.asarray(times), np.asarray(recorded_times))
    return None if (idx < 0).any() else truth[idx]


def _frame_label(t: int, times: np.ndarray | None) -> str:
    return f"frame {t}" if times is None else f"frame {t}\nt = {float(times[t]):.4g} s"


def velocity_figure(path: Path, volume: np.ndarray, velocity: np.ndarray,
                    times: np.ndarray | None = None, step: int | None = None) -> Path:
    """Arrows of the velocity (T, 3, Z, Y, X; voxels per second) over the central slices
    z = Z/2 (arrows vx, vy) and y = Y/2 (arrows vx, vz) of up to six frames, every ``step``-th
    voxel (default: about 12 arrows across), on the reconstruction's slices."""
    plt = _matplotlib()
    frames = pick_frames(volume.shape[0])
    z, y, x = volume.shape[1:]
    step = step or max(1, max(y, x) // 12)
    vmin, vmax = display_range(volume)
    speed = float(np.abs(velocity).max()) or 1.0
    fig, axes = plt.subplots(len(frames), 2, figsize=(6.4, 2.9 * len(frames)), squeeze=False)
    for i, t in enumerate(frames):
        for j, (img, u, w) in enumerate((
                (volume[t, z // 2], velocity[t, 0, z // 2], velocity[t, 1, z // 2]),
                (volume[t, :, y // 2], velocity[t, 0, :, y // 2], velocity[t, 2, :, y // 2]))):
            ax = axes[i, j]
            ax.imshow(img, cmap="magma", vmin=vmin, vmax=vmax, origin="lower")
            rows, cols = np.mgrid[0:img.shape[0]:step, 0:img.shape[1]:step]
            ax.quiver(cols, rows, u[::step, ::step], w[::step, ::step], color="cyan",
                      angles="xy", scale_units="xy", scale=speed / step, width=0.006)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("z slice: (vx, vy)" if j == 0 else "y slice: (vx, vz)", fontsize=8)
        axes[i, 0].set_ylabel(_frame_label(t, times), fontsize=8)
    fig.suptitle(f"flow prior: velocity (longest arrow {speed:.3g} voxels/s, drawn "
                 f"{step} voxels long)", fontsize=9)
    _save_png(fig, path)
    return path


def _slices_figure(path: Path, volume: np.ndarray, truth: np.ndarray | None,
                   times: np.ndarray | None, title: str) -> Path:
    """Central slices and MIPs of selected frames, the truth beside the reconstruction."""
    plt = _matplotlib()
    frames = pick_frames(volume.shape[0])
    vmin, vmax = display_range(volume, truth)
    rows = [("reconstruction", volume)] + ([("truth", truth)] if truth is not None else [])
    # a title of more than two lines (e.g. calibrated detectors) gets room above the panels
    extra = 0.2 * max(0, (title or "").count("\n") - 1)
    fig, axes = plt.subplots(len(frames), 2 * len(rows),
                             figsize=(4.2 * len(rows), 1.15 * len(frames) + 0.4 + extra),
                             squeeze=False)
    for i, t in enumerate(frames):
        for r, (name, vol) in enumerate(rows):
            z, y, x = vol[t].shape
            # z // 2 is (Y, X), the y // 2 slice (Z, X): heights differ when Z != Y
            axes[i, 2 * r].imshow(_side_by_side([vol[t][z // 2], vol[t][::-1, y // 2, :]]),
                                  cmap="magma", vmin=vmin, vmax=vmax)
            axes[i, 2 * r + 1].imshow(_side_by_side([signed_mip(vol[t], 0),
                                                     signed_mip(vol[t][::-1], 1)]),
                                      cmap="magma", vmin=vmin, vmax=vmax)
            if i == 0:
                axes[i, 2 * r].set_title(f"{name}: slices z | y", fontsize=8)
                axes[i, 2 * r + 1].set_title(f"{name}: MIP along z | y", fontsize=8)
        axes[i, 0].set_ylabel(_frame_label(t, times), fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or "central slices and maximum-intensity projections", fontsize=9)
    if extra:
        fig.subplots_adjust(top=1 - (0.65 + extra) / fig.get_figheight())
    _save_png(fig, path)
    return path


def _projections_figure(path: Path, projections: np.ndarray, predicted: np.ndarray,
                        angles_deg: np.ndarray | None) -> Path:
    """Measured, predicted and their difference for up to three recorded frames."""
    plt = _matplotlib()
    n_views = projections.shape[1]
    recorded = pick_frames(projections.shape[0])   # the recorded frames, whatever T'
    sel = recorded[:: max(1, len(recorded) // 3)][:3]
    fig, axes = plt.subplots(len(sel) * n_views, 3, figsize=(7.5, 2.0 * len(sel) * n_views),
                             squeeze=False)
    pmin, pmax = display_range(projections, predicted)
    for i, t in enumerate(sel):
        for v in range(n_views):
            row = i * n_views + v
            res = projections[t, v] - predicted[t, v]
            rmax = display_range(np.abs(res))[1]
            axes[row, 0].imshow(projections[t, v], cmap="gray", vmin=pmin, vmax=pmax)
            axes[row, 1].imshow(predicted[t, v], cmap="gray", vmin=pmin, vmax=pmax)
            im = axes[row, 2].imshow(res, cmap="RdBu_r", vmin=-rmax, vmax=rmax)
            fig.colorbar(im, ax=axes[row, 2], fraction=0.046)
            ang = f", {angles_deg[t, v]:g} deg" if angles_deg is not None else ""
            axes[row, 0].set_ylabel(f"frame {t}\nview {v}{ang}", fontsize=7)
    for j, name in enumerate(("measured", "predicted", "measured - predicted")):
        axes[0, j].set_title(name, fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    _save_png(fig, path)
    return path


def write_previews(out_dir: str | os.PathLike, volume: np.ndarray, projections: np.ndarray,
                   predicted: np.ndarray | None = None, losses: Sequence[float] = (),
                   loss_times: Sequence[float] = (), truth: np.ndarray | None = None,
                   angles_deg: np.ndarray | None = None, title: str = "",
                   loss_terms: dict[str, Sequence[float]] | None = None,
                   times: np.ndarray | None = None,
                   recorded_times: np.ndarray | None = None,
                   velocity: np.ndarray | None = None) -> list[Path]:
    """Write the preview folder; returns the files written.

    Args:
        volume: reconstruction (T', Z, Y, X), at ``times`` when given.
        projections: measured projections (T, V, H, W) at the recorded frames.
        predicted: projections of the reconstruction at the recorded frames, same shape,
            if available.
        losses, loss_times: training loss per iteration and the wall time of each.
        truth: ground truth (T, Z, Y, X) at the recorded frames, if known (simulations);
            shown beside the reconstruction when its frames are recorded ones
            (:func:`truth_at`).
        angles_deg: (T, V) angles for the labels.
        loss_terms: every loss term's unweighted value per iteration, by name (the
            loss figure shows each; ``losses`` is then the data term's).
        times: (T',) time of each reconstructed frame in seconds (the slices are labelled
            with them); None: the recorded frames.
        recorded_times: (T,) times of the recorded frames (to find the truth's frames).
        velocity: (T', 3, Z, Y, X) velocity of the flow prior, voxels per second: drawn as
            arrows in velocity.png (:func:`velocity_figure`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    truth = truth_at(truth, times, recorded_times)
    written.append(_slices_figure(out / "slices.png", volume, truth, times, title))
    if predicted is not None:
        written.append(_projections_figure(out / "projections.png", projections, predicted,
                                           angles_deg))

    if len(losses):
        written.append(_loss_figure(out / "loss.png", losses, loss_times, loss_terms))

    if velocity is not None:
        written.append(velocity_figure(out / "velocity.png", volume, velocity, times))
    written += write_movie(volume, out, truth=truth, times=times)
    return written
