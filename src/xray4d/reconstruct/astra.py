"""ASTRA Toolbox cross-check of the conventional baselines: ``astra-fbp`` and ``astra-sirt``.

The methods :func:`xray4d.conventional.fbp` and :func:`~xray4d.conventional.sirt`
run on the project's own projector. These two run the same algorithms through
the ASTRA Toolbox instead (its CPU ``FBP`` and ``SIRT`` with the ``linear``
projector, which is Joseph's method like ours), so a reader can check the
baselines against a reference implementation on the same data.

ASTRA is an optional extra (``pip install xray4d[astra]``, GPL licensed) and is
imported only when one of these methods runs. Without it both methods stay
registered (so the registry and the command line list each once) and refuse
with one line naming the extra: :func:`astra_unavailable_reason` says why.

Geometry (``data-format.md``, last section): every detector row k of every
frame t is one 2D problem. ASTRA's 2D ``parallel`` geometry with detector
spacing 1 and W detectors, on a W x W volume geometry, reproduces our
convention when given the slice f[t, k] as stored (rows y, columns x) and the
angles -theta in radians, without flips. Angles may differ per frame ((T, V)
theta); frames with the same angles share one ASTRA projector.

Differences from the project's methods, by design of ASTRA:

* ASTRA's FBP weights every view by pi / V; :func:`xray4d.conventional.fbp`
  weights each view by its share of the half circle. They agree for evenly
  spread angles (measured 4e-6 relative L2 at 180 angles) and differ for
  uneven sets such as (0, 23.8, 67.5, 112.5) deg.
* SIRT is the same iteration (inverse row and column sums, ``MinConstraint`` 0
  when ``conventional.nonnegative``, ``Relaxation``); measured 8e-6 relative L2
  from ours after 50 iterations. ASTRA runs it slice by slice in rounds of
  iterations, each round restarting from the previous volume (exact for SIRT,
  which keeps no state but the volume), so the time budget is checked between
  rounds; the residual is recorded once per round.
"""
from __future__ import annotations

import math
import os
import time
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..config import ReconstructionConfig
from ..data import FitResult, Reconstruction, Recording
from ..errors import InputError
from ..fields.voxel import FrameVolumeField
from ..projector import Projector
from .conventional import DEFAULT_ITERATIONS, ConventionalMethod, _residual_metric, check_request
from .measurement import MeasuredData
from .registry import MissingExtraError, register_method
from .schedule import normalised_times

__all__ = ["ASTRA_INSTALL_HINT", "astra_unavailable_reason", "import_astra", "astra_fbp",
           "astra_sirt"]

#: what to install for these methods
ASTRA_INSTALL_HINT = "pip install xray4d[astra]"

#: ASTRA's CPU projector used throughout (Joseph's method, like xray4d's projector)
ASTRA_PROJECTOR = "linear"


def astra_unavailable_reason(method: str = "astra") -> str | None:
    """None when astra-toolbox can be imported; else one line naming the missing extra."""
    try:
        import astra  # noqa: F401
    except ImportError as exc:
        return (f"method {method} needs the optional extra astra-toolbox (GPL), which is not "
                f"installed ({exc}): {ASTRA_INSTALL_HINT}")
    return None


def import_astra(method: str = "astra") -> Any:
    """The ``astra`` module; :class:`~xray4d.reconstruct.registry.MissingExtraError` (one line) without it."""
    reason = astra_unavailable_reason(method)
    if reason:
        raise MissingExtraError(reason)
    import astra
    return astra


def _angles_per_frame(angles_deg: np.ndarray, frames: int) -> np.ndarray:
    a = np.asarray(angles_deg, dtype=np.float64)
    if a.ndim == 1:
        a = np.broadcast_to(a, (frames, a.size))
    if a.ndim != 2 or a.shape[0] != frames:
        raise ValueError(f"angles must have shape (V,) or ({frames}, V), got {np.shape(angles_deg)}")
    return a


class _AstraGeometries:
    """ASTRA volume geometry and one projector per distinct row of angles (freed on exit)."""

    def __init__(self, astra: Any, width: int, angles: np.ndarray) -> None:
        self.astra = astra
        self.vol_geom = astra.create_vol_geom(width, width)
        self.width = width
        self._by_key: dict[bytes, tuple[dict, int]] = {}
        self.frame_key = [np.ascontiguousarray(row).tobytes() for row in angles]
        for row, key in zip(angles, self.frame_key):
            if key not in self._by_key:
                pg = astra.create_proj_geom("parallel", 1.0, width, -np.radians(row))
                self._by_key[key] = (pg, astra.create_projector(ASTRA_PROJECTOR, pg, self.vol_geom))

    def of_frame(self, t: int) -> tuple[dict, int]:
        """(projection geometry, projector id) of frame t."""
        return self._by_key[self.frame_key[t]]

    def __enter__(self) -> "_AstraGeometries":
        return self

    def __exit__(self, *exc: object) -> None:
        for _, pid in self._by_key.values():
            self.astra.projector.delete(pid)
        self._by_key.clear()


def _check_projections(projections: np.ndarray) -> np.ndarray:
    p = np.asarray(projections, dtype=np.float32)
    if p.ndim != 4:
        raise ValueError(f"projections must be (T, V, H, W), got shape {p.shape}")
    return p


def astra_fbp(projections: np.ndarray, angles_deg: np.ndarray, window: str = "hann",
              cutoff: float = 1.0) -> np.ndarray:
    """ASTRA CPU filtered back-projection of every frame and detector row.

    Args:
        projections: line integrals (T, V, H, W) in pixel units.
        angles_deg: view angles in degrees, (V,) or (T, V).
        window: ASTRA ``FilterType``: ram-lak, shepp-logan, cosine, hamming or hann
            (the names of :data:`~xray4d.config.FBP_FILTERS`).
        cutoff: ASTRA ``FilterD``, the cut-off as a fraction of Nyquist, in (0, 1].

    Returns:
        volumes f[t, z, y, x], (T, H, W, W) float32 (ASTRA weights each view by pi / V).
    """
    astra = import_astra("astra-fbp")
    p = _check_projections(projections)
    t_n, _, h, w = p.shape
    angles = _angles_per_frame(angles_deg, t_n)
    out = np.zeros((t_n, h, w, w), dtype=np.float32)
    with _AstraGeometries(astra, w, angles) as geoms:
        rid = astra.data2d.create("-vol", geoms.vol_geom, 0.0)
        # one FBP algorithm per projector, reused for every slice: FBP reads its sinogram afresh
        algs: dict[int, tuple[int, int]] = {}
        try:
            for t in range(t_n):
                pg, pid = geoms.of_frame(t)
                if pid not in algs:
                    sid = astra.data2d.create("-sino", pg, 0.0)
                    cfg = astra.astra_dict("FBP")
                    cfg.update(ProjectorId=pid, ProjectionDataId=sid, ReconstructionDataId=rid,
                               option={"FilterType": window, "FilterD": float(cutoff)})
                    algs[pid] = (astra.algorithm.create(cfg), sid)
                aid, sid = algs[pid]
                for k in range(h):
                    astra.data2d.store(sid, np.ascontiguousarray(p[t, :, k, :]))
                    astra.algorithm.run(aid)
                    out[t, k] = astra.data2d.get_shared(rid)
        finally:
            for aid, sid in algs.values():
                astra.algorithm.delete(aid)
                astra.data2d.delete(sid)
            astra.data2d.delete(rid)
    return out


def astra_sirt(projections: np.ndarray, angles_deg: np.ndarray, iterations: int,
               relaxation: float = 1.0, nonnegative: bool = True,
               x0: np.ndarray | None = None, value_max: float | None = None,
               should_continue: Callable[[int, int], int] | None = None,
               on_round: Callable[[int, np.ndarray], None] | None = None,
               rounds: int = 20) -> tuple[np.ndarray, int]:
    """ASTRA CPU SIRT on every frame and detector row, in rounds of iterations.

    Args:
        projections: line integrals (T, V, H, W).
        angles_deg: view angles in degrees, (V,) or (T, V).
        iterations: iterations in all.
        relaxation: ASTRA ``Relaxation``, in (0, 2).
        nonnegative: ASTRA ``MinConstraint`` 0 (iterates kept non-negative).
        x0: starting volumes (T, H, W, W) (default zeros).
        value_max: ASTRA ``MaxConstraint`` (iterates kept <= value_max); None: no upper bound.
        should_continue: called with (iterations done, iterations of the next
            round) before each round; returns how many iterations to run then
            (0 stops). Default: all of them.
        on_round: called with (iterations done, current volumes) after each round.
        rounds: the iterations are run in about this many rounds (checks of
            ``should_continue`` and calls of ``on_round`` in between).

    Returns:
        the volumes (T, H, W, W) float32 and the number of iterations run.
    """
    if not 0 < relaxation < 2:
        raise ValueError(f"relaxation must be in (0, 2), got {relaxation}")
    if iterations < 1:
        raise ValueError(f"iterations must be positive, got {iterations}")
    astra = import_astra("astra-sirt")
    p = _check_projections(projections)
    t_n, _, h, w = p.shape
    angles = _angles_per_frame(angles_deg, t_n)
    x = np.zeros((t_n, h, w, w), dtype=np.float32) if x0 is None else \
        np.array(x0, dtype=np.float32, copy=True).reshape(t_n, h, w, w)
    options: dict[str, Any] = {"Relaxation": float(relaxation)}
    if nonnegative:
        options["MinConstraint"] = 0.0
    if value_max is not None:
        options["MaxConstraint"] = float(value_max)
    chunk = max(1, math.ceil(iterations / max(1, rounds)))
    done = 0
    with _AstraGeometries(astra, w, angles) as geoms:
        while done < iterations:
            n = min(chunk, iterations - done)
            if should_continue is not None:
                n = min(n, int(should_continue(done, n)))
                if n < 1:
                    break
            for t in range(t_n):
                pg, pid = geoms.of_frame(t)
                for k in range(h):
                    # SIRT keeps no state but the volume: restarting from it continues exactly
                    sid = astra.data2d.create("-sino", pg, np.ascontiguousarray(p[t, :, k, :]))
                    rid = astra.data2d.create("-vol", geoms.vol_geom, x[t, k])
                    cfg = astra.astra_dict("SIRT")
                    cfg.update(ProjectorId=pid, ProjectionDataId=sid, ReconstructionDataId=rid,
                               option=options)
                    aid = astra.algorithm.create(cfg)
                    try:
                        astra.algorithm.run(aid, n)
                        x[t, k] = astra.data2d.get_shared(rid)
                    finally:
                        astra.algorithm.delete(aid)
                        astra.data2d.delete([sid, rid])
            done += n
            if on_round is not None:
                on_round(done, x)
    return x, done


# ---------------------------------------------------------------- registered methods

def _run(name: str, recording: Recording, config: ReconstructionConfig, progress: bool):
    astra = import_astra(name)
    start = time.perf_counter()
    cc, tc = config.conventional, config.train
    check_request(name, recording, config)
    budget = tc.time_budget_s
    g = recording.geometry
    data_np = np.asarray(recording.projections, np.float32)
    data = torch.as_tensor(data_np)
    scale = float(data.abs().max()) or 1.0
    projector = Projector(g)       # the project's own, to score residuals alike across methods
    iterations = 1 if name == "astra-fbp" else (cc.iterations or DEFAULT_ITERATIONS["sirt"])
    bar = tqdm(total=iterations, disable=not progress, unit="it", desc=name, dynamic_ncols=True,
               leave=False)
    losses: list[float] = []
    loss_times: list[float] = []
    stopped_by = "iterations"

    def residual(vol: np.ndarray) -> tuple[float, torch.Tensor]:
        with torch.no_grad():
            pred = projector.forward(torch.as_tensor(vol))
        return _residual_metric(pred, data, scale), pred

    if name == "astra-fbp":
        x = astra_fbp(data_np, g.angles_deg, cc.filter, cc.cutoff)
        if cc.nonnegative or cc.value_max is not None:
            np.clip(x, 0 if cc.nonnegative else None, cc.value_max, out=x)
        it = 1
        bar.update(1)
    else:
        per_iter = [0.0]
        round_start = [time.perf_counter()]

        residual_s = [0.0]

        def should_continue(done: int, n: int) -> int:
            nonlocal stopped_by
            if budget is None:
                return n
            if done == 0:
                return 1                         # a first round of one iteration times it
            # the next round, its residual and the final one must fit in what is left
            left = budget - (time.perf_counter() - start) - 2 * residual_s[0]
            fit = int(left / (1.5 * per_iter[0]))
            if fit < n:
                stopped_by = "time budget"
            return max(0, min(n, fit))

        done_before = [0]          # (a disabled tqdm bar does not count)

        def on_round(done: int, vol: np.ndarray) -> None:
            t0 = time.perf_counter()
            per_iter[0] = (t0 - round_start[0]) / max(1, done - done_before[0])
            loss, _ = residual(vol)
            losses.append(loss)
            loss_times.append(time.perf_counter() - start)
            bar.update(done - done_before[0])
            done_before[0] = done
            bar.set_postfix(residual=f"{loss:.3e}", refresh=False)
            round_start[0] = time.perf_counter()
            residual_s[0] = round_start[0] - t0

        x, it = astra_sirt(data_np, g.angles_deg, iterations, cc.relaxation, cc.nonnegative,
                           value_max=cc.value_max, should_continue=should_continue, on_round=on_round)
    bar.close()
    final, pred = residual(x)
    if name == "astra-fbp":
        losses, loss_times = [final], [time.perf_counter() - start]
    wall = time.perf_counter() - start
    cfg = config.to_dict()
    cfg["method"] = name
    cfg["resolved"] = {"iterations_run": it, "stopped_by": stopped_by, "final_residual": final,
                       "backend": f"astra-toolbox {getattr(astra, '__version__', '?')}, CPU, "
                                  f"projector {ASTRA_PROJECTOR}"}
    times = torch.as_tensor(normalised_times(recording.time), dtype=torch.float32)
    recon = Reconstruction(volume=x, time=np.asarray(recording.time, np.float64), method=name,
                           config=cfg, wall_seconds=wall, source=str(recording.path or ""))
    return FitResult(recon, FrameVolumeField(torch.as_tensor(x), times), losses, loss_times, it,
                     stopped_by, pred.float().numpy())


class AstraMethod(ConventionalMethod):
    """A conventional method through the ASTRA Toolbox (the optional ``astra`` extra)."""

    def unavailable_reason(self) -> str | None:
        return astra_unavailable_reason(self.name)

    def check(self, recording: Recording, config: ReconstructionConfig) -> None:
        """As every method's, and refuse detectors that are not ideal (ASTRA's parallel
        geometry has no per-view shift, tilt or magnification)."""
        super().check(recording, config)
        if not recording.geometry.aligned:
            raise InputError(recording.path or "recording", "/geometry",
                             f"{self.name!r} takes ideal detectors only (no shift, tilt or "
                             "magnification); use fbp, sirt or cgls, which honour them")

    def fit(self, data: MeasuredData, config: ReconstructionConfig, *,
            checkpoint_path: str | os.PathLike | None = None, progress: bool = True,
            resume: bool = False) -> FitResult:
        """Run ASTRA on every frame of ``data.recording`` (line integrals)."""
        return _run(self.name, data.recording, config, progress)


@register_method
class AstraFBP(AstraMethod):
    """ASTRA's FBP on every frame and row, with the ``conventional`` options."""

    name = "astra-fbp"
    description = "ASTRA Toolbox CPU FBP per frame and row (cross-check of fbp; needs the astra extra)"


@register_method
class AstraSIRT(AstraMethod):
    """ASTRA's SIRT on every frame and row, with the ``conventional`` options."""

    name = "astra-sirt"
    description = ("ASTRA Toolbox CPU SIRT per frame and row, MinConstraint 0 (cross-check of "
                   "sirt; needs the astra extra)")
