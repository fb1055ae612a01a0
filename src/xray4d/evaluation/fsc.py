"""Fourier shell correlation (FSC) of two 3D volumes, its thresholds and the resolution.

Two reconstructions of the same object from independent data (half-data
reconstructions) agree where the data determine the object and disagree where noise
or missing data rule: their correlation per shell of spatial frequency falls with the
frequency, and the frequency where it falls below a threshold is a resolution that
needs no ground truth (cryo-electron microscopy's "gold standard").

For volumes ``a`` and ``b`` with Fourier transforms ``F`` and ``G``, on the shell
``k`` (the frequencies ``|q|`` within half a shell width of ``k / N``):

    FSC(k) = Re sum_k F G* / sqrt(sum_k |F|^2 sum_k |G|^2)

with ``q`` in cycles per voxel (the Nyquist frequency is 0.5), ``N`` the smallest side
of the volume, and shells 0 .. N/2. The thresholds:

* ``1/7`` (0.143): Rosenthal & Henderson (2003), for half-data reconstructions;
* half-bit: van Heel & Schatz (2005), J. Struct. Biol. 151, 250, eq. 17, with ``n`` the
  number of Fourier voxels in the shell (of the full transform)::

      T(n) = (0.2071 + 1.9102 / sqrt(n)) / (1.2071 + 0.9102 / sqrt(n))

The resolution is the period ``1 / q`` (voxels) where the curve first falls below the
threshold after the zero-frequency shell, interpolated linearly between shells; when it
never does, the Nyquist period (2 voxels) is reported with ``crossed`` False. Times the
voxel size it is in metres.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FSCCurve", "ONE_SEVENTH", "half_bit_threshold", "fourier_shell_correlation",
           "threshold_crossing"]

#: the 1/7 threshold of half-data FSC curves (Rosenthal & Henderson 2003)
ONE_SEVENTH = 1.0 / 7.0


def half_bit_threshold(n_voxels: np.ndarray) -> np.ndarray:
    """The half-bit threshold of van Heel & Schatz (2005) for shells of ``n_voxels`` voxels."""
    root = np.sqrt(np.maximum(np.asarray(n_voxels, dtype=np.float64), 1.0))
    return (0.2071 + 1.9102 / root) / (1.2071 + 0.9102 / root)


@dataclass
class FSCCurve:
    """The FSC of two volumes, shell by shell, and the resolutions it gives.

    Attributes:
        frequency: shell centres ``k / N``, cycles per voxel (0 .. 0.5).
        fsc: correlation per shell (shell 0 is the mean; a shell without power gives 0).
        n_voxels: Fourier voxels per shell.
        half_bit: the half-bit threshold per shell.
        resolution_voxels: the period where the curve first crosses 1/7, voxels.
        resolution_voxels_half_bit: the same for the half-bit threshold.
        crossed, crossed_half_bit: whether the curve crossed each threshold (else the
            resolution is the Nyquist period, 2 voxels, a bound).
        resolution_m, resolution_m_half_bit: in metres when the voxel size is known.
    """

    frequency: np.ndarray
    fsc: np.ndarray
    n_voxels: np.ndarray
    half_bit: np.ndarray
    resolution_voxels: float
    resolution_voxels_half_bit: float
    crossed: bool
    crossed_half_bit: bool
    resolution_m: float | None = None
    resolution_m_half_bit: float | None = None


def threshold_crossing(frequency: np.ndarray, curve: np.ndarray,
                       threshold: np.ndarray | float) -> tuple[float, bool]:
    """The frequency where ``curve`` first falls below ``threshold`` after shell 0.

    Linear interpolation of ``curve - threshold`` between the last shell above and the
    first below. Returns (frequency, True), or (the last shell's frequency, False) when
    the curve stays above.
    """
    f = np.asarray(frequency, dtype=np.float64)
    d = np.asarray(curve, dtype=np.float64) - np.broadcast_to(threshold, f.shape)
    below = np.nonzero(d[1:] < 0)[0]
    if below.size == 0:
        return float(f[-1]), False
    k = int(below[0]) + 1
    d0, d1 = d[k - 1], d[k]
    frac = d0 / (d0 - d1) if d0 > 0 else 0.0
    return float(f[k - 1] + frac * (f[k] - f[k - 1])), True


def _shell_index(shape: tuple[int, int, int]) -> tuple[np.ndarray, int]:
    """Shell of every Fourier voxel (rounded ``|q| N``), and ``N`` (the smallest side)."""
    n = min(shape)
    q = np.meshgrid(*[np.fft.fftfreq(s) for s in shape], indexing="ij", sparse=True)
    radius = np.sqrt(sum(c ** 2 for c in q))
    return np.rint(radius * n).astype(np.int64), n


def fourier_shell_correlation(a: np.ndarray, b: np.ndarray,
                              voxel_size_m: float | None = None) -> FSCCurve:
    """The FSC of two 3D volumes of the same shape (one frame each); see the module docstring.

    Args:
        a, b: (Z, Y, X) volumes.
        voxel_size_m: voxel size in metres, for the resolution in metres (None: unknown).

    Raises:
        ValueError: the shapes differ or are not 3D with every side >= 4.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3 or min(a.shape) < 4:
        raise ValueError(f"FSC needs two 3D volumes of one shape, each side >= 4; got "
                         f"{a.shape} and {b.shape}")
    fa, fb = np.fft.fftn(a), np.fft.fftn(b)
    shell, n = _shell_index(a.shape)
    shells = n // 2 + 1
    inside = shell < shells
    idx = shell[inside]
    cross = np.bincount(idx, (fa * np.conj(fb)).real[inside], shells)
    pa = np.bincount(idx, (np.abs(fa) ** 2)[inside], shells)
    pb = np.bincount(idx, (np.abs(fb) ** 2)[inside], shells)
    count = np.bincount(idx, minlength=shells).astype(np.int64)
    denom = np.sqrt(pa * pb)
    # a shell without power (to rounding: 1e-20 of the total) correlates 0
    empty = denom <= 1e-20 * np.sqrt(pa.sum() * pb.sum())
    fsc = np.divide(cross, denom, out=np.zeros(shells), where=~empty)
    freq = np.arange(shells) / n
    hb = half_bit_threshold(count)
    f7, c7 = threshold_crossing(freq, fsc, ONE_SEVENTH)
    fh, ch = threshold_crossing(freq, fsc, hb)
    r7, rh = 1.0 / max(f7, 1e-12), 1.0 / max(fh, 1e-12)
    return FSCCurve(freq, fsc, count, hb, r7, rh, c7, ch,
                    None if voxel_size_m is None else r7 * voxel_size_m,
                    None if voxel_size_m is None else rh * voxel_size_m)
