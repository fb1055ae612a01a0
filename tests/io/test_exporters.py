"""Exporters of a reconstruction (xray4d.io.export), read back with other libraries:
the TIFF stacks and the OME-TIFF with tifffile, the MP4 with imageio's ffmpeg reader."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from xray4d.data import Reconstruction
from xray4d.io import export_kind, export_movie, export_ome_tiff, export_tiff_stack

T, Z, Y, X = 3, 4, 6, 6


def _reconstruction(beta: bool = False) -> Reconstruction:
    rng = np.random.default_rng(0)
    vol = rng.normal(size=(T, Z, Y, X)).astype(np.float32)
    return Reconstruction(vol, np.arange(T, dtype=float), method="sirt",
                          volume_beta=vol * -1e-3 if beta else None, source="rec.h5")


def test_export_kind_from_suffix() -> None:
    assert export_kind("a/movie.ome.tif") == "ome-tiff"
    assert export_kind("movie.OME.TIFF") == "ome-tiff"
    assert export_kind("frames.tif") == "tiff" and export_kind("frames.tiff") == "tiff"
    assert export_kind("m.mp4") == "mp4"
    assert export_kind("m.h5") is None and export_kind(".tif") is None


def test_tiff_stack_one_float32_file_per_frame(tmp_path: Path) -> None:
    rec = _reconstruction(beta=True)
    paths = export_tiff_stack(rec, tmp_path / "frames.tif")
    assert [p.name for p in paths] == [f"frames_t{t:04d}.tif" for t in range(T)] + \
        [f"frames_beta_t{t:04d}.tif" for t in range(T)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)
    for t in range(T):
        with tifffile.TiffFile(paths[t]) as tf:
            assert tf.is_imagej and len(tf.pages) == Z
            back = tf.asarray()
        assert back.dtype == np.float32
        np.testing.assert_array_equal(back, rec.volume[t])
        np.testing.assert_array_equal(tifffile.imread(paths[T + t]), rec.volume_beta[t])


def test_ome_tiff_is_tzyx_with_axes_metadata(tmp_path: Path) -> None:
    rec = _reconstruction()
    out = export_ome_tiff(rec, tmp_path / "movie.ome.tif")
    with tifffile.TiffFile(out) as tf:
        assert tf.is_ome
        series = tf.series[0]
        assert series.axes == "TZYX" and series.shape == (T, Z, Y, X)
        back = series.asarray()
        ome = tf.ome_metadata
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, rec.volume)
    for tag in (f'SizeT="{T}"', f'SizeZ="{Z}"', f'SizeY="{Y}"', f'SizeX="{X}"', 'Type="float"'):
        assert tag in ome, tag


def test_ome_tiff_two_channels(tmp_path: Path) -> None:
    rec = _reconstruction(beta=True)
    out = export_ome_tiff(rec, tmp_path / "movie.ome.tiff")
    with tifffile.TiffFile(out) as tf:
        series = tf.series[0]
        assert series.axes == "TCZYX" and series.shape == (T, 2, Z, Y, X)
        back = series.asarray()
    np.testing.assert_array_equal(back[:, 0], rec.volume)
    np.testing.assert_array_equal(back[:, 1], rec.volume_beta)


def test_mp4_has_one_video_frame_per_reconstructed_frame(tmp_path: Path) -> None:
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v2 as imageio

    rec = _reconstruction()
    rec.volume[1] += 5.0          # a bright middle frame: the normalisation is over the movie
    out = export_movie(rec, tmp_path / "movie.mp4", fps=5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["movie.mp4"]     # no temporary left
    reader = imageio.get_reader(out, format="ffmpeg")
    try:
        assert reader.count_frames() == T
        frames = [reader.get_data(i) for i in range(T)]
        assert reader.get_meta_data()["fps"] == pytest.approx(5)
    finally:
        reader.close()
    assert frames[0].shape[0] % 16 == 0 and frames[0].shape[1] % 16 == 0
    assert frames[0].shape[0] >= 256 // max(Z, Y, X)
    means = [float(f.mean()) for f in frames]
    assert means[1] > means[0] and means[1] > means[2]
