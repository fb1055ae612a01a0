"""``xray4d reconstruct A.h5 B.h5 ... --out DIR``: each recording on its own, a failure in one
loses none of the others, a summary table and ``DIR/summary.json``, resume skips the
finished ones, clumsy outputs refused before any work."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xray4d.cli import main
from xray4d.io import load_reconstruction, save_recording
from xray4d.simulate import simulate_droplets

ARGS = ["--iterations", "8", "--quiet", "--no-preview"]


@pytest.fixture
def recordings(tmp_path: Path) -> list[Path]:
    paths = []
    for seed in (0, 1):
        p = tmp_path / f"collision{seed}.h5"
        save_recording(simulate_droplets(size=8, frames=2, seed=seed), p)
        paths.append(p)
    return paths


def test_each_recording_gives_its_own_reconstruction_equal_to_a_single_run(
        recordings: list[Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "batch"
    assert main(["reconstruct", *map(str, recordings), "--out", str(out), *ARGS]) == 0
    table = capsys.readouterr().out
    assert "2 of 2 recordings reconstructed" in table
    summary = json.loads((out / "summary.json").read_text())
    assert [r["status"] for r in summary["recordings"]] == ["done", "done"]
    # the same recording alone gives the same volume (same seed and iterations)
    single = tmp_path / "single.h5"
    assert main(["reconstruct", str(recordings[1]), "--out", str(single), *ARGS]) == 0
    np.testing.assert_array_equal(load_reconstruction(out / "collision1.h5").volume,
                                  load_reconstruction(single).volume)


def test_a_bad_recording_loses_none_of_the_others(recordings: list[Path], tmp_path: Path,
                                                 capsys) -> None:
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))       # an HDF5 signature, then nothing
    out = tmp_path / "batch"
    rc = main(["reconstruct", str(recordings[0]), str(bad), str(recordings[1]), "--out",
               str(out), *ARGS])
    captured = capsys.readouterr()
    assert rc == 1
    assert "going on with the next recording" in captured.out
    assert "Traceback" not in captured.out + captured.err
    rows = json.loads((out / "summary.json").read_text())["recordings"]
    assert [r["status"] for r in rows] == ["done", "failed", "done"]
    assert "broken.h5" in rows[1]["error"]
    assert (out / "collision0.h5").exists() and (out / "collision1.h5").exists()
    assert not (out / "broken.h5").exists()


def test_resume_keeps_finished_outputs(recordings: list[Path], tmp_path: Path, capsys) -> None:
    out = tmp_path / "batch"
    assert main(["reconstruct", str(recordings[0]), "--out", str(out / "collision0.h5"),
                 *ARGS]) == 0
    before = (out / "collision0.h5").stat().st_mtime_ns
    assert main(["reconstruct", *map(str, recordings), "--out", str(out), *ARGS,
                 "--resume"]) == 0
    rows = json.loads((out / "summary.json").read_text())["recordings"]
    assert [r["status"] for r in rows] == ["kept", "done"]
    assert (out / "collision0.h5").stat().st_mtime_ns == before


def test_existing_outputs_and_clashing_names_refused_before_work(recordings: list[Path],
                                                                 tmp_path: Path, capsys) -> None:
    out = tmp_path / "batch"
    out.mkdir()
    (out / "collision1.h5").write_bytes(b"earlier result")
    assert main(["reconstruct", *map(str, recordings), "--out", str(out), *ARGS]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "collision1.h5" in err
    assert sorted(p.name for p in out.iterdir()) == ["collision1.h5"]
    other = tmp_path / "other"
    other.mkdir()
    twin = other / "collision0.h5"
    twin.write_bytes(recordings[0].read_bytes())
    assert main(["reconstruct", str(recordings[0]), str(twin), "--out",
                 str(tmp_path / "b2"), *ARGS]) == 2
    assert "rename one of them" in capsys.readouterr().err
    assert not (tmp_path / "b2").exists()
    # --out a file with several recordings
    assert main(["reconstruct", *map(str, recordings), "--out", str(recordings[0]), *ARGS]) == 2
    assert "--out is a folder" in capsys.readouterr().err
