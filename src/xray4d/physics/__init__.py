"""X-ray physics: refractive index of materials, projection optics, Fresnel propagation,
detector model, flat/dark correction and phase retrieval.

Pure functions on tensors, differentiable, batched over leading dimensions,
the same code on CPU and CUDA. Units: energies in keV, lengths in metres
(``_px`` in detector pixels), phases in radians.
"""
from .detector import flat_dark_correct, gaussian_kernel_1d, gaussian_psf, minus_log, record_counts
from .materials import (PLANCK_HC_KEV_M, WATER_DENSITY_G_CM3, WATER_FORMULA, RefractiveIndex,
                        refractive_index, wavelength_m, wavenumber_per_m)
from .propagation import (crop_image, exit_wave, fresnel_number, fresnel_propagate,
                          fresnel_transfer_function, intensity, pad_image, projected_attenuation,
                          projected_phase, propagated_intensity)
from .retrieval import paganin_filter, paganin_thickness

__all__ = ["flat_dark_correct", "gaussian_kernel_1d", "gaussian_psf", "minus_log", "record_counts",
           "PLANCK_HC_KEV_M", "WATER_DENSITY_G_CM3", "WATER_FORMULA", "RefractiveIndex",
           "refractive_index", "wavelength_m", "wavenumber_per_m", "crop_image", "exit_wave",
           "fresnel_number", "fresnel_propagate", "fresnel_transfer_function", "intensity",
           "pad_image", "projected_attenuation", "projected_phase", "propagated_intensity",
           "paganin_filter", "paganin_thickness"]
