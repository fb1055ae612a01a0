"""The value bound: from the material's physics (against delta from the free-electron formula),
estimated from projections of simulated bodies and scenes (against their truth), and the
diagnostic of a reconstruction at its bound (against hand-counted shares), with its warnings
on the command line."""
from __future__ import annotations

import dataclasses
import json
import math
import warnings

import h5py
import numpy as np
import pytest
import torch

from xray4d.cli import main
from xray4d.config import resolve_config
from xray4d.data import Recording
from xray4d.errors import InputError, ValueBoundWarning
from xray4d.geometry import Geometry
from xray4d.io import save_recording
from xray4d.reconstruct.measurement import MeasuredData
from xray4d.reconstruct.value_bound import (bound_diagnostic, describe_bound, distinct_views,
                                            estimate_value_bound, estimate_value_max,
                                            material_value, resolve_value_max, warn_about_bound)
from xray4d.reconstruct.value_sections import estimate_value_sections, section_value
from xray4d.simulate import get_scene
from xray4d.simulate.scene import box_coordinates, occupancy, record, rotation
from xray4d.simulate.sampling import whole_box

TWO, FOUR = (0.0, 23.8), (0.0, 23.8, 67.5, 112.5)

# water at 15 keV far above the K edge of O (0.54 keV): f1 ~ Z, so delta = r_e lambda^2 n_e /
# (2 pi) with n_e = 10 electrons per molecule: 2.8179e-15 m * (8.2656e-11 m)^2 *
# (1e6 g/m^3 / 18.015 g/mol * 6.02214e23 * 10) / (2 pi) = 1.0243e-6
WATER_DELTA_15KEV = 1.0243e-6
K_15KEV = 2 * math.pi / 8.2656e-11          # wavenumber, 1/m


def _recording(quantity: str = "line_integral", **attrs) -> Recording:
    geometry = Geometry.from_angles(np.array(TWO), 1, 8, 8)
    return Recording(np.ones((1, 2, 8, 8), np.float32), geometry, quantity, attrs=attrs)


# ------------------------------------------------------------------ from the material

def test_material_value_of_line_integrals_is_delta() -> None:
    phys = resolve_config().physics
    assert material_value(_recording(energy_keV=15.0), phys) == pytest.approx(
        WATER_DELTA_15KEV, rel=0.01)


def test_material_value_of_phase_data_is_k_delta_pixel() -> None:
    phys = resolve_config().physics
    got = material_value(_recording("phase", energy_keV=15.0, pixel_size_m=1e-6), phys)
    assert got == pytest.approx(K_15KEV * WATER_DELTA_15KEV * 1e-6, rel=0.01)


@pytest.mark.parametrize("quantity, attrs, missing", [
    ("line_integral", {}, "energy_keV"),
    ("line_integral", {"energy_keV": -3.0}, "energy_keV"),
    ("phase", {"energy_keV": 15.0}, "pixel_size_m"),
    ("intensity", {"energy_keV": 15.0}, "quantity 'intensity'"),
])
def test_material_value_refuses_what_cannot_be_derived(quantity, attrs, missing) -> None:
    with pytest.raises(InputError, match=missing) as exc:
        material_value(_recording(quantity, **attrs), resolve_config().physics)
    assert "\n" not in str(exc.value)


def test_resolve_uses_the_material_when_asked_and_the_config_first() -> None:
    data = MeasuredData(_recording(energy_keV=15.0))
    cfg = resolve_config("default", {"physics": {"value_from_material": True}})
    value, source = resolve_value_max(data, cfg)
    assert source == "material" and value == pytest.approx(1.02 * WATER_DELTA_15KEV, rel=0.01)
    cfg = resolve_config("default", {"physics": {"value_from_material": True},
                                     "field": {"value_max": 3.0}})
    assert resolve_value_max(data, cfg) == (3.0, "config")


def test_reconstruct_material_flag_bounds_line_integrals_by_delta(tmp_path, capsys) -> None:
    rec = get_scene("droplets").recording(size=12, frames=2, angles_deg=TWO, noise=0.0, seed=0)
    rec.projections *= np.float32(WATER_DELTA_15KEV)          # line integrals of delta
    path = tmp_path / "rec.h5"
    save_recording(rec, path)
    argv = ["reconstruct", str(path), "--out", str(tmp_path / "out.h5"), "--iterations", "3",
            "--material", "H2O", "--quiet", "--no-preview"]
    assert main(argv) == 2                              # no energy_keV in the file
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "energy_keV" in err[0]
    assert not (tmp_path / "out.h5").exists()
    rec.attrs["energy_keV"] = 15.0
    save_recording(rec, path)
    assert main(argv) == 0
    with h5py.File(tmp_path / "out.h5") as f:
        bound = json.loads(f["/reconstruction"].attrs["config"])["resolved"]["value_bound"]
    assert bound["source"] == "material"
    assert bound["value_max"] == pytest.approx(1.02 * WATER_DELTA_15KEV, rel=0.01)


# ------------------------------------------------------------------ estimated

def _body_sdf(kind: str, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor,
              t: float) -> torch.Tensor:
    """Signed distance (W units) of a test body at normalised time t, built here."""
    if kind == "sphere":
        return torch.sqrt((x - 0.05 * t) ** 2 + (y + 0.03) ** 2 + (z - 0.02) ** 2) - 0.2
    if kind == "column":                   # vertical cylinder, flat ends
        radial = torch.sqrt((x - 0.03 * t) ** 2 + (y + 0.02) ** 2) - 0.25
        axial = z.abs() - 0.4
        return torch.sqrt(radial.clamp_min(0) ** 2 + axial.clamp_min(0) ** 2) \
            + torch.maximum(radial, axial).clamp_max(0)
    if kind == "slab":                     # upright plate 0.5 x 0.12 x 0.6 turning about z
        r = torch.as_tensor(rotation((0, 0, 1), 30 + 20 * t).T, dtype=torch.float32)
        p = torch.stack(torch.broadcast_tensors(x, y, z), -1) @ r.T
        q = p.abs() - torch.tensor([0.25, 0.06, 0.3])
        return q.clamp_min(0).norm(dim=-1) + q.max(-1).values.clamp_max(0)
    # rod: radius 0.05, length 0.6, tilted 35-45 deg from z in a plane 60 deg from the beam
    r = torch.as_tensor(rotation((math.sin(math.radians(60)), -math.cos(math.radians(60)), 0),
                                 35 + 10 * t).T, dtype=torch.float32)
    p = torch.stack(torch.broadcast_tensors(x, y, z), -1) @ r.T
    h = p[..., 2].clamp(-0.3, 0.3)
    return torch.sqrt(p[..., 0] ** 2 + p[..., 1] ** 2 + (p[..., 2] - h) ** 2) - 0.05


def _body(kind: str, angles, size: int = 32, frames: int = 8) -> Recording:
    """A body of value 1 rendered on the fine grid and projected there (scene.record)."""
    def make(n_fine: int, pad: int):
        box = whole_box(n_fine)

        def render(i: int):
            z, y, x = box_coordinates(box, n_fine)
            return box, occupancy(_body_sdf(kind, x, y, z, i / (frames - 1)), n_fine)
        return render

    params = dataclasses.make_dataclass("Body", [("kind", str)])(kind)   # for the description
    return record(make, kind, params, size=size, frames=frames, angles_deg=angles, noise=0.01,
                  seed=0, oversample=2, frame_interval_s=1.0)


def _sample(name: str, angles) -> Recording:
    if name in ("tripod", "two-liquids", "jet", "droplets"):
        return get_scene(name).recording(size=32, frames=8, angles_deg=angles, noise=0.01,
                                         seed=0)
    return _body(name, angles)


#: measured 32^3 x 8 frames: bound / truth's maximum (2 views, 4 views)
_FAILS = {
    ("tripod", 2): "1.85: legs along the rays of one view where the other has no disc",
    ("tripod", 4): "0.94: few frames with a disc-shaped section",
}
_CASES = [pytest.param(name, angles, marks=pytest.mark.xfail(
    strict=True, reason=_FAILS[(name, len(angles))])) if (name, len(angles)) in _FAILS
    else (name, angles)
    for name in ("column", "slab", "rod", "sphere", "tripod", "two-liquids", "jet")
    for angles in (TWO, FOUR)]


@pytest.mark.parametrize("name, angles", _CASES)
def test_estimated_bound_holds_the_truth_within_30_percent(name: str, angles) -> None:
    rec = _sample(name, angles)
    value, _ = estimate_value_bound(rec.projections, rec.geometry.angles_deg)
    top = float(rec.truth.max())
    assert top <= value <= 1.3 * top


@pytest.mark.parametrize("angles", [TWO, FOUR])
def test_droplet_bound_stays_within_3_percent_of_the_truth(angles) -> None:
    # a bound 1.02 rather than 1.01 times the truth costs 0.7 dB on droplets at 2 views
    # (docs/results/value-bound.md): the estimate must not loosen there
    rec = _sample("droplets", angles)
    value, _ = estimate_value_bound(rec.projections, rec.geometry.angles_deg)
    top = float(rec.truth.max())
    assert top <= value <= 1.03 * top


def _band(size: int = 32, radius: float = 4.0, centre: float = 15.3) -> np.ndarray:
    """The projection (size, size) of a cylinder of value 1 and the given radius (pixels)
    lying along the detector's rows and running off both side edges: each row holds
    ``2 sqrt(r^2 - (z - z0)^2)`` averaged over the pixel's height."""
    sub = np.arange(size)[:, None] + (np.arange(16) + 0.5) / 16 - 0.5
    chord = 2 * np.sqrt(np.clip(radius ** 2 - (sub - centre) ** 2, 0, None)).mean(axis=1)
    return np.repeat(chord[:, None], size, axis=1)


def test_sections_cut_by_the_detector_edge_are_not_used() -> None:
    view = _band()
    k = 15
    # a section tilted 40 degrees from the vertical at the last but one column leaves the
    # detector before the band ends: its profile is cut, narrower than the band's and of a
    # larger value (before this rule: 1.04 times the truth, width 7.3 pixels instead of 8)
    tilted = np.array([math.cos(math.radians(40)), math.sin(math.radians(40))])
    assert section_value(view, k, 30, tilted) is None
    # the vertical section there stays on the detector: the band's disc, value 1
    vertical = section_value(view, k, 30, np.array([1.0, 0.0]))
    assert vertical is not None and vertical[1] == pytest.approx(1.0, abs=0.03)
    assert vertical[2] == pytest.approx(8.0, abs=0.3)


@pytest.mark.parametrize("angles", [TWO, FOUR])
def test_truncated_wide_cylinder_bound_is_within_9_percent(angles) -> None:
    # the detector's side edges cut the cylinder; peaks next to them gave sections cut by the
    # edge (measured 32^3 x 8 frames before: 1.131 / 1.099 at 2 / 4 views; now 1.078 / 1.071)
    rec = get_scene("wide-cylinder").recording(size=32, frames=8, angles_deg=angles,
                                               noise=0.01, seed=0)
    value, _ = estimate_value_bound(rec.projections, rec.geometry.angles_deg)
    top = float(rec.truth.max())
    assert top <= value <= 1.09 * top


def test_sections_see_a_column_that_the_vertical_disc_halves() -> None:
    rec = _body("column", TWO)
    assert estimate_value_max(rec.projections, margin=1.0) < 0.6           # measured 0.49
    assert estimate_value_sections(rec.projections) == pytest.approx(1.0, abs=0.04)


def test_distinct_views_count_directions_modulo_180() -> None:
    assert distinct_views(np.array(TWO)) == 2
    assert distinct_views(np.array([0.0, 180.0, 45.0])) == 2
    assert distinct_views(np.array([[0.0, 60.0, 120.0], [1.0, 2.0, 3.0]])) == 3


# ------------------------------------------------------------------ diagnostic and warnings

def test_bound_diagnostic_counts_the_object_at_the_bound() -> None:
    vol = np.zeros((2, 10, 10, 10), np.float32)
    vol.flat[:100] = 0.995          # at the bound (within 2 %)
    vol.flat[100:150] = 0.7         # object (above half the bound), not at it
    vol.flat[150:400] = 0.3         # below half the bound: not the object
    diag = bound_diagnostic(vol, 1.0, "sections", 2)
    assert diag["object_voxels"] == 150
    assert diag["share_at_bound"] == pytest.approx(100 / 150)
    assert diag["shape_guess"] is True
    assert bound_diagnostic(vol, 1.0, "config", 2)["shape_guess"] is False
    assert bound_diagnostic(vol, 1.0, "sections", 4)["shape_guess"] is False
    assert bound_diagnostic(np.zeros(5), 1.0, "sections", 2)["share_at_bound"] == 0.0
    assert describe_bound(diag) == ("value bound 1 (sections, a shape guess from 2 views); "
                                    "67 % of the object at the bound")


def _warnings(diag) -> list[str]:
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        warn_about_bound(diag)
    assert all(w.category is ValueBoundWarning for w in got)
    return [str(w.message) for w in got]


def test_warnings_for_saturation_and_shape_guesses() -> None:
    saturated = {"value_max": 0.5, "source": "config", "views": 4, "object_voxels": 10,
                 "share_at_bound": 0.8, "shape_guess": False}
    assert len(_warnings(saturated)) == 1 and "80 % of the object" in _warnings(saturated)[0]
    # a known material's liquid sits at its value: expected, no warning
    assert _warnings({**saturated, "source": "material"}) == []
    assert _warnings({**saturated, "share_at_bound": 0.3}) == []
    guess = {**saturated, "source": "sections", "views": 2, "share_at_bound": 0.1,
             "shape_guess": True}
    assert len(_warnings(guess)) == 1 and "shape guess from 2 views" in _warnings(guess)[0]


def test_saturated_reconstruction_warns_in_one_line(tmp_path, capsys) -> None:
    rec = get_scene("bubble-column").recording(size=16, frames=3, angles_deg=TWO, noise=0.0,
                                               seed=0)
    path = tmp_path / "rec.h5"
    save_recording(rec, path)
    assert main(["reconstruct", str(path), "--out", str(tmp_path / "out.h5"), "--iterations",
                 "80", "--value-max", "0.5", "--quiet", "--no-preview"]) == 0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1
    assert err[0].startswith("xray4d reconstruct: warning: ")
    assert "sits at the value bound 0.5 (config)" in err[0]
    with h5py.File(tmp_path / "out.h5") as f:
        bound = json.loads(f["/reconstruction"].attrs["config"])["resolved"]["value_bound"]
    assert bound["share_at_bound"] >= 0.5 and bound["source"] == "config"
