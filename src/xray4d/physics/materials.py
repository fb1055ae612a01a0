"""Complex refractive index n = 1 - delta + i beta of materials, from xraydb.

Units: photon energy in keV, lengths in metres, density in g/cm^3 (the unit of
the tables). ``delta`` comes from the Chantler anomalous scattering factors f1
(``xraydb.xray_delta_beta``); ``beta`` is ``mu lambda / (4 pi)`` with the linear
attenuation coefficient ``mu`` of the Elam tables (``xraydb.material_mu``), by
default the *total* cross-section (photoabsorption + Compton + Rayleigh), which
is what removes photons from a transmitted beam: for water it matches the NIST
(Hubbell & Seltzer) mass attenuation coefficients, 5.33 cm^2/g at 10 keV and
0.810 cm^2/g at 20 keV. ``attenuation="photo"`` gives the photoabsorption part
only (the beta of CXRO/Henke tables).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["PLANCK_HC_KEV_M", "RefractiveIndex", "wavelength_m", "wavenumber_per_m",
           "refractive_index", "WATER_FORMULA", "WATER_DENSITY_G_CM3"]

#: h c in keV metres (CODATA 2018: 1.239841984 eV um)
PLANCK_HC_KEV_M = 1.239841984e-9
WATER_FORMULA = "H2O"
#: density of water in g/cm^3 (4 degC; 0.997 at 25 degC)
WATER_DENSITY_G_CM3 = 1.0


def _check_energy(energy_kev: float) -> float:
    e = float(energy_kev)
    if not (math.isfinite(e) and e > 0):
        raise ValueError(f"energy must be a finite number of keV > 0, got {energy_kev!r}")
    return e


def wavelength_m(energy_kev: float) -> float:
    """Photon wavelength in metres at an energy in keV, ``lambda = h c / E``."""
    return PLANCK_HC_KEV_M / _check_energy(energy_kev)


def wavenumber_per_m(energy_kev: float) -> float:
    """Wavenumber ``k = 2 pi / lambda`` in radians per metre at an energy in keV."""
    return 2.0 * math.pi / wavelength_m(energy_kev)


@dataclass(frozen=True)
class RefractiveIndex:
    """``n = 1 - delta + i beta`` of a material at one photon energy.

    Attributes:
        formula: chemical formula, e.g. ``H2O``.
        density_g_cm3: mass density in g/cm^3.
        energy_kev: photon energy in keV.
        delta: refractive index decrement (dimensionless).
        beta: absorption index (dimensionless).
    """

    formula: str
    density_g_cm3: float
    energy_kev: float
    delta: float
    beta: float

    @property
    def mu_per_m(self) -> float:
        """Linear attenuation coefficient of the intensity, ``2 k beta``, per metre."""
        return 2.0 * wavenumber_per_m(self.energy_kev) * self.beta

    @property
    def delta_over_beta(self) -> float:
        """The ratio delta / beta (Paganin's single-material parameter)."""
        return self.delta / self.beta


def refractive_index(formula: str, density_g_cm3: float, energy_kev: float,
                     attenuation: str = "total") -> RefractiveIndex:
    """delta and beta of a compound from its formula, density and the photon energy.

    Args:
        formula: chemical formula (``H2O``, ``C2H6O``, ``SiO2``, ...).
        density_g_cm3: mass density in g/cm^3, > 0.
        energy_kev: photon energy in keV, > 0 (the tables cover about 0.03 to 1000 keV).
        attenuation: ``total`` (photoabsorption + Compton + Rayleigh, the default)
            or ``photo`` (photoabsorption only) for beta.

    Returns:
        a :class:`RefractiveIndex`.
    """
    import xraydb

    e = _check_energy(energy_kev)
    rho = float(density_g_cm3)
    if not (math.isfinite(rho) and rho > 0):
        raise ValueError(f"density must be a finite number of g/cm^3 > 0, got {density_g_cm3!r}")
    if attenuation not in ("total", "photo"):
        raise ValueError(f"attenuation must be 'total' or 'photo', got {attenuation!r}")
    try:
        delta, _, _ = xraydb.xray_delta_beta(formula, rho, e * 1e3)
        mu_per_cm = xraydb.material_mu(formula, e * 1e3, density=rho, kind=attenuation)
    except Exception as exc:  # xraydb raises several types for an unknown formula
        raise ValueError(f"cannot compute the refractive index of {formula!r}: {exc}") from None
    beta = float(mu_per_cm) * 100.0 * wavelength_m(e) / (4.0 * math.pi)
    return RefractiveIndex(str(formula), rho, e, float(delta), beta)
