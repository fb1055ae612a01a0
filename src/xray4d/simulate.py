"""Simulated recordings with ground truth.

Two entry points:

* :func:`simulate_droplets`: a binary droplet collision (approach, contact,
  coalescence through a growing neck, damped oscillation of the merged drop; or
  stretching separation into two drops), rendered as a voxel-averaged truth
  volume and forward-projected at finer sampling than the voxel grid.
* :func:`simulate_recording`: projections of a volume you already have (the
  ``xray4d project`` verb).

Units of the droplet model (:class:`DropletCollision`): lengths are fractions of
the field of view W (the volume spans -0.5 .. 0.5 along x, y and z, the
voxel-centre convention of ``geometry.py`` scaled by 1/W), times are
*normalised* times, fractions of the movie (frame 0 at 0, the last frame at 1),
and speeds are in W per movie. The drops collide along the x axis in the xy
plane, so view 0 (theta = 0, rays along y) sees the collision side-on.

The shape at a normalised time is built in a frame aligned with the line of
centres (the *collision axis*, unit vector ``e``), where it is axisymmetric:

1. two spheres of radii r1, r2 whose centres sit on the axis at
   ``-m2/M d`` and ``+m1/M d`` (masses m ~ r^3, so the centre of mass stays at
   the origin; ``d`` is the distance of the centres),
2. joined by a smooth minimum of their signed distances with blend width ``k``
   that grows from zero at contact (the neck: its radius grows like sqrt(time),
   as in inertial coalescence),
3. stretched by a volume-preserving affine map, factor ``lambda`` along ``e``
   and ``lambda**-0.5`` across it (the l = 2 spheroidal oscillation),
4. scaled about the centre of mass by ``s`` so that the total volume equals the
   volume of the two initial drops (the volume of steps 1-2 is measured once per
   time on a fine axisymmetric grid; scaling by s scales volume by s^3).

Timeline (defaults in brackets): the drops approach at constant velocity and
touch at ``contact_time`` [0.25]; the centres then meet along a cubic ease-out
within ``coalescence_time`` [0.15] while the neck blend grows with time
constant ``neck_time`` [0.03]; the l = 2 oscillation (``lambda = 1 + a``,
``a = -A exp(-t/damping_time) sin(2 pi t/period)``) is switched on through a
smoothstep window a quarter period before the centres meet, so the elongation
of the merging pair flows continuously into the first oblate overshoot. With
``separation`` the centres instead decelerate to ``min_distance`` (r1 + r2),
accelerate apart to ``restitution`` times the approach speed and coast, and the
neck pinches off when the smooth union disconnects along the axis.

The axis turns with time for an off-centre impact: before contact it is the
line of centres of two drops moving on straight parallel lines; after contact
its angular velocity is ``L / I(t)`` with the angular momentum ``L = mu b v`` of
the approach and a moment of inertia that shrinks from the orbital ``mu d^2`` to
that of the merged sphere, so the merged drop spins up and keeps rotating.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from .geometry import Geometry, centred_coordinates
from .data import Recording
from .projector import DENSE_OPERATOR_LIMIT_BYTES, Projector, slice_projection_matrix

__all__ = ["DropletCollision", "DropletState", "droplet_state", "droplet_truth",
           "simulate_droplets", "simulate_recording", "add_noise", "normalised_times",
           "RigidEllipsoid", "rigid_ellipsoid_truth", "simulate_rigid_ellipsoid",
           "simulate_droplets_intensity", "fresnel_unity_distance_m",
           "droplet_exit_waves"]


# ---------------------------------------------------------------- parameters

@dataclass(frozen=True)
class DropletCollision:
    """Parameters of a binary droplet collision (units: see the module docstring).

    Attributes:
        radius_1: radius of drop 1 (starts at negative x, moves towards +x).
        radius_2: radius of drop 2 (starts at positive x, moves towards -x).
        approach_speed: relative closing speed of the drops along x.
        contact_time: normalised time at which the surfaces touch.
        impact_parameter: dimensionless off-centre impact ``B = b / (r1 + r2)``
            in [0, 1): the offset b of the two paths, perpendicular to x.
        impact_direction_deg: direction of that offset about the x axis: 0 puts
            drop 2 above drop 1 (offset along +z, seen by view 0), 90 along +y.
        neck_time: time constant of the neck growth after contact.
        neck_blend: final blend width of the smooth union, in units of the
            smaller radius (0 gives a sharp union: no neck beyond the overlap).
        coalescence_time: duration from contact until the centres meet
            (coalescence mode).
        oscillation_amplitude: amplitude of the axial stretch ``lambda - 1`` of
            the merged drop (coalescence mode), in [0, 0.9).
        oscillation_period: period of the l = 2 shape oscillation.
        damping_time: e-folding time of the oscillation amplitude.
        separation: stretching separation instead of coalescence: the merged
            drop is compressed, stretches along the axis and pinches off into two
            drops that move apart.
        min_distance: (separation) closest distance of the centres, in units of
            r1 + r2, in [0, 1).
        restitution: (separation) outgoing relative speed over the radial
            approach speed at contact, > 0.
        value: value of f inside the liquid (0 outside).
    """

    radius_1: float = 0.14
    radius_2: float = 0.14
    approach_speed: float = 1.0
    contact_time: float = 0.25
    impact_parameter: float = 0.0
    impact_direction_deg: float = 0.0
    neck_time: float = 0.03
    neck_blend: float = 1.0
    coalescence_time: float = 0.15
    oscillation_amplitude: float = 0.3
    oscillation_period: float = 0.2
    damping_time: float = 0.25
    separation: bool = False
    min_distance: float = 0.7
    restitution: float = 0.6
    value: float = 1.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "separation":
                if not isinstance(v, (bool, np.bool_)):
                    raise ValueError(f"separation must be True or False, got {v!r}")
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
                raise ValueError(f"{f.name} must be a number, got {v!r}")
            if math.isnan(v) or (math.isinf(v) and f.name != "damping_time"):
                raise ValueError(f"{f.name} must be finite, got {v}")
        positive = ("radius_1", "radius_2", "approach_speed", "neck_time", "coalescence_time",
                    "oscillation_period", "damping_time", "restitution", "value")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.impact_parameter < 1:
            raise ValueError(f"impact_parameter must be in [0, 1), got {self.impact_parameter}")
        if self.neck_blend < 0:
            raise ValueError(f"neck_blend must be >= 0, got {self.neck_blend}")
        if not 0 <= self.oscillation_amplitude < 0.9:
            raise ValueError(f"oscillation_amplitude must be in [0, 0.9), got "
                             f"{self.oscillation_amplitude}")
        if not 0 <= self.min_distance < 1:
            raise ValueError(f"min_distance must be in [0, 1), got {self.min_distance}")

    @property
    def total_volume(self) -> float:
        """Volume of the liquid, 4/3 pi (r1^3 + r2^3), in W^3."""
        return 4.0 / 3.0 * math.pi * (self.radius_1 ** 3 + self.radius_2 ** 3)

    @property
    def merged_radius(self) -> float:
        """Radius of the sphere holding all the liquid, (r1^3 + r2^3)^(1/3)."""
        return (self.radius_1 ** 3 + self.radius_2 ** 3) ** (1.0 / 3.0)

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (JSON-ready)."""
        return {k: (bool(v) if isinstance(v, (bool, np.bool_)) else float(v))
                for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class DropletState:
    """The shape of the liquid at one normalised time (lengths in W).

    Attributes:
        time: normalised time.
        phase: ``approach``, ``coalescence``, ``oscillation`` (coalescence mode)
            or ``approach``, ``compression``, ``stretching``, ``separated``.
        axis: unit vector (x, y, z) of the collision axis (line of centres).
        centres: (2, 3) world positions (x, y, z) of the two sphere centres,
            after stretch and scale.
        radii: (2,) world radii of the spheres (after scale, before stretch).
        distance: distance of the centres before stretch and scale.
        blend: blend width k of the smooth union, before scale.
        stretch: axial stretch factor lambda (1 = no oscillation).
        scale: volume-restoring scale s about the centre of mass.
    """

    time: float
    phase: str
    axis: np.ndarray
    centres: np.ndarray
    radii: np.ndarray
    distance: float
    blend: float
    stretch: float
    scale: float


def _smooth_min(a: torch.Tensor, b: torch.Tensor, k: float) -> torch.Tensor:
    """Polynomial smooth minimum of two signed distances with blend width k."""
    if k <= 0:
        return torch.minimum(a, b)
    h = (0.5 + 0.5 * (b - a) / k).clamp(0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def _union_sdf(along: torch.Tensor, radial2: torch.Tensor, a1: float, a2: float,
               r1: float, r2: float, k: float) -> torch.Tensor:
    """Signed distance (approximate inside the blend) of the smooth union of two
    spheres centred on the axis at ``a1``, ``a2``; points given by their axial
    coordinate and squared distance from the axis."""
    d1 = torch.sqrt((along - a1) ** 2 + radial2) - r1
    d2 = torch.sqrt((along - a2) ** 2 + radial2) - r2
    return _smooth_min(d1, d2, k)


class _Kinematics:
    """Continuous-time description of a :class:`DropletCollision` (internal)."""

    def __init__(self, p: DropletCollision) -> None:
        self.p = p
        r1, r2 = float(p.radius_1), float(p.radius_2)
        self.r1, self.r2 = r1, r2
        self.m1, self.m2 = r1 ** 3, r2 ** 3          # masses (common factor dropped)
        self.mass = self.m1 + self.m2
        self.mu = self.m1 * self.m2 / self.mass
        self.d_contact = r1 + r2
        self.offset = p.impact_parameter * self.d_contact
        self.x_contact = math.sqrt(self.d_contact ** 2 - self.offset ** 2)
        self.v = float(p.approach_speed)
        self.v_radial = self.v * self.x_contact / self.d_contact
        self.k_max = p.neck_blend * min(r1, r2)
        self.r_merged = p.merged_radius
        self.inertia_merged = 0.4 * self.mass * self.r_merged ** 2
        self.ang_momentum = self.mu * self.offset * self.v
        self.phi_contact = math.atan2(self.offset, self.x_contact)
        psi = math.radians(p.impact_direction_deg)
        self.offset_dir = np.array([0.0, math.sin(psi), math.cos(psi)])
        self.target_volume = p.total_volume
        # coalescence: the centres meet along a cubic Hermite d = d_c h(s), s in
        # [0, 1], leaving contact at the radial approach speed and arriving at rest
        # (slope within the Fritsch-Carlson bound, so d decreases monotonically)
        t_m = float(p.coalescence_time)
        self.herm_alpha = min(self.v_radial * t_m / self.d_contact, 3.0)
        # oscillation: the smooth union flattens its elongation as the centres meet
        # (to second order in d), so the l = 2 oscillation is switched on a quarter
        # period before they meet, through a smoothstep window; the drop then
        # overshoots smoothly into the oblate phase
        self.omega_osc = 2 * math.pi / p.oscillation_period
        self.osc_ramp = min(p.oscillation_period / 4, t_m)
        self.osc_start = p.contact_time + t_m - self.osc_ramp
        # separation: decelerate to the closest distance, accelerate apart, coast
        self.d_min = p.min_distance * self.d_contact
        gap = self.d_contact - self.d_min
        self.v_out = p.restitution * self.v_radial
        self.t_compress = 2 * gap / self.v_radial
        self.t_stretch = 2 * gap / self.v_out
        self._pinch: float | None = None

    # -- scalar laws, vectorised over numpy arrays of normalised times --------------

    def distance(self, t: np.ndarray) -> np.ndarray:
        """Distance of the sphere centres (before stretch and scale)."""
        t = np.asarray(t, dtype=np.float64)
        tau = t - self.p.contact_time
        x_app = self.x_contact - self.v * tau
        d = np.hypot(x_app, self.offset)
        after = tau > 0
        if self.p.separation:
            gap = self.d_contact - self.d_min
            a1 = self.v_radial ** 2 / (2 * gap)
            a2 = self.v_out ** 2 / (2 * gap)
            t1, t2 = self.t_compress, self.t_compress + self.t_stretch
            comp = self.d_contact - self.v_radial * tau + 0.5 * a1 * tau ** 2
            stre = self.d_min + 0.5 * a2 * (tau - t1) ** 2
            coast = self.d_contact + self.v_out * (tau - t2)
            d_after = np.where(tau < t1, comp, np.where(tau < t2, stre, coast))
        else:
            s = np.clip(tau / self.p.coalescence_time, 0.0, 1.0)
            h = (2 * s ** 3 - 3 * s ** 2 + 1) - self.herm_alpha * (s ** 3 - 2 * s ** 2 + s)
            d_after = self.d_contact * np.clip(h, 0.0, None)
        return np.where(after, d_after, d)

    def neck_progress(self, t: np.ndarray) -> np.ndarray:
        """0 before contact, rising to 1 with time constant ``neck_time``."""
        tau = np.asarray(t, dtype=np.float64) - self.p.contact_time
        return np.where(tau > 0, -np.expm1(-np.maximum(tau, 0.0) / self.p.neck_time), 0.0)

    def blend(self, t: np.ndarray) -> np.ndarray:
        """Blend width k of the smooth union."""
        return self.k_max * self.neck_progress(t)

    def stretch(self, t: np.ndarray) -> np.ndarray:
        """Axial stretch factor lambda of the damped l = 2 oscillation."""
        t = np.asarray(t, dtype=np.float64)
        if self.p.separation or self.p.oscillation_amplitude == 0:
            return np.ones_like(t)
        tp = np.maximum(t - self.osc_start, 0.0)
        w = np.clip(tp / self.osc_ramp, 0.0, 1.0)
        window = w * w * (3 - 2 * w)
        a = -self.p.oscillation_amplitude * window * np.exp(-tp / self.p.damping_time) \
            * np.sin(self.omega_osc * tp)
        return 1.0 + a

    def angular_velocity(self, t: np.ndarray) -> np.ndarray:
        """Angular velocity of the collision axis after contact, L / I(t)."""
        d = self.distance(t)
        inertia = self.mu * d ** 2 + self.neck_progress(t) * self.inertia_merged
        return self.ang_momentum / np.maximum(inertia, 1e-300)

    def axis_angle(self, t: float) -> float:
        """Angle of the axis from +x towards the offset direction."""
        tau = t - self.p.contact_time
        if tau <= 0:
            return math.atan2(self.offset, self.x_contact - self.v * tau)
        if self.ang_momentum == 0:
            return 0.0
        n = 1 + 64 * max(8, int(math.ceil(tau / min(self.p.neck_time, 0.01))))
        grid = np.linspace(self.p.contact_time, t, min(n, 20001))
        w = self.angular_velocity(grid)
        return self.phi_contact + float(np.sum(0.5 * (w[1:] + w[:-1]) * np.diff(grid)))

    def axis(self, t: float) -> np.ndarray:
        phi = self.axis_angle(t)
        return math.cos(phi) * np.array([1.0, 0.0, 0.0]) + math.sin(phi) * self.offset_dir

    # -- volume and phases ----------------------------------------------------------

    def union_volume(self, d: float, k: float) -> float:
        """Volume of the smooth union (before stretch and scale), axisymmetric quadrature."""
        a1, a2 = -self.m2 / self.mass * d, self.m1 / self.mass * d
        if k <= 0 and d >= self.r1 + self.r2:
            return self.target_volume
        h = min(self.r1, self.r2) / 40.0   # volume error ~1e-4
        lo = min(a1 - self.r1, a2 - self.r2) - k / 4 - 2 * h
        hi = max(a1 + self.r1, a2 + self.r2) + k / 4 + 2 * h
        rho_max = max(self.r1, self.r2) + k / 4 + 2 * h
        nx, nr = int(math.ceil((hi - lo) / h)), int(math.ceil(rho_max / h))
        x = lo + h * (torch.arange(nx, dtype=torch.float64) + 0.5)
        rho = h * (torch.arange(nr, dtype=torch.float64) + 0.5)
        g = _union_sdf(x[:, None], (rho ** 2)[None, :], a1, a2, self.r1, self.r2, k)
        occ = (0.5 - g / h).clamp(0.0, 1.0)
        return float((occ * (2 * math.pi * rho * h * h)[None, :]).sum())

    def pinch_time(self) -> float:
        """Normalised time at which the stretched drop pinches off (separation), else inf."""
        if not self.p.separation:
            return math.inf
        if self._pinch is None:
            t_lo = self.p.contact_time + self.t_compress
            t_hi = t_lo + self.t_stretch + (self.k_max + 1e-9) / self.v_out
            if not self._connected(t_lo):
                self._pinch = t_lo
            else:
                for _ in range(60):
                    mid = 0.5 * (t_lo + t_hi)
                    if self._connected(mid):
                        t_lo = mid
                    else:
                        t_hi = mid
                self._pinch = t_hi
        return self._pinch

    def _connected(self, t: float) -> bool:
        d, k = float(self.distance(t)), float(self.blend(t))
        a1, a2 = -self.m2 / self.mass * d, self.m1 / self.mass * d
        x = torch.linspace(a1, a2, 401, dtype=torch.float64)
        g = _union_sdf(x, torch.zeros_like(x), a1, a2, self.r1, self.r2, k)
        return bool((g <= 0).all())

    def phase(self, t: float) -> str:
        tau = t - self.p.contact_time
        if tau < 0:
            return "approach"
        if self.p.separation:
            if tau < self.t_compress:
                return "compression"
            return "stretching" if t < self.pinch_time() else "separated"
        return "coalescence" if tau < self.p.coalescence_time else "oscillation"

    def state(self, t: float) -> DropletState:
        t = float(t)
        d = float(self.distance(t))
        k = float(self.blend(t))
        lam = float(self.stretch(t))
        vol = self.union_volume(d, k)
        s = (self.target_volume / vol) ** (1.0 / 3.0)
        e = self.axis(t)
        a = np.array([-self.m2 / self.mass * d, self.m1 / self.mass * d])
        centres = (s * lam * a)[:, None] * e[None, :]
        return DropletState(t, self.phase(t), e, centres, s * np.array([self.r1, self.r2]),
                            d, k, lam, s)


def droplet_state(params: DropletCollision, time: float) -> DropletState:
    """The shape parameters of the collision at one normalised time (0 = first frame,
    1 = last frame; other values extrapolate the same laws)."""
    return _Kinematics(params).state(time)


def normalised_times(frames: int) -> np.ndarray:
    """Normalised time of each frame: ``i / (frames - 1)`` (0 for a single frame)."""
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if frames == 1:
        return np.zeros(1)
    return np.arange(frames, dtype=np.float64) / (frames - 1)


# ---------------------------------------------------------------- rendering

def _fine_coords(n_fine: int) -> np.ndarray:
    """Centres of the fine voxels in W units (the volume spans -0.5 .. 0.5)."""
    return centred_coordinates(n_fine) / n_fine


def _box(state: DropletState, kin: _Kinematics, n_fine: int, oversample: int
         ) -> tuple[slice, slice, slice] | None:
    """Fine-voxel index ranges (z, y, x) that hold the liquid, aligned to blocks of
    ``oversample``; None when the liquid is outside the field of view."""
    lam = state.stretch
    grow = max(lam, lam ** -0.5)
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for c, r in zip(state.centres, (kin.r1, kin.r2)):
        # inside the smooth union min(d1, d2) <= k/4; plus one fine voxel of anti-aliasing
        reach = grow * (state.scale * (r + state.blend / 4) + 1.0 / n_fine)
        lo = np.minimum(lo, c - reach)
        hi = np.maximum(hi, c + reach)
    half = (n_fine - 1) / 2.0
    # x, y, z -> index; one voxel of margin for the anti-aliasing ramp
    i_lo = np.floor(lo * n_fine + half).astype(int) - 1
    i_hi = np.ceil(hi * n_fine + half).astype(int) + 2
    i_lo = np.clip((i_lo // oversample) * oversample, 0, n_fine)
    i_hi = np.clip(-(-i_hi // oversample) * oversample, 0, n_fine)
    if np.any(i_hi <= i_lo):
        return None
    sx, sy, sz = (slice(int(a), int(b)) for a, b in zip(i_lo, i_hi))
    return sz, sy, sx


def _render_fine(state: DropletState, kin: _Kinematics, n_fine: int, oversample: int,
                 value: float) -> tuple[tuple[slice, slice, slice], torch.Tensor] | None:
    """Anti-aliased occupancy of the liquid on the fine grid, inside its bounding box.

    Returns the fine-voxel index ranges (z, y, x) of the box and the occupancy
    there, or None when the liquid is outside the field of view.
    """
    box = _box(state, kin, n_fine, oversample)
    if box is None:
        return None
    coords = torch.as_tensor(_fine_coords(n_fine), dtype=torch.float32)
    z, y, x = coords[box[0]], coords[box[1]], coords[box[2]]
    e0, e1, e2 = (float(c) for c in state.axis)
    s, lam = state.scale, state.stretch
    # world -> canonical frame: axial coordinate and squared distance from the axis,
    # undoing the scale s and the volume-preserving stretch (lam along, lam^-1/2 across)
    along = (e0 * x)[None, None, :] + (e1 * y)[None, :, None] + (e2 * z)[:, None, None]
    radial2 = (x * x)[None, None, :] + (y * y)[None, :, None] + (z * z)[:, None, None]
    radial2.addcmul_(along, along, value=-1.0).clamp_min_(0.0).mul_(lam / (s * s))
    along.mul_(1.0 / (s * lam))
    d = state.distance
    a1, a2 = -kin.m2 / kin.mass * d, kin.m1 / kin.mass * d
    d1 = (along - a1).square_().add_(radial2).sqrt_().sub_(kin.r1)
    d2 = along.sub_(a2).square_().add_(radial2).sqrt_().sub_(kin.r2)
    del radial2
    k = state.blend
    if k > 0:
        # polynomial smooth minimum, in place: d2 + (d1 - d2) h - k h (1 - h)
        h = torch.sub(d2, d1).mul_(0.5 / k).add_(0.5).clamp_(0.0, 1.0)
        diff = d1.sub_(d2)
        sdf = d2.addcmul_(diff, h)
        sdf.addcmul_(h, h.neg().add_(1.0), value=-k)
    else:
        sdf = torch.minimum(d1, d2)
    # back to world units, then to fine voxels: clamp(0.5 - sdf) is the
    # anti-aliased fraction of a voxel inside
    occ = sdf.mul_(-s * n_fine).add_(0.5).clamp_(0.0, 1.0)
    if value != 1.0:
        occ.mul_(value)
    return box, occ


def _block_mean(a: torch.Tensor, factor: int, dims: Sequence[int]) -> torch.Tensor:
    """Average non-overlapping blocks of ``factor`` along the given dimensions."""
    if factor == 1:
        return a
    shape: list[int] = []
    red: list[int] = []
    for i, n in enumerate(a.shape):
        if i in dims:
            shape += [n // factor, factor]
            red.append(len(shape) - 1)
        else:
            shape.append(n)
    return a.reshape(shape).mean(dim=red)


def _check_render_args(size: int, oversample: int) -> None:
    if int(size) != size or size < 2:
        raise ValueError(f"size must be an integer >= 2, got {size}")
    if int(oversample) != oversample or oversample < 1:
        raise ValueError(f"oversample must be an integer >= 1, got {oversample}")


def droplet_truth(params: DropletCollision, size: int = 64, frames: int = 40, *,
                  times: Sequence[float] | np.ndarray | None = None,
                  oversample: int = 2) -> np.ndarray:
    """Ground-truth volumes f[t, z, y, x] of a droplet collision, float32.

    Args:
        params: the collision.
        size: voxels along each axis (Z = Y = X = size; voxel = detector pixel).
        frames: number of frames, at normalised times ``i / (frames - 1)``;
            ignored when ``times`` is given.
        times: normalised times to render instead (any real values).
        oversample: sub-voxels per axis averaged into each voxel; each
            sub-voxel is anti-aliased as ``clamp(0.5 - sdf, 0, 1)``.

    Returns:
        array (T, size, size, size), ``params.value`` inside, 0 outside.
    """
    _check_render_args(size, oversample)
    tt = normalised_times(frames) if times is None else np.asarray(times, np.float64).reshape(-1)
    kin = _Kinematics(params)
    n_fine = size * oversample
    out = np.zeros((len(tt), size, size, size), dtype=np.float32)
    for i, t in enumerate(tt):
        got = _render_fine(kin.state(t), kin, n_fine, oversample, float(params.value))
        if got is None:
            continue
        box, occ = got
        coarse = _block_mean(occ, oversample, (0, 1, 2))
        idx = tuple(slice(b.start // oversample, b.stop // oversample) for b in box)
        out[(i,) + idx] = coarse.numpy()
    return out


# ---------------------------------------------------------------- projections

def add_noise(projections: np.ndarray, noise: float, seed: int = 0) -> np.ndarray:
    """Add Gaussian noise of standard deviation ``noise * max(projections)``.

    Deterministic under ``seed`` (``numpy.random.default_rng``); ``noise = 0``
    returns a float32 copy. Returns float32.
    """
    if not (noise >= 0 and math.isfinite(noise)):
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    clean = np.asarray(projections, dtype=np.float32)
    if noise == 0:
        return clean.copy()
    sigma = float(noise) * float(np.max(clean)) if clean.size else 0.0
    rng = np.random.default_rng(seed)
    return (clean + sigma * rng.standard_normal(clean.shape)).astype(np.float32)


def _angles_array(angles_deg: Sequence[float] | np.ndarray, frames: int) -> np.ndarray:
    a = np.asarray(angles_deg, dtype=np.float64)
    if a.ndim == 1:
        a = np.broadcast_to(a, (frames, a.shape[0])).copy()
    if a.ndim != 2 or a.shape[0] != frames or a.shape[1] < 1:
        raise ValueError(f"angles must have shape (V,) or ({frames}, V), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("angles must be finite")
    return a


class _BoxProjector:
    """Line integrals of one frame's liquid box on the fine detector (internal).

    Uses the Joseph operator of ``projector.py`` (one (W, W*W) matrix per view,
    ``slice_projection_matrix``) restricted to the voxel columns of the box, so
    the cost scales with the box, not the volume. Falls back to the (sparse)
    :class:`~xray4d.projector.Projector` on whole slices when the dense operator
    of one frame would be too large.
    """

    def __init__(self, angles: np.ndarray, width: int) -> None:
        self.angles = angles
        self.width = width
        self.shared = bool(np.all(angles == angles[:1]))
        n_bytes = angles.shape[1] * width ** 3 * 4
        self.dense = n_bytes <= DENSE_OPERATOR_LIMIT_BYTES
        self._key: bytes | None = None
        self._op: torch.Tensor | Projector | None = None

    def _operator(self, frame: int) -> torch.Tensor | Projector:
        a = self.angles[0 if self.shared else frame]
        if a.tobytes() != self._key:
            w = self.width
            if self.dense:
                self._op = torch.cat([slice_projection_matrix(float(v), w) for v in a]
                                     ).reshape(len(a) * w, w, w)
            else:
                self._op = Projector(Geometry.from_angles(a, 1, 1, w))
            self._key = a.tobytes()
        assert self._op is not None
        return self._op

    def __call__(self, occ: torch.Tensor, box_y: slice, box_x: slice, frame: int) -> torch.Tensor:
        """occ (rows, ny, nx) at columns (box_y, box_x) of the slices -> (V, rows, W)."""
        op = self._operator(frame)
        rows, w = occ.shape[0], self.width
        views = self.angles.shape[1]
        if isinstance(op, torch.Tensor):
            sub = op[:, box_y, box_x].reshape(views * w, -1)
            out = occ.reshape(rows, -1) @ sub.t()
            return out.reshape(rows, views, w).permute(1, 0, 2)
        slab = torch.zeros((rows, w, w), dtype=occ.dtype)
        slab[:, box_y, box_x] = occ
        out = op.forward(slab[:, None], frames=np.zeros(rows, dtype=np.int64))
        return out[:, :, 0, :].permute(1, 0, 2)


def simulate_droplets(params: DropletCollision | None = None, size: int = 64, frames: int = 40,
                      angles_deg: Sequence[float] | np.ndarray = (0.0, 23.8), noise: float = 0.01,
                      seed: int = 0, *, oversample: int = 2, frame_interval_s: float = 1.0,
                      pixel_size_m: float | None = None) -> Recording:
    """Simulate a recording of a droplet collision, with its ground truth.

    The liquid is rendered on a grid ``oversample`` times finer than the voxel
    grid; the truth is the block average of that grid and the projections are
    its line integrals on a detector ``oversample`` times finer, averaged over
    detector pixel blocks (so the data are not made by the projector that
    reconstructs them).

    Args:
        params: the collision (default :class:`DropletCollision()`).
        size: detector width and height W = H = size; the volume is size^3.
        frames: number of frames T, at normalised times ``i / (T - 1)``.
        angles_deg: view angles in degrees, shape (V,) or (T, V).
        noise: Gaussian noise, standard deviation ``noise * max(clean projections)``.
        seed: seed of the noise.
        oversample: fine sub-voxels (and sub-pixels) per axis, >= 1.
        frame_interval_s: time between frames written to ``/exchange/time``.
        pixel_size_m: optional pixel size recorded in the attributes.

    Returns:
        a :class:`~xray4d.io.Recording` of ``line_integral`` projections
        (T, V, size, size) float32 with ``truth`` (T, size, size, size) float32.
    """
    params = DropletCollision() if params is None else params
    _check_render_args(size, oversample)
    if not (frame_interval_s > 0 and math.isfinite(frame_interval_s)):
        raise ValueError(f"frame_interval_s must be > 0, got {frame_interval_s}")
    if not (noise >= 0 and math.isfinite(noise)):
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    tt = normalised_times(frames)
    angles = _angles_array(angles_deg, frames)
    views = angles.shape[1]
    kin = _Kinematics(params)
    n_fine = size * oversample
    truth = np.zeros((frames, size, size, size), dtype=np.float32)
    clean = np.zeros((frames, views, size, size), dtype=np.float32)
    project = _BoxProjector(angles, n_fine)
    phases = []
    with torch.no_grad():
        for i, t in enumerate(tt):
            state = kin.state(t)
            phases.append(state.phase)
            got = _render_fine(state, kin, n_fine, oversample, float(params.value))
            if got is None:
                continue
            (bz, by, bx), occ = got
            idx = tuple(slice(b.start // oversample, b.stop // oversample) for b in (bz, by, bx))
            truth[(i,) + idx] = _block_mean(occ, oversample, (0, 1, 2)).numpy()
            # fine line integrals are in fine-pixel units: divide by oversample
            fine = project(occ, by, bx, i) / oversample
            clean[i, :, idx[0], :] = _block_mean(fine, oversample, (1, 2)).numpy()
    data = add_noise(clean, noise, seed)
    description = {
        "phantom": "droplet_collision",
        "parameters": params.to_dict(),
        "size": int(size), "frames": int(frames), "oversample": int(oversample),
        "noise": float(noise), "seed": int(seed),
        "normalised_times": "frame i at i / (frames - 1)",
        "phases": phases,
    }
    attrs: dict[str, Any] = {"description": json.dumps(description)}
    if pixel_size_m is not None:
        attrs["pixel_size_m"] = float(pixel_size_m)
    geometry = Geometry.from_angles(angles, frames, size, size, pixel_size_m)
    return Recording(data, geometry, "line_integral",
                     time=np.arange(frames, dtype=np.float64) * frame_interval_s,
                     truth=truth, attrs=attrs)


def simulate_recording(volume: np.ndarray | torch.Tensor, angles_deg: Sequence[float] | np.ndarray,
                       *, noise: float = 0.0, seed: int = 0, time: np.ndarray | None = None,
                       attrs: dict[str, Any] | None = None) -> Recording:
    """Forward-project a volume f[t, z, y, x] into a recording, keeping it as truth.

    Args:
        volume: (T, Z, Y, X) with Y = X (a (Z, Y, X) array is one frame).
        angles_deg: view angles in degrees, (V,) or (T, V).
        noise: Gaussian noise, standard deviation ``noise * max(clean projections)``.
        seed: seed of the noise.
        time: (T,) frame times, default 0 .. T-1.
        attrs: root attributes of the recording (description, pixel_size_m, ...).

    Returns:
        a ``line_integral`` :class:`~xray4d.io.Recording` (T, V, Z, X) with the
        volume as ``truth``. The projector is the dense one of ``projector.py``
        at the volume's own resolution.
    """
    vol = torch.as_tensor(np.asarray(volume, dtype=np.float32))
    if vol.dim() == 3:
        vol = vol[None]
    if vol.dim() != 4 or vol.shape[2] != vol.shape[3]:
        raise ValueError(f"volume must have shape (T, Z, Y, X) with Y = X, got {tuple(vol.shape)}")
    if not torch.isfinite(vol).all():
        raise ValueError("volume contains NaN or Inf values")
    frames, height, width = vol.shape[0], vol.shape[1], vol.shape[3]
    angles = _angles_array(angles_deg, frames)
    geometry = Geometry.from_angles(angles, frames, height, width,
                                    (attrs or {}).get("pixel_size_m"))
    projector = Projector(geometry)
    clean = np.zeros((frames, angles.shape[1], height, width), dtype=np.float32)
    with torch.no_grad():
        for i in range(frames):
            clean[i] = projector.forward(vol[i:i + 1], frames=[i])[0].numpy()
    data = add_noise(clean, noise, seed)
    if time is None:
        time = np.arange(frames, dtype=np.float64)
    time = np.asarray(time, dtype=np.float64)
    if time.shape != (frames,):
        raise ValueError(f"time must have shape ({frames},), got {time.shape}")
    return Recording(data, geometry, "line_integral", time=time, truth=vol.numpy().copy(),
                     attrs=dict(attrs or {}))


# ---------------------------------------------------------------- a non-droplet scene

@dataclass(frozen=True)
class RigidEllipsoid:
    """A solid ellipsoid with a hollow spherical inclusion, moving on an arc and tumbling.

    Lengths are fractions of the field of view W, times normalised (0 .. 1 over
    the movie), as for :class:`DropletCollision`. Nothing here flows or merges:
    the shape is rigid, and its motion (translation plus rotation about a tilted
    axis) is what a static or per-frame method must follow. The inclusion makes
    the object heterogeneous (two values), unlike a liquid.
    """

    #: semi-axes (a_x, a_y, a_z) of the ellipsoid in its body frame
    semi_axes: tuple[float, float, float] = (0.24, 0.13, 0.1)
    value: float = 1.0
    #: inclusion: centre along the body x axis, radius, and its value
    inclusion_offset: float = 0.1
    inclusion_radius: float = 0.05
    inclusion_value: float = 0.4
    #: the centre goes from ``start`` to ``end`` (x, y, z), bulging by ``arc`` along y
    start: tuple[float, float, float] = (-0.14, -0.04, -0.05)
    end: tuple[float, float, float] = (0.14, 0.04, 0.05)
    arc: float = 0.06
    #: rotation over the movie, degrees, about the z axis tilted by ``tilt_deg`` towards x
    turn_deg: float = 120.0
    tilt_deg: float = 30.0

    def pose(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Centre (x, y, z) and rotation matrix (body -> lab) at normalised time t."""
        a, b = np.asarray(self.start, np.float64), np.asarray(self.end, np.float64)
        centre = a + (b - a) * t + np.array([0.0, self.arc * math.sin(math.pi * t), 0.0])
        tilt = math.radians(self.tilt_deg)
        axis = np.array([math.sin(tilt), 0.0, math.cos(tilt)])
        phi = math.radians(self.turn_deg) * t
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        rot = np.eye(3) + math.sin(phi) * k + (1 - math.cos(phi)) * (k @ k)
        return centre, rot


def _ellipsoid_fine(scene: RigidEllipsoid, t: float, n_fine: int) -> torch.Tensor:
    """Point-sampled scene (Z, Y, X) on a grid of n_fine sub-voxels per axis."""
    c = torch.as_tensor(_fine_coords(n_fine), dtype=torch.float64)
    centre, rot = scene.pose(t)
    z, y, x = torch.meshgrid(c, c, c, indexing="ij")
    lab = torch.stack([x - centre[0], y - centre[1], z - centre[2]], dim=-1)
    body = lab @ torch.as_tensor(rot)            # body coordinates = R^T (p - c)
    ax = torch.as_tensor(scene.semi_axes, dtype=torch.float64)
    inside = ((body / ax) ** 2).sum(-1) < 1
    hole = ((body - torch.tensor([scene.inclusion_offset, 0.0, 0.0], dtype=torch.float64)) ** 2
            ).sum(-1) < scene.inclusion_radius ** 2
    vol = inside.to(torch.float32) * scene.value
    vol[inside & hole] = scene.inclusion_value
    return vol


def rigid_ellipsoid_truth(scene: RigidEllipsoid | None = None, size: int = 64, frames: int = 40,
                          *, oversample: int = 2) -> np.ndarray:
    """Voxel-averaged truth f[t, z, y, x] (T, size, size, size) float32 of the scene."""
    scene = RigidEllipsoid() if scene is None else scene
    _check_render_args(size, oversample)
    out = np.zeros((frames, size, size, size), dtype=np.float32)
    for i, t in enumerate(normalised_times(frames)):
        out[i] = _block_mean(_ellipsoid_fine(scene, float(t), size * oversample), oversample,
                             (0, 1, 2)).numpy()
    return out


def simulate_rigid_ellipsoid(scene: RigidEllipsoid | None = None, size: int = 64, frames: int = 40,
                             angles_deg: Sequence[float] | np.ndarray = (0.0, 23.8),
                             noise: float = 0.01, seed: int = 0, *, oversample: int = 2,
                             frame_interval_s: float = 1.0) -> Recording:
    """Simulate a recording of the rigid tumbling ellipsoid, with its ground truth.

    As :func:`simulate_droplets`: the truth is the block average of a grid
    ``oversample`` times finer, and the projections are line integrals of that
    fine grid on a finer detector, averaged over pixel blocks.
    """
    scene = RigidEllipsoid() if scene is None else scene
    _check_render_args(size, oversample)
    angles = _angles_array(angles_deg, frames)
    n_fine = size * oversample
    fine_geometry = Geometry.from_angles(angles, frames, n_fine, n_fine)
    projector = Projector(fine_geometry)
    truth = np.zeros((frames, size, size, size), dtype=np.float32)
    clean = np.zeros((frames, angles.shape[1], size, size), dtype=np.float32)
    with torch.no_grad():
        for i, t in enumerate(normalised_times(frames)):
            fine = _ellipsoid_fine(scene, float(t), n_fine)
            truth[i] = _block_mean(fine, oversample, (0, 1, 2)).numpy()
            proj = projector.forward(fine[None], frames=[i])[0] / oversample
            clean[i] = _block_mean(proj, oversample, (1, 2)).numpy()
    description = {"phantom": "rigid_ellipsoid", "parameters": dataclasses.asdict(scene),
                   "size": int(size), "frames": int(frames), "oversample": int(oversample),
                   "noise": float(noise), "seed": int(seed),
                   "normalised_times": "frame i at i / (frames - 1)"}
    return Recording(add_noise(clean, noise, seed),
                     Geometry.from_angles(angles, frames, size, size), "line_integral",
                     time=np.arange(frames, dtype=np.float64) * frame_interval_s, truth=truth,
                     attrs={"description": json.dumps(description)})


# ---------------------------------------------------------------- intensity recordings

def fresnel_unity_distance_m(pixel_size_m: float, energy_kev: float) -> float:
    """Sample-detector distance in metres at which one pixel has Fresnel number 1, ``p^2 / lambda``."""
    from .physics import wavelength_m
    return pixel_size_m ** 2 / wavelength_m(energy_kev)


def droplet_exit_waves(params: DropletCollision | None = None, size: int = 64, frames: int = 40,
                       angles_deg: Sequence[float] | np.ndarray = (0.0, 23.8), *,
                       energy_kev: float = 15.0, pixel_size_m: float = 2e-6,
                       material: str = "H2O", density_g_cm3: float = 1.0, oversample: int = 2,
                       frame_interval_s: float = 1.0):
    """Exit waves of a droplet collision in a liquid, on a detector ``oversample`` times finer.

    The projected thickness of the liquid (line integrals of its occupancy, as
    :func:`simulate_droplets` renders them, times the fine pixel size
    ``pixel_size_m / oversample``) gives the projected phase ``-k delta t`` and
    amplitude ``exp(-k beta t)`` (projection approximation).

    Returns:
        (waves, index, fine): complex128 tensor (T, V, size*oversample, size*oversample),
        the liquid's :class:`~xray4d.physics.RefractiveIndex`, and the
        fine-detector line-integral :class:`~xray4d.io.Recording` of the occupancy.
    """
    from . import physics

    params = DropletCollision() if params is None else params
    _check_render_args(size, oversample)
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
    :func:`simulate_droplets`), times the liquid's delta and beta at
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
        size, frames, angles_deg, oversample, frame_interval_s: as :func:`simulate_droplets`.
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
        a :class:`~xray4d.io.Recording` with quantity ``intensity`` (raw counts
        (T, V, size, size)), ``white`` (n_flats, V, H, W), ``dark`` (n_darks, V, H, W),
        ``truth`` = delta and ``truth_beta`` = beta of the voxel-averaged liquid,
        and root attributes ``energy_keV``, ``pixel_size_m``, ``propagation_distance_m``.
    """
    from . import physics

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
    m = oversample
    truth = droplet_truth(dataclasses.replace(params, value=1.0), size=size, frames=frames,
                          oversample=m)
    fine_px = pixel_size_m / m
    gen = torch.Generator().manual_seed(int(seed))
    views = fine.views
    data = np.zeros((frames, views, size, size), dtype=np.float32)
    with torch.no_grad():
        for i in range(frames):
            wave = waves[i]
            if distance_m > 0:
                wave = physics.fresnel_propagate(wave, distance_m, fine_px, energy_kev)
            img = physics.gaussian_psf(physics.intensity(wave), psf_sigma_px * m)
            img = _block_mean(img, m, (1, 2))
            data[i] = physics.record_counts(img, fluence, dark_counts=dark_counts,
                                            readout_sigma=readout_sigma, generator=gen
                                            ).float().numpy()
        ones = torch.ones((n_flats, views, size, size), dtype=torch.float64)
        white = physics.record_counts(ones, fluence, dark_counts=dark_counts,
                                      readout_sigma=readout_sigma, generator=gen).float().numpy()
        dark = None
        if n_darks:
            dark = physics.record_counts(torch.zeros((n_darks, views, size, size),
                                                     dtype=torch.float64),
                                         None, dark_counts=dark_counts,
                                         readout_sigma=readout_sigma, generator=gen
                                         ).float().numpy()
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
