#!/usr/bin/env python
"""Benchmark of the projector's hot paths on this machine.

Measures, for volumes of 64^3 and 128^3 voxels (H = W), 2 and 4 views and 40 frames:

* the dense operator path (``Projector(..., sparse=False)``): forward over all frames,
  adjoint over all frames, and a training step (forward + autograd backward to the volume);
* the same with the sparse operator path (``sparse=True``);
* the ray-sampled path (``project_volume_rays``, 4 W points per ray), in sampled points
  per second (measured on a few frames, extrapolated to 40);
* peak memory of each case (each case runs in its own process: ``ru_maxrss`` minus the
  resident size after import, and ``torch.cuda.max_memory_allocated`` on CUDA);

and, to justify the dense operator, alternatives for projecting one 64 x 64 x 64 slice
stack (one frame): dense matmul, sparse COO and CSR matmul, and rotating the slices
with ``torch.nn.functional.grid_sample`` then summing along the ray.

Prints Markdown tables and writes JSON to ``benchmarks/results/projector.json``.
Timings are the best over ``--rounds`` runs of the whole suite (other processes may be
using the CPUs) and, within a round, the best of up to ``--repeats`` repetitions.

    python benchmarks/bench_projector.py [--rounds 2] [--device cpu] [--threads N] [--quick]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "projector.json"
FRAMES = 40
MARK = "@@RESULT@@ "


# --------------------------------------------------------------------------- worker side

def _rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc; falls back to ru_maxrss)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return _peak_rss_mb()


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # kilobytes on Linux, bytes on macOS
    return peak / (1024.0 ** 2) if sys.platform == "darwin" else peak / 1024.0


def _sync(device):
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_time(fn, device, repeats: int, budget_s: float = 6.0, min_inner_s: float = 0.2) -> float:
    """Best wall time of ``fn`` in seconds: one warm-up, then up to ``repeats`` timed runs
    (fewer when over ``budget_s``). Fast functions are looped so each run lasts at least
    ``min_inner_s``, and the time per call is reported."""
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    first = time.perf_counter() - t0
    inner = max(1, int(min_inner_s / max(first, 1e-6))) if first < min_inner_s else 1
    best = math.inf
    spent = 0.0
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        _sync(device)
        dt = time.perf_counter() - t0
        best = min(best, dt / inner)
        spent += dt
        if spent > budget_s:
            break
    return best


def _smooth_volume(frames, h, w, dtype, device):
    """A Gaussian blob drifting over the frames (values matter only for accuracy checks)."""
    import torch
    z = torch.arange(h, dtype=dtype, device=device) - (h - 1) / 2
    y = torch.arange(w, dtype=dtype, device=device) - (w - 1) / 2
    out = torch.empty(frames, h, w, w, dtype=dtype, device=device)
    for t in range(frames):
        cx, cy = 0.1 * w * math.cos(t / 7), 0.1 * w * math.sin(t / 7)
        out[t] = torch.exp(-(z[:, None, None] ** 2 / (0.08 * h * h)
                             + (y[None, :, None] - cy) ** 2 / (0.04 * w * w)
                             + (y[None, None, :] - cx) ** 2 / (0.06 * w * w)))
    return out


def _angles(views: int):
    # XMPI-like: a few views spread over 180 degrees, none at the exact 0/90 shortcuts
    return [10.0 + 180.0 * v / views for v in range(views)]


def _case_operator(spec, device, dtype, repeats):
    """Dense or sparse operator path over all frames."""
    import torch
    from xray4d.geometry import Geometry
    from xray4d.projector import Projector

    w, v, frames, sparse = spec["width"], spec["views"], spec["frames"], spec["kind"] == "sparse"
    geom = Geometry.from_angles(_angles(v), frames, w, w)
    vol = _smooth_volume(frames, w, w, dtype, device)
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    proj = Projector(geom, dtype=dtype, device=device, sparse=sparse)
    _sync(device)
    build_s = time.perf_counter() - t0
    op = proj._ops[0]
    op_bytes = sum(o.crow_indices().nbytes + o.col_indices().nbytes + o.values().nbytes
                   for o in (proj._ops[0], proj._ops_t[0])) if sparse \
        else op.numel() * op.element_size()
    with torch.no_grad():
        y = proj.forward(vol)
        t_fwd = _best_time(lambda: proj.forward(vol), device, repeats)
        t_adj = _best_time(lambda: proj.adjoint(y), device, repeats)
    x = vol.clone().requires_grad_(True)
    weights = torch.randn_like(y)

    def step():
        x.grad = None
        (proj.forward(x) * weights).sum().backward()

    t_step = _best_time(step, device, repeats)
    voxels = frames * w ** 3
    return {
        "build_ms": build_s * 1e3, "operator_MB": op_bytes / 2 ** 20,
        "forward_ms": t_fwd * 1e3, "adjoint_ms": t_adj * 1e3, "fwd_bwd_ms": t_step * 1e3,
        "forward_voxels_per_s": voxels / t_fwd, "fwd_bwd_voxels_per_s": voxels / t_step,
        "rss_after_setup_MB": rss0,
    }


def _case_ray(spec, device, dtype, repeats):
    """Ray-sampled path, a few frames, extrapolated to ``frames``."""
    import torch
    from xray4d.geometry import Geometry
    from xray4d.projector import project_volume_rays

    w, v, frames = spec["width"], spec["views"], spec["frames"]
    n_samples = 4 * w
    geom = Geometry.from_angles(_angles(v), frames, w, w)
    vol = _smooth_volume(1, w, w, dtype, device)[0]
    rss0 = _rss_mb()
    with torch.no_grad():
        t_fwd = _best_time(lambda: project_volume_rays(vol, geom, 0, n_samples), device,
                           repeats, budget_s=4.0)
    x = vol.clone().requires_grad_(True)

    def step():
        x.grad = None
        project_volume_rays(x, geom, 0, n_samples).sum().backward()

    t_step = _best_time(step, device, max(1, repeats - 1), budget_s=4.0)
    points = v * w * w * n_samples          # sampled points of one frame (inside or not)
    return {
        "n_samples": n_samples, "frame_forward_ms": t_fwd * 1e3,
        "forward_ms": t_fwd * frames * 1e3, "fwd_bwd_ms": t_step * frames * 1e3,
        "forward_points_per_s": points / t_fwd, "fwd_bwd_points_per_s": points / t_step,
        "forward_voxels_per_s": w ** 3 / t_fwd, "rss_after_setup_MB": rss0,
    }


def _case_alternatives(spec, device, dtype, repeats):
    """One 64-slice stack of 64 x 64 (one frame) at ``views`` angles, four ways."""
    import torch
    import torch.nn.functional as F
    from xray4d.geometry import Geometry
    from xray4d.projector import Projector

    w, v = spec["width"], spec["views"]
    h = w
    angles = _angles(v)
    geom = Geometry.from_angles(angles, 1, h, w)
    vol = _smooth_volume(1, h, w, dtype, device)
    dense_op = Projector(geom, dtype=dtype, device=device, sparse=False)._ops[0]   # (V*W, W*W)
    csr = Projector(geom, dtype=dtype, device=device, sparse=True)._ops[0]
    coo = csr.to_sparse_coo().coalesce()
    # grid_sample: slices as channels (1, Z, Y, X), one sampling grid per view over
    # (s, u) with s stepping one pixel; the contract's ray x = u c - s sin, y = u sin + s c
    coord = torch.arange(w, dtype=torch.float64) - (w - 1) / 2
    s_, u_ = torch.meshgrid(coord, coord, indexing="ij")
    grids = []
    for a in angles:
        th = math.radians(a)
        gx = u_ * math.cos(th) - s_ * math.sin(th)
        gy = u_ * math.sin(th) + s_ * math.cos(th)
        grids.append(torch.stack([gx, gy], dim=-1) / ((w - 1) / 2))
    grid = torch.stack(grids).to(dtype=dtype, device=device)                       # (V, S, U, 2)

    def dense(x):
        return x.reshape(h, -1) @ dense_op.t()

    # as Projector does: the dense operand contiguous (much faster than a transposed view)
    def sparse_coo(x):
        return torch.sparse.mm(coo, x.reshape(h, -1).t().contiguous()).t()

    def sparse_csr(x):
        return (csr @ x.reshape(h, -1).t().contiguous()).t()

    def rotate(x):
        img = x.reshape(1, h, w, w).expand(v, h, w, w)
        return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=True).sum(dim=2)                       # (V, Z, U)

    ref = dense(vol).reshape(h, v, w).permute(1, 0, 2)
    out = {}
    for name, fn in (("dense matmul", dense), ("sparse COO mm", sparse_coo),
                     ("sparse CSR mm", sparse_csr), ("grid_sample rotate+sum", rotate)):
        with torch.no_grad():
            res = fn(vol)
            res = res if name.startswith("grid") else res.reshape(h, v, w).permute(1, 0, 2)
            err = float((res - ref).norm() / ref.norm())
            t_fwd = _best_time(lambda: fn(vol), device, repeats)
        x = vol.clone().requires_grad_(True)

        def step():
            x.grad = None
            fn(x).sum().backward()

        try:
            t_step = _best_time(step, device, repeats)
        except RuntimeError as exc:           # a backward a sparse layout does not support
            t_step = float("nan")
            print(f"{name}: backward failed: {exc}", file=sys.stderr)
        out[name] = {"forward_ms": t_fwd * 1e3, "fwd_bwd_ms": t_step * 1e3,
                     "rel_diff_vs_dense": err}
    return {"methods": out, "rss_after_setup_MB": _rss_mb()}


def worker(spec: dict) -> dict:
    import torch
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    dtype = getattr(torch, spec["dtype"])
    rss_import = _rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    fn = {"dense": _case_operator, "sparse": _case_operator, "ray": _case_ray,
          "alternatives": _case_alternatives}[spec["kind"]]
    res = fn(spec, device, dtype, spec["repeats"])
    res["rss_after_import_MB"] = rss_import
    res["peak_rss_MB"] = _peak_rss_mb()
    res["peak_rss_over_import_MB"] = res["peak_rss_MB"] - rss_import
    if device.type == "cuda":
        res["cuda_peak_allocated_MB"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    res["threads"] = torch.get_num_threads()
    return res


# --------------------------------------------------------------------------- driver side

def _run_case(spec: dict) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"case {spec} failed:\n{proc.stderr}")
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    raise RuntimeError(f"case {spec} printed no result:\n{proc.stdout}\n{proc.stderr}")


def _merge_best(old: dict | None, new: dict) -> dict:
    """Combine two rounds of one case: least time, highest rate, largest memory."""
    if old is None:
        return new
    out = dict(new)
    for k, val in new.items():
        if k.endswith("_ms"):
            out[k] = min(val, old[k])
        elif k.endswith("_per_s"):
            out[k] = max(val, old[k])
        elif k.endswith("_MB"):
            out[k] = max(val, old[k])
        elif k == "methods":
            out[k] = {m: {kk: (min(vv, old[k][m][kk]) if kk.endswith("_ms") else vv)
                          for kk, vv in d.items()} for m, d in val.items()}
    return out


def _machine() -> dict:
    import torch
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "loadavg_at_start": os.getloadavg() if hasattr(os, "getloadavg") else None}


def _fmt_rate(x: float) -> str:
    return f"{x / 1e6:.1f} M" if x < 1e9 else f"{x / 1e9:.2f} G"


def markdown(report: dict) -> str:
    r = report["results"]
    lines = [f"Device `{report['config']['device']}`, {report['config']['dtype']}, "
             f"{report['machine']['cpu']} ({report['machine']['cores']} cores, "
             f"{r['operator'][0]['threads'] if r['operator'] else '?'} torch threads), "
             f"torch {report['machine']['torch']}; best of {report['config']['rounds']} rounds; "
             f"{FRAMES} frames.", ""]
    lines += ["### Operator paths, all frames per pass", "",
              "| path | volume | views | build ms | operator MiB | forward ms | adjoint ms "
              "| fwd+bwd ms | forward voxels/s | fwd+bwd voxels/s | peak RSS over import MiB |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in r["operator"]:
        lines.append(f"| {c['kind']} | {c['width']}^3 | {c['views']} | {c['build_ms']:.0f} "
                     f"| {c['operator_MB']:.1f} | {c['forward_ms']:.1f} | {c['adjoint_ms']:.1f} "
                     f"| {c['fwd_bwd_ms']:.1f} | {_fmt_rate(c['forward_voxels_per_s'])} "
                     f"| {_fmt_rate(c['fwd_bwd_voxels_per_s'])} | {c['peak_rss_over_import_MB']:.0f} |")
    lines += ["", "### Ray-sampled path (`project_volume_rays`, 4 W points per ray)", "",
              "| volume | views | ms per frame | ms per 40 frames (extrapolated) | fwd+bwd ms per 40 frames "
              "| points/s | fwd+bwd points/s | peak RSS over import MiB |",
              "|---|---|---|---|---|---|---|---|"]
    for c in r["ray"]:
        lines.append(f"| {c['width']}^3 | {c['views']} | {c['frame_forward_ms']:.1f} "
                     f"| {c['forward_ms']:.0f} | {c['fwd_bwd_ms']:.0f} "
                     f"| {_fmt_rate(c['forward_points_per_s'])} | {_fmt_rate(c['fwd_bwd_points_per_s'])} "
                     f"| {c['peak_rss_over_import_MB']:.0f} |")
    lines += ["", "### One 64-slice stack of 64 x 64 (one frame): alternatives", "",
              "| method | views | forward ms | fwd+bwd ms | rel. L2 diff vs dense |",
              "|---|---|---|---|---|"]
    for c in r["alternatives"]:
        for name, m in c["methods"].items():
            lines.append(f"| {name} | {c['views']} | {m['forward_ms']:.3f} | {m['fwd_bwd_ms']:.3f} "
                         f"| {m['rel_diff_vs_dense']:.1e} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=2, help="runs of the whole suite; best kept")
    ap.add_argument("--repeats", type=int, default=3, help="timed repetitions per measurement")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: default)")
    ap.add_argument("--quick", action="store_true", help="64^3 only, one round")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    if args.worker:
        print(MARK + json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0

    widths = [64] if args.quick else [64, 128]
    rounds = 1 if args.quick else args.rounds
    base = {"device": args.device, "dtype": args.dtype, "threads": args.threads,
            "repeats": args.repeats, "frames": FRAMES}
    cases = [dict(base, kind=k, width=w, views=v) for k in ("dense", "sparse")
             for w in widths for v in (2, 4)]
    cases += [dict(base, kind="ray", width=w, views=v) for w in widths for v in (2, 4)]
    cases += [dict(base, kind="alternatives", width=64, views=v) for v in (1, 4)]

    best: dict[int, dict] = {}
    t_start = time.perf_counter()
    for rnd in range(rounds):
        for i, spec in enumerate(cases):
            t0 = time.perf_counter()
            res = _run_case(spec)
            best[i] = _merge_best(best.get(i), res)
            print(f"round {rnd + 1}/{rounds}: {spec['kind']} {spec['width']}^3 V={spec['views']} "
                  f"done in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)

    results = {"operator": [], "ray": [], "alternatives": []}
    for i, spec in enumerate(cases):
        entry = dict({k: spec[k] for k in ("kind", "width", "views", "frames")}, **best[i])
        group = "operator" if spec["kind"] in ("dense", "sparse") else spec["kind"]
        results[group].append(entry)
    report = {
        "machine": _machine(),
        "config": {"device": args.device, "dtype": args.dtype, "rounds": rounds,
                   "repeats": args.repeats, "threads": args.threads or None, "frames": FRAMES,
                   "angles": "10 + 180 v / V degrees", "volume": "H = W, drifting Gaussian blob"},
        "results": results,
        "wall_s": time.perf_counter() - t_start,
    }
    md = markdown(report)
    print(md)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
