"""Reconstruction at requested times (``--times``): parsing, refusals, exact reproduction of
the plain output at the recorded times, frames between them from a continuous field."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from xray4d.api import reconstruct, resolve_config
from xray4d.errors import InputError
from xray4d.io import load_reconstruction, save_recording
from xray4d.reconstruct.schedule import normalised_times
from xray4d.reconstruct.times import (MAX_RATE_FACTOR, parse_times, recorded_index,
                                      resolve_times, normalise_to)
from xray4d.simulate import simulate_droplets

RECORDED = np.arange(4) * 1e-4   # as a file at 10 kHz stores them (3e-4 is off by an ulp)


def _recording(frames: int = 4):
    rec = simulate_droplets(size=12, frames=frames, noise=0.01, seed=0,
                            frame_interval_s=1e-4)
    np.testing.assert_allclose(rec.time, RECORDED[:frames])
    return rec


def _config(method: str = "hexplane", iterations: int = 30):
    return resolve_config("default", {"train": {"iterations": iterations, "time_budget_s": None,
                                                "frames_per_batch": 2}}, method)


# ------------------------------------------------------------------ parsing and resolving
def test_rate_factor_inserts_equally_spaced_times() -> None:
    times = resolve_times(parse_times("x3"), RECORDED)
    expected = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) * 1e-4 / 3
    np.testing.assert_allclose(times, expected, rtol=0, atol=1e-18)
    # the recorded times themselves come out bit for bit
    assert times[0] == 0.0 and times[3] == RECORDED[1] and times[9] == RECORDED[3]
    np.testing.assert_array_equal(resolve_times(parse_times("x1"), RECORDED), RECORDED)


def test_listed_times_snap_to_recorded_frames() -> None:
    # 0.0003 typed is not the float 3 * 1e-4 the file holds, but is that frame
    assert 0.0003 != RECORDED[3]
    times = resolve_times(parse_times("0, 0.00015, 0.0003"), RECORDED)
    np.testing.assert_array_equal(times, [0.0, 0.00015, RECORDED[3]])
    np.testing.assert_array_equal(recorded_index(times, RECORDED), [0, -1, 3])


@pytest.mark.parametrize("text, fault", [
    ("", "expected xN or a comma-separated list"),
    ("0.1,,0.2", "expected xN or a comma-separated list"),
    ("x0", "integer N from 1"),
    ("x2.5", "integer N from 1"),
    (f"x{MAX_RATE_FACTOR + 1}", "integer N from 1"),
    ("xx", "integer N from 1"),
    ("0.1,abc", "'abc' is not a time"),
    ("0.1,nan", "finite"),
    ("inf", "finite"),
    ("0.2,0.1", "strictly increasing"),
    ("0.1,0.1", "strictly increasing"),
])
def test_bad_requests_are_refused_in_one_line(text: str, fault: str) -> None:
    with pytest.raises(ValueError, match=fault) as exc:
        parse_times(text)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("text", ["-0.0001", "0.00031", "0,0.5"])
def test_times_outside_the_recording_are_refused(text: str) -> None:
    with pytest.raises(InputError, match=r"rec\.h5: --times: .* outside the recording"):
        resolve_times(parse_times(text), RECORDED, "rec.h5")


def test_two_times_of_one_frame_are_refused() -> None:
    with pytest.raises(InputError, match="same recorded frame"):
        resolve_times(parse_times(f"0.0003,{float(RECORDED[3]) + 1e-14!r}"), RECORDED, "rec.h5")


def test_normalised_scale_is_the_trainers() -> None:
    np.testing.assert_array_equal(normalise_to(RECORDED, RECORDED), normalised_times(RECORDED))
    np.testing.assert_allclose(normalise_to([1.5e-4], RECORDED), [0.0], atol=1e-15)


# ------------------------------------------------------------------ methods
def test_recorded_times_reproduce_the_plain_output_exactly() -> None:
    rec = _recording()
    plain = reconstruct(rec, _config(), progress=False).reconstruction
    # x1, the full list typed in seconds, and a subset: the same frames, bit for bit
    for text, frames in (("x1", [0, 1, 2, 3]), ("0,0.0001,0.0002,0.0003", [0, 1, 2, 3]),
                         ("0.0001,0.0003", [1, 3])):
        again = reconstruct(rec, _config(), progress=False, times=text).reconstruction
        np.testing.assert_array_equal(again.volume, plain.volume[frames])
        np.testing.assert_array_equal(again.time, plain.time[frames])
        assert again.config["resolved"]["times"] == text


def test_between_frames_a_continuous_field_is_rendered() -> None:
    rec = _recording()
    plain = reconstruct(rec, _config(), progress=False)
    fine = reconstruct(rec, _config(), progress=False, times="x2").reconstruction
    assert fine.volume.shape == (7,) + plain.reconstruction.volume.shape[1:]
    np.testing.assert_allclose(fine.time, np.arange(7) * 0.5e-4, rtol=0, atol=1e-18)
    np.testing.assert_array_equal(fine.volume[::2], plain.reconstruction.volume)
    # the in-between frames are the field at those times (rendered here independently)
    import torch
    mid = float(normalise_to([0.5e-4], rec.time)[0])
    assert mid == pytest.approx(-1 + 1 / 3)
    field = plain.field
    with torch.no_grad():
        frame = field.render_frames(torch.tensor([mid]), fine.volume.shape[1:]).numpy()[0]
    np.testing.assert_allclose(fine.volume[1], frame, rtol=0, atol=1e-6)
    # and differ from both neighbours
    assert np.abs(fine.volume[1] - fine.volume[0]).max() > 0
    assert np.abs(fine.volume[1] - fine.volume[2]).max() > 0


@pytest.mark.parametrize("method", ["sirt", "perframe"])
def test_methods_with_recorded_frames_only_refuse_times_between(method: str) -> None:
    rec = _recording()
    with pytest.raises(InputError, match=rf"--times: 5e-05 s lies between recorded frames, "
                                         rf"and '{method}' reconstructs the recorded frames only"):
        reconstruct(rec, _config(method, 5), progress=False, times="x2")
    # their recorded frames can still be picked
    plain = reconstruct(rec, _config(method, 5), progress=False).reconstruction
    some = reconstruct(rec, _config(method, 5), progress=False, times="0,0.0002").reconstruction
    np.testing.assert_array_equal(some.volume, plain.volume[[0, 2]])


def test_cli_times_file_and_previews(tmp_path: Path) -> None:
    from xray4d.cli import main

    rec = _recording(3)
    path, out = tmp_path / "rec.h5", tmp_path / "out.h5"
    save_recording(rec, path)
    assert main(["reconstruct", str(path), "--out", str(out), "--iterations", "10", "--quiet",
                 "--times", "x2"]) == 0
    r = load_reconstruction(out)
    assert r.volume.shape[0] == 5
    with h5py.File(out, "r") as f:
        np.testing.assert_allclose(f["/reconstruction/time"][()], np.arange(5) * 0.5e-4,
                                   rtol=0, atol=1e-18)
    for name in ("slices.png", "projections.png", "movie.gif"):
        assert (tmp_path / "out_preview" / name).stat().st_size > 0
    import imageio.v3 as iio
    assert iio.imread(tmp_path / "out_preview" / "movie.gif").shape[0] == 5


@pytest.mark.parametrize("args, fault", [
    (["--times", "x0"], "--times: xN needs an integer N"),
    (["--times", "0.0001,0"], "--times: times must be strictly increasing"),
    (["--times", "0,1"], "--times: 1 s lies outside the recording"),
    (["--times", "x2", "--method", "fbp"], "--times: 5e-05 s lies between recorded frames"),
])
def test_cli_refuses_bad_times_in_one_line(tmp_path: Path, capsys, args, fault) -> None:
    from xray4d.cli import main

    path, out = tmp_path / "rec.h5", tmp_path / "out.h5"
    save_recording(_recording(3), path)
    try:
        status = main(["reconstruct", str(path), "--out", str(out), "--iterations", "5",
                       "--quiet", *args])
    except SystemExit as exc:      # argparse's own refusals
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert fault in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_previews_show_the_truth_only_at_recorded_times() -> None:
    from xray4d.viz.preview import truth_at
    truth = np.arange(4, dtype=np.float32)[:, None, None, None] * np.ones((4, 2, 2, 2), np.float32)
    picked = truth_at(truth, np.array([RECORDED[1], RECORDED[3]]), RECORDED)
    np.testing.assert_array_equal(picked[:, 0, 0, 0], [1.0, 3.0])
    assert truth_at(truth, np.array([0.0, 0.5e-4]), RECORDED) is None   # never interpolated
    assert truth_at(truth, None, RECORDED) is truth
