"""Reconstruction from intensity data: through the propagation model vs ideal line integrals.

The droplet collision in water recorded as intensity (``simulate_droplets_intensity``):
15 keV, 2 um pixels, distance p^2 / lambda = 48.4 mm (one-pixel Fresnel number 1),
Poisson noise at a fluence in photons per pixel (default 1e4: 1 % noise per pixel in
the flat field, about a tenth of the fringe contrast), a 0.5 pixel Gaussian PSF, dark
offset and read noise, 20 flats and 10 darks. Compared, each with X-Hexplane at the
same wall-time budget, PSNR of delta against the truth:

  (a)  propagation model: fit the flat/dark-corrected intensities through line
       integrals -> exit wave -> Fresnel -> PSF -> binning, the field rendered and
       projected on the 2x finer propagation grid (``physics.fine_render``);
  (a0) the same with the field rendered on the detector grid and its projections
       upsampled before propagation (``physics.fine_render: false``);
  (b)  ideal line integrals of delta with Gaussian noise of 1 % of their peak, the
       project's standard noise level: more than the intensity noise is worth at
       the frequencies phase contrast transfers best (weak-object CTF at N_F = 1:
       sigma_I / (2 k p sin(pi/4)) = 0.4 % of the peak at 1e4 photons), less than
       it is worth at low frequencies;
  (b0) ideal line integrals without noise, the upper bound;
  (c)  propagation ignored: -log of the corrected intensity taken as attenuation,
       converted to delta by the known delta/beta of water (``--intensity log``);
  (d)  Paganin phase retrieval as preprocessing, then the line-integral fit.

Every fit uses the ``fast`` preset with weight averaging (``train.ema_decay``); (a)
adds the settings that keep the intensity fit from following the counting noise.

    python benchmarks/bench_physics.py [--size 32 --frames 10 --budget 30 --fluence 1e4
                                        --threads 1 --only a b --out benchmarks/results/physics.json]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from xray4d import physics as ph
from xray4d.api import reconstruct, resolve_config
from xray4d.metrics import psnr
from xray4d.simulate import add_noise, simulate_droplets, simulate_droplets_intensity

#: overrides of every fit (line integrals and intensities)
COMMON = {"train": {"ema_decay": 0.999}}
#: overrides of the intensity fit: the field starts at 0.3 of its bound (the delta of
#: water), stronger plane TV and temporal smoothness (the fringe contrast is only ~10x
#: the counting noise at 1e4 photons), the detector PSF known
INTENSITY = {"field": {"init_value": 0.3},
             "regularizers": {"plane_tv": 3e-3, "temporal_smoothness": 1e-3},
             "physics": {"intensity": "model", "psf_sigma_px": 0.5}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--budget", type=float, default=30.0, help="seconds per reconstruction")
    ap.add_argument("--fluence", type=float, default=1e4, help="photons per pixel")
    ap.add_argument("--energy-kev", type=float, default=15.0)
    ap.add_argument("--pixel-size-m", type=float, default=2e-6)
    ap.add_argument("--noise", type=float, default=0.01,
                    help="(b): Gaussian noise on the ideal line integrals, fraction of their peak")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=None, help="subset of a a0 b b0 c d")
    ap.add_argument("--out", default="benchmarks/results/physics.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    rec = simulate_droplets_intensity(size=args.size, frames=args.frames,
                                      energy_kev=args.energy_kev, pixel_size_m=args.pixel_size_m,
                                      fluence=args.fluence, psf_sigma_px=0.5, seed=0)
    sim_s = time.perf_counter() - t0
    water = ph.refractive_index("H2O", 1.0, args.energy_kev)
    truth = rec.truth
    nf = ph.fresnel_number(args.pixel_size_m, rec.attrs["propagation_distance_m"], args.energy_kev)
    base = {"train": {"time_budget_s": args.budget, "iterations": None}}
    cfg = resolve_config("fast", base).updated(COMMON)
    cfg_a = cfg.updated(INTENSITY)

    results: dict[str, dict] = {}

    def run(key: str, name: str, fn) -> None:
        if args.only and key not in args.only:
            return
        t = time.perf_counter()
        res = fn()
        results[f"{key} {name}"] = {"psnr_db": psnr(res.reconstruction.volume, truth),
                                    "wall_s": time.perf_counter() - t,
                                    "iterations": res.iterations}
        r = results[f"{key} {name}"]
        print(f"{key} {name}: PSNR {r['psnr_db']:.2f} dB ({r['wall_s']:.0f} s, "
              f"{r['iterations']} iterations)", flush=True)

    def ideal(noise: float):
        li = simulate_droplets(size=args.size, frames=args.frames, noise=0.0)
        li.projections = add_noise(li.projections * np.float32(water.delta), noise, seed=1)
        li.truth = truth
        return reconstruct(li, cfg, progress=False)

    run("a", "propagation model", lambda: reconstruct(rec, cfg_a, progress=False))
    run("a0", "propagation model, projections upsampled",
        lambda: reconstruct(rec, cfg_a.updated({"physics": {"fine_render": False}}), progress=False))
    run("b", f"ideal line integrals, {args.noise:g} noise", lambda: ideal(args.noise))
    run("b0", "ideal line integrals, noise-free", lambda: ideal(0.0))
    run("c", "-log, propagation ignored",
        lambda: reconstruct(rec, cfg.updated({"physics": {"intensity": "log"}}), progress=False))
    run("d", "paganin preprocessing",
        lambda: reconstruct(rec, cfg.updated({"physics": {"intensity": "paganin"}}), progress=False))

    out = {"settings": {"size": args.size, "frames": args.frames, "views": [0.0, 23.8],
                        "energy_keV": args.energy_kev, "pixel_size_m": args.pixel_size_m,
                        "propagation_distance_m": rec.attrs["propagation_distance_m"],
                        "fresnel_number": nf, "fluence_photons_per_pixel": args.fluence,
                        "psf_sigma_px": 0.5, "line_integral_noise": args.noise,
                        "budget_s": args.budget, "threads": args.threads, "preset": "fast",
                        "overrides_all": COMMON, "overrides_intensity_model": INTENSITY,
                        "delta": water.delta, "beta": water.beta, "simulate_s": sim_s},
           "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["settings"]))


if __name__ == "__main__":
    main()
