"""`xray4d simulate droplets` and `xray4d project` from the command line: files
that io accepts, the theta = 0 / 90 identities of data-format.md on a volume the
test builds, and one-line refusals with exit status 2 that write nothing."""
from __future__ import annotations

import hashlib
import json

import h5py
import numpy as np
import pytest

from xray4d.cli import main
from xray4d.io import load_recording



def run(argv: list[str]) -> int:
    """Run the CLI in-process; argparse's own exits become return codes."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return int(exc.code or 0)


def assert_one_line_error(capsys, code: int) -> str:
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def write_volume(path, volume, dataset="/ground_truth/volume", time=None):
    with h5py.File(path, "w") as f:
        f.create_dataset(dataset, data=volume)
        if time is not None:
            f.create_dataset(dataset.rsplit("/", 1)[0] + "/time", data=time)


# ------------------------------------------------------------------ simulate

def test_simulate_droplets_writes_a_valid_recording(tmp_path, capsys):
    out = tmp_path / "drops.h5"
    code = run(["simulate", "droplets", "--out", out, "--size", 24, "--frames", 6,
                "--angles", "0,23.8,90", "--noise", 0.01, "--seed", 1, "--radius", 0.12,
                "--impact", 0.3, "--frame-interval", 0.001])
    assert code == 0
    stdout = capsys.readouterr().out
    assert str(out) in stdout and "6 frames x 3 views" in stdout
    rec = load_recording(out)
    assert rec.projections.shape == (6, 3, 24, 24)
    np.testing.assert_allclose(rec.geometry.angles_deg[0], [0.0, 23.8, 90.0])
    assert rec.geometry.angles_shared
    assert rec.truth.shape == (6, 24, 24, 24)
    assert rec.quantity == "line_integral"
    np.testing.assert_allclose(rec.time, 0.001 * np.arange(6))
    desc = json.loads(rec.attrs["description"])
    assert desc["parameters"]["radius_1"] == pytest.approx(0.12)
    assert desc["parameters"]["radius_2"] == pytest.approx(0.12)     # defaults to --radius
    assert desc["parameters"]["impact_parameter"] == pytest.approx(0.3)
    assert desc["seed"] == 1


def test_simulate_separation_option(tmp_path, capsys):
    out = tmp_path / "sep.h5"
    assert run(["simulate", "droplets", "--out", out, "--size", 16, "--frames", 9,
                "--separation", "--radius2", 0.1, "--noise", 0]) == 0
    assert "pinch-off" in capsys.readouterr().out
    desc = json.loads(load_recording(out).attrs["description"])
    assert desc["parameters"]["separation"] is True
    assert desc["phases"][-1] == "separated"


@pytest.mark.parametrize("extra", [
    ["--size", "abc"], ["--size", "1"], ["--frames", "0"], ["--angles", "1,x"],
    ["--angles", ""], ["--noise", "-1"], ["--noise", "nan"], ["--impact", "1.5"],
    ["--radius", "0"], ["--amplitude", "2"],
])
def test_simulate_bad_arguments_one_line_exit_2(tmp_path, capsys, extra):
    out = tmp_path / "x.h5"
    code = run(["simulate", "droplets", "--out", out, "--size", "16", "--frames", "3"] + extra)
    assert_one_line_error(capsys, code)
    assert not out.exists()


def test_simulate_needs_out(capsys):
    line = assert_one_line_error(capsys, run(["simulate", "droplets"]))
    assert "--out" in line


# ------------------------------------------------------------------ project

def test_project_matches_the_theta_0_and_90_sums(tmp_path, capsys):
    rng = np.random.default_rng(0)
    vol = rng.random((2, 5, 12, 12)).astype(np.float32)      # f[t, z, y, x]
    src, out = tmp_path / "vol.h5", tmp_path / "rec.h5"
    write_volume(src, vol)
    assert run(["project", src, "--angles", "0,90,23.8", "--out", out]) == 0
    assert str(out) in capsys.readouterr().out
    rec = load_recording(out)
    assert rec.projections.shape == (2, 3, 5, 12)
    np.testing.assert_allclose(rec.geometry.angles_deg[0], [0.0, 90.0, 23.8])
    # data-format.md: theta = 0 sums over y, theta = 90 sums over x
    np.testing.assert_allclose(rec.projections[:, 0], vol.sum(axis=2), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rec.projections[:, 1], vol.sum(axis=3), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(rec.truth, vol)
    np.testing.assert_allclose(rec.time, [0.0, 1.0])
    assert rec.quantity == "line_integral"


def test_project_uniform_cube_and_reconstruction_times(tmp_path, capsys):
    vol = np.zeros((1, 8, 16, 16), np.float32)
    vol[0, 2:6, 4:10, 5:12] = 2.0                               # 6 voxels deep along y
    src, out = tmp_path / "recon.h5", tmp_path / "rec.h5"
    write_volume(src, vol, "/reconstruction/volume", time=np.array([0.25]))
    assert run(["project", src, "--angles", "0", "--out", out]) == 0
    rec = load_recording(out)
    expected = np.zeros((8, 16), np.float32)
    expected[2:6, 5:12] = 2.0 * 6
    np.testing.assert_allclose(rec.projections[0, 0], expected, atol=1e-5)
    np.testing.assert_allclose(rec.time, [0.25])


def test_project_noise_is_seeded(tmp_path, capsys):
    vol = np.ones((1, 6, 10, 10), np.float32)
    src = tmp_path / "vol.h5"
    write_volume(src, vol)
    outs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        out = tmp_path / f"{name}.h5"
        assert run(["project", src, "--angles", "0,45", "--out", out, "--noise", 0.1,
                    "--seed", seed]) == 0
        outs.append(load_recording(out).projections)
    assert np.array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])
    clean = np.full((6, 10), 10.0)                             # 10 voxels of 1 along y
    resid = outs[0][0, 0] - clean
    assert 0.5 < resid.std() / (0.1 * outs[0].max()) < 1.5   # 60 samples: loose


def test_project_refuses_out_equal_to_input(tmp_path, capsys):
    src = tmp_path / "vol.h5"
    write_volume(src, np.ones((1, 4, 6, 6), np.float32))
    before = digest(src)
    line = assert_one_line_error(capsys, run(["project", src, "--angles", "0", "--out", src]))
    assert "input" in line
    assert digest(src) == before


def _nan_volume(path):
    v = np.ones((1, 4, 6, 6), np.float32)
    v[0, 1, 2, 3] = np.nan
    write_volume(path, v)


def _wrong_dataset(path):
    with h5py.File(path, "w") as f:
        f.create_dataset("/something/else", data=np.ones((1, 4, 6, 6), np.float32))


def _not_hdf5(path):
    path.write_text("not an HDF5 file\n")


def _not_square(path):
    write_volume(path, np.ones((1, 4, 6, 5), np.float32))


@pytest.mark.parametrize("make", [None, _not_hdf5, _wrong_dataset, _nan_volume, _not_square],
                         ids=["missing", "not-hdf5", "no-dataset", "nan", "not-square"])
def test_project_bad_input_one_line_exit_2_writes_nothing(tmp_path, capsys, make):
    src, out = tmp_path / "in.h5", tmp_path / "out.h5"
    if make is not None:
        make(src)
    line = assert_one_line_error(capsys, run(["project", src, "--angles", "0,23.8",
                                              "--out", out]))
    assert str(src) in line
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.h5")] == []


@pytest.mark.parametrize("extra", [["--angles", "a,b"], ["--angles", "0", "--noise", "-0.5"],
                                   []])
def test_project_bad_arguments_one_line_exit_2(tmp_path, capsys, extra):
    src, out = tmp_path / "vol.h5", tmp_path / "out.h5"
    write_volume(src, np.ones((1, 4, 6, 6), np.float32))
    assert_one_line_error(capsys, run(["project", src, "--out", out] + extra))
    assert not out.exists()
