"""Bad input on the command line: one line on stderr naming the file and the
dataset, exit status 2, no traceback, nothing written (``data-format.md``, Errors).

Most cases call :func:`xray4d.cli.main` in-process (fast); two run the real
program in a subprocess to prove the exit status and the absence of a traceback.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest

from xray4d import cli

T, V, H, W = 2, 2, 8, 8
GOOD_REC = "good_recording.h5"
GOOD_RECON = "good_recon.h5"


# ------------------------------------------------------------------ file builders

def _recording_datasets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    truth = np.zeros((T, H, W, W), np.float32)
    truth[:, 2:6, 2:6, 2:6] = 1.0
    return {"/exchange/data": rng.random((T, V, H, W), dtype=np.float32),
            "/exchange/theta": np.array([0.0, 90.0]),
            "/exchange/time": np.arange(T, dtype=np.float64),
            "/ground_truth/volume": truth}


def _write(path: Path, datasets: dict[str, np.ndarray | None]) -> Path:
    """Write the given datasets with h5py directly (None: leave it out)."""
    with h5py.File(path, "w") as f:
        for name, arr in datasets.items():
            if arr is not None:
                f.create_dataset(name, data=arr)
    return path


def write_recording(path: Path, **changes: np.ndarray | None) -> Path:
    """A valid recording, with datasets replaced or removed (``exchange__data=None``)."""
    ds = _recording_datasets()
    ds.update({"/" + k.replace("__", "/"): v for k, v in changes.items()})
    return _write(path, ds)


def write_recon(path: Path, volume: np.ndarray | None = None, **extra: np.ndarray) -> Path:
    """A reconstruction file (``volume`` default: truth + noise, matching the good recording)."""
    if volume is None:
        volume = _recording_datasets()["/ground_truth/volume"] + 0.01
    ds: dict[str, np.ndarray | None] = {"/reconstruction/volume": volume,
                                        "/reconstruction/time": np.arange(len(volume), dtype=float)}
    ds.update({"/" + k.replace("__", "/"): v for k, v in extra.items()})
    return _write(path, ds)


def _nan(shape: tuple[int, ...], value: float = np.nan) -> np.ndarray:
    a = np.ones(shape, np.float32)
    a.reshape(-1)[len(a.reshape(-1)) // 2] = value
    return a


def _random_bytes(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    return path


def _truncated(path: Path, builder: Callable[[Path], Path]) -> Path:
    builder(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _zero_tail(path: Path, builder: Callable[[Path], Path]) -> Path:
    """Full length, second half zeros (e.g. a preallocated copy that died): metadata damaged."""
    builder(path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2:] = bytes(len(raw) - len(raw) // 2)
    path.write_bytes(bytes(raw))
    return path


# HDF5 datatype message (version 1, class float) of little-endian IEEE float32:
# class bit fields (normalisation, sign at bit 31), size 4, offset 0, precision 32,
# exponent at 23 (8 bits), mantissa at 0 (23 bits), then the 4-byte exponent bias 127
# (HDF5 File Format Specification, "Datatype Message", floating-point properties)
_FLOAT32_LE_MESSAGE = bytes.fromhex("11201f00040000000000200017080017 7f000000")


def _corrupt_float32_datatype(path: Path, offset: int, value: int) -> Path:
    """A valid recording whose float32 datatype messages (those of data and truth) have
    byte ``offset`` set to ``value``: the file opens, but h5py cannot map the type to numpy
    (the fault the fuzz test once met at random, now built on purpose)."""
    write_recording(path)
    raw = bytearray(path.read_bytes())
    starts = [m.start() for m in re.finditer(re.escape(_FLOAT32_LE_MESSAGE), raw)]
    assert starts, "no float32 datatype message found: the file layout changed"
    for s in starts:
        raw[s + offset] = value
    path.write_bytes(bytes(raw))
    return path


def _corrupt_string_attribute(path: Path, owner: str, key: str, value: str) -> Path:
    """A valid recording with text attribute ``key`` on ``owner`` whose datatype message
    (variable-length UTF-8 string: ``19 01 01 00``) declares character set 15, which
    h5py cannot decode (TypeError)."""
    write_recording(path)
    with h5py.File(path, "r+") as f:
        f[owner].attrs[key] = value
    raw = bytearray(path.read_bytes())
    name = raw.find(key.encode() + b"\0")
    assert name >= 0, f"attribute {key} not found: the file layout changed"
    message = raw.find(b"\x19\x01\x01\x00", name, name + 32)
    assert message >= 0, f"no string datatype after attribute {key}: the file layout changed"
    raw[message + 2] = 0x0F
    path.write_bytes(bytes(raw))
    return path


# name -> (builder of the bad recording file, dataset the message must name)
# (a tuple: any of these; a trailing slash: any dataset in that group)
BAD_RECORDINGS: dict[str, tuple[Callable[[Path], Path], str | tuple[str, ...]]] = {
    "not_hdf5": (_random_bytes, "/"),
    "truncated": (lambda p: _truncated(p, write_recording), "/"),
    "missing_data": (lambda p: write_recording(p, exchange__data=None), "/exchange/data"),
    "missing_theta": (lambda p: write_recording(p, exchange__theta=None), "/exchange/theta"),
    "data_wrong_rank": (lambda p: write_recording(p, exchange__data=np.ones((V, H, W), np.float32)),
                        "/exchange/data"),
    "theta_wrong_rank": (lambda p: write_recording(p, exchange__theta=np.zeros((1, T, V))),
                         "/exchange/theta"),
    "theta_count_not_views": (lambda p: write_recording(p, exchange__theta=np.array([0.0, 45, 90])),
                              "/exchange/theta"),
    "theta_per_frame_shape": (lambda p: write_recording(p, exchange__theta=np.zeros((T + 1, V))),
                              "/exchange/theta"),
    "truth_wrong_shape": (lambda p: write_recording(
        p, ground_truth__volume=np.zeros((T, H, W, W + 1), np.float32)), "/ground_truth/volume"),
    "time_wrong_shape": (lambda p: write_recording(p, exchange__time=np.arange(T + 1.0)),
                         "/exchange/time"),
    "data_nan": (lambda p: write_recording(p, exchange__data=_nan((T, V, H, W))), "/exchange/data"),
    "data_inf": (lambda p: write_recording(p, exchange__data=_nan((T, V, H, W), np.inf)),
                 "/exchange/data"),
    "theta_nan": (lambda p: write_recording(p, exchange__theta=np.array([0.0, np.nan])),
                  "/exchange/theta"),
    "truth_inf": (lambda p: write_recording(p, ground_truth__volume=_nan((T, H, W, W), -np.inf)),
                  "/ground_truth/volume"),
    "data_empty": (lambda p: write_recording(p, exchange__data=np.zeros((0, V, H, W), np.float32)),
                   "/exchange/data"),
    "theta_empty": (lambda p: write_recording(p, exchange__theta=np.zeros((0,))), "/exchange/theta"),
    # which dataset the damage hits depends on the layout h5py chose
    "zero_tail": (lambda p: _zero_tail(p, write_recording), ("/exchange/", "/ground_truth/")),
    "data_wrong_dtype": (lambda p: write_recording(p, exchange__data=np.array([b"ab"] * 4).reshape(
        1, 1, 2, 2)), "/exchange/data"),
    # exponent bias 127 -> 127 + 2**16: h5py finds no numpy float for it (ValueError)
    "data_datatype_bias": (lambda p: _corrupt_float32_datatype(p, 18, 1), "/exchange/data"),
    # exponent bias 0: HDF5 refuses to report it (RuntimeError from H5Tget_ebias)
    "data_datatype_bias_zero": (lambda p: _corrupt_float32_datatype(p, 16, 0), "/exchange/data"),
    # class float -> time, which has no numpy equivalent (TypeError)
    "data_datatype_class": (lambda p: _corrupt_float32_datatype(p, 0, 0x12), "/exchange/data"),
    "quantity_charset": (lambda p: _corrupt_string_attribute(p, "/exchange/data", "quantity",
                                                             "line_integral"),
                         "/exchange/data attribute quantity"),
    "description_charset": (lambda p: _corrupt_string_attribute(p, "/", "description", "drops"),
                            "/ attribute description"),
}

# name -> (builder of the bad reconstruction file, dataset the message must name)
BAD_RECONS: dict[str, tuple[Callable[[Path], Path], str | tuple[str, ...]]] = {
    "not_hdf5": (_random_bytes, "/"),
    "truncated": (lambda p: _truncated(p, write_recon), "/"),
    # which dataset the damage hits depends on the layout h5py chose
    "zero_tail": (lambda p: _zero_tail(p, write_recon), "/reconstruction/"),
    "missing_volume": (lambda p: _write(p, {"/reconstruction/time": np.zeros(T)}),
                       "/reconstruction/volume"),
    "volume_wrong_rank": (lambda p: write_recon(p, np.ones((T, 1, H, W, W), np.float32)),
                          "/reconstruction/volume"),
    "volume_not_square": (lambda p: write_recon(p, np.ones((T, H, W, W + 2), np.float32)),
                          "/reconstruction/volume"),
    "volume_nan": (lambda p: write_recon(p, _nan((T, H, W, W))), "/reconstruction/volume"),
    "volume_inf": (lambda p: write_recon(p, _nan((T, H, W, W), np.inf)), "/reconstruction/volume"),
    "volume_empty": (lambda p: write_recon(p, np.zeros((T, 0, W, W), np.float32)),
                     "/reconstruction/volume"),
    "time_wrong_shape": (lambda p: write_recon(p, reconstruction__time=np.arange(T + 3.0)),
                         "/reconstruction/time"),
}


# ------------------------------------------------------------------ helpers

def _verbs() -> set[str]:
    parser = cli.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    return set()


def _good_files(d: Path) -> tuple[Path, Path]:
    return write_recording(d / GOOD_REC), write_recon(d / GOOD_RECON)


def _run_refused(argv: list[str], capsys: pytest.CaptureFixture, d: Path, bad: Path,
                 dataset: str | tuple[str, ...]) -> str:
    """Run the CLI in-process and check the refusal contract; return the stderr line."""
    before = sorted(p.name for p in d.iterdir())
    status = cli.main(argv)
    out, err = capsys.readouterr()
    assert status == 2, (status, out, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert "Traceback" not in err
    assert line.startswith(f"xray4d {argv[0]}: error: ")
    names = (dataset,) if isinstance(dataset, str) else dataset
    # "/reconstruction/" (trailing slash): any dataset in that group
    named = [f"{bad}: {n}" if len(n) > 1 and n.endswith("/") else f"{bad}: {n}:" for n in names]
    assert any(n in line for n in named), line
    assert out == ""
    assert sorted(p.name for p in d.iterdir()) == before  # nothing written, no temp files
    return line


# ------------------------------------------------------------------ info

@pytest.mark.parametrize("case", sorted(BAD_RECORDINGS))
def test_info_refuses_bad_recording(case: str, tmp_path: Path, capsys) -> None:
    build, dataset = BAD_RECORDINGS[case]
    bad = build(tmp_path / f"{case}.h5")
    _run_refused(["info", str(bad)], capsys, tmp_path, bad, dataset)


@pytest.mark.parametrize("case", sorted(BAD_RECONS))
def test_info_refuses_bad_reconstruction(case: str, tmp_path: Path, capsys) -> None:
    build, dataset = BAD_RECONS[case]
    bad = build(tmp_path / f"{case}.h5")
    _run_refused(["info", str(bad)], capsys, tmp_path, bad, dataset)


def test_info_refuses_recording_with_damaged_root(tmp_path: Path, capsys) -> None:
    """A recording written by xray4d whose second half is zeros: here the damage hits the
    root group, which ``info`` probes itself before calling io (layout of h5py 3.16)."""
    from xray4d.geometry import Geometry
    from xray4d.data import Recording
    from xray4d.io import save_recording

    rng = np.random.default_rng(0)
    truth = np.zeros((3, 8, 10, 10), np.float32)
    truth[:, 2:6, 3:7, 3:7] = 1
    rec = Recording(rng.random((3, 2, 8, 10), dtype=np.float32),
                    Geometry.from_angles([0, 90], 3, 8, 10), truth=truth)
    bad = _zero_tail(tmp_path / "zero_tail.h5", lambda p: save_recording(rec, p) or p)
    # the probe of the root falls through; io names the first dataset it cannot open
    _run_refused(["info", str(bad)], capsys, tmp_path, bad, "/exchange/data")


def test_info_missing_file(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "nope.h5"
    _run_refused(["info", str(bad)], capsys, tmp_path, bad, "/")


# ------------------------------------------------------------------ evaluate

@pytest.mark.parametrize("case", sorted(BAD_RECORDINGS))
def test_evaluate_refuses_bad_truth_file(case: str, tmp_path: Path, capsys) -> None:
    _, recon = _good_files(tmp_path)
    build, dataset = BAD_RECORDINGS[case]
    bad = build(tmp_path / f"{case}.h5")
    out = tmp_path / "metrics.json"
    _run_refused(["evaluate", str(recon), "--truth", str(bad), "--json", str(out)],
                 capsys, tmp_path, bad, dataset)
    assert not out.exists()


@pytest.mark.parametrize("case", sorted(BAD_RECONS))
def test_evaluate_refuses_bad_reconstruction(case: str, tmp_path: Path, capsys) -> None:
    recording, _ = _good_files(tmp_path)
    build, dataset = BAD_RECONS[case]
    bad = build(tmp_path / f"{case}.h5")
    out = tmp_path / "metrics.json"
    _run_refused(["evaluate", str(bad), "--truth", str(recording), "--json", str(out)],
                 capsys, tmp_path, bad, dataset)
    assert not out.exists()


def test_evaluate_refuses_recording_without_truth(tmp_path: Path, capsys) -> None:
    _, recon = _good_files(tmp_path)
    bad = write_recording(tmp_path / "no_truth.h5", ground_truth__volume=None)
    out = tmp_path / "metrics.json"
    line = _run_refused(["evaluate", str(recon), "--truth", str(bad), "--json", str(out)],
                        capsys, tmp_path, bad, "/ground_truth/volume")
    assert "missing" in line


@pytest.mark.parametrize("shape", [(T, H, W + 2, W + 2), (T + 1, H, W, W), (T, H - 1, W, W)])
def test_evaluate_refuses_reconstruction_not_matching_truth(shape, tmp_path: Path, capsys) -> None:
    recording, _ = _good_files(tmp_path)
    bad = write_recon(tmp_path / "other_shape.h5", np.ones(shape, np.float32))
    out = tmp_path / "sub" / "metrics.json"
    line = _run_refused(["evaluate", str(bad), "--truth", str(recording), "--json", str(out)],
                        capsys, tmp_path, bad, "/reconstruction/volume")
    assert f"shape {shape} does not match truth {(T, H, W, W)}" in line
    assert not out.exists() and not out.parent.exists()


def test_evaluate_refuses_constant_truth(tmp_path: Path, capsys) -> None:
    _, recon = _good_files(tmp_path)
    bad = write_recording(tmp_path / "flat.h5", ground_truth__volume=np.ones((T, H, W, W), np.float32))
    _run_refused(["evaluate", str(recon), "--truth", str(bad)], capsys, tmp_path, bad,
                 "/ground_truth/volume")


def test_evaluate_refuses_to_overwrite_an_input(tmp_path: Path, capsys) -> None:
    recording, recon = _good_files(tmp_path)
    before = recon.read_bytes()
    status = cli.main(["evaluate", str(recon), "--truth", str(recording), "--json", str(recon)])
    out, err = capsys.readouterr()
    assert status == 2 and len(err.splitlines()) == 1 and "--json" in err and str(recon) in err
    assert recon.read_bytes() == before


def test_evaluate_good_files_work(tmp_path: Path, capsys) -> None:
    """The control: the same good files are accepted, the table printed, JSON written."""
    recording, recon = _good_files(tmp_path)
    out = tmp_path / "metrics.json"
    assert cli.main(["evaluate", str(recon), "--truth", str(recording), "--json", str(out)]) == 0
    text, err = capsys.readouterr()
    assert err == ""
    for word in ("PSNR", "SSIM", "DSSIM", "IoU", "MSE", "mean"):
        assert word in text
    res = json.loads(out.read_text())
    assert res["volume"]["frames"] == T
    assert res["volume"]["mean"]["iou"] == 1.0
    assert res["volume"]["mean"]["mse"] == pytest.approx(1e-4, rel=1e-3)
    assert len(res["volume"]["per_frame"]["ssim"]) == T
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([GOOD_REC, GOOD_RECON, out.name])
    # an exact reconstruction: PSNR is infinite, written as null (JSON has no inf)
    exact = write_recon(tmp_path / "exact.h5", _recording_datasets()["/ground_truth/volume"])
    assert cli.main(["evaluate", str(exact), "--truth", str(recording), "--json", str(out),
                     "--force"]) == 0
    capsys.readouterr()
    assert json.loads(out.read_text())["volume"]["mean"]["psnr"] is None


def test_evaluate_scores_second_channel_when_both_files_have_it(tmp_path: Path, capsys) -> None:
    truth = _recording_datasets()["/ground_truth/volume"]
    recording = write_recording(tmp_path / "two.h5", ground_truth__volume_beta=0.5 * truth)
    recon = write_recon(tmp_path / "recon2.h5", truth, reconstruction__volume_beta=np.zeros_like(truth))
    out = tmp_path / "m.json"
    assert cli.main(["evaluate", str(recon), "--truth", str(recording), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "volume_beta:" in text
    res = json.loads(out.read_text())
    assert res["volume"]["mean"]["iou"] == 1.0 and res["volume"]["mean"]["psnr"] is None
    assert res["volume_beta"]["mean"]["iou"] == 0.0  # an empty beta found nothing
    assert res["volume_beta"]["data_range"] == pytest.approx(0.5)


# ------------------------------------------------------------------ project

@pytest.mark.skipif("project" not in _verbs(),
                    reason="xray4d project is not implemented yet (commands/project.py registers "
                           "no verb)")
@pytest.mark.parametrize("case", [
    "not_hdf5", "truncated", "missing_volume", "volume_nan", "volume_inf", "volume_empty",
    "volume_wrong_rank",
    "zero_tail",
])
def test_project_refuses_bad_volume(case: str, tmp_path: Path, capsys) -> None:
    build, dataset = BAD_RECONS[case]
    if case == "missing_volume":  # project reads /ground_truth/volume, else /reconstruction/volume
        dataset = "/ground_truth/volume"
    bad = build(tmp_path / f"{case}.h5")
    out = tmp_path / "projected.h5"
    _run_refused(["project", str(bad), "--angles", "0,90", "--out", str(out)],
                 capsys, tmp_path, bad, dataset)
    assert not out.exists()


# ------------------------------------------------------------------ the real program

def test_real_program_exit_status_and_no_traceback(tmp_path: Path) -> None:
    """Both entry points, ``python -m xray4d`` and ``python -m xray4d.cli``, run side by side."""
    recording, _ = _good_files(tmp_path)
    bad_recon = write_recon(tmp_path / "other_shape.h5", np.ones((T, H, W + 2, W + 2), np.float32))
    noise = _random_bytes(tmp_path / "noise.h5")
    out = tmp_path / "metrics.json"
    runs = {
        f"{bad_recon}: /reconstruction/volume: shape": [
            sys.executable, "-m", "xray4d", "evaluate", str(bad_recon), "--truth", str(recording),
            "--json", str(out)],
        f"{noise}: /: not a readable HDF5 file": [sys.executable, "-m", "xray4d.cli", "info",
                                                  str(noise)],
    }
    procs = {msg: subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
             for msg, argv in runs.items()}
    for msg, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2, stderr
        assert "Traceback" not in stderr and len(stderr.splitlines()) == 1, stderr
        assert msg in stderr and stdout == ""
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [GOOD_REC, GOOD_RECON, bad_recon.name, noise.name])
