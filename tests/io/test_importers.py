"""Importers of other formats (xray4d.io.formats), each on small files written with the
format's own library (h5py in the Data Exchange layout, nxtomo's NXtomo class, tifffile,
EXtra-data's mock runs, numpy): the projections, angles, flat and dark fields and the
mapping of images to frames and views are checked against what was written."""
from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile

from xray4d.errors import InputError
from xray4d.io import detect_format, load_any, peek_quantity

N, H, W = 6, 4, 5


def _images(n: int = N, seed: int = 0) -> np.ndarray:
    """Distinct uint16 images: any mix-up of order or axes changes the values."""
    return np.random.default_rng(seed).permutation(n * H * W).reshape(n, H, W).astype(np.uint16) + 100


def _refused(call, path: str | Path, where: str, fault: str) -> InputError:
    """``call()`` raises InputError naming ``path``, ``where`` and containing ``fault``."""
    with pytest.raises(InputError) as info:
        call()
    exc = info.value
    assert exc.path == str(path), str(exc)
    assert exc.dataset == where, str(exc)
    assert fault in exc.fault, str(exc)
    assert "\n" not in str(exc)
    return exc


# ------------------------------------------------------------------ Data Exchange

def write_dxchange(path: Path, data: np.ndarray | None, theta: np.ndarray | None,
                   white: np.ndarray | None = None, dark: np.ndarray | None = None,
                   theta_units: str | None = None) -> Path:
    """The classic single-scan Data Exchange layout, written with h5py as dxchange does."""
    with h5py.File(path, "w") as f:
        f.attrs["implements"] = "exchange:measurement:process"
        for name, arr in (("data", data), ("theta", theta), ("data_white", white),
                          ("data_dark", dark)):
            if arr is not None:
                f.create_dataset(f"/exchange/{name}", data=arr)
        if theta_units is not None:
            f["/exchange/theta"].attrs["units"] = theta_units
    return path


def test_dxchange_rotating_scan_is_frames_of_one_view(tmp_path: Path) -> None:
    imgs = _images()
    theta = np.array([0.0, 30.5, 61.0, 91.5, 122.0, 152.5])
    white = np.stack([np.full((H, W), 1000 + i, np.uint16) for i in range(3)])
    dark = np.full((2, H, W), 7, np.uint16)
    path = write_dxchange(tmp_path / "scan.h5", imgs, theta, white, dark)
    assert detect_format(path) == "dxchange"
    assert peek_quantity(path) == "intensity"
    rec = load_any(path)
    assert rec.projections.shape == (N, 1, H, W) and rec.projections.dtype == np.float32
    np.testing.assert_array_equal(rec.projections[:, 0], imgs.astype(np.float32))
    np.testing.assert_array_equal(rec.geometry.angles_deg, theta[:, None])
    assert not rec.geometry.angles_shared
    assert rec.quantity == "intensity"
    assert rec.white.shape == (3, 1, H, W) and rec.dark.shape == (2, 1, H, W)
    np.testing.assert_array_equal(rec.white[:, 0], white.astype(np.float32))
    np.testing.assert_array_equal(rec.dark[:, 0], dark.astype(np.float32))
    np.testing.assert_array_equal(rec.time, np.arange(N))


def test_dxchange_views_group_consecutive_images(tmp_path: Path) -> None:
    imgs = _images()
    theta = np.deg2rad([0.0, 90.0, 5.0, 95.0, 10.0, 100.0])
    path = write_dxchange(tmp_path / "scan.h5", imgs, theta, np.full((1, H, W), 9.0),
                          theta_units="rad")
    rec = load_any(path, views=2)
    assert rec.projections.shape == (3, 2, H, W)
    for i in range(N):
        np.testing.assert_array_equal(rec.projections[i // 2, i % 2], imgs[i])
        np.testing.assert_array_equal(rec.white[0, i % 2], np.full((H, W), 9.0))
    np.testing.assert_allclose(rec.geometry.angles_deg, [[0, 90], [5, 95], [10, 100]], atol=1e-12)
    assert rec.dark is None


def test_dxchange_without_flats_is_line_integrals(tmp_path: Path) -> None:
    path = write_dxchange(tmp_path / "li.h5", _images().astype(np.float32) / 1e3, np.zeros(N))
    rec = load_any(path, views=3)
    assert rec.quantity == "line_integral" and rec.white is None
    assert rec.geometry.angles_shared and rec.geometry.angles_deg.shape == (2, 3)


@pytest.mark.parametrize("case, where, fault", [
    ("views", "/exchange/data", "6 images do not divide into frames of 4 views"),
    ("theta_count", "/exchange/theta", "5 angles but /exchange/data has 6 projections"),
    ("theta_missing", "/exchange/theta", "missing"),
    ("data_missing", "/exchange/data", "missing"),
    ("dark_only", "/exchange/data_white", "missing"),
    ("white_shape", "/exchange/data_white", "wrong shape"),
    ("nan", "/exchange/data", "NaN"),
])
def test_dxchange_refuses(case: str, where: str, fault: str, tmp_path: Path) -> None:
    imgs, theta, opts = _images(), np.zeros(N), {}
    kw: dict = {}
    if case == "views":
        opts["views"] = 4
    elif case == "theta_count":
        theta = np.zeros(N - 1)
    elif case == "theta_missing":
        theta = None
    elif case == "data_missing":
        imgs = None
    elif case == "dark_only":
        kw["dark"] = np.zeros((1, H, W))
    elif case == "white_shape":
        kw["white"] = np.ones((1, H, W + 1))
    elif case == "nan":
        imgs = imgs.astype(np.float32)
        imgs[2, 1, 1] = np.nan
    path = write_dxchange(tmp_path / f"{case}.h5", imgs, theta, **kw)
    fmt = "dxchange" if case == "data_missing" else "auto"   # no data: nothing to detect from
    _refused(lambda: load_any(path, format=fmt, **opts), path, where, fault)


def test_options_a_format_does_not_use_are_refused(tmp_path: Path) -> None:
    path = write_dxchange(tmp_path / "scan.h5", _images(), np.zeros(N))
    _refused(lambda: load_any(path, angles=[0.0]), path, "--angles",
             "not used by the dxchange format")
    _refused(lambda: load_any(path, sources=["CAM"]), path, "--source",
             "not used by the dxchange format")


# ------------------------------------------------------------------ NXtomo

def write_nxtomo(path: Path, entry: str, projections: np.ndarray, angles: np.ndarray,
                 flats: np.ndarray | None = None, darks: np.ndarray | None = None) -> Path:
    """An NXtomo entry written by nxtomo's NXtomo class: darks, flats, the projections,
    flats again, one alignment and one invalid image."""
    pint = pytest.importorskip("pint")
    nxapp = pytest.importorskip("nxtomo.application.nxtomo")
    from nxtomo.nxobject.nxdetector import ImageKey

    ureg = pint.get_application_registry()
    parts, keys, rot = [], [], []

    def add(images, key, angle_values):
        parts.append(images)
        keys.extend([key] * len(images))
        rot.extend(angle_values)

    if darks is not None:
        add(darks, ImageKey.DARK_FIELD, [0.0] * len(darks))
    if flats is not None:
        add(flats[:1], ImageKey.FLAT_FIELD, [0.0])
    add(projections, ImageKey.PROJECTION, list(angles))
    if flats is not None:
        add(flats[1:], ImageKey.FLAT_FIELD, [180.0] * (len(flats) - 1))
    add(np.full((1, H, W), 3, np.uint16), ImageKey.ALIGNMENT, [45.0])
    add(np.full((1, H, W), 4, np.uint16), ImageKey.INVALID, [46.0])
    nx = nxapp.NXtomo()
    nx.instrument.detector.data = np.concatenate(parts).astype(np.uint16)
    nx.instrument.detector.image_key_control = keys
    nx.sample.rotation_angle = np.asarray(rot) * ureg.degree
    nx.instrument.detector.x_pixel_size = nx.instrument.detector.y_pixel_size = 6.5e-6 * ureg.meter
    nx.sample.x_pixel_size = nx.sample.y_pixel_size = 1.3 * ureg.micrometer
    nx.instrument.detector.distance = 0.25 * ureg.meter
    nx.instrument.beam.incident_energy = 19.5 * ureg.keV
    nx.save(file_path=str(path), data_path=entry, overwrite=True)
    return path


def test_nxtomo_projections_flats_darks_and_optics(tmp_path: Path) -> None:
    imgs = _images()
    angles = np.array([0.0, 90.0, 10.0, 100.0, 20.0, 110.0])
    flats = np.stack([np.full((H, W), 900 + i, np.uint16) for i in range(3)])
    darks = np.stack([np.full((H, W), 10 + i, np.uint16) for i in range(2)])
    path = write_nxtomo(tmp_path / "scan.nx", "entry0000", imgs, angles, flats, darks)
    assert detect_format(path) == "nxtomo"
    assert peek_quantity(path) == "intensity"
    rec = load_any(path, views=2)
    assert rec.projections.shape == (3, 2, H, W)        # alignment and invalid images left out
    for i in range(N):
        np.testing.assert_array_equal(rec.projections[i // 2, i % 2], imgs[i])
    np.testing.assert_allclose(rec.geometry.angles_deg, angles.reshape(3, 2))
    assert rec.quantity == "intensity"
    assert rec.white.shape == (3, 2, H, W) and rec.dark.shape == (2, 2, H, W)
    for v in range(2):      # both flat groups in file order, every view
        np.testing.assert_array_equal(rec.white[:, v], flats.astype(np.float32))
        np.testing.assert_array_equal(rec.dark[:, v], darks.astype(np.float32))
    assert rec.attrs["energy_keV"] == pytest.approx(19.5)
    assert rec.attrs["pixel_size_m"] == pytest.approx(1.3e-6)     # the sample's, not the detector's
    assert rec.geometry.pixel_size_m == pytest.approx(1.3e-6)
    assert rec.attrs["propagation_distance_m"] == pytest.approx(0.25)


def test_nxtomo_entries_and_recording_index(tmp_path: Path) -> None:
    path = tmp_path / "two.nx"
    write_nxtomo(path, "entry0000", _images(seed=1), np.arange(N, dtype=float))
    write_nxtomo(path, "entry0001", _images(seed=2), np.arange(N, dtype=float) + 50)
    _refused(lambda: load_any(path), path, "/", "2 NXtomo entries (/entry0000, /entry0001)")
    rec = load_any(path, recording_index=1)
    np.testing.assert_array_equal(rec.projections[:, 0], _images(seed=2))
    np.testing.assert_array_equal(rec.geometry.angles_deg[:, 0], np.arange(N) + 50.0)
    assert rec.quantity == "line_integral" and rec.white is None
    _refused(lambda: load_any(path, recording_index=2), path, "--recording-index", "out of range")


def test_nxtomo_refuses_views_that_do_not_divide(tmp_path: Path) -> None:
    path = write_nxtomo(tmp_path / "scan.nx", "entry", _images(), np.zeros(N))
    _refused(lambda: load_any(path, views=4), path, "/entry/instrument/detector/data",
             "6 images do not divide into frames of 4 views")


@pytest.mark.parametrize("damage", ["truncated", "zero_tail"])
@pytest.mark.parametrize("fmt", ["dxchange", "nxtomo"])
def test_corrupt_hdf5_refused(fmt: str, damage: str, tmp_path: Path) -> None:
    path = tmp_path / "scan.h5"
    if fmt == "dxchange":
        write_dxchange(path, _images(), np.zeros(N))
    else:
        write_nxtomo(path, "entry", _images(), np.zeros(N))
    raw = path.read_bytes()
    half = len(raw) // 2
    path.write_bytes(raw[:half] if damage == "truncated" else raw[:half] + bytes(len(raw) - half))
    with pytest.raises(InputError) as info:
        load_any(path)
    exc = info.value
    assert exc.path == str(path) and "\n" not in str(exc)
    assert ("not a readable HDF5 file" in exc.fault or "truncated or corrupt" in exc.fault), str(exc)


# ------------------------------------------------------------------ TIFF

def test_multipage_tiff_with_shared_angles(tmp_path: Path) -> None:
    imgs = _images()
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, imgs)
    assert detect_format(path) == "tiff"
    rec = load_any(path, angles=[0.0, 23.8])         # two views per frame
    assert rec.projections.shape == (3, 2, H, W)
    for i in range(N):
        np.testing.assert_array_equal(rec.projections[i // 2, i % 2], imgs[i])
    assert rec.geometry.angles_shared
    np.testing.assert_array_equal(rec.geometry.angles_deg[0], [0.0, 23.8])
    assert rec.quantity == "line_integral"


def test_tiff_folder_natural_order_angles_file_and_flats(tmp_path: Path) -> None:
    imgs = _images(11)
    folder = tmp_path / "proj"
    folder.mkdir()
    for i in range(11):             # img_1 .. img_11: natural order, not img_1, img_10, img_11, img_2
        tifffile.imwrite(folder / f"img_{i + 1}.tif", imgs[i])
    angles = np.linspace(0, 180, 11)
    afile = tmp_path / "angles.txt"
    afile.write_text("# degrees\n" + "\n".join(f"{a:.6f}" for a in angles) + "\n")
    flats = tmp_path / "flats.tiff"
    tifffile.imwrite(flats, np.full((2, H, W), 2000, np.uint16))
    darks = tmp_path / "darks.tiff"
    tifffile.imwrite(darks, np.full((H, W), 5, np.uint16))
    assert detect_format(folder) == "tiff"
    assert peek_quantity(folder, angles_file=afile, flats=flats, darks=darks) == "intensity"
    rec = load_any(folder, angles_file=afile, flats=flats, darks=darks)
    assert rec.projections.shape == (11, 1, H, W)
    np.testing.assert_array_equal(rec.projections[:, 0], imgs)
    np.testing.assert_allclose(rec.geometry.angles_deg[:, 0], angles, atol=1e-6)
    assert rec.quantity == "intensity"
    assert rec.white.shape == (2, 1, H, W) and np.all(rec.white == 2000)
    assert rec.dark.shape == (1, 1, H, W) and np.all(rec.dark == 5)


@pytest.mark.parametrize("case", ["angles_count", "shapes_differ", "corrupt", "intensity_no_flats",
                                  "no_angles"])
def test_tiff_refuses(case: str, tmp_path: Path) -> None:
    imgs = _images()
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, imgs)
    if case == "angles_count":
        afile = tmp_path / "angles.txt"
        afile.write_text("\n".join(str(a) for a in range(N - 1)))
        _refused(lambda: load_any(path, angles_file=afile), afile, "--angles-file",
                 "5 angles but the data need 1 (one per view) or 6 (one per image)")
    elif case == "shapes_differ":
        folder = tmp_path / "f"
        folder.mkdir()
        tifffile.imwrite(folder / "a1.tif", imgs[0])
        tifffile.imwrite(folder / "a2.tif", np.zeros((H + 1, W), np.uint16))
        _refused(lambda: load_any(folder, angles=[0.0]), folder / "a2.tif", "TIFF",
                 f"image shape ({H + 1}, {W}) differs from ({H}, {W}) of the first image")
    elif case == "corrupt":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
        _refused(lambda: load_any(path, angles=[0.0]), path, "TIFF", "not a readable TIFF file")
    elif case == "intensity_no_flats":
        _refused(lambda: load_any(path, angles=[0.0], quantity="intensity"), path, "--flats",
                 "missing, needed for quantity intensity")
    else:
        _refused(lambda: load_any(path), path, "angles", "missing")


# ------------------------------------------------------------------ European XFEL

def write_xfel_run(folder: Path, cameras: dict[str, np.ndarray], ntrains: int) -> Path:
    """A mock run written by EXtra-data's mockdata (one Basler camera per view), its
    image datasets then filled with ``cameras`` (images of all trains, in train order)."""
    pytest.importorskip("extra_data")
    from extra_data.tests.mockdata import write_file
    from extra_data.tests.mockdata.basler_camera import BaslerCamera

    folder.mkdir()
    first = next(iter(cameras.values()))
    devices = [BaslerCamera(name, nsamples=len(imgs), sensor_size=first.shape[1:])
               for name, imgs in cameras.items()]
    path = folder / "RAW-R0042-DA01-S00000.h5"
    write_file(str(path), devices, ntrains=ntrains, chunksize=4)
    with h5py.File(path, "r+") as f:
        for name, imgs in cameras.items():
            f[f"INSTRUMENT/{name}:daqOutput/data/image/pixels"][: len(imgs)] = imgs
    return folder


def test_xfel_run_one_view_per_camera_frames_per_train(tmp_path: Path) -> None:
    a, b = _images(8, seed=3), _images(8, seed=4)     # 4 trains x 2 images per train
    run = write_xfel_run(tmp_path / "r0042", {"SPB_CAM/A": a, "SPB_CAM/B": b}, ntrains=4)
    assert detect_format(run) == "xfel"
    rec = load_any(run, angles=[0.0, 90.0])
    assert rec.projections.shape == (8, 2, H, W)
    np.testing.assert_array_equal(rec.projections[:, 0], a)     # sources sorted: A, then B
    np.testing.assert_array_equal(rec.projections[:, 1], b)
    np.testing.assert_array_equal(rec.geometry.angles_deg[0], [0.0, 90.0])
    assert rec.quantity == "line_integral"
    assert "trains 10000..10003" in rec.attrs["description"]
    swapped = load_any(run, sources=["SPB_CAM/B:daqOutput", "SPB_CAM/A:daqOutput"],
                       angles=[90.0, 0.0])
    np.testing.assert_array_equal(swapped.projections[:, 0], b)
    np.testing.assert_array_equal(swapped.projections[:, 1], a)


def test_xfel_flat_and_dark_runs(tmp_path: Path) -> None:
    a, b = _images(4, seed=5), _images(4, seed=6)
    run = write_xfel_run(tmp_path / "r0042", {"SPB_CAM/A": a, "SPB_CAM/B": b}, ntrains=4)
    fa, fb = np.full((2, H, W), 3000, np.uint16), np.full((2, H, W), 3100, np.uint16)
    flats = write_xfel_run(tmp_path / "r0043", {"SPB_CAM/A": fa, "SPB_CAM/B": fb}, ntrains=2)
    darks = write_xfel_run(tmp_path / "r0044", {"SPB_CAM/A": fa[:1] * 0 + 9, "SPB_CAM/B":
                                                fb[:1] * 0 + 11}, ntrains=1)
    assert peek_quantity(run, flats=flats) == "intensity"
    rec = load_any(run, angles=[0.0, 90.0], flats=flats, darks=darks)
    assert rec.quantity == "intensity"
    assert rec.white.shape == (2, 2, H, W) and rec.dark.shape == (1, 2, H, W)
    assert np.all(rec.white[:, 0] == 3000) and np.all(rec.white[:, 1] == 3100)
    assert np.all(rec.dark[:, 0] == 9) and np.all(rec.dark[:, 1] == 11)


def test_xfel_refuses(tmp_path: Path) -> None:
    run = write_xfel_run(tmp_path / "r0042", {"SPB_CAM/A": _images(4), "SPB_CAM/B": _images(4)},
                         ntrains=4)
    _refused(lambda: load_any(run, sources=["SPB_CAM/C:daqOutput"], angles=[0.0]), run,
             "SPB_CAM/C:daqOutput", "no such source in the run")
    _refused(lambda: load_any(run, angles=[0.0]), run, "--angles",
             "1 angles but the data have 2 views")
    _refused(lambda: load_any(run), run, "angles", "missing")


# ------------------------------------------------------------------ .npy

def test_onix_npy_frames_views_and_channel(tmp_path: Path) -> None:
    arr = np.random.default_rng(7).random((3, 2, 2, H, W)).astype(np.float32)
    path = tmp_path / "onix.npy"
    np.save(path, arr)
    _refused(lambda: detect_format(path), path, "--format", "say its layout")
    rec = load_any(path, format="onix-npy", angles=[0.0, 23.86])
    np.testing.assert_array_equal(rec.projections, arr[:, :, 0])
    rec1 = load_any(path, format="onix-npy", angles=[0.0, 23.86], channel=1)
    np.testing.assert_array_equal(rec1.projections, arr[:, :, 1])
    np.testing.assert_array_equal(rec1.geometry.angles_deg, [[0.0, 23.86]] * 3)
    _refused(lambda: load_any(path, format="onix-npy", angles=[0.0, 1.0], channel=2), path,
             "--channel", "2 is out of range")
    np.save(path, arr[:, :, 0])                  # [frame, view, H, W]
    rec4 = load_any(path, format="onix-npy", angles=[0.0, 23.86])
    np.testing.assert_array_equal(rec4.projections, arr[:, :, 0])


def test_hexplane_npy_swaps_width_and_height(tmp_path: Path) -> None:
    arr = np.random.default_rng(8).random((3, 2, W, H)).astype(np.float32)   # [T, view, W, H]
    path = tmp_path / "xmpi.npy"
    np.save(path, arr)
    afile = tmp_path / "angles.txt"
    afile.write_text("0, 45\n")
    rec = load_any(path, format="hexplane-npy", angles_file=afile)
    assert rec.projections.shape == (3, 2, H, W)
    for k in range(H):
        for j in range(W):
            np.testing.assert_array_equal(rec.projections[:, :, k, j], arr[:, :, j, k])
    np.testing.assert_array_equal(rec.geometry.angles_deg[0], [0.0, 45.0])


@pytest.mark.parametrize("case, where, fault", [
    ("rank", "npy", "wrong rank 3"),
    ("pickle", "npy", "not a readable .npy array"),
    ("truncated", "npy", "not a readable .npy array"),
    ("views", "--views", "not used by the hexplane-npy format"),
])
def test_npy_refuses(case: str, where: str, fault: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.npy"
    opts: dict = {"angles": [0.0, 90.0]}
    if case == "rank":
        np.save(path, np.zeros((2, H, W), np.float32))
    elif case == "pickle":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif case == "truncated":
        np.save(path, np.zeros((3, 2, H, W), np.float32))
        path.write_bytes(path.read_bytes()[:-17])
    else:
        np.save(path, np.zeros((3, 2, W, H), np.float32))
        opts["views"] = 2
    _refused(lambda: load_any(path, format="hexplane-npy", **opts), path, where, fault)


# ------------------------------------------------------------------ detection

def test_detect_format_refuses_unknown_and_missing(tmp_path: Path) -> None:
    junk = tmp_path / "data.xyz"
    junk.write_bytes(np.random.default_rng(0).bytes(256))
    _refused(lambda: load_any(junk), junk, "--format", "unknown file format")
    empty = tmp_path / "empty"
    empty.mkdir()
    _refused(lambda: load_any(empty), empty, "--format", "neither TIFF images nor a European XFEL run")
    _refused(lambda: load_any(tmp_path / "nope.h5"), tmp_path / "nope.h5", "/", "no such file")


def test_missing_optional_packages_named(tmp_path: Path, monkeypatch) -> None:
    """Without the import extra, NXtomo files and XFEL runs are refused in one line that
    names the package to install (a None entry in sys.modules makes the import fail)."""
    nx = tmp_path / "scan.nx"
    with h5py.File(nx, "w") as f:                 # enough for detection: definition=NXtomo
        f.create_group("entry").attrs["definition"] = "NXtomo"
    monkeypatch.setitem(sys.modules, "nxtomo.application.nxtomo", None)
    monkeypatch.setitem(sys.modules, "extra_data", None)
    assert detect_format(nx) == "nxtomo"
    _refused(lambda: load_any(nx), nx, "format nxtomo", "needs the optional package nxtomo")
    run = tmp_path / "r0001"
    run.mkdir()
    (run / "RAW-R0001-DA01-S00000.h5").write_bytes(b"")
    _refused(lambda: load_any(run, angles=[0.0]), run, "format xfel",
             "needs the optional package extra-data")


def test_optics_options_override_the_file(tmp_path: Path) -> None:
    path = write_dxchange(tmp_path / "scan.h5", _images(), np.zeros(N), np.ones((1, H, W)))
    rec = load_any(path, energy_keV=25.0, pixel_size_m=2e-6, propagation_distance_m=0.0)
    assert rec.attrs["energy_keV"] == 25.0 and rec.attrs["propagation_distance_m"] == 0.0
    assert rec.geometry.pixel_size_m == 2e-6
    _refused(lambda: load_any(path, pixel_size_m=-1.0), path, "--pixel-size", "invalid value")
