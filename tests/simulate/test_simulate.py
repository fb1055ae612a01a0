"""Droplet-collision simulator: numbers checked against analytic references
(sphere chords and volumes, line-of-centres geometry, momentum conservation,
the theta = 0 / 90 identities of data-format.md), not against the simulator."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from xray4d.simulate import (DropletCollision, add_noise, droplet_state, droplet_truth,
                             normalised_times, simulate_droplets)

SIZE = 32



def _centred(n: int) -> np.ndarray:
    return np.arange(n) - (n - 1) / 2.0


def _pixel_averaged_chords(centres_vox: list[tuple[float, float]], radius_vox: float,
                           theta_deg: float, n: int, sub: int = 8) -> np.ndarray:
    """Analytic line integrals of unit spheres, averaged over each detector pixel.

    centres_vox: (x, z) of sphere centres (y = 0) in voxel units; the chord of a
    sphere at distance d from the ray is 2 sqrt(R^2 - d^2).
    """
    offs = (np.arange(sub) + 0.5) / sub - 0.5
    u = (_centred(n)[:, None] + offs[None, :]).reshape(-1)           # columns
    z = (_centred(n)[:, None] + offs[None, :]).reshape(-1)           # rows
    c = math.cos(math.radians(theta_deg))
    out = np.zeros((n * sub, n * sub))
    for cx, cz in centres_vox:
        cu = cx * c                     # detector coordinate u = x cos + y sin, y = 0
        d2 = (u[None, :] - cu) ** 2 + (z[:, None] - cz) ** 2
        out += 2 * np.sqrt(np.clip(radius_vox ** 2 - d2, 0, None))
    return out.reshape(n, sub, n, sub).mean(axis=(1, 3))


def _second_moments(vol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroid (x, y, z) and covariance of a volume f[z, y, x], voxel units."""
    n_z, n_y, n_x = vol.shape
    z, y, x = np.meshgrid(_centred(n_z), _centred(n_y), _centred(n_x), indexing="ij")
    pts = np.stack([x.ravel(), y.ravel(), z.ravel()])
    w = vol.ravel() / vol.sum()
    mean = pts @ w
    d = pts - mean[:, None]
    return mean, (d * w) @ d.T


def _axis_angle_xz(vol: np.ndarray) -> float:
    """Angle (deg) from +x towards +z of the longest principal axis, in the xz plane."""
    _, cov = _second_moments(vol)
    sxx, szz, sxz = cov[0, 0], cov[2, 2], cov[0, 2]
    return 0.5 * math.degrees(math.atan2(2 * sxz, sxx - szz))


# ------------------------------------------------------------------ static spheres

def test_approach_frame_matches_analytic_sphere_chords():
    p = DropletCollision()
    rec = simulate_droplets(p, size=SIZE, frames=1, angles_deg=(0.0, 23.8, 90.0), noise=0.0)
    assert rec.projections.shape == (1, 3, SIZE, SIZE)
    assert rec.projections.dtype == np.float32
    # frame 0 = normalised time 0: centres at +-(r1 + r2 + v t_c) / 2 on x, in W units
    half = (p.radius_1 + p.radius_2 + p.approach_speed * p.contact_time) / 2
    centres = [(-half * SIZE, 0.0), (half * SIZE, 0.0)]
    radius = p.radius_1 * SIZE
    peak = 2 * radius
    for v, theta in enumerate((0.0, 23.8)):
        ref = _pixel_averaged_chords(centres, radius, theta, SIZE)
        got = rec.projections[0, v]
        assert np.abs(got - ref).max() < 0.04 * peak, theta
        inner = ref > 0.5 * peak
        assert np.abs(got[inner] / ref[inner] - 1).max() < 0.03, theta
    # every view carries the mass of two spheres, 2 * 4/3 pi R^3 voxels
    mass = 2 * 4 / 3 * math.pi * radius ** 3
    np.testing.assert_allclose(rec.projections[0].sum(axis=(1, 2)), mass, rtol=0.01)


def test_truth_volume_matches_sphere_volume():
    p = DropletCollision(radius_1=0.15, radius_2=0.1)
    truth = droplet_truth(p, size=SIZE, times=[0.0])
    assert truth.shape == (1, SIZE, SIZE, SIZE) and truth.dtype == np.float32
    assert truth.min() >= 0 and truth.max() <= 1
    ref = 4 / 3 * math.pi * ((0.15 * SIZE) ** 3 + (0.1 * SIZE) ** 3)
    assert abs(truth.sum() / ref - 1) < 0.01
    # two separate drops (a gap of v t_c between them) that hold their own volumes
    lab, n = ndimage.label(truth[0] > 0)
    assert n == 2
    sizes = sorted(truth[0][lab == i].sum() for i in (1, 2))
    np.testing.assert_allclose(sizes, [4 / 3 * math.pi * (0.1 * SIZE) ** 3,
                                       4 / 3 * math.pi * (0.15 * SIZE) ** 3], rtol=0.02)


def test_theta_0_and_90_identities_of_the_fine_projection():
    rec = simulate_droplets(DropletCollision(impact_parameter=0.4), size=SIZE, frames=5,
                            angles_deg=(0.0, 90.0), noise=0.0)
    truth = rec.truth
    scale = truth.sum(axis=2).max()
    np.testing.assert_allclose(rec.projections[:, 0], truth.sum(axis=2), atol=1e-4 * scale)
    np.testing.assert_allclose(rec.projections[:, 1], truth.sum(axis=3), atol=1e-4 * scale)


# ------------------------------------------------------------------ conservation laws

@pytest.mark.parametrize("params", [
    DropletCollision(),
    DropletCollision(radius_1=0.15, radius_2=0.1, impact_parameter=0.5),
    DropletCollision(separation=True, impact_parameter=0.3, impact_direction_deg=90.0),
], ids=["head-on", "off-centre-unequal", "separation"])
def test_volume_and_centre_of_mass_conserved(params):
    truth = droplet_truth(params, size=SIZE, frames=11)
    ref = params.total_volume * SIZE ** 3
    rel = truth.sum(axis=(1, 2, 3)) / ref - 1
    assert np.abs(rel).max() < 0.02, rel
    # no external force: the centre of mass stays at the centre of the volume
    for vol in truth:
        mean, _ = _second_moments(vol)
        assert np.abs(mean).max() < 0.3, mean


# ------------------------------------------------------------------ coalescence

def test_coalescence_is_one_body_with_a_growing_neck():
    p = DropletCollision()
    t_c, t_m = p.contact_time, p.coalescence_time
    times = np.concatenate([[0.1], np.linspace(t_c + 0.01, t_c + t_m, 8)])
    truth = droplet_truth(p, size=SIZE, times=times)
    assert ndimage.label(truth[0] > 0.5)[1] == 2          # before contact
    neck = []
    for vol in truth[1:]:
        assert ndimage.label(vol > 0.5)[1] == 1
        # cross-section in the plane x = 0 (between the two middle columns)
        neck.append(vol[:, :, SIZE // 2 - 1:SIZE // 2 + 1].sum() / 2)
    assert np.all(np.diff(neck) > 0), neck
    # the neck ends wider than a drop's equatorial section: the drops have merged
    assert neck[-1] > math.pi * (p.radius_1 * SIZE) ** 2


def test_merged_drop_oscillates_and_damps():
    p = DropletCollision()
    t_end = p.contact_time + p.coalescence_time
    period = p.oscillation_period
    times = t_end + np.array([0.0, 0.5, 1.0]) * period      # oblate, prolate, oblate extremes
    truth = droplet_truth(p, size=SIZE, times=times)
    aspect = []
    for vol in truth:
        _, cov = _second_moments(vol)
        aspect.append(cov[0, 0] / cov[2, 2])                 # along the axis / across it
    assert aspect[0] < 1 < aspect[1] and aspect[2] < 1, aspect
    assert (1 - aspect[2]) < (1 - aspect[0]), aspect        # damped
    # axisymmetric about the collision axis: y and z extents equal
    _, cov = _second_moments(truth[1])
    assert abs(cov[1, 1] / cov[2, 2] - 1) < 0.02


def test_off_centre_impact_starts_on_the_line_of_centres_and_rotates():
    b = 0.5
    p = DropletCollision(impact_parameter=b)                   # offset along +z
    t_c = p.contact_time
    truth = droplet_truth(p, size=SIZE, times=[t_c, t_c + 0.05, t_c + 0.1])
    angles = [_axis_angle_xz(v) for v in truth]
    # at contact the line of centres makes asin(B) with the x axis
    assert abs(angles[0] - math.degrees(math.asin(b))) < 1.5, angles
    # angular momentum mu b v about -y: the axis turns from +x towards +z
    assert angles[0] < angles[1] < angles[2], angles
    assert ndimage.label(truth[1] > 0.5)[1] == 1


def test_separation_ends_in_two_equal_drops():
    p = DropletCollision(separation=True)
    truth = droplet_truth(p, size=SIZE, times=[0.5, 1.0])
    assert ndimage.label(truth[0] > 0.5)[1] == 1               # stretched, still one body
    assert ndimage.label(truth[1] > 0.5)[1] == 2
    lab, n = ndimage.label(truth[1] > 0)                      # partial voxels included
    assert n == 2
    halves = [truth[1][lab == i].sum() for i in (1, 2)]
    np.testing.assert_allclose(halves, p.total_volume * SIZE ** 3 / 2, rtol=0.03)
    assert droplet_state(p, 1.0).phase == "separated"


def test_phases_follow_the_parameters():
    p = DropletCollision(contact_time=0.3, coalescence_time=0.2)
    assert droplet_state(p, 0.29).phase == "approach"
    assert droplet_state(p, 0.31).phase == "coalescence"
    assert droplet_state(p, 0.51).phase == "oscillation"
    s = droplet_state(p, 0.3)
    # at contact the centres are r1 + r2 apart and the volume needs no rescaling
    assert abs(np.linalg.norm(s.centres[1] - s.centres[0]) - (p.radius_1 + p.radius_2)) < 1e-9
    assert s.scale == pytest.approx(1.0)


# ------------------------------------------------------------------ noise, seeds, angles

def test_noise_is_deterministic_and_has_the_requested_level():
    p = DropletCollision()
    kw = dict(size=SIZE, frames=2, angles_deg=(0.0, 23.8))
    a = simulate_droplets(p, noise=0.05, seed=3, **kw)
    b = simulate_droplets(p, noise=0.05, seed=3, **kw)
    c = simulate_droplets(p, noise=0.05, seed=4, **kw)
    clean = simulate_droplets(p, noise=0.0, seed=3, **kw)
    assert np.array_equal(a.projections, b.projections)
    assert np.array_equal(a.truth, b.truth)
    assert not np.array_equal(a.projections, c.projections)
    assert np.array_equal(a.truth, clean.truth)
    resid = (a.projections - clean.projections).astype(np.float64)
    sigma = 0.05 * clean.projections.max()
    assert abs(resid.std() / sigma - 1) < 0.05
    assert abs(resid.mean()) < 0.1 * sigma
    # without noise the seed does not matter
    assert np.array_equal(clean.projections,
                          simulate_droplets(p, noise=0.0, seed=99, **kw).projections)


def test_add_noise_level():
    clean = np.full((4, 2, 30, 30), 2.0, dtype=np.float32)
    noisy = add_noise(clean, 0.1, seed=0)
    assert noisy.dtype == np.float32
    assert abs((noisy - clean).std() / 0.2 - 1) < 0.05
    assert np.array_equal(add_noise(clean, 0.0, seed=0), clean)
    with pytest.raises(ValueError):
        add_noise(clean, -0.1)


def test_angles_per_frame_and_recording_metadata():
    frames = 4
    angles = np.stack([np.array([0.0, 23.8]) + 10.0 * i for i in range(frames)])
    rec = simulate_droplets(DropletCollision(), size=24, frames=frames, angles_deg=angles,
                            noise=0.0, frame_interval_s=0.5)
    np.testing.assert_array_equal(rec.geometry.angles_deg, angles)
    assert rec.quantity == "line_integral"
    np.testing.assert_allclose(rec.time, 0.5 * np.arange(frames))
    # every view of a frame carries the same mass as the truth (data-format.md)
    sums = rec.projections.sum(axis=(2, 3))
    mass = np.broadcast_to(rec.truth.sum(axis=(1, 2, 3))[:, None], sums.shape)
    np.testing.assert_allclose(sums, mass, rtol=0.005)
    import json
    desc = json.loads(rec.attrs["description"])
    assert desc["parameters"]["radius_1"] == pytest.approx(0.14)
    assert len(desc["phases"]) == frames


def test_oversample_one_keeps_the_mass():
    p = DropletCollision()
    a = simulate_droplets(p, size=SIZE, frames=3, noise=0.0, oversample=1)
    ref = p.total_volume * SIZE ** 3
    np.testing.assert_allclose(a.projections.sum(axis=(2, 3)), ref, rtol=0.02)


def test_normalised_times():
    np.testing.assert_allclose(normalised_times(5), [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(normalised_times(1), [0.0])


@pytest.mark.parametrize("kwargs", [
    dict(radius_1=-0.1), dict(radius_2=0.0), dict(impact_parameter=1.0),
    dict(approach_speed=0.0), dict(oscillation_amplitude=0.95), dict(min_distance=1.0),
    dict(value=float("nan")), dict(restitution=0.0),
])
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ValueError):
        DropletCollision(**kwargs)


def test_bad_simulation_arguments_are_refused():
    with pytest.raises(ValueError):
        simulate_droplets(size=1, frames=2)
    with pytest.raises(ValueError):
        simulate_droplets(size=8, frames=2, noise=-1)
    with pytest.raises(ValueError):
        simulate_droplets(size=8, frames=3, angles_deg=np.zeros((2, 2)))


def test_sparse_fallback_gives_the_same_projections(monkeypatch):
    import xray4d.simulate.acquisition as acquisition
    kw = dict(size=16, frames=3, angles_deg=(0.0, 23.8, 61.0), noise=0.0)
    dense = simulate_droplets(DropletCollision(impact_parameter=0.3), **kw)
    monkeypatch.setattr(acquisition, "DENSE_OPERATOR_LIMIT_BYTES", 0)
    sparse = simulate_droplets(DropletCollision(impact_parameter=0.3), **kw)
    scale = dense.projections.max()
    np.testing.assert_allclose(sparse.projections, dense.projections, atol=1e-5 * scale)
