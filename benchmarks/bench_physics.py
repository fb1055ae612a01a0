"""Reconstruction from intensity data: through the propagation model vs ideal line integrals.

The droplet collision in water recorded as intensity (``simulate_droplets_intensity``):
15 keV, 2 um pixels, distance p^2 / lambda = 48.4 mm (one-pixel Fresnel number 1),
Poisson noise at a fluence in photons per pixel (default 1e4: 1 % noise per pixel in
the flat field, about a tenth of the fringe contrast), a 0.5 pixel Gaussian PSF, dark
offset and read noise, 20 flats and 10 darks. Compared, each with X-Hexplane for the
same number of iterations (the ``fast`` preset's schedule, so every fit has converged
as far as its schedule lets it; wall time is reported beside), PSNR of delta against
the truth:

  (a)  propagation model: fit the flat/dark-corrected intensities through line
       integrals -> exit wave -> Fresnel -> PSF -> binning, the field rendered and
       projected on the 2x finer propagation grid (the defaults of
       ``physics.intensity: model``, among them the one-material prior and volume
       conservation; the detector PSF known);
  (e)  the same with beta fitted as well (``physics.beta: fitted``: the field's second
       channel is beta/delta), PSNR of delta and of beta;
  (b)  ideal line integrals of delta with Gaussian noise of 1 % of their peak, the
       project's standard noise level: more than the intensity noise is worth at
       the frequencies phase contrast transfers best (weak-object CTF at N_F = 1:
       sigma_I / (2 k p sin(pi/4)) = 0.4 % of the peak at 1e4 photons), less than
       it is worth at low frequencies;
  (bm) the same ideal line integrals with the model path's one-material priors: the bound
       1.02 delta of water and the material prior at the same weight relative to its
       data term (0.01: the intensity-model preset's 0.3 without its 30x), so that
       (a) is also compared with a line-integral fit that knows as much;
  (bv) the same ideal line integrals with volume conservation (every frame holds the same
       total delta; 0.003: the preset's 0.09 without its 30x), at
       the same weight relative to its data term (without the gain);
  (b0) ideal line integrals without noise, the upper bound;
  (c)  propagation ignored: -log of the corrected intensity taken as attenuation,
       converted to delta by the known delta/beta of water (``--intensity log``);
  (d)  Paganin phase retrieval as preprocessing, then the line-integral fit.

Each seed draws new counting noise (and new line-integral noise for (b)) and seeds the
fit; the table gives every seed and the gap (b) - (a). For (a) and (e) it also reports
how well the fit explains the counts: chi^2 per pixel of the corrected intensities
against the fit's prediction, over the same against the simulator's noise-free
expectation (the truth's prediction). About 1 (or below) means the fit is at the noise:
what still differs from the truth is what these data do not determine.

    python benchmarks/bench_physics.py [--size 32 --frames 10 --iterations 3000
        --seeds 0 1 2 --fluence 1e4 --threads 1 --only a b bm --out benchmarks/results/physics.json]
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from xray4d import physics as ph
from xray4d.api import reconstruct, resolve_config
from xray4d.evaluation.metrics import psnr
from xray4d.preprocess import transmission
from xray4d.reconstruct.regularizers import VALUE_MARGIN
from xray4d.simulate import add_noise, simulate_droplets, simulate_droplets_intensity

#: the one-material prior and volume conservation for line-integral fits: the weights of the
#: intensity-model preset (0.3, 0.09) without its 30x for the intensities' noise floor
LINE_MATERIAL_PRIOR, LINE_VOLUME_CONSERVATION = 0.01, 0.003

CASES = {"a": "propagation model", "e": "propagation model, beta fitted",
         "b": "ideal line integrals, 1 % noise",
         "bm": "ideal line integrals, 1 % noise, one-material priors",
         "bv": "ideal line integrals, 1 % noise, volume conservation",
         "b0": "ideal line integrals, noise-free",
         "c": "-log, propagation ignored", "d": "paganin preprocessing"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--iterations", type=int, default=3000, help="iterations of every fit")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--fluence", type=float, default=1e4, help="photons per pixel")
    ap.add_argument("--energy-kev", type=float, default=15.0)
    ap.add_argument("--pixel-size-m", type=float, default=2e-6)
    ap.add_argument("--noise", type=float, default=0.01,
                    help="(b): Gaussian noise on the ideal line integrals, fraction of their peak")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=None, help=f"subset of {' '.join(CASES)}")
    ap.add_argument("--out", default="benchmarks/results/physics.json")
    ap.add_argument("--save-volumes", default=None, metavar="DIR",
                    help="also save each fit's delta volume and the truth as DIR/seed{S}_{case}.npy"
                         " and DIR/seed{S}_truth.npy (frames, z, y, x), for analysis without a rerun")
    args = ap.parse_args()
    save_dir = Path(args.save_volumes) if args.save_volumes else None
    if save_dir:
        save_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    water = ph.refractive_index("H2O", 1.0, args.energy_kev)
    li_clean = simulate_droplets(size=args.size, frames=args.frames, noise=0.0)

    rows: list[dict] = []
    for seed in args.seeds:
        def record(fluence: float | None):
            return simulate_droplets_intensity(size=args.size, frames=args.frames,
                                               energy_kev=args.energy_kev,
                                               pixel_size_m=args.pixel_size_m, fluence=fluence,
                                               psf_sigma_px=0.5, seed=seed)

        rec = record(args.fluence)
        truth = rec.truth
        if save_dir:
            np.save(save_dir / f"seed{seed}_truth.npy", np.asarray(truth, np.float32))
        # the truth's prediction (noise-free expectation), for the model fits' chi^2
        expected = (transmission(record(None)) if not args.only or {"a", "e"} & set(args.only)
                    else None)
        base = {"train": {"iterations": args.iterations, "time_budget_s": None, "seed": seed},
                "physics": {"psf_sigma_px": 0.5}}
        cfg = resolve_config("fast", base)            # line integrals, -log, Paganin
        model_cfg = resolve_config("fast", base, quantity="intensity")
        fitted_cfg = resolve_config("fast", {**base, "physics": {"psf_sigma_px": 0.5,
                                                                 "beta": "fitted"}},
                                    quantity="intensity")

        def ideal(noise: float, priors: str = ""):
            li = copy.copy(li_clean)
            li.projections = add_noise(li_clean.projections * np.float32(water.delta), noise,
                                       seed=1000 + seed)
            li.truth = truth
            fit_cfg = cfg
            if priors == "material":
                fit_cfg = cfg.updated({"field": {"value_max": VALUE_MARGIN * water.delta},
                                       "regularizers": {"material_prior": LINE_MATERIAL_PRIOR}})
            elif priors == "volume":
                fit_cfg = cfg.updated({"regularizers": {"volume_conservation":
                                                        LINE_VOLUME_CONSERVATION}})
            return reconstruct(li, fit_cfg, progress=False)

        fits = {"a": lambda: reconstruct(rec, model_cfg, progress=False),
                "e": lambda: reconstruct(rec, fitted_cfg, progress=False),
                "b": lambda: ideal(args.noise),
                "bm": lambda: ideal(args.noise, priors="material"),
                "bv": lambda: ideal(args.noise, priors="volume"),
                "b0": lambda: ideal(0.0),
                "c": lambda: reconstruct(rec, cfg.updated({"physics": {"intensity": "log"}}),
                                         progress=False),
                "d": lambda: reconstruct(rec, cfg.updated({"physics": {"intensity": "paganin"}}),
                                         progress=False)}
        for key, fit in fits.items():
            if args.only and key not in args.only:
                continue
            t = time.perf_counter()
            res = fit()
            row = {"seed": seed, "case": key, "name": CASES[key],
                   "psnr_db": psnr(res.reconstruction.volume, truth),
                   "wall_s": time.perf_counter() - t, "iterations": res.iterations}
            if key in ("a", "e"):  # data consistency: the fit's residual over the truth's
                measured = np.asarray(res.measured, np.float64)
                fit_chi2 = np.mean((res.predicted - measured) ** 2)
                row["chi2_fit_over_truth"] = float(fit_chi2 / np.mean((expected - measured) ** 2))
            if key == "e":
                row["psnr_beta_db"] = psnr(res.reconstruction.volume_beta, rec.truth_beta)
            rows.append(row)
            if save_dir:
                np.save(save_dir / f"seed{seed}_{key}.npy",
                        np.asarray(res.reconstruction.volume, np.float32))
            print(f"seed {seed} ({key}) {CASES[key]}: PSNR {row['psnr_db']:.2f} dB"
                  + (f", beta {row['psnr_beta_db']:.2f} dB" if "psnr_beta_db" in row else "")
                  + (f", chi2 fit/truth {row['chi2_fit_over_truth']:.4f}"
                     if "chi2_fit_over_truth" in row else "")
                  + f" ({row['wall_s']:.0f} s, {row['iterations']} iterations)", flush=True)
    distance_m = rec.attrs["propagation_distance_m"]     # the same for every seed
    settings = {"size": args.size, "frames": args.frames, "views": [0.0, 23.8],
                "energy_keV": args.energy_kev, "pixel_size_m": args.pixel_size_m,
                "propagation_distance_m": distance_m,
                "fresnel_number": ph.fresnel_number(args.pixel_size_m, distance_m,
                                                    args.energy_kev),
                "fluence_photons_per_pixel": args.fluence, "psf_sigma_px": 0.5,
                "line_integral_noise": args.noise, "iterations": args.iterations,
                "seeds": args.seeds, "threads": args.threads, "preset": "fast",
                "delta": water.delta, "beta": water.beta, "torch": torch.__version__}
    summary = {}
    for key in CASES:
        vals = [r["psnr_db"] for r in rows if r["case"] == key]
        if vals:
            summary[key] = {"mean_db": float(np.mean(vals)), "min_db": float(np.min(vals)),
                            "max_db": float(np.max(vals))}
    for ref in ("b", "bm", "bv"):
        gaps = [b["psnr_db"] - a["psnr_db"] for a in rows if a["case"] == "a"
                for b in rows if b["case"] == ref and b["seed"] == a["seed"]]
        if gaps:
            summary[f"gap_{ref}_minus_a_db"] = {"per_seed": gaps, "max": float(np.max(gaps))}
            print(f"gap ({ref}) - (a) per seed: {', '.join(f'{g:+.2f}' for g in gaps)} dB")
    out = {"settings": settings, "results": rows, "summary": summary}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
