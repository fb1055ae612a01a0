"""Intensity recordings of the droplet collision: exit waves, propagation, detector counts.

The liquid's projected thickness (the line integrals of its occupancy that
:func:`~.droplets.simulate_droplets` renders, on a detector ``oversample``
times finer) times its refractive index decrements gives the exit wave in the
projection approximation; Fresnel propagation, a Gaussian PSF, averaging over
each recorded pixel and photon counting make the raw counts, with flat and
dark fields from the same detector (:mod:`xray4d.physics`).
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Sequence

import numpy as np
import torch

from .. import physics
from ..data import Recording
from ..geometry import Geometry
from .droplet_kinematics import DropletCollision
from .droplets import droplet_truth, simulate_droplets
from .sampling import block_mean, check_render_args

__all__ = ["fresnel_unity_distance_m", "droplet_exit_waves", "simulate_droplets_intensity"]


def fresnel_unity_distance_m(pixel_size_m: float, energy_kev: float) -> float:
    """Sample-detector distance in metres at which one pixel has Fresnel number 1, ``p^2 / lambda``."""
    return pixel_size_m ** 2 / physics.wavelength_m(energy_kev)


def droplet_exit_waves(params: DropletCollision | None = None, size: int = 64, frames: int = 40,
                       angles_deg: Sequence[float] | np.ndarray = (0.0, 23.8), *,
                       energy_kev: float = 15.0, pixel_size_m: float = 2e-6,
                       material: str = "H2O", density_g_cm3: float = 1.0, oversample: int = 2,
                       frame_interval_s: float = 1.0
                       ) -> tuple[torch.Tensor, physics.RefractiveIndex, Recording]:
    """Exit waves of a droplet collision in a liquid, on a detector ``oversample`` times finer.

    The projected thickness of the liquid (line integrals of its occupancy, as
    :func:`~.droplets.simulate_droplets` renders them, times the fine pixel size
    ``pixel_size_m / oversample``) gives the projected phase ``-k delta t`` and
    amplitude ``exp(-k beta t)`` (projection approximation).

    Returns:
        (waves, index, fine): complex128 tensor (T, V, size*oversample, size*oversample),
        the liquid's :class:`~xray4d.physics.RefractiveIndex`, and the
        fine-detector line-integral :class:`~xray4d.data.Recording` of the occupancy.
    """
    params = DropletCollision() if params is None else params
    check_render_args(size, oversample)
    if not (pixel_size_m > 0 and math.isfinite(pixel_size_m)):
        raise ValueError(f"pixel_size_m must be > 0, got {pixel_size_m}")
    index = physics.refractive_index(material, density_g_cm3, energy_kev)
    fine = simulate_droplets(dataclasses.replace(params, value=1.0), size=size * oversample,
                             frames=frames, angles_deg=angles_deg, noise=0.0, oversample=1,
                             frame_interval_s=frame_interval_s)
    thick_m = torch.as_tensor(fine.projections, dtype=torch.float64) * (pixel_size_m / oversample)
    waves = physics.exit_wave(index.delta * thick_m, index.beta * thick_m, energy_kev)
    return waves, index, fine


def simulate_droplets_intensity(params: DropletCollision | None = None, size: int = 64,
                                frames: int = 40,
                                angles_deg: Sequence[float] | np.ndarray = (0.0, 23.8), *,
                                energy_kev: float = 15.0, pixel_size_m: float = 2e-6,
                                distance_m: float | None = None, fluence: float | None = 1e4,
                                psf_sigma_px: float = 0.5, material: str = "H2O",
                                density_g_cm3: float = 1.0, dark_counts: float = 10.0,
                                readout_sigma: float = 2.0, n_flats: int = 20, n_darks: int = 10,
                                seed: int = 0, oversample: int = 2,
                                frame_interval_s: float = 1.0) -> Recording:
    """Simulate an ``intensity`` recording of a droplet collision in a liquid (default water).

    The chain, per frame and view, on a detector ``oversample`` times finer
    than the recorded one: line integrals of the liquid's occupancy (as in
    :func:`~.droplets.simulate_droplets`), times the liquid's delta and beta at
    ``energy_kev`` (xraydb), the exit wave, Fresnel propagation over
    ``distance_m``, intensity, a Gaussian PSF, averaging over each recorded
    pixel, then counting: ``Poisson(fluence * I) + dark_counts + Normal(0,
    readout_sigma)``. Flat fields (``n_flats``, no sample) and dark fields
    (``n_darks``, no beam) get the same detector.

    The default distance gives one pixel Fresnel number ``p^2 / (lambda z) = 1``
    (15 keV, 2 um pixels: lambda = 82.7 pm, z = 48.4 mm): edge fringes about a
    pixel wide, well into the near field, as in MHz XMPI of droplets.

    Args:
        params: the collision; its ``value`` is ignored (the liquid is ``material``).
        size, frames, angles_deg, oversample, frame_interval_s: as :func:`~.droplets.simulate_droplets`.
        energy_kev: photon energy in keV.
        pixel_size_m: detector pixel (= voxel) size in metres.
        distance_m: sample-detector distance in metres; default Fresnel number 1.
        fluence: photons per pixel in the flat field; None for noise-free expectations
            (counts in units of the flat field, no read noise).
        psf_sigma_px: standard deviation of the detector PSF in recorded pixels.
        material, density_g_cm3: the liquid (chemical formula, g/cm^3).
        dark_counts, readout_sigma: detector offset and Gaussian read noise, counts.
        n_flats, n_darks: number of flat and dark fields.
        seed: seed of all noise.

    Returns:
        a :class:`~xray4d.data.Recording` with quantity ``intensity`` (raw counts
        (T, V, size, size)), ``white`` (n_flats, V, H, W), ``dark`` (n_darks, V, H, W),
        ``truth`` = delta and ``truth_beta`` = beta of the voxel-averaged liquid,
        and root attributes ``energy_keV``, ``pixel_size_m``, ``propagation_distance_m``.
    """
    params = DropletCollision() if params is None else params
    if distance_m is None:
        distance_m = fresnel_unity_distance_m(pixel_size_m, energy_kev)
    if not (distance_m >= 0 and math.isfinite(distance_m)):
        raise ValueError(f"distance_m must be a finite number >= 0, got {distance_m}")
    if n_flats < 1 or n_darks < 0:
        raise ValueError(f"need n_flats >= 1 and n_darks >= 0, got {n_flats}, {n_darks}")
    waves, index, fine = droplet_exit_waves(params, size, frames, angles_deg,
                                            energy_kev=energy_kev, pixel_size_m=pixel_size_m,
                                            material=material, density_g_cm3=density_g_cm3,
                                            oversample=oversample,
                                            frame_interval_s=frame_interval_s)
    if fluence is None:  # noise-free expectations, in units of the flat field
        readout_sigma = 0.0
    truth = droplet_truth(dataclasses.replace(params, value=1.0), size=size, frames=frames,
                          oversample=oversample)
    detector = {"fluence": fluence, "dark_counts": dark_counts, "readout_sigma": readout_sigma}
    # one generator for all counts, drawn in this order: frames, flat fields, dark fields
    gen = torch.Generator().manual_seed(int(seed))
    data = _record_frames(waves, size, oversample, distance_m=distance_m,
                          fine_pixel_m=pixel_size_m / oversample, energy_kev=energy_kev,
                          psf_sigma_px=psf_sigma_px, generator=gen, **detector)
    white, dark = _flat_and_dark_fields(n_flats, n_darks, (fine.views, size, size),
                                        generator=gen, **detector)
    description = json.loads(fine.attrs["description"])
    description.update({
        "size": int(size), "oversample": int(oversample), "noise": None, "seed": int(seed),
        "quantity": "intensity", "material": material, "density_g_cm3": float(density_g_cm3),
        "delta": index.delta, "beta": index.beta, "fluence_photons_per_pixel": fluence,
        "psf_sigma_px": float(psf_sigma_px), "dark_counts": float(dark_counts),
        "readout_sigma_counts": float(readout_sigma),
        "fresnel_number": physics.fresnel_number(pixel_size_m, distance_m, energy_kev),
        "truth": "volume = delta, volume_beta = beta of the voxel-averaged liquid"})
    attrs: dict[str, Any] = {"description": json.dumps(description),
                             "energy_keV": float(energy_kev), "pixel_size_m": float(pixel_size_m),
                             "propagation_distance_m": float(distance_m)}
    geometry = Geometry.from_angles(fine.geometry.angles_deg, frames, size, size, pixel_size_m)
    return Recording(data, geometry, "intensity", time=np.asarray(fine.time, np.float64),
                     white=white, dark=dark, truth=truth * np.float32(index.delta),
                     truth_beta=truth * np.float32(index.beta), attrs=attrs)


def _record_frames(waves: torch.Tensor, size: int, oversample: int, *, distance_m: float,
                   fine_pixel_m: float, energy_kev: float, psf_sigma_px: float,
                   fluence: float | None, dark_counts: float, readout_sigma: float,
                   generator: torch.Generator) -> np.ndarray:
    """Raw counts (T, V, size, size) float32 of the exit waves (T, V, fine, fine): Fresnel
    propagation over ``distance_m`` (none at 0), intensity, the PSF (``psf_sigma_px`` in
    recorded pixels), the mean over each recorded pixel, then counting."""
    frames, views = waves.shape[0], waves.shape[1]
    data = np.zeros((frames, views, size, size), dtype=np.float32)
    with torch.no_grad():
        for i in range(frames):
            wave = waves[i]
            if distance_m > 0:
                wave = physics.fresnel_propagate(wave, distance_m, fine_pixel_m, energy_kev)
            img = physics.gaussian_psf(physics.intensity(wave), psf_sigma_px * oversample)
            img = block_mean(img, oversample, (1, 2))
            data[i] = physics.record_counts(img, fluence, dark_counts=dark_counts,
                                            readout_sigma=readout_sigma, generator=generator
                                            ).float().numpy()
    return data


def _flat_and_dark_fields(n_flats: int, n_darks: int, shape: tuple[int, int, int], *,
                          fluence: float | None, dark_counts: float, readout_sigma: float,
                          generator: torch.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """Flat fields (n_flats, V, H, W): the beam without sample; dark fields (n_darks, V, H,
    W): no beam (None when ``n_darks`` is 0); float32 counts of the same detector."""
    with torch.no_grad():
        ones = torch.ones((n_flats, *shape), dtype=torch.float64)
        white = physics.record_counts(ones, fluence, dark_counts=dark_counts,
                                      readout_sigma=readout_sigma, generator=generator
                                      ).float().numpy()
        dark = None
        if n_darks:
            dark = physics.record_counts(torch.zeros((n_darks, *shape), dtype=torch.float64),
                                         None, dark_counts=dark_counts,
                                         readout_sigma=readout_sigma, generator=generator
                                         ).float().numpy()
    return white, dark
