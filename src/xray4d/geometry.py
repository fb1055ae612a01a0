"""The one home of the ray convention of ``data-format.md``.

Parallel beam, rotation about the vertical axis z. The volume array is
``f[t, z, y, x]`` with ``Z = H`` and ``Y = X = W``; voxel size equals the
detector pixel size (all lengths below are in units of that pixel size).

* Voxel centres: ``x_i = i - (W-1)/2``, ``y_i`` likewise, ``z_k = k - (H-1)/2``.
* Detector column ``j`` sits at ``u_j = j - (W-1)/2``; row ``k`` sees ``z_k``.
* At angle ``theta`` the ray through pixel ``(k, j)`` is
  ``x = u cos(theta) - s sin(theta)``, ``y = u sin(theta) + s cos(theta)``, ``z = z_k``.
* A line integral is measured with ``s`` in pixel units.

Per-view detector geometry (:class:`DetectorGeometry`; ideal when absent). The projection
above falls on a *virtual* detector, view 0's reference; each real detector sees it shifted,
tilted and magnified. Detector pixel ``(k, j)`` of view ``v`` (frame ``t``), with shift
``(s_col, s_row)`` in detector pixels, tilt ``phi`` in degrees and magnification ``m``, sees
the virtual detector point

    a = j - (W-1)/2 - s_col,   b = k - (H-1)/2 - s_row
    u = ( a cos(phi) + b sin(phi)) / m
    z = (-a sin(phi) + b cos(phi)) / m

that is, the virtual image is magnified by ``m`` about the detector centre, rotated by
``phi`` from the column axis towards the row axis, then moved by ``+s_col`` columns and
``+s_row`` rows. ``m`` is the view's detector pixel size over the sample-plane pixel (the
voxel): an object ``L`` voxels long covers ``m L`` pixels. Line-integral values do not
change (``s`` stays in voxel units).

Everything else in xray4d asks this module for coordinates and rays.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Geometry", "DetectorGeometry", "detector_to_virtual", "virtual_to_detector",
           "describe_detectors", "centred_coordinates", "normalised_coordinates",
           "distinct_directions"]


def centred_coordinates(n: int) -> np.ndarray:
    """Centres of ``n`` pixels or voxels in pixel units, ``i - (n-1)/2``."""
    return np.arange(n, dtype=np.float64) - (n - 1) / 2.0


def normalised_coordinates(n: int) -> np.ndarray:
    """Centres of ``n`` voxels mapped to [-1, 1] (first centre -1, last +1).

    This is the ``align_corners=True`` convention of ``torch.nn.functional.grid_sample``.
    """
    if n == 1:
        return np.zeros(1)
    return np.linspace(-1.0, 1.0, n)


def distinct_directions(angles_deg: np.ndarray) -> int:
    """The fewest distinct view directions of any frame: angles modulo 180 degrees (a parallel
    beam sees the same line integrals from theta and theta + 180), rounded to 1e-3 degrees.

    Args:
        angles_deg: view angles in degrees, (V,) or (T, V).
    """
    a = np.atleast_2d(np.asarray(angles_deg, dtype=np.float64))
    folded = np.round(np.mod(a, 180.0), 3) % 180.0
    return int(min(np.unique(row).size for row in folded))


def detector_to_virtual(rows: torch.Tensor, cols: torch.Tensor, shift: torch.Tensor,
                        tilt_deg: torch.Tensor, magnification: torch.Tensor, height: int,
                        width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The virtual detector point ``(u, z)`` (centred pixel units) a real pixel sees.

    Args:
        rows, cols: detector row ``k`` and column ``j`` (any shape, broadcast with the rest).
        shift: (..., 2) shift (columns, rows) in pixels; tilt_deg, magnification: (...).
        height, width: the detector H and W.

    Differentiable in the shift, tilt and magnification (the calibration's gradients).
    """
    phi = tilt_deg * (math.pi / 180.0)
    a = cols - (width - 1) / 2.0 - shift[..., 0]
    b = rows - (height - 1) / 2.0 - shift[..., 1]
    c, s = torch.cos(phi), torch.sin(phi)
    return (a * c + b * s) / magnification, (b * c - a * s) / magnification


def virtual_to_detector(u: torch.Tensor, z: torch.Tensor, shift: torch.Tensor,
                        tilt_deg: torch.Tensor, magnification: torch.Tensor, height: int,
                        width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The inverse of :func:`detector_to_virtual`: the real detector's (row, column) at
    which the virtual detector point ``(u, z)`` (centred pixel units) is seen."""
    phi = tilt_deg * (math.pi / 180.0)
    c, s = torch.cos(phi), torch.sin(phi)
    a = magnification * (u * c - z * s)
    b = magnification * (u * s + z * c)
    return b + (height - 1) / 2.0 + shift[..., 1], a + (width - 1) / 2.0 + shift[..., 0]


def describe_detectors(shift_px, tilt_deg, magnification, *, digits: int | None = None,
                       first_view: int = 0) -> str:
    """One line of per-view detector geometry, ``view v: shift +c, +r px, tilt +t deg,
    magnification m; ...``, from (V, 2), (V,), (V,) values (``digits`` decimals of a pixel,
    more for the tilt and the magnification; None: as short as exact), from ``first_view``
    on."""
    def num(x: float, places: int, sign: str = "+") -> str:
        return format(float(x), f"{sign}g" if digits is None else f"{sign}.{places}f")

    d = digits or 0
    return "; ".join(f"view {v}: shift {num(s[0], d)}, {num(s[1], d)} px, tilt "
                     f"{num(t, d + 1)} deg, magnification {num(m, d + 2, '')}"
                     for v, (s, t, m) in enumerate(zip(shift_px, tilt_deg, magnification))
                     if v >= first_view)


#: the largest detector shift (pixels, as a share of the detector's size), tilt (degrees) and
#: magnification ratio the geometry accepts: beyond them a view barely sees the field of view
MAX_SHIFT_SHARE, MAX_TILT_DEG, MAGNIFICATION_RANGE = 0.5, 45.0, (0.5, 2.0)


def _per_frame(arr, frames: int, views: int, tail: tuple[int, ...], name: str) -> np.ndarray:
    a = np.asarray(arr, dtype=np.float64)
    if a.shape == (views, *tail):
        a = np.broadcast_to(a, (frames, views, *tail))
    if a.shape != (frames, views, *tail):
        raise ValueError(f"{name} must have shape {(views, *tail)} or {(frames, views, *tail)}, "
                         f"got {a.shape}")
    return np.array(a, dtype=np.float64)


@dataclass(frozen=True)
class DetectorGeometry:
    """Per-view (and optionally per-frame) detector geometry: the convention of the module
    docstring. Arrays are stored per frame and view.

    Attributes:
        shift_px: (T, V, 2) detector shift (columns, rows) in detector pixels.
        tilt_deg: (T, V) in-plane tilt in degrees (column axis towards the row axis).
        magnification: (T, V) detector pixel size over the sample-plane pixel.
    """

    shift_px: np.ndarray
    tilt_deg: np.ndarray
    magnification: np.ndarray

    @classmethod
    def build(cls, frames: int, views: int, shift_px=None, tilt_deg=None,
              magnification=None) -> "DetectorGeometry":
        """From per-view ((V, 2), (V,), (V,)) or per-frame ((T, V, 2), (T, V), (T, V)) arrays;
        None: ideal (no shift, no tilt, magnification 1). ValueError (one line) for a wrong
        shape, a non-finite value, or one out of range (:data:`MAX_TILT_DEG`,
        :data:`MAGNIFICATION_RANGE`)."""
        shift = _per_frame(np.zeros((views, 2)) if shift_px is None else shift_px,
                           frames, views, (2,), "detector shift")
        tilt = _per_frame(np.zeros(views) if tilt_deg is None else tilt_deg, frames, views, (),
                          "detector tilt")
        mag = _per_frame(np.ones(views) if magnification is None else magnification, frames,
                         views, (), "magnification")
        for name, a in (("detector shift", shift), ("detector tilt", tilt),
                        ("magnification", mag)):
            if not np.all(np.isfinite(a)):
                raise ValueError(f"{name} contains NaN or Inf values")
        if np.any(np.abs(tilt) > MAX_TILT_DEG):
            raise ValueError(f"detector tilt beyond +-{MAX_TILT_DEG:g} degrees")
        lo, hi = MAGNIFICATION_RANGE
        if np.any(mag < lo) or np.any(mag > hi):
            raise ValueError(f"magnification outside [{lo:g}, {hi:g}]")
        return cls(shift, tilt, mag)

    @property
    def ideal(self) -> bool:
        """True without shift, tilt or magnification anywhere (the projector skips the mapping)."""
        return bool(np.all(self.shift_px == 0) and np.all(self.tilt_deg == 0)
                    and np.all(self.magnification == 1))

    @property
    def per_frame(self) -> bool:
        """True when some frame's detector geometry differs from frame 0's."""
        return not all(bool(np.all(a == a[:1])) for a in
                       (self.shift_px, self.tilt_deg, self.magnification))

    def scaled(self, factor: int) -> "DetectorGeometry":
        """The same detectors on a grid ``factor`` times finer (shifts in fine pixels)."""
        return DetectorGeometry(self.shift_px * factor, self.tilt_deg, self.magnification)

    def tensors(self, frames, *, dtype=torch.float32, device=None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Shift (B, V, 2), tilt (B, V), magnification (B, V) of the frames (indices (B,))."""
        fr = np.asarray(frames, dtype=np.int64).reshape(-1)
        return tuple(torch.as_tensor(a[fr], dtype=dtype, device=device)  # type: ignore
                     for a in (self.shift_px, self.tilt_deg, self.magnification))


@dataclass(frozen=True)
class Geometry:
    """Parallel-beam geometry of one recording.

    Attributes:
        angles_deg: view angles in degrees, shape (T, V): per frame and view.
        height: detector rows H (= number of z slices).
        width: detector columns W (= voxels along x and y).
        pixel_size_m: detector pixel (= voxel) size in metres, if known.
        detector: per-view detector geometry (shift, tilt, magnification); None: ideal.
    """

    angles_deg: np.ndarray
    height: int
    width: int
    pixel_size_m: float | None = None
    detector: DetectorGeometry | None = None

    def __post_init__(self) -> None:
        a = np.asarray(self.angles_deg, dtype=np.float64)
        if a.ndim != 2:
            raise ValueError(f"angles_deg must have shape (T, V), got {a.shape}")
        object.__setattr__(self, "angles_deg", a)
        d = self.detector
        if d is not None and d.tilt_deg.shape != a.shape:
            raise ValueError(f"detector geometry of shape {d.tilt_deg.shape} does not match "
                             f"the angles' {a.shape}")

    @classmethod
    def from_angles(cls, angles_deg, frames: int, height: int, width: int,
                    pixel_size_m: float | None = None,
                    detector: DetectorGeometry | None = None) -> "Geometry":
        """Build a geometry from angles of shape (V,) (same every frame) or (T, V)."""
        a = np.asarray(angles_deg, dtype=np.float64)
        if a.ndim == 1:
            a = np.broadcast_to(a, (frames, a.shape[0])).copy()
        if a.ndim != 2 or a.shape[0] != frames:
            raise ValueError(f"angles must have shape (V,) or ({frames}, V), got {a.shape}")
        return cls(a, int(height), int(width), pixel_size_m, detector)

    @property
    def aligned(self) -> bool:
        """True when every detector is the ideal one (no shift, tilt or magnification)."""
        return self.detector is None or self.detector.ideal

    @property
    def frames(self) -> int:
        """Number of frames T."""
        return self.angles_deg.shape[0]

    @property
    def views(self) -> int:
        """Number of views per frame V."""
        return self.angles_deg.shape[1]

    @property
    def volume_shape(self) -> tuple[int, int, int]:
        """Shape (Z, Y, X) = (H, W, W) of one frame of the volume."""
        return (self.height, self.width, self.width)

    @property
    def angles_shared(self) -> bool:
        """True when every frame is seen at the same angles (XMPI: no rotation)."""
        return bool(np.all(self.angles_deg == self.angles_deg[:1]))

    @property
    def angle_sets(self) -> int:
        """Distinct sets of view angles over the frames (1 without rotation, up to T)."""
        return 1 if self.angles_shared else len(np.unique(self.angles_deg, axis=0))

    @property
    def directions_per_frame(self) -> int:
        """The fewest distinct view directions (angles modulo 180 degrees) of any frame:
        2 for two-view XMPI, 1 for a rotating sample seen once per frame, hundreds for CT."""
        return distinct_directions(self.angles_deg)

    def ray_points(self, frame_angles_deg: np.ndarray | torch.Tensor, rows: torch.Tensor,
                   cols: torch.Tensor, n_samples: int, *, dtype=torch.float32,
                   device=None, margin: float = 0.0, frames: torch.Tensor | None = None,
                   views: torch.Tensor | None = None) -> tuple[torch.Tensor, float]:
        """Sample points along rays, in normalised volume coordinates.

        Args:
            frame_angles_deg: angle in degrees of each ray, shape (R,).
            rows, cols: detector row k and column j of each ray, shape (R,).
            n_samples: points per ray, evenly spaced (midpoint rule) over the chord
                ``|s| <= ((W-1)/2 * (1 + margin) + 1) * sqrt(2)``, which covers the
                volume's circumscribed circle.
            margin: extra support beyond the outer voxel centres, in normalised units.
            frames, views: frame and view of each ray (R,), needed when the detectors are not
                ideal: the pixel ``(k, j)`` then sees the virtual detector point of
                :func:`detector_to_virtual` (frames default to 0).

        Returns:
            points of shape (R, n_samples, 3) ordered (x, y, z) in [-1, 1]
            (``grid_sample`` order, voxel centres at -1..1), and the step ``ds``
            in pixel units, so that ``sum(f(points)) * ds`` is the line integral.
        """
        device = device if device is not None else rows.device
        theta = torch.as_tensor(frame_angles_deg, dtype=torch.float64, device=device) * (np.pi / 180)
        u, z = self._virtual_pixels(rows, cols, frames, views, device)
        half = (max((self.width - 1) / 2.0, 0.5) * (1.0 + margin) + 1.0) * np.sqrt(2.0)
        # midpoint rule over [-half, half]
        ds = 2 * half / n_samples
        s = -half + ds * (torch.arange(n_samples, dtype=torch.float64, device=device) + 0.5)
        c, sn = torch.cos(theta)[:, None], torch.sin(theta)[:, None]
        x = u[:, None] * c - s[None, :] * sn
        y = u[:, None] * sn + s[None, :] * c
        zz = z[:, None].expand_as(x)
        sx = (self.width - 1) / 2.0 if self.width > 1 else 1.0
        sz = (self.height - 1) / 2.0 if self.height > 1 else 1.0
        pts = torch.stack([x / sx, y / sx, zz / sz], dim=-1).to(dtype)
        return pts, float(ds)

    def _virtual_pixels(self, rows: torch.Tensor, cols: torch.Tensor,
                        frames: torch.Tensor | None, views: torch.Tensor | None,
                        device) -> tuple[torch.Tensor, torch.Tensor]:
        """Centred virtual detector coordinates (u, z), float64, of real pixels (rows, cols)."""
        rows, cols = rows.to(device, torch.float64), cols.to(device, torch.float64)
        if self.aligned:
            return cols - (self.width - 1) / 2.0, rows - (self.height - 1) / 2.0
        if views is None:
            raise ValueError("the detectors are not ideal: give the view of each ray")
        v = views.to(device).long()
        fr = torch.zeros_like(v) if frames is None else frames.to(device).long()
        d = self.detector
        assert d is not None
        shift, tilt, mag = (torch.as_tensor(a, dtype=torch.float64, device=device)[fr, v]
                            for a in (d.shift_px, d.tilt_deg, d.magnification))
        return detector_to_virtual(rows, cols, shift, tilt, mag, self.height, self.width)
