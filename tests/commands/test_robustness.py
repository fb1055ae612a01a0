"""Robustness: valid data of any detector shape and sign go through every step, and every
kind of bad request ends in one line on stderr, exit status 2, no traceback, nothing written.

Each class of fault found when the CLI was tried as a clumsy or hostile user would
(issue 27) has a regression test here: rectangular detectors and negative data
through reconstruct, previews and evaluate; flat and dark fields from which no
transmission can be computed; out-of-range flag values of every verb; requests
beyond the process's address-space limit; benchmarks whose runs all fail; and a
closed output pipe.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from xray4d import cli
from xray4d.data import Recording
from xray4d.geometry import Geometry
from xray4d.io import save_recording
from xray4d.simulate import SCENES

ROWS, COLS, FRAMES = 16, 24, 3


def _ball_movie(rows: int, cols: int, frames: int, sign: float = 1.0) -> np.ndarray:
    """(T, rows, cols, cols) movie of a ball of radius 4 voxels moving along x, value ``sign``
    inside and 0 outside (built here, independently of xray4d's simulator)."""
    z, y, x = np.meshgrid(np.arange(rows) - (rows - 1) / 2, np.arange(cols) - (cols - 1) / 2,
                          np.arange(cols) - (cols - 1) / 2, indexing="ij")
    vol = np.zeros((frames, rows, cols, cols), np.float32)
    for t in range(frames):
        vol[t][(x - 2 * t + 2) ** 2 + y ** 2 + z ** 2 < 16] = sign
    return vol


def _recording(path: Path, rows: int = ROWS, cols: int = COLS, sign: float = 1.0,
               noise: float = 0.02) -> Path:
    """A line-integral recording of :func:`_ball_movie` at 0 and 90 degrees, with Gaussian
    noise of ``noise`` times the largest |line integral| (negative values in the background)."""
    truth = _ball_movie(rows, cols, FRAMES, sign)
    # at 0 degrees the rays run along y, at 90 degrees along x (xray4d's geometry)
    proj = np.stack([truth.sum(axis=2), truth.sum(axis=3)], axis=1)
    rng = np.random.default_rng(0)
    proj = proj + noise * np.abs(proj).max() * rng.standard_normal(proj.shape)
    rec = Recording(proj.astype(np.float32), Geometry.from_angles([0.0, 90.0], FRAMES, rows, cols),
                    truth=truth)
    save_recording(rec, path)
    return path


# ------------------------------------------------------------------ valid data, any shape and sign

@pytest.mark.parametrize("method", ["hexplane", "sirt"])
def test_rectangular_detector_reconstructs_with_previews_and_evaluates(method: str, tmp_path: Path,
                                                                       capsys) -> None:
    rec = _recording(tmp_path / "rect.h5")
    out = tmp_path / "out.h5"
    assert cli.main(["reconstruct", str(rec), "--out", str(out), "--method", method,
                     "--iterations", "3", "--quiet"]) == 0
    capsys.readouterr()
    preview = tmp_path / "out_preview"
    for name in ("slices.png", "projections.png", "loss.png", "movie.gif", "config.yaml"):
        assert (preview / name).stat().st_size > 0, name
    assert not (tmp_path / "out.h5.ckpt").exists()
    import imageio.v3 as iio
    gif = iio.imread(preview / "movie.gif", index=None)
    # panel of one volume: slices over MIPs, each row as tall as its tallest tile (the x-y
    # plane, 24 rows), a 2-pixel gap: 24 + 2 + 24 = 50 rows; truth above reconstruction with a
    # 4-pixel gap: 104; the 4-pixel bar of the frame's time under it: 108; columns
    # 24 + 2 + 24 + 2 + 24 = 76; scaled by 256 // 24 = 10
    assert gif.shape[:3] == (FRAMES, 1080, 760)
    assert cli.main(["evaluate", str(out), "--truth", str(rec), "--json",
                     str(tmp_path / "m.json")]) == 0
    res = json.loads((tmp_path / "m.json").read_text())
    assert res["volume"]["shape"] == [FRAMES, ROWS, COLS, COLS]


def test_all_negative_data_reconstruct_with_previews(tmp_path: Path, capsys) -> None:
    """Projections below zero everywhere (a negative object plus an offset): the previews'
    colour ranges must not assume a positive maximum."""
    rec = _recording(tmp_path / "neg.h5", sign=-1.0)
    with h5py.File(rec, "r+") as f:
        d = f["/exchange/data"]
        d[...] = np.minimum(d[()] - 0.5, -1e-3)
        assert d[()].max() < 0
    out = tmp_path / "neg_out.h5"
    assert cli.main(["reconstruct", str(rec), "--out", str(out), "--method", "sirt",
                     "--iterations", "3", "--quiet"]) == 0
    assert (tmp_path / "neg_out_preview" / "movie.gif").stat().st_size > 0
    assert (tmp_path / "neg_out_preview" / "projections.png").stat().st_size > 0
    assert not (tmp_path / "neg_out.h5.ckpt").exists()


def test_display_range_spans_zero_and_the_data() -> None:
    from xray4d.viz.preview import display_range

    assert display_range(np.array([-3.0, -1.0])) == (-3.0, 0.0)
    assert display_range(np.array([0.5, 2.0]), None, np.array([-0.25])) == (-0.25, 2.0)
    assert display_range(np.zeros(4)) == (0.0, 1.0)
    assert display_range(np.array([np.nan, 2.0])) == (0.0, 2.0)


def test_signed_mip_keeps_the_value_of_largest_magnitude() -> None:
    from xray4d.viz.preview import signed_mip

    vol = np.array([[[0.0, -2.0], [1.0, 0.5]],
                    [[-1.0, 1.5], [3.0, -4.0]]])
    np.testing.assert_array_equal(signed_mip(vol, 0), [[-1.0, -2.0], [3.0, -4.0]])
    np.testing.assert_array_equal(signed_mip(np.abs(vol), 0), np.abs(vol).max(0))


def test_frame_panel_shows_a_negative_object() -> None:
    from xray4d.viz.preview import frame_panel

    frame = np.zeros((6, 8, 8), np.float32)
    frame[2:4, 3:5, 3:5] = -1.0
    panel = frame_panel(frame, (-1.0, 0.0))
    # columns x-y (8 wide), x-z (8), y-z (8) with 2-pixel gaps; rows: slices, MIPs (8 tall each)
    assert panel.shape == (8 + 2 + 8, 8 + 2 + 8 + 2 + 8, 3)
    # -1 is the bottom of the colour map (magma: RGB 0, 0, 3), 0 its top (251, 252, 191)
    black, light = (0, 0, 3), (251, 252, 191)
    assert tuple(panel[3, 3]) == black and tuple(panel[0, 0]) == light     # central x-y slice
    # the MIP along z (row 10 on) keeps -1 where a plain maximum would show the background 0
    assert tuple(panel[10 + 3, 3]) == black and tuple(panel[10, 0]) == light


def test_iou_of_a_negative_object_is_its_shape_below_half_the_minimum() -> None:
    from xray4d.evaluation.metrics import evaluate_volumes, iou

    truth = np.zeros((8, 8, 8))
    truth[2:6, 2:6, 2:6] = -2.0                      # 64 voxels, threshold -1
    est = np.zeros_like(truth)
    est[2:6, 2:6, 4:8] = -1.5                        # 64 voxels, 32 overlap
    assert iou(est, truth) == pytest.approx(32 / (64 + 64 - 32))
    assert iou(-est, -truth) == pytest.approx(32 / 96)   # the mirror image scores the same
    res = evaluate_volumes(est[None], truth[None])
    assert res["iou_threshold"] == -1.0 and res["iou_below"] is True
    assert res["mean"]["iou"] == pytest.approx(1 / 3)
    assert evaluate_volumes(-est[None], -truth[None])["iou_below"] is False


# ------------------------------------------------------------------ the refusal contract

def _refused(argv: list[str], capsys: pytest.CaptureFixture, d: Path, *needles: str) -> str:
    """Run the CLI in-process: exit 2, one line on stderr holding every needle, nothing on
    stdout, nothing written in ``d``. Returns the line."""
    before = sorted(p.name for p in d.rglob("*"))
    status = cli.main(argv)
    out, err = capsys.readouterr()
    assert status == 2, (status, out, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("xray4d "), err
    for n in needles:
        assert n in err, (n, err)
    assert out == ""
    assert sorted(p.name for p in d.rglob("*")) == before
    return err.strip()


# ------------------------------------------------------------------ flat and dark fields

def _intensity_file(path: Path, white: np.ndarray, dark: np.ndarray | None) -> Path:
    """An intensity recording (2 frames, 2 views, 8 x 8) with the given flat and dark fields
    (V, H, W) and counts of 500 over a dark of 100."""
    with h5py.File(path, "w") as f:
        d = f.create_dataset("/exchange/data", data=np.full((2, 2, 8, 8), 600.0, np.float32))
        d.attrs["quantity"] = "intensity"
        f["/exchange/theta"] = np.array([0.0, 90.0])
        f["/exchange/data_white"] = white.astype(np.float32)
        if dark is not None:
            f["/exchange/data_dark"] = dark.astype(np.float32)
        f.attrs["energy_keV"] = 15.0
        f.attrs["pixel_size_m"] = 2e-6
        f.attrs["propagation_distance_m"] = 0.003
    return path


@pytest.mark.parametrize("case, fault", [
    ("flat_all_zero", "flat field is zero or negative in every pixel of view 0"),
    ("dark_above_flat", "flat field is not above the dark field (/exchange/data_dark) in any "
                        "pixel of view 0"),
    ("dark_equals_flat_in_view_1", "in any pixel of view 1"),
])
@pytest.mark.parametrize("verb", ["info", "reconstruct"])
def test_flat_and_dark_from_which_no_transmission_follows_are_refused(
        case: str, fault: str, verb: str, tmp_path: Path, capsys) -> None:
    white, dark = np.full((2, 8, 8), 1100.0), np.full((2, 8, 8), 100.0)
    if case == "flat_all_zero":
        white, dark = np.zeros((2, 8, 8)), None
    elif case == "dark_above_flat":
        dark = white + 1
    else:
        dark[1] = white[1]
    bad = _intensity_file(tmp_path / f"{case}.h5", white, dark)
    argv = ["info", str(bad)] if verb == "info" else [
        "reconstruct", str(bad), "--out", str(tmp_path / "out.h5"), "--iterations", "2", "--quiet"]
    _refused(argv, capsys, tmp_path, f"{bad}: /exchange/data_white: ", fault)


def test_dead_pixels_get_transmission_one_and_the_rest_is_corrected(tmp_path: Path) -> None:
    """Flat at or below dark in a few pixels: loaded; those pixels read transmission 1 (no
    information), the others (600 - 100) / (1100 - 100) = 0.5; nothing infinite."""
    from xray4d.io import load_recording
    from xray4d.preprocess import transmission

    white, dark = np.full((2, 8, 8), 1100.0), np.full((2, 8, 8), 100.0)
    white[0, 1, 2] = 100.0          # flat = dark
    white[1, 3, 3] = 0.0            # flat below dark
    white[1, 4, 4] = 100.0 + 1e-9   # above the dark by less than float32 resolves: equal
    rec = load_recording(_intensity_file(tmp_path / "dead.h5", white, dark))
    trans = transmission(rec)
    expected = np.full((2, 2, 8, 8), 0.5, np.float32)
    expected[:, 0, 1, 2] = expected[:, 1, 3, 3] = expected[:, 1, 4, 4] = 1.0
    np.testing.assert_array_equal(trans, expected)


def test_transmission_beyond_float32_is_refused_not_infinite(tmp_path: Path) -> None:
    from xray4d.errors import InputError
    from xray4d.io import load_recording
    from xray4d.preprocess import transmission

    white, dark = np.full((2, 8, 8), 100.25), np.full((2, 8, 8), 100.0)
    rec = load_recording(_intensity_file(tmp_path / "huge.h5", white, dark))
    rec.projections = np.full_like(rec.projections, 1e38)     # / 0.25 = 4e38 > float32 max
    with pytest.raises(InputError, match="/exchange/data: flat/dark-corrected transmission "
                                         "beyond the float32 range"):
        transmission(rec)


# ------------------------------------------------------------------ numeric ranges of every flag

def _options() -> list[tuple[list[str], object]]:
    """(command words, argparse action) of every option of every verb, nested verbs included."""
    import argparse

    found: list[tuple[list[str], object]] = []

    def walk(parser: argparse.ArgumentParser, words: list[str]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, words + [name])
            elif action.option_strings:
                found.append((words, action))

    walk(cli.build_parser(), [])
    return found


#: what each verb needs besides the flag under test (never read: parsing fails first)

REQUIRED = {"project": ["vol.h5", "--angles", "0", "--out", "out.h5"],
            "simulate droplets": ["--out", "out.h5"],
            "simulate droplet-set": ["--out", "set"],
            "reconstruct": ["rec.h5", "--out", "out.h5"],
            "evaluate": ["rec.h5", "--truth", "truth.h5"],
            "benchmark": ["--out", "bench"], "demo": ["--out", "demo"],
            "convert": ["in.h5", "out.h5"], "validate": ["rec.h5", "--out", "val"],
            **{f"simulate {name}": ["--out", "out.h5"] for name in SCENES}}


def _out_of_range(kind) -> list[str]:
    """Values outside the range of an argparse type of xray4d.cli (just outside each end,
    far outside, and values of the wrong kind)."""
    item = getattr(kind, "item", kind)
    lo, hi, lo_open, hi_open = item.bounds
    if item.__name__ == "integer":
        return [str(lo - 1), str(hi + 1), "1e23", "2.5", "nan", "x"]
    bad = ["nan", "x"]
    if lo > -np.inf:
        bad += ["-1e400", "-inf", repr(lo) if lo_open else repr(lo - abs(lo) * 1e-6 - 1e-9)]
    if hi < np.inf:
        bad += ["1e400", "inf", repr(hi) if hi_open else repr(hi + abs(hi) * 1e-6 + 1e-9)]
    return bad


#: options whose type parses text, not numbers (names checked against the known ones later)
TEXT_LISTS = {("benchmark", "--cases"), ("benchmark", "--methods"),
              # xN or a list of seconds, refused by xray4d.reconstruct.times (tests/reconstruct)
              ("reconstruct", "--times")}


def _ranged(action) -> bool:
    return hasattr(getattr(action.type, "item", action.type), "bounds")


def test_every_numeric_flag_has_a_range() -> None:
    """No option of any verb takes a bare int or float: each number has a checked range
    (stated in its --help)."""
    bare = [(" ".join(w), a.option_strings[0]) for w, a in _options()
            if a.type is not None and not _ranged(a)
            and (" ".join(w), a.option_strings[0]) not in TEXT_LISTS]
    assert bare == [], bare
    ranged = [a for _, a in _options() if _ranged(a)]
    assert len(ranged) >= 40          # the verbs' numbers, counted when this test was written
    for a in ranged:
        assert a.type.range_text in " ".join(a.help.split()), a.option_strings


@pytest.mark.parametrize("words, flag, bad", [
    (w, a.option_strings[0], v) for w, a in _options() if _ranged(a)
    for v in _out_of_range(a.type)])
def test_out_of_range_flag_is_one_line_exit_2(words: list[str], flag: str, bad: str,
                                              tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    argv = words + REQUIRED[" ".join(words)] + [f"{flag}={bad}"]
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    out, err = capsys.readouterr()
    assert info.value.code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"argument {flag}: must be " in err and repr(bad) in err, err
    assert list(tmp_path.iterdir()) == []


def test_range_types_accept_their_ends_and_refuse_beyond() -> None:
    import argparse

    seed = cli.int_range(0, 2**32 - 1)
    assert seed("0") == 0 and seed("4294967295") == 2**32 - 1
    for bad in ("-1", "4294967296", "1e23", "1.0", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="an integer from 0 to 4294967295"):
            seed(bad)
    radius = cli.float_range(0.0, 0.5, lo_open=True)
    assert radius("0.5") == 0.5 and radius("1e-300") == 1e-300
    for bad in ("0", "0.5000001", "1e308", "nan", "inf", "-inf"):
        with pytest.raises(argparse.ArgumentTypeError, match=r"a number in \(0, 0\.5\]"):
            radius(bad)
    undamped = cli.float_range(0.0, np.inf, lo_open=True)
    assert undamped("inf") == np.inf
    budgets = cli.list_of(cli.float_range(0.0, 1e7, lo_open=True), max_items=3)
    assert budgets("1, 2.5") == [1.0, 2.5]
    for bad in ("1,nan", "", "1,2,3,4", "1,1e8"):
        with pytest.raises(argparse.ArgumentTypeError):
            budgets(bad)
    assert cli.with_range("seed", seed) == "seed; an integer from 0 to 4294967295"


@pytest.mark.parametrize("argv, flag", [
    (["simulate", "droplets", "--out", "s.h5", "--seed", "1e23"], "--seed"),
    (["simulate", "droplets", "--out", "s.h5", "--seed", "-1"], "--seed"),
    (["simulate", "droplets", "--out", "s.h5", "--radius", "1e308"], "--radius"),
    (["simulate", "droplets", "--out", "s.h5", "--quantity", "intensity", "--psf-px", "1e9"],
     "--psf-px"),
    (["demo", "--out", "d", "--time-budget", "nan"], "--time-budget"),
    (["reconstruct", "r.h5", "--out", "o.h5", "--value-max", "1e300"], "--value-max"),
])
def test_issue_examples_of_bad_numbers_in_the_real_program(argv: list[str], flag: str,
                                                           tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "xray4d", *argv], cwd=tmp_path, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"argument {flag}: must be " in r.stderr
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ memory: checked first, ulimit -v honoured

#: address-space limit of the child processes below: room for Python, numpy, h5py and torch
#: (about 0.7 GB mapped once imported) and little more
ADDRESS_SPACE_LIMIT = 2_500_000_000


def _declared(path: Path, dataset: str, shape: tuple[int, ...], **extra: np.ndarray) -> Path:
    """A small file declaring a large chunked float32 dataset (nothing of it is stored)."""
    with h5py.File(path, "w") as f:
        f.create_dataset(dataset, shape=shape, dtype="f4", chunks=(1,) + tuple(shape[1:]))
        for name, value in extra.items():
            f["/" + name.replace("__", "/")] = value
    assert path.stat().st_size < 10**6
    return path


def _limited(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The real program under ``ulimit -v`` of :data:`ADDRESS_SPACE_LIMIT` bytes."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))

    return subprocess.run([sys.executable, "-m", "xray4d", *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=300, preexec_fn=limit,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("verb", ["simulate", "project", "evaluate", "reconstruct"])
def test_requests_beyond_the_address_space_limit_are_refused_first(verb: str,
                                                                   tmp_path: Path) -> None:
    """Each request needs 3-5 GB (estimates of xray4d.resources): more than the 2.5 GB
    address-space limit, far less than this machine's memory. Refused in one line before
    anything is allocated, the available memory stated is the limit's headroom."""
    from xray4d.resources import available_memory

    machine = available_memory()
    if machine is None or machine < 8e9:
        pytest.skip("needs a machine with 8 GB available, to tell the limit from its memory")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    if verb == "simulate":          # truth 400 x 128^3 float32: 3.4 GB
        argv, named = ["simulate", "droplets", "--size", "128", "--frames", "400",
                       "--out", "sim.h5"], None
    elif verb == "project":         # volume 1000 x 64^3 float32: 1.05 GB, three copies
        vol = _declared(inputs / "vol.h5", "/ground_truth/volume", (1000, 64, 64, 64))
        argv, named = ["project", str(vol), "--angles", "0,23.8", "--out", "rec.h5"], vol
    elif verb == "evaluate":        # reconstruction and truth 1500 x 64^3: 1.6 GB each
        rec = _declared(inputs / "recon.h5", "/reconstruction/volume", (1500, 64, 64, 64))
        truth = _declared(inputs / "truth.h5", "/ground_truth/volume", (1500, 64, 64, 64),
                          exchange__data=np.zeros((1, 2, 64, 64), np.float32),
                          exchange__theta=np.array([0.0, 90.0]))
        with h5py.File(truth, "r+") as f:      # the recording declares 1500 frames as well
            del f["/exchange/data"]
            f.create_dataset("/exchange/data", shape=(1500, 2, 64, 64), dtype="f4",
                             chunks=(1, 2, 64, 64))
        argv, named = ["evaluate", str(rec), "--truth", str(truth), "--json", "m.json"], None
    else:                           # 200 frames of 128 x 128: output movie alone 5 GB
        rec = _declared(inputs / "rec.h5", "/exchange/data", (200, 2, 128, 128),
                        exchange__theta=np.array([0.0, 23.8]))
        argv, named = ["reconstruct", str(rec), "--out", "out.h5", "--quiet"], rec
    r = _limited(argv, work)
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(r.stderr.splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith(f"xray4d {argv[0]}: error: ") and r.stdout == ""
    if named is not None:
        assert str(named) in r.stderr
    stated = float(r.stderr.split("but only ")[1].split(" GB")[0]) * 1e9
    assert stated <= ADDRESS_SPACE_LIMIT, r.stderr     # the limit, not the machine's memory
    assert list(work.iterdir()) == []


def test_available_memory_is_lowered_to_the_address_space_headroom() -> None:
    """In a child with ``RLIMIT_AS`` set: at most the limit minus what it maps (VmSize,
    read here independently), and at least that minus 64 MB (the read itself maps little)."""
    import resource

    script = ("from xray4d.resources import available_memory\n"
              "vm = next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') "
              "if l.startswith('VmSize'))\n"
              "print(available_memory(), vm)\n")

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))

    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=120, preexec_fn=limit)
    assert r.returncode == 0, r.stderr
    avail, vm = (int(x) for x in r.stdout.split())
    assert ADDRESS_SPACE_LIMIT - vm - 64 * 2**20 <= avail <= ADDRESS_SPACE_LIMIT - vm + 64 * 2**20


def test_project_refuses_a_file_declaring_1e10_times_before_reading_them(tmp_path: Path,
                                                                         capsys) -> None:
    vol = tmp_path / "vol.h5"
    with h5py.File(vol, "w") as f:
        f["/ground_truth/volume"] = np.ones((2, 4, 6, 6), np.float32)
        f.create_dataset("/exchange/time", shape=(10**10,), dtype="f8", chunks=(2**20,))
    _refused(["project", str(vol), "--angles", "0", "--out", str(tmp_path / "rec.h5")], capsys,
             tmp_path, f"{vol}: /exchange/time: wrong shape (10000000000,), expected (2,)")


_RISE_SCRIPT = """
import json, sys, numpy as np, torch
torch.set_num_threads(1)
from xray4d.physics import refractive_index
from xray4d.simulate import simulate_droplets, simulate_droplets_intensity, simulate_recording
def status(key):
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key))
refractive_index("H2O", 1.0, 15.0)            # the materials database, loaded once
simulate_droplets(size=8, frames=2)           # kernels and thread pools
kind, n, t = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
vol = np.zeros((t, n, n, n), np.float32) if kind == "project" else None
base = status("VmRSS") - (vol.nbytes if vol is not None else 0)   # the volume as loaded counts
if kind == "project":
    vol[:, n // 4:n // 2] = 1.0
    simulate_recording(vol, (0.0, 23.8), noise=0.01)
else:
    simulate_droplets_intensity(size=n, frames=t)
print(json.dumps({"rise": status("VmHWM") - base}))
"""


@pytest.mark.parametrize("kind, n, t", [("intensity", 48, 12), ("project", 64, 40)])
def test_simulation_and_projection_estimates_follow_measured_peak_memory(kind: str, n: int,
                                                                          t: int) -> None:
    """The estimates that simulate (intensity data) and project check before work, against
    the rise of the peak resident memory of a fresh process: within [0.7, 2.5] x (measured
    on the 2-core box: intensity 48^3 x 12: 90 MB estimated for 72 MB; project 64^3 x 40:
    133 MB for 116 MB). The intensity path renders the whole movie on the 2x finer grid: the
    line-integral estimate it used before said 31 MB for those 72 MB."""
    from xray4d.resources import estimate_projection, estimate_simulation

    r = subprocess.run([sys.executable, "-c", _RISE_SCRIPT, kind, str(n), str(t)],
                       capture_output=True, text=True, timeout=300,
                       env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    rise = json.loads(r.stdout.strip().splitlines()[-1])["rise"]
    est = (estimate_simulation(n, t, 2, intensity=True) if kind == "intensity"
           else estimate_projection(t, 2, n, n)).total
    assert 0.7 * rise <= est <= 2.5 * rise, (est, rise)


# ------------------------------------------------------------------ benchmark: failed runs

@pytest.mark.parametrize("failing", [("sirt",), ("sirt", "fbp")])
def test_benchmark_exits_1_when_runs_failed_and_keeps_the_others(failing: tuple[str, ...],
                                                                 tmp_path: Path, capsys,
                                                                 monkeypatch) -> None:
    """Runs are replaced by a stand-in (no child processes): those of the ``failing``
    methods report an error, the others fixed scores. The tables are written with every
    row; the exit status is 1 and stderr one line counting the failures."""
    import xray4d.evaluation.benchmark as bench

    def run(path, method, budget, seed, threads, overrides):
        if method in failing:
            return {"error": "RuntimeError: stand-in failure"}
        return {"wall_s": 0.5, "iterations": 3, "stopped_by": "iterations",
                "final_residual": 0.1, "peak_rss_mib": 100.0, "psnr": 20.0, "ssim": 0.9,
                "dssim": 0.05, "iou": 0.5, "mse": 0.01}

    monkeypatch.setattr(bench, "_run_isolated", run)
    out = tmp_path / "b"
    code = cli.main(["benchmark", "--out", str(out), "--cases", "head-on", "--views", "2",
                     "--methods", "fbp,sirt", "--size", "8", "--frames", "2",
                     "--time-budget", "1"])
    stdout, err = capsys.readouterr()
    assert code == 1
    first = "fbp" if "fbp" in failing else "sirt"      # the table's order: fbp, sirt
    assert err.splitlines() == [f"xray4d benchmark: {len(failing)} of 2 runs failed (first: "
                                f"head-on, 2 views, {first}, 1 s: RuntimeError: stand-in failure)"]
    rows = json.loads((out / "benchmark.json").read_text())["rows"]
    assert [("error" in r) for r in rows] == [m in failing for m in ("fbp", "sirt")]
    table = (out / "benchmark.md").read_text()
    assert "| sirt | 1 | failed: RuntimeError: stand-in failure |" in table
    assert ("| fbp | 1 | 20.00 |" in table) == ("fbp" not in failing)
    assert (out / "quality_vs_time.png").exists()


# ------------------------------------------------------------------ a reader that goes away

@pytest.mark.parametrize("verb", ["info", "evaluate"])
def test_closed_stdout_pipe_ends_quietly_with_status_141(verb: str, tmp_path: Path) -> None:
    """``xray4d info F | head -1``: the reader closes the pipe before the program writes
    (here at once, before the child has even imported xray4d): no traceback, nothing on
    stderr, exit status 141 (128 + SIGPIPE, as a shell reports it)."""
    rec = _recording(tmp_path / "rec.h5")
    argv = ["info", str(rec)] if verb == "info" else ["evaluate", str(rec), "--truth", str(rec)]
    if verb == "evaluate":           # a reconstruction that is the truth plus 0.01
        with h5py.File(rec, "r") as f:
            truth = f["/ground_truth/volume"][()]
        with h5py.File(tmp_path / "recon.h5", "w") as f:
            f["/reconstruction/volume"] = truth + np.float32(0.01)
        argv[1] = str(tmp_path / "recon.h5")
    proc = subprocess.Popen([sys.executable, "-m", "xray4d", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == cli.BROKEN_PIPE_STATUS == 141, err
    assert err == ""


def test_broken_pipe_in_process_returns_141(tmp_path: Path, monkeypatch) -> None:
    """The same through :func:`xray4d.cli.main`, with a stdout whose writes fail as a closed
    pipe's do (and that has no file descriptor to redirect)."""
    import io

    class ClosedPipe(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    rec = _recording(tmp_path / "rec.h5")
    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["info", str(rec)]) == 141
