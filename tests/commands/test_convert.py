"""``xray4d convert`` and ``xray4d reconstruct`` on other formats: a converted file
reconstructs like the original, bad files are refused in one line (file, dataset or
option, fault) with exit status 2 and nothing written, reconstructions export to TIFF,
OME-TIFF and MP4."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pytest
import tifffile

from xray4d import cli
from xray4d.data import Reconstruction, Recording
from xray4d.geometry import Geometry
from xray4d.io import load_reconstruction, load_recording, save_reconstruction, save_recording

T, V, H, W = 3, 2, 8, 8
ANGLES = [0.0, 90.0]


def _recording() -> Recording:
    """Line integrals of a small off-centre cube turning slowly: something to reconstruct."""
    vol = np.zeros((T, H, W, W), np.float32)
    for t in range(T):
        vol[t, 2:6, 2 + t:5 + t, 3:6] = 1.0
    proj = np.stack([np.stack([vol[t].sum(axis=1), vol[t].sum(axis=2)]) for t in range(T)])
    rng = np.random.default_rng(0)
    proj = proj + rng.normal(scale=0.01, size=proj.shape).astype(np.float32)
    return Recording(proj.astype(np.float32), Geometry.from_angles(ANGLES, T, H, W))


def _dxchange(path: Path, rec: Recording) -> Path:
    """The recording in the single-scan Data Exchange layout (image i: view i % V of frame i // V)."""
    with h5py.File(path, "w") as f:
        f["/exchange/data"] = rec.projections.reshape(T * V, H, W)
        f["/exchange/theta"] = rec.geometry.angles_deg.reshape(-1)
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    try:
        status = cli.main(argv)
    except SystemExit as exc:      # refused while parsing (a flag out of its range)
        status = int(exc.code)
    out, err = capsys.readouterr()
    return status, out, err


def _listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


# ------------------------------------------------------------------ import

def test_convert_writes_our_recording(tmp_path: Path, capsys) -> None:
    rec = _recording()
    src = _dxchange(tmp_path / "scan.h5", rec)
    out = tmp_path / "rec.h5"
    status, stdout, err = _run(["convert", str(src), str(out), "--views", "2"], capsys)
    assert status == 0, err
    assert stdout.startswith(f"wrote {out}: {T} frames x {V} views of {H} x {W} pixels, "
                             "line_integral, angles 0, 90 deg")
    back = load_recording(out)
    np.testing.assert_array_equal(back.projections, rec.projections)
    np.testing.assert_array_equal(back.geometry.angles_deg, rec.geometry.angles_deg)
    with h5py.File(out, "r") as f:
        assert f["/exchange/theta"].shape == (V,)          # shared angles stored as (V,)
    # an existing output is kept unless --force
    status, _, err = _run(["convert", str(src), str(out), "--views", "2"], capsys)
    assert status == 2 and "exists (use --force to overwrite)" in err


def test_converted_file_reconstructs_like_the_original(tmp_path: Path, capsys) -> None:
    rec = _recording()
    direct = tmp_path / "direct.h5"
    save_recording(rec, direct)
    converted = tmp_path / "converted.h5"
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, rec.projections.reshape(T * V, H, W))
    assert _run(["convert", str(stack), str(converted), "--angles", "0,90"], capsys)[0] == 0
    common = ["--iterations", "20", "--seed", "0", "--quiet", "--no-preview"]
    runs = {"direct": [str(direct)], "converted": [str(converted)],
            "tiff": [str(stack), "--angles", "0,90"]}        # reconstruct reads the TIFF itself
    volumes = {}
    for name, args in runs.items():
        out = tmp_path / f"recon_{name}.h5"
        status, _, err = _run(["reconstruct", *args, "--out", str(out), *common], capsys)
        assert status == 0, err
        volumes[name] = load_reconstruction(out).volume
    assert np.abs(volumes["direct"]).max() > 0.1           # it reconstructed something
    np.testing.assert_allclose(volumes["converted"], volumes["direct"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(volumes["tiff"], volumes["direct"], rtol=1e-6, atol=1e-6)


def test_reconstruct_keeps_the_intensity_preset_of_imported_flats(tmp_path: Path, capsys) -> None:
    """An imported intensity recording picks the intensity measurement preset, as our own
    intensity files do; without optics it is refused in one line naming the attribute."""
    imgs = np.full((T * V, H, W), 900.0, np.float32)
    with h5py.File(tmp_path / "scan.h5", "w") as f:
        f["/exchange/data"] = imgs
        f["/exchange/theta"] = np.tile(ANGLES, T)
        f["/exchange/data_white"] = np.full((2, H, W), 1000.0, np.float32)
    out = tmp_path / "recon.h5"
    status, _, err = _run(["reconstruct", str(tmp_path / "scan.h5"), "--views", "2", "--out",
                           str(out), "--iterations", "2", "--quiet", "--no-preview"], capsys)
    assert status == 2 and len(err.splitlines()) == 1
    assert f"{tmp_path / 'scan.h5'}: / attribute energy_keV: missing" in err
    assert not out.exists()


# ------------------------------------------------------------------ bad input

def _bad_dxchange_no_theta(d: Path) -> tuple[Path, list[str]]:
    p = d / "scan.h5"
    with h5py.File(p, "w") as f:
        f["/exchange/data"] = np.zeros((4, H, W), np.float32)
    return p, []


def _bad_npy_rank(d: Path) -> tuple[Path, list[str]]:
    p = d / "onix.npy"
    np.save(p, np.zeros((2, H, W), np.float32))
    return p, ["--format", "onix-npy", "--angles", "0,90"]


def _bad_angles_count(d: Path) -> tuple[Path, list[str]]:
    p = d / "stack.tif"
    tifffile.imwrite(p, np.zeros((6, H, W), np.float32))
    (d / "angles.txt").write_text("0\n1\n2\n")
    return p, ["--angles-file", str(d / "angles.txt")]


def _bad_unknown(d: Path) -> tuple[Path, list[str]]:
    p = d / "data.raw"
    p.write_bytes(np.random.default_rng(1).bytes(300))
    return p, []


def _bad_corrupt_tiff(d: Path) -> tuple[Path, list[str]]:
    p = d / "stack.tif"
    tifffile.imwrite(p, np.ones((6, H, W), np.float32))
    p.write_bytes(p.read_bytes()[:200])
    return p, ["--angles", "0"]


def _bad_npy_without_format(d: Path) -> tuple[Path, list[str]]:
    p = d / "xmpi.npy"
    np.save(p, np.zeros((T, V, W, H), np.float32))
    return p, ["--angles", "0,90"]


def _bad_option_for_format(d: Path) -> tuple[Path, list[str]]:
    p = d / "xmpi.npy"
    np.save(p, np.zeros((T, V, W, H), np.float32))
    return p, ["--format", "hexplane-npy", "--angles", "0,90", "--views", "2"]


# name -> (builder of the bad input and its options, where the message must point: file
# (None: the input) and dataset or option, and the fault)
BAD_INPUTS: dict[str, tuple[Callable, str | None, str, str]] = {
    "missing_dataset": (_bad_dxchange_no_theta, None, "/exchange/theta", "missing"),
    "wrong_shape": (_bad_npy_rank, None, "npy", "wrong rank 3"),
    "angles_count": (_bad_angles_count, "angles.txt", "--angles-file",
                     "3 angles but the data need 1 (one per view) or 6 (one per image)"),
    "unknown_format": (_bad_unknown, None, "--format", "unknown file format"),
    "corrupt_file": (_bad_corrupt_tiff, None, "TIFF", "not a readable TIFF file"),
    "npy_without_format": (_bad_npy_without_format, None, "--format", "say its layout"),
    "option_not_used": (_bad_option_for_format, None, "--views",
                        "not used by the hexplane-npy format"),
}


@pytest.mark.parametrize("verb", ["convert", "reconstruct"])
@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_inputs_refused_in_one_line(case: str, verb: str, tmp_path: Path, capsys) -> None:
    build, named_file, where, fault = BAD_INPUTS[case]
    bad, opts = build(tmp_path)
    out = tmp_path / "out.h5"
    argv = (["convert", str(bad), str(out), *opts] if verb == "convert" else
            ["reconstruct", str(bad), "--out", str(out), "--iterations", "2", "--quiet", *opts])
    before = _listing(tmp_path)
    status, stdout, err = _run(argv, capsys)
    assert status == 2, (stdout, err)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    file = bad if named_file is None else tmp_path / named_file
    assert err.startswith(f"xray4d {verb}: error: {file}: {where}: "), err
    assert fault in err, err
    assert stdout == ""
    assert _listing(tmp_path) == before          # nothing written, no temporary left


def test_real_program_refuses_a_corrupt_tiff(tmp_path: Path) -> None:
    bad, opts = _bad_corrupt_tiff(tmp_path)
    out = tmp_path / "out.h5"
    proc = subprocess.run([sys.executable, "-m", "xray4d", "convert", str(bad), str(out), *opts],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and "Traceback" not in proc.stderr
    assert f"{bad}: TIFF: not a readable TIFF file" in proc.stderr
    assert not out.exists()


# ------------------------------------------------------------------ export

def _recon_file(path: Path) -> Reconstruction:
    vol = np.random.default_rng(2).random((T, H, W, W)).astype(np.float32)
    rec = Reconstruction(vol, np.arange(T, dtype=float), method="sirt")
    save_reconstruction(rec, path)
    return rec


def test_convert_exports_tiff_stack_and_ome_tiff(tmp_path: Path, capsys) -> None:
    rec = _recon_file(tmp_path / "recon.h5")
    status, stdout, err = _run(["convert", str(tmp_path / "recon.h5"), str(tmp_path / "f.tif")],
                               capsys)
    assert status == 0, err
    assert stdout.startswith(f"wrote {T} float32 TIFF stacks f_t0000.tif .. f_t{T - 1:04d}.tif")
    for t in range(T):
        np.testing.assert_array_equal(tifffile.imread(tmp_path / f"f_t{t:04d}.tif"), rec.volume[t])
    status, _, err = _run(["convert", str(tmp_path / "recon.h5"), str(tmp_path / "m.ome.tif")],
                          capsys)
    assert status == 0, err
    with tifffile.TiffFile(tmp_path / "m.ome.tif") as tf:
        assert tf.is_ome and tf.series[0].axes == "TZYX"
        np.testing.assert_array_equal(tf.series[0].asarray(), rec.volume)
    # the stack's frames exist now: refused whole without --force, nothing touched
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    status, _, err = _run(["convert", str(tmp_path / "recon.h5"), str(tmp_path / "f.tif")], capsys)
    assert status == 2 and f"{tmp_path / 'f_t0000.tif'}: OUT: exists" in err
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def test_convert_exports_mp4(tmp_path: Path, capsys) -> None:
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v2 as imageio

    _recon_file(tmp_path / "recon.h5")
    status, stdout, err = _run(["convert", str(tmp_path / "recon.h5"), str(tmp_path / "m.mp4"),
                                "--fps", "4"], capsys)
    assert status == 0, err
    reader = imageio.get_reader(tmp_path / "m.mp4", format="ffmpeg")
    try:
        assert reader.count_frames() == T
    finally:
        reader.close()


@pytest.mark.parametrize("argv_tail, message", [
    (["out.png"], "OUT: a reconstruction exports to .tif, .ome.tif or .mp4, not .png"),
    (["out.tif", "--angles", "0,90"], "--angles: not used when exporting a reconstruction"),
    (["out.mp4", "--fps", "0"], "--fps: must be a number in [0.1, 1000]"),
])
def test_convert_refuses_bad_export_requests(argv_tail: list[str], message: str, tmp_path: Path,
                                             capsys) -> None:
    _recon_file(tmp_path / "recon.h5")
    before = _listing(tmp_path)
    argv = ["convert", str(tmp_path / "recon.h5"), str(tmp_path / argv_tail[0]), *argv_tail[1:]]
    status, _, err = _run(argv, capsys)
    assert status == 2 and len(err.splitlines()) == 1 and message in err, err
    assert _listing(tmp_path) == before


def test_convert_refuses_a_recording_written_to_another_suffix(tmp_path: Path, capsys) -> None:
    src = _dxchange(tmp_path / "scan.h5", _recording())
    status, _, err = _run(["convert", str(src), str(tmp_path / "rec.tif")], capsys)
    assert status == 2 and "rec.tif: OUT: a recording is written as .h5 (HDF5), not .tif" in err
    assert not (tmp_path / "rec.tif").exists()
