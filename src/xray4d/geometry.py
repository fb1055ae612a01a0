"""The one home of the ray convention of ``data-format.md``.

Parallel beam, rotation about the vertical axis z. The volume array is
``f[t, z, y, x]`` with ``Z = H`` and ``Y = X = W``; voxel size equals the
detector pixel size (all lengths below are in units of that pixel size).

* Voxel centres: ``x_i = i - (W-1)/2``, ``y_i`` likewise, ``z_k = k - (H-1)/2``.
* Detector column ``j`` sits at ``u_j = j - (W-1)/2``; row ``k`` sees ``z_k``.
* At angle ``theta`` the ray through pixel ``(k, j)`` is
  ``x = u cos(theta) - s sin(theta)``, ``y = u sin(theta) + s cos(theta)``, ``z = z_k``.
* A line integral is measured with ``s`` in pixel units.

Everything else in xray4d asks this module for coordinates and rays.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Geometry", "centred_coordinates", "normalised_coordinates", "distinct_directions"]


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


@dataclass(frozen=True)
class Geometry:
    """Parallel-beam geometry of one recording.

    Attributes:
        angles_deg: view angles in degrees, shape (T, V): per frame and view.
        height: detector rows H (= number of z slices).
        width: detector columns W (= voxels along x and y).
        pixel_size_m: detector pixel (= voxel) size in metres, if known.
    """

    angles_deg: np.ndarray
    height: int
    width: int
    pixel_size_m: float | None = None

    def __post_init__(self) -> None:
        a = np.asarray(self.angles_deg, dtype=np.float64)
        if a.ndim != 2:
            raise ValueError(f"angles_deg must have shape (T, V), got {a.shape}")
        object.__setattr__(self, "angles_deg", a)

    @classmethod
    def from_angles(cls, angles_deg, frames: int, height: int, width: int,
                    pixel_size_m: float | None = None) -> "Geometry":
        """Build a geometry from angles of shape (V,) (same every frame) or (T, V)."""
        a = np.asarray(angles_deg, dtype=np.float64)
        if a.ndim == 1:
            a = np.broadcast_to(a, (frames, a.shape[0])).copy()
        if a.ndim != 2 or a.shape[0] != frames:
            raise ValueError(f"angles must have shape (V,) or ({frames}, V), got {a.shape}")
        return cls(a, int(height), int(width), pixel_size_m)

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
                   device=None, margin: float = 0.0) -> tuple[torch.Tensor, float]:
        """Sample points along rays, in normalised volume coordinates.

        Args:
            frame_angles_deg: angle in degrees of each ray, shape (R,).
            rows, cols: detector row k and column j of each ray, shape (R,).
            n_samples: points per ray, evenly spaced (midpoint rule) over the chord
                ``|s| <= ((W-1)/2 * (1 + margin) + 1) * sqrt(2)``, which covers the
                volume's circumscribed circle.
            margin: extra support beyond the outer voxel centres, in normalised units.

        Returns:
            points of shape (R, n_samples, 3) ordered (x, y, z) in [-1, 1]
            (``grid_sample`` order, voxel centres at -1..1), and the step ``ds``
            in pixel units, so that ``sum(f(points)) * ds`` is the line integral.
        """
        device = device if device is not None else rows.device
        theta = torch.as_tensor(frame_angles_deg, dtype=torch.float64, device=device) * (np.pi / 180)
        u = cols.to(torch.float64) - (self.width - 1) / 2.0
        z = rows.to(torch.float64) - (self.height - 1) / 2.0
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
