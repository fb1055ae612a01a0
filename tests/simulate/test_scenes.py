"""The scene library: every scene's truth and projections against the acquisition contract
(the theta = 0 projection is the sum of the voxel-averaged truth along y; every view carries
the truth's mass) and against analytic references (cylinder chords, volumes of cylinders,
spheres and discs, rigid-body invariants), plus the CLI's listing and one run per scene."""
from __future__ import annotations

import math

import numpy as np
import pytest

from xray4d.cli import main
from xray4d.io import load_recording
from xray4d.simulate import SCENES, get_scene
from xray4d.simulate.bubble import BubbleColumn
from xray4d.simulate.crown import CrownSplash
from xray4d.simulate.jet import LiquidJet, liquid_jet_truth
from xray4d.simulate.mixing import MixingDrops
from xray4d.simulate.spray import Spray, spray_truth
from xray4d.simulate.wide import WideCylinder

SIZE, FRAMES = 24, 4
ANGLES = (0.0, 23.8, 67.5, 112.5)
_CACHE: dict[str, object] = {}


def _recording(name: str):
    """Noise-free 24^3 x 4-frame recording of a scene from four views (made once)."""
    if name not in _CACHE:
        _CACHE[name] = get_scene(name).recording(size=SIZE, frames=FRAMES, angles_deg=ANGLES,
                                                 noise=0.0, seed=0)
    return _CACHE[name]


def _centred(n: int) -> np.ndarray:
    return np.arange(n) - (n - 1) / 2.0


def _sub_positions(n: int, sub: int = 8) -> np.ndarray:
    """Sub-pixel positions (n * sub,) in W units, ``sub`` per pixel."""
    offs = (np.arange(sub) + 0.5) / sub - 0.5
    return ((_centred(n)[:, None] + offs[None, :]) / n).reshape(-1)


# ------------------------------------------------------------------ every scene

@pytest.mark.parametrize("name", list(SCENES))
def test_truth_lies_between_zero_and_the_scene_value_and_reaches_it(name: str) -> None:
    truth = _recording(name).truth
    assert truth.shape == (FRAMES, SIZE, SIZE, SIZE) and truth.dtype == np.float32
    top = SCENES[name].values[0]
    assert truth.min() >= 0.0
    assert truth.max() <= top * (1 + 1e-6)
    assert truth.max() >= 0.99 * top


@pytest.mark.parametrize("name", list(SCENES))
def test_every_frame_differs_from_the_next(name: str) -> None:
    truth = _recording(name).truth
    for f in range(FRAMES - 1):
        assert np.abs(truth[f + 1] - truth[f]).max() > 0.2, f


@pytest.mark.parametrize("name", list(SCENES))
def test_view_at_theta_0_is_the_sum_of_the_truth_along_y(name: str) -> None:
    rec = _recording(name)
    along_y = rec.truth.astype(np.float64).sum(axis=2)               # (T, Z, X)
    # the fine detector's pixel blocks see the fine voxels' blocks: equal up to rounding
    np.testing.assert_allclose(rec.projections[:, 0], along_y, atol=1e-4 * along_y.max())


@pytest.mark.parametrize("name", [n for n in SCENES if SCENES[n].width == 1.0])
def test_every_view_carries_the_mass_of_the_truth(name: str) -> None:
    rec = _recording(name)
    mass = rec.truth.astype(np.float64).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(rec.projections.astype(np.float64).sum(axis=(2, 3)),
                               np.broadcast_to(mass[:, None], (FRAMES, len(ANGLES))), rtol=3e-3)


@pytest.mark.parametrize("name", ["jet", "tripod", "two-liquids"])
def test_noise_is_deterministic_under_the_seed(name: str) -> None:
    scene = get_scene(name)
    kw = dict(size=16, frames=3, angles_deg=(0.0, 23.8), noise=0.05)
    a, b = scene.recording(seed=3, **kw), scene.recording(seed=3, **kw)
    c = scene.recording(seed=4, **kw)
    clean = scene.recording(seed=3, **{**kw, "noise": 0.0})
    np.testing.assert_array_equal(a.projections, b.projections)
    np.testing.assert_array_equal(a.truth, c.truth)
    assert not np.array_equal(a.projections, c.projections)
    sigma = float((a.projections - clean.projections).std())
    assert sigma == pytest.approx(0.05 * clean.projections.max(), rel=0.1)


# ------------------------------------------------------------------ scene by scene

def test_wide_cylinder_projections_are_truncated() -> None:
    rec = _recording("wide-cylinder")
    p = rec.projections.astype(np.float64)
    c = WideCylinder()
    # views 0 and 23.8: the liquid runs through both edge columns, whose chords reach about
    # 2 r0 (1 - a) voxels at least
    edges = p[:, :2][..., [0, -1]].max(axis=2)                        # (T, 2 views, 2 edges)
    assert edges.min() > 2 * c.radius * (1 - c.amplitude) * SIZE * 0.8
    # view 0 sees the liquid inside the volume only; every oblique view sees more (its rays
    # cross the cylinder outside the volume too)
    mass = rec.truth.astype(np.float64).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(p[:, 0].sum(axis=(1, 2)), mass, rtol=1e-4)
    assert (p[:, 1:].sum(axis=(2, 3)) > 1.03 * mass[:, None]).all()


def test_wide_cylinder_matches_analytic_chords_at_theta_0() -> None:
    c = WideCylinder()
    n = 32
    rec = get_scene("wide-cylinder").recording(size=n, frames=1, angles_deg=(0.0,), noise=0.0,
                                               seed=0)
    x = _sub_positions(n)                                # columns u = x at theta 0
    z = _sub_positions(n)[:, None]
    y0, z0 = c.centre
    r = c.radius * (1 + c.amplitude * np.sin(2 * np.pi * x / c.wavelength))
    zc = z0 + c.kink * np.sin(2 * np.pi * x / c.kink_wavelength)
    chord = 2 * np.sqrt(np.clip(r ** 2 - (z - zc) ** 2, 0, None)) * n      # voxel units
    ref = chord.reshape(n, 8, n, 8).mean(axis=(1, 3))
    got = rec.projections[0, 0]
    assert np.abs(got - ref).max() < 0.06 * ref.max()
    inner = ref > 0.5 * ref.max()
    assert np.abs(got[inner] / ref[inner] - 1).max() < 0.05


def test_two_liquids_start_with_both_values_and_mix_to_intermediate_ones() -> None:
    p = MixingDrops()
    n = 32
    truth = get_scene("two-liquids").truth(size=n, frames=5)
    first = truth[0][truth[0] > 0.05]
    assert np.mean(np.abs(first - p.value_1) < 0.02) > 0.15
    assert np.mean(np.abs(first - p.value_2) < 0.02) > 0.15
    last = truth[-1][truth[-1] > 0.05]
    assert np.mean((last > p.value_2 + 0.05) & (last < p.value_1 - 0.05)) > 0.5
    assert np.mean(np.abs(last - p.value_1) < 0.02) == 0.0
    # frame 0: two separate spheres, mass v1 V1 + v2 V2 (voxel units)
    col = p.collision
    mass = 4 / 3 * math.pi * (p.value_1 * col.radius_1 ** 3
                              + p.value_2 * col.radius_2 ** 3) * n ** 3
    assert truth[0].sum() == pytest.approx(mass, rel=0.01)


def test_jet_keeps_its_volume_through_pinch_off() -> None:
    # four whole wavelengths in the height: the volume in view is pi r0^2 W whatever the phase
    jet = LiquidJet(wavelength=0.25, tilt_deg=0.0)
    n = 32
    truth = liquid_jet_truth(jet, size=n, frames=6, oversample=4)
    np.testing.assert_allclose(truth.sum(axis=(1, 2, 3)), math.pi * jet.radius ** 2 * n ** 3,
                               rtol=0.01)
    # before the pinch the jet is one body in every row; at the end the rows of the necks
    # are empty (separate drops)
    rows = truth.sum(axis=(2, 3))                                     # (T, Z)
    assert rows[0].min() > 0.5 * math.pi * (jet.radius * n) ** 2
    assert (rows[-1] < 1e-3).sum() >= 4


def test_bubble_column_rows_are_cylinder_chords_and_volume_is_column_minus_bubble() -> None:
    b = BubbleColumn()
    n = 32
    rec = get_scene("bubble-column").recording(size=n, frames=3, angles_deg=(0.0, 23.8),
                                               noise=0.0, seed=0)
    u = _sub_positions(n)
    cx, cy = b.column_centre
    row = 4           # z = -0.36: below the bubble at the last frame, inside the column
    for v, theta in enumerate((0.0, 23.8)):
        uc = cx * math.cos(math.radians(theta)) + cy * math.sin(math.radians(theta))
        chord = 2 * np.sqrt(np.clip(b.column_radius ** 2 - (u - uc) ** 2, 0, None)) * n
        ref = chord.reshape(n, 8).mean(axis=1)
        np.testing.assert_allclose(rec.projections[-1, v, row], ref, atol=0.03 * ref.max())
    for f, t in enumerate((0.0, 0.5, 1.0)):
        r = b.bubble_radius * (1 + b.growth * t)        # a spheroid of this sphere's volume
        vol = math.pi * b.column_radius ** 2 * b.column_height - 4 / 3 * math.pi * r ** 3
        assert rec.truth[f].sum() == pytest.approx(vol * n ** 3, rel=0.01)


def test_spray_drops_are_3_to_8_voxels_across_never_touch_and_keep_their_volume() -> None:
    s = Spray()
    radii, _, _ = s.layout()
    assert len(radii) == s.drops
    assert 3.0 <= 2 * radii.min() * 64 and 2 * radii.max() * 64 <= 8.0
    for t in np.linspace(0, 1, 11):
        c = s.centres(float(t))
        d = np.linalg.norm(c[:, None] - c[None], axis=-1) - radii[:, None] - radii[None]
        assert d[~np.eye(len(radii), dtype=bool)].min() > 0
    n = 32
    truth = spray_truth(s, size=n, frames=1, oversample=4)
    assert truth.sum() == pytest.approx(4 / 3 * math.pi * ((radii * n) ** 3).sum(), rel=0.01)


def test_tripod_is_rigid() -> None:
    truth = get_scene("tripod").truth(size=32, frames=3, oversample=2).astype(np.float64)
    masses = truth.sum(axis=(1, 2, 3))
    np.testing.assert_allclose(masses, masses[0], rtol=0.01)
    c = _centred(32)
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    pts = np.stack([x.ravel(), y.ravel(), z.ravel()])
    eig = []
    for f in range(3):
        w = truth[f].ravel() / masses[f]
        d = pts - (pts @ w)[:, None]
        eig.append(np.linalg.eigvalsh((d * w) @ d.T))
    # the principal second moments of a rigid body do not change as it turns and drifts
    np.testing.assert_allclose(eig[1], eig[0], rtol=0.03)
    np.testing.assert_allclose(eig[2], eig[0], rtol=0.03)


def test_crown_starts_as_film_and_drop_and_grows_a_thin_wall() -> None:
    s = CrownSplash()
    n = 32
    truth = get_scene("crown").truth(size=n, frames=5)
    film = math.pi * s.film_radius ** 2 * s.film_thickness
    drop = 4 / 3 * math.pi * s.drop_radius ** 3
    assert truth[0].sum() == pytest.approx((film + drop) * n ** 3, rel=0.015)
    # at the end: nothing of the drop is left above the film but the crown's wall, whose
    # horizontal section halfway up is a thin ring around the axis
    base, height, thick = s.crown(1.0)
    k = int(round((s.film_level + height / 2) * n + (n - 1) / 2))
    ring = truth[-1, k]
    c = _centred(n) / n
    rho = np.hypot(c[None, :] - s.centre[0], c[:, None] - s.centre[1])
    assert ring[rho < base - 0.1].max() < 0.01
    assert ring.sum() == pytest.approx(2 * math.pi * (base + height / 2 * math.tan(
        math.radians(s.flare_deg))) * thick / math.cos(math.radians(s.flare_deg)) * n * n,
        rel=0.2)


# ------------------------------------------------------------------ CLI

def test_simulate_list_names_every_scene_once(capsys) -> None:
    assert main(["simulate", "--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == list(SCENES)
    assert all(len(ln.split()) > 3 for ln in lines)


@pytest.mark.parametrize("name", [n for n in SCENES if n != "droplets"])
def test_simulate_writes_every_scene(name: str, tmp_path, capsys) -> None:
    out = tmp_path / f"{name}.h5"
    assert main(["simulate", name, "--out", str(out), "--size", "12", "--frames", "2",
                 "--angles", "0,23.8,67.5", "--noise", "0.02", "--seed", "5"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    rec = load_recording(out)
    assert rec.projections.shape == (2, 3, 12, 12) and rec.truth.shape == (2, 12, 12, 12)
    direct = get_scene(name).recording(size=12, frames=2, angles_deg=(0.0, 23.8, 67.5),
                                       noise=0.02, seed=5)
    np.testing.assert_array_equal(rec.projections, direct.projections)


@pytest.mark.parametrize("argv, flag", [
    (["simulate"], "SCENE"),
    (["simulate", "jet", "--out", "OUT", "--size", "1"], "--size"),
    (["simulate", "spray", "--out", "OUT", "--frames", "0"], "--frames"),
    (["simulate", "crown", "--out", "OUT", "--noise", "nan"], "--noise"),
    (["simulate", "tripod", "--out", "OUT", "--angles", "0,a"], "--angles"),
])
def test_simulate_refuses_bad_requests_in_one_line(argv, flag, tmp_path, capsys) -> None:
    argv = [str(tmp_path / "x.h5") if a == "OUT" else a for a in argv]
    try:
        status = main(argv)
    except SystemExit as exc:          # refused while parsing: a flag out of its range
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0]
    assert not (tmp_path / "x.h5").exists()
