"""Outputs of every verb that writes: the input is never overwritten (however its path is
spelled), an existing output is replaced only with ``--force``, and files are written to
a temporary file and renamed (a failed or killed write leaves the old file and no temp)."""
from __future__ import annotations

import contextlib
import io as _stdio
import os
from pathlib import Path

import h5py
import pytest

from small_files import write_recon, write_recording
from xray4d import cli

T, V, H, W = 2, 2, 8, 8


def run(argv: list[str]) -> tuple[int, str]:
    """``xray4d ARGV`` in-process: exit status and stderr."""
    err = _stdio.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(_stdio.StringIO()):
        rc = cli.main(argv)
    return rc, err.getvalue()


def listing(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    d = tmp_path / "data"
    d.mkdir()
    return {"dir": d, "rec": write_recording(d / "rec.h5"), "recon": write_recon(d / "recon.h5")}


SPELLINGS = ["same", "dotdot", "relative", "symlink", "hardlink"]


def spell(path: Path, how: str, monkeypatch) -> str:
    """Another name for ``path``: the same string, via ``..``, relative, a symlink, a hard link."""
    if how == "same":
        return str(path)
    if how == "dotdot":
        (path.parent / "sub").mkdir(exist_ok=True)
        return str(path.parent / "sub" / ".." / "." / path.name)
    if how == "relative":
        monkeypatch.chdir(path.parent)
        return path.name
    link = path.parent / f"{how}_{path.name}"
    if how == "symlink":
        link.symlink_to(path)
    else:
        os.link(path, link)
    return str(link)


def verb_argv(verb: str, files: dict[str, Path], out: str) -> list[str]:
    rec, recon = str(files["rec"]), str(files["recon"])
    return {"reconstruct": ["reconstruct", rec, "--out", out, "--iterations", "2", "--quiet",
                            "--no-preview"],
            "project": ["project", rec, "--angles", "0,45", "--out", out],
            "evaluate": ["evaluate", recon, "--truth", rec, "--json", out],
            "simulate": ["simulate", "droplets", "--size", "8", "--frames", "2", "--out", out]}[verb]


@pytest.mark.parametrize("how", SPELLINGS)
@pytest.mark.parametrize("verb", ["reconstruct", "project", "evaluate"])
def test_input_is_never_overwritten(verb: str, how: str, files, monkeypatch) -> None:
    target = files["rec"]
    before = target.read_bytes()
    out = spell(target, how, monkeypatch)
    d = files["dir"]
    names = listing(d)
    for force in ([], ["--force"]):
        rc, err = run(verb_argv(verb, files, out) + force)
        assert rc == 2, err
        assert len(err.splitlines()) == 1 and "refusing to overwrite the input" in err, err
    assert target.read_bytes() == before
    assert listing(d) == names


def test_evaluate_json_is_not_the_reconstruction_either(files) -> None:
    before = files["recon"].read_bytes()
    link = files["dir"] / "link.json"
    link.symlink_to(files["recon"])
    rc, err = run(["evaluate", str(files["recon"]), "--truth", str(files["rec"]), "--json",
                   str(link), "--force"])
    assert rc == 2 and "refusing to overwrite the input" in err
    assert files["recon"].read_bytes() == before


def test_reconstruct_checkpoint_is_not_the_input(files) -> None:
    """``--out X`` checkpoints to ``X.ckpt``: an input of that name is refused too."""
    ckpt_named = files["dir"] / "rec.h5.ckpt"
    files["rec"].rename(ckpt_named)
    before = ckpt_named.read_bytes()
    rc, err = run(["reconstruct", str(ckpt_named), "--out", str(files["dir"] / "rec.h5"),
                   "--iterations", "2", "--quiet", "--no-preview"])
    assert rc == 2 and "refusing to overwrite the input" in err, err
    assert ckpt_named.read_bytes() == before


def _valid_output(verb: str, path: Path) -> bool:
    if verb == "evaluate":
        import json
        return "volume" in json.loads(path.read_text())
    with h5py.File(path, "r") as f:
        return ("/reconstruction/volume" if verb == "reconstruct" else "/exchange/data") in f


@pytest.mark.parametrize("verb", ["reconstruct", "project", "evaluate", "simulate"])
def test_existing_output_is_replaced_only_with_force(verb: str, files) -> None:
    d = files["dir"]
    out = d / ("out.json" if verb == "evaluate" else "out.h5")
    out.write_bytes(b"an earlier result")
    rc, err = run(verb_argv(verb, files, str(out)))
    assert rc == 2 and len(err.splitlines()) == 1 and "use --force" in err, err
    assert out.read_bytes() == b"an earlier result"
    rc, err = run(verb_argv(verb, files, str(out)) + ["--force"])
    assert rc == 0, err
    assert _valid_output(verb, out)
    assert not [p for p in d.iterdir() if p.name.endswith(".tmp")]


def test_demo_and_benchmark_keep_earlier_results_without_force(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    demo.mkdir()
    (demo / "report.md").write_text("earlier")
    rc, err = run(["demo", "--out", str(demo), "--size", "8", "--frames", "2"])
    assert rc == 2 and "--force" in err and len(err.splitlines()) == 1, err
    assert listing(demo) == ["report.md"] and (demo / "report.md").read_text() == "earlier"
    bench = tmp_path / "bench"
    bench.mkdir()
    (bench / "benchmark.json").write_text("{}")
    rc, err = run(["benchmark", "--out", str(bench), "--size", "8", "--frames", "2",
                   "--methods", "fbp", "--views", "2", "--cases", "head-on", "--time-budget", "1"])
    assert rc == 2 and "--force" in err, err
    assert listing(bench) == ["benchmark.json"]
    # an output that is a file where a folder is needed
    rc, err = run(["demo", "--out", str(demo / "report.md")])
    assert rc == 2 and "not a folder" in err, err


class _Boom(RuntimeError):
    pass


@pytest.mark.parametrize("verb", ["reconstruct", "project", "simulate"])
def test_failed_write_keeps_the_old_output_and_leaves_no_temp(verb: str, files, monkeypatch) -> None:
    """The write fails after the datasets went to the temporary file: the old output is intact."""
    import xray4d.io.hdf5 as xio

    d = files["dir"]
    out = d / "out.h5"
    out.write_bytes(b"an earlier result")

    def boom() -> str:        # called for the 'software' attribute, after the datasets
        raise _Boom("disk full")

    monkeypatch.setattr(xio, "_version", boom)
    with pytest.raises(_Boom):
        run(verb_argv(verb, files, str(out)) + ["--force"])
    assert out.read_bytes() == b"an earlier result"
    assert not [p.name for p in d.iterdir() if p.name.endswith(".tmp")]


def test_temps_of_killed_writers_are_removed_live_ones_kept(tmp_path: Path) -> None:
    """Only xray4d's own temporary files (``.NAME.xray4d-PID-RAND.tmp``) of a dead writer go."""
    from xray4d.io import atomic_path

    target = tmp_path / "out.h5"
    dead = tmp_path / ".out.h5.xray4d-999999999-abc12345.tmp"      # beyond pid_max: no such process
    alive = tmp_path / f".out.h5.xray4d-{os.getppid()}-def45678.tmp"  # a writer still running
    other = tmp_path / ".other.h5.xray4d-999999999-abc12345.tmp"    # another target's temp
    unmarked = tmp_path / ".out.h5.999999999.abc123.tmp"            # not xray4d's: a user's file
    for p in (dead, alive, other, unmarked):
        p.write_bytes(b"partial")
    with atomic_path(target) as tmp:
        tmp.write_text("complete")
    assert target.read_text() == "complete"
    assert not dead.exists()
    assert alive.exists() and other.exists() and unmarked.read_bytes() == b"partial"
