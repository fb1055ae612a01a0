"""The droplet collision: its parameters and its motion in continuous time.

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
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["DropletCollision", "DropletState", "Kinematics", "droplet_state"]


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


class Kinematics:
    """The laws of motion of a :class:`DropletCollision` in continuous time.

    Distance of the centres, neck blend, axial stretch and the turning collision
    axis as functions of the normalised time (vectorised over numpy arrays where
    they can be), the volume of the smooth union, and :meth:`state`: the whole
    shape at one time.
    """

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
    return Kinematics(params).state(time)
