"""Nothing lost, outputs checked first (issue 27): through the real command line.

Every refusal below is one line on stderr and exit status 2, with no traceback,
nothing written (no output, no temporary or lock file, no folder) and nothing lost
(inputs and earlier outputs byte-identical). Covered:

- temporary files are removed only when they are xray4d's (marked name, regular file,
  owner) and their writer is dead: an input named like a temporary file survives;
- one run per output: a second run writing the same output is refused while the first
  holds its lock (also from another process); a lock left by a killed run blocks nothing;
- every output is checked against every input (``--config`` too) and against what
  exists (the preview folder, its config copy, the checkpoint; ``--resume`` consumes the
  checkpoint but an existing output still needs ``--force``) before any work;
- outputs that cannot be created (under /proc or /sys, a name too long, a file where a
  folder must go, a read-only file system) are refused before any work, for every verb;
- inputs that are pipes, devices or folders are refused without hanging;
- a write that fails (a full disk, a file size limit) leaves the earlier file and no
  temporary file, in one line naming the file.
"""
from __future__ import annotations

import contextlib
import errno
import io as _stdio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import pytest

from xray4d import cli
from xray4d.errors import OutputError
from xray4d.io import checks as xchecks
from xray4d.io import files as xfiles
from xray4d.io.files import OutputLock, lock_path, remove_own_stale_temps
from small_files import write_recon, write_recording

T, H, W = 2, 8, 8
SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = dict(os.environ, OMP_NUM_THREADS="1",
           PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))


# ------------------------------------------------------------------ helpers

def run(argv: list[str], seconds: int = 120) -> tuple[int, str]:
    """``xray4d ARGV`` in-process: exit status and stderr; a hang fails after ``seconds``."""
    def hung(*_a) -> None:
        raise TimeoutError(f"xray4d {' '.join(argv)} hung")

    err = _stdio.StringIO()
    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(_stdio.StringIO()):
            rc = cli.main(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return rc, err.getvalue()


def assert_refused(rc: int, err: str, *words: str) -> None:
    """Exit status 2 and one error line (a run that got as far as fitting may have warned
    about its value bound on a line of its own before)."""
    assert rc == 2, err
    errors = [line for line in err.splitlines() if ": warning: " not in line]
    assert len(errors) == 1, err
    assert "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)


def snapshot(*dirs: Path) -> dict[str, bytes | str]:
    """Everything (hidden too) under ``dirs``: path -> bytes of a file, else what it is."""
    out: dict[str, bytes | str] = {}
    for d in dirs:
        for p in sorted(d.rglob("*")):
            if p.is_symlink():
                out[str(p)] = f"link to {os.readlink(p)}"
            elif p.is_file():
                out[str(p)] = p.read_bytes()
            else:
                out[str(p)] = "folder" if p.is_dir() else "special"
    return out


@pytest.fixture
def d(tmp_path: Path) -> Path:
    """A folder with a recording ``rec.h5``, a reconstruction ``recon.h5`` and ``cfg.yaml``."""
    data = tmp_path / "data"
    data.mkdir()
    write_recording(data / "rec.h5")
    write_recon(data / "recon.h5")
    (data / "cfg.yaml").write_text("train:\n  seed: 3\n")
    return data


def verb_argv(verb: str, d: Path, out: str) -> list[str]:
    rec, recon = str(d / "rec.h5"), str(d / "recon.h5")
    return {"reconstruct": ["reconstruct", rec, "--out", out, "--iterations", "2", "--quiet",
                            "--no-preview"],
            "project": ["project", rec, "--angles", "0,45", "--out", out],
            "evaluate": ["evaluate", recon, "--truth", rec, "--json", out],
            "simulate": ["simulate", "droplets", "--size", "8", "--frames", "2", "--out", out],
            "demo": ["demo", "--out", out, "--size", "8", "--frames", "2", "--quiet"],
            "benchmark": ["benchmark", "--out", out, "--size", "8", "--frames", "2",
                          "--methods", "fbp", "--views", "2", "--cases", "head-on",
                          "--time-budget", "1"]}[verb]


FILE_VERBS = ["reconstruct", "project", "evaluate", "simulate"]
ALL_VERBS = FILE_VERBS + ["demo", "benchmark"]


@pytest.fixture
def no_work(monkeypatch) -> None:
    """Fail the test if a verb starts its work (reconstruct, simulate, project, evaluate)."""
    import xray4d.api as api
    import xray4d.commands.evaluate as ev
    import xray4d.evaluation.benchmark  # noqa: F401 (imported unpatched: the verbs import
    import xray4d.evaluation.demo  # noqa: F401   these lazily and would keep the stand-ins)
    import xray4d.simulate as sim

    def started(*_a, **_k):
        raise AssertionError("work started before the outputs were checked")

    for mod, name in ((api, "reconstruct"), (sim, "simulate_droplets"),
                      (sim, "simulate_recording"), (ev, "evaluate_files")):
        monkeypatch.setattr(mod, name, started)


# ------------------------------------------------------------------ temporary files

def test_only_own_temporaries_of_dead_writers_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "out.h5"
    ours_dead = tmp_path / ".out.h5.xray4d-999999999-abcdefgh.tmp"
    ours_alive = tmp_path / f".out.h5.xray4d-{os.getppid()}-abcdefgh.tmp"
    user_files = [tmp_path / n for n in (".out.h5.999999999.abcdefgh.tmp",   # the old form
                                         ".out.h5.xray4d-999999999-abc.tmp",  # 3, not 8
                                         ".out.h5.xray4d-0-abcdefgh.tmp",     # pid 0 is none
                                         ".out.h5.xray4d-999999999-abcdefgh.tmp.bak")]
    for p in (ours_dead, ours_alive, *user_files):
        p.write_bytes(b"data")
    # a link with a marked name is not a temporary file: neither it nor its target goes
    kept = tmp_path / "kept.h5"
    kept.write_bytes(b"precious")
    link = tmp_path / ".out.h5.xray4d-999999998-abcdefgh.tmp"
    link.symlink_to(kept)
    foreign = None
    if os.geteuid() == 0:      # another user's temporary file is not ours either
        foreign = tmp_path / ".out.h5.xray4d-999999997-abcdefgh.tmp"
        foreign.write_bytes(b"theirs")
        os.chown(foreign, 65534, 65534)
    assert remove_own_stale_temps(target) == [ours_dead]
    assert not ours_dead.exists() and ours_alive.exists()
    assert all(p.read_bytes() == b"data" for p in user_files)
    assert link.is_symlink() and kept.read_bytes() == b"precious"
    if foreign is not None:
        assert foreign.read_bytes() == b"theirs"


def test_input_named_like_an_old_temporary_survives_a_run(d: Path) -> None:
    """The finding: an input named ``.OUT.*.tmp`` was deleted by the stale-temp cleanup."""
    src = d / ".out.h5.999999999.abc123.tmp"
    (d / "rec.h5").rename(src)
    before = src.read_bytes()
    rc, err = run(["project", str(src), "--angles", "0,45", "--out", str(d / "out.h5")])
    assert rc == 0, err
    assert src.read_bytes() == before
    assert (d / "out.h5").exists()


@pytest.mark.parametrize("name", [".out.h5.xray4d-999999999-abcdefgh.tmp", ".out.h5.lock"])
def test_input_named_like_an_outputs_temporary_or_lock_is_refused(d: Path, name: str) -> None:
    src = d / name
    (d / "rec.h5").rename(src)
    before = snapshot(d)
    rc, err = run(["project", str(src), "--angles", "0,45", "--out", str(d / "out.h5")])
    assert_refused(rc, err, str(src), "named like its lock or temporary file")
    assert snapshot(d) == before


# ------------------------------------------------------------------ one run per output

@pytest.mark.parametrize("verb", ALL_VERBS)
def test_output_locked_by_another_run_is_refused(verb: str, d: Path, tmp_path: Path,
                                                 no_work) -> None:
    folder = verb in ("demo", "benchmark")
    out = tmp_path / ("bench" if folder else "out.h5")
    if folder:
        out.mkdir()
    before = snapshot(tmp_path)
    with OutputLock(out, folder=folder):
        held = snapshot(tmp_path)
        rc, err = run(verb_argv(verb, d, str(out)))
        assert_refused(rc, err, str(out), f"another xray4d run (pid {os.getpid()}) is writing it")
        assert snapshot(tmp_path) == held          # the holder's lock file untouched
    assert snapshot(tmp_path) == before            # and removed when released


def test_second_process_writing_the_same_output_is_refused(d: Path) -> None:
    """A real second process: refused at once, the first run's files untouched."""
    out = d / "out.h5"
    with OutputLock(out):
        # what the first run has on disk: a checkpoint and a checkpoint being written
        ckpt = d / "out.h5.ckpt"
        ckpt.write_bytes(b"the first run's checkpoint")
        writing = xfiles.new_temp_path(ckpt)
        writing.write_bytes(b"half a checkpoint")
        before = snapshot(d)
        r = subprocess.run([sys.executable, "-m", "xray4d", "reconstruct", str(d / "rec.h5"),
                            "--out", str(out), "--iterations", "2", "--quiet", "--no-preview",
                            "--resume", "--force"],
                           capture_output=True, text=True, timeout=300, env=ENV)
        assert_refused(r.returncode, r.stderr, str(out), "another xray4d run")
        assert snapshot(d) == before


def test_lock_left_by_a_killed_run_blocks_nothing(d: Path) -> None:
    out = d / "m.json"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from xray4d.io.files import OutputLock
            OutputLock({str(out)!r}).acquire()
            print("locked", flush=True)
            time.sleep(300)
        """)], stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline().strip() == "locked"
        rc, err = run(["evaluate", str(d / "recon.h5"), "--truth", str(d / "rec.h5"),
                       "--json", str(out)])
        assert_refused(rc, err, f"pid {holder.pid}")
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert lock_path(out).exists()                  # left behind by the killed run
    rc, err = run(["evaluate", str(d / "recon.h5"), "--truth", str(d / "rec.h5"),
                   "--json", str(out)])
    assert rc == 0, err
    assert out.exists() and not lock_path(out).exists()


@pytest.mark.parametrize("what", ["foreign file", "symlink"])
def test_something_else_where_the_lock_goes_is_kept(what: str, d: Path) -> None:
    out = d / "m.json"
    if what == "foreign file":
        lock_path(out).write_text("my notes\n")
    else:
        lock_path(out).symlink_to(d / "cfg.yaml")
    before = snapshot(d)
    rc, err = run(["evaluate", str(d / "recon.h5"), "--truth", str(d / "rec.h5"),
                   "--json", str(out)])
    assert_refused(rc, err, str(out))
    assert snapshot(d) == before


def test_lock_in_python(tmp_path: Path) -> None:
    out = tmp_path / "x.h5"
    with OutputLock(out) as lock:
        assert lock.held and lock_path(out).read_text().startswith("xray4d output lock, pid ")
        with pytest.raises(OutputError, match="another xray4d run"):
            OutputLock(out).acquire()
    assert not lock.held and not lock_path(out).exists()


# ------------------------------------------------------------------ outputs vs inputs and files

@pytest.mark.parametrize("spelling", ["same", "symlink", "hardlink"])
def test_out_equal_to_config_is_refused(spelling: str, d: Path, no_work) -> None:
    cfg = d / "cfg.yaml"
    out = {"same": cfg, "symlink": d / "link.yaml", "hardlink": d / "hard.yaml"}[spelling]
    if spelling == "symlink":
        out.symlink_to(cfg)
    elif spelling == "hardlink":
        os.link(cfg, out)
    before = snapshot(d)
    rc, err = run(["reconstruct", str(d / "rec.h5"), "--out", str(out), "--config", str(cfg),
                   "--iterations", "2", "--quiet", "--force"])
    assert_refused(rc, err, "refusing to overwrite the input file", str(cfg))
    assert snapshot(d) == before


def test_config_copy_is_not_the_config(d: Path, no_work) -> None:
    """``--config OUT_preview/config.yaml`` (an earlier run's copy) is not overwritten."""
    (d / "out_preview").mkdir()
    cfg = d / "out_preview" / "config.yaml"
    cfg.write_text("train:\n  seed: 5\n")
    before = snapshot(d)
    rc, err = run(["reconstruct", str(d / "rec.h5"), "--out", str(d / "out.h5"), "--config",
                   str(cfg), "--iterations", "2", "--quiet", "--force"])
    assert_refused(rc, err, "out_preview", str(cfg))
    assert snapshot(d) == before


def test_existing_preview_folder_needs_force(d: Path, no_work) -> None:
    (d / "out_preview").mkdir()
    (d / "out_preview" / "slices.png").write_bytes(b"an earlier preview")
    before = snapshot(d)
    rc, err = run(["reconstruct", str(d / "rec.h5"), "--out", str(d / "out.h5"),
                   "--iterations", "2", "--quiet"])
    assert_refused(rc, err, str(d / "out_preview"), "preview folder of --out", "--force")
    assert snapshot(d) == before


def test_existing_preview_folder_is_written_with_force(d: Path) -> None:
    (d / "out_preview").mkdir()
    (d / "out_preview" / "notes.txt").write_text("mine")
    rc, err = run(["reconstruct", str(d / "rec.h5"), "--out", str(d / "out.h5"),
                   "--iterations", "2", "--quiet", "--force"])
    assert rc == 0, err
    assert (d / "out_preview" / "config.yaml").stat().st_size > 0
    assert (d / "out_preview" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in d.iterdir()) == ["cfg.yaml", "out.h5", "out_preview", "rec.h5",
                                                   "recon.h5"]


@pytest.mark.parametrize("force", [[], ["--force"]])
@pytest.mark.parametrize("where", ["out_preview", "out_preview/config.yaml"])
def test_file_or_folder_in_the_way_of_the_previews(where: str, force: list[str], d: Path,
                                                   no_work) -> None:
    """A file named OUT_preview (the finding: a traceback after the output was written),
    or a folder where the config copy goes: refused before any work, even with --force."""
    if where == "out_preview":
        (d / "out_preview").write_text("a file")
        fault = "exists and is not a folder"
    else:
        (d / "out_preview" / "config.yaml").mkdir(parents=True)
        fault = "is a directory, a file is needed"
        if not force:               # the folder it is in needs --force first
            where, fault = "out_preview", "exists (use --force to overwrite)"
    before = snapshot(d)
    rc, err = run(["reconstruct", str(d / "rec.h5"), "--out", str(d / "out.h5"),
                   "--iterations", "2", "--quiet"] + force)
    assert_refused(rc, err, f"{d / where}: ", fault)
    assert snapshot(d) == before


def test_resume_does_not_replace_an_existing_output_without_force(d: Path, no_work) -> None:
    (d / "out.h5").write_bytes(b"an earlier result")
    (d / "out.h5.ckpt").write_bytes(b"a checkpoint")
    before = snapshot(d)
    rc, err = run(["reconstruct", str(d / "rec.h5"), "--out", str(d / "out.h5"),
                   "--iterations", "2", "--quiet", "--no-preview", "--resume"])
    assert_refused(rc, err, str(d / "out.h5"), "exists (use --force to overwrite)")
    assert snapshot(d) == before


def test_existing_checkpoint_needs_resume_or_force(d: Path, no_work) -> None:
    (d / "out.h5.ckpt").write_bytes(b"an interrupted run's checkpoint")
    before = snapshot(d)
    rc, err = run(["reconstruct", str(d / "rec.h5"), "--out", str(d / "out.h5"),
                   "--iterations", "2", "--quiet", "--no-preview"])
    assert_refused(rc, err, str(d / "out.h5.ckpt"), "--resume continues it, --force starts over")
    assert snapshot(d) == before


def test_demo_refuses_a_file_where_its_preview_folder_goes(tmp_path: Path, no_work) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    (out / "reconstruction_preview").write_text("a file")
    before = snapshot(tmp_path)
    rc, err = run(verb_argv("demo", tmp_path, str(out)) + ["--force"])
    assert_refused(rc, err, "reconstruction_preview", "not a folder")
    assert snapshot(tmp_path) == before


def test_python_api_refuses_existing_outputs_without_force(d: Path, no_work) -> None:
    from xray4d.api import reconstruct_file

    (d / "out.h5").write_bytes(b"an earlier result")
    with pytest.raises(OutputError, match="exists"):
        reconstruct_file(d / "rec.h5", d / "out.h5", force=False)
    with pytest.raises(OutputError, match="refusing to overwrite the input"):
        reconstruct_file(d / "rec.h5", d / "rec.h5")
    assert (d / "out.h5").read_bytes() == b"an earlier result"


# ------------------------------------------------------------------ outputs that cannot be made

def _place(fault: str, d: Path, verb: str, monkeypatch) -> tuple[str, str]:
    """An output path with ``fault`` and the words its refusal must contain."""
    name = "bench" if verb in ("demo", "benchmark") else "out.h5"
    if fault == "proc":
        return f"/proc/xray4d-test/{name}", "under /proc"
    if fault == "sys":
        return f"/sys/{name}", "under /sys"
    if fault == "too long":
        return str(d / ("x" * 240 + name)), "too long for the file system"
    if fault == "parent is a file":
        return str(d / "rec.h5" / "sub" / name), "is not a folder"
    assert fault == "read-only"

    def read_only(target):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))
    monkeypatch.setattr(xchecks, "new_temp_path", read_only)   # the probe file of the checks
    return str(d / "new" / name), "Read-only file system"


@pytest.mark.parametrize("fault", ["proc", "sys", "too long", "parent is a file", "read-only"])
@pytest.mark.parametrize("verb", ALL_VERBS)
def test_output_that_cannot_be_created_is_refused_before_work(verb: str, fault: str, d: Path,
                                                              no_work, monkeypatch) -> None:
    out, words = _place(fault, d, verb, monkeypatch)
    before = snapshot(d)
    rc, err = run(verb_argv(verb, d, out))
    assert_refused(rc, err, words)
    assert snapshot(d) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in read-only folders")
def test_output_in_a_folder_without_write_permission(d: Path, no_work) -> None:
    locked = d / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        rc, err = run(verb_argv("project", d, str(locked / "out.h5")))
        assert_refused(rc, err, "cannot write in the folder")
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)


def test_folders_made_for_an_output_go_when_the_run_fails(d: Path) -> None:
    """The output's new folders are made when the run starts; a run that fails removes them."""
    write_recon(d / "recon.h5", size=W // 2)            # shape does not match the truth
    before = snapshot(d)
    rc, err = run(["evaluate", str(d / "recon.h5"), "--truth", str(d / "rec.h5"), "--json",
                   str(d / "new" / "sub" / "m.json")])
    assert_refused(rc, err, "does not match truth")
    assert snapshot(d) == before


# ------------------------------------------------------------------ inputs

def _bad_input(kind: str, d: Path) -> Path:
    if kind == "pipe":
        os.mkfifo(d / "pipe")
        return d / "pipe"
    if kind == "device":
        return Path("/dev/zero")
    assert kind == "folder"
    (d / "folder").mkdir()
    return d / "folder"


@pytest.mark.parametrize("kind, fault", [("pipe", "is a named pipe, not a regular file"),
                                         ("device", "is a device, not a regular file"),
                                         ("folder", "is a directory, a file is needed")])
@pytest.mark.parametrize("verb, slot", [("reconstruct", "RECORDING"), ("reconstruct", "--config"),
                                        ("project", "VOLUME"), ("evaluate", "--truth"),
                                        ("evaluate", "REC"), ("benchmark", "--config")])
def test_pipes_devices_and_folders_as_inputs_are_refused(verb: str, slot: str, kind: str,
                                                         fault: str, d: Path, no_work) -> None:
    bad = str(_bad_input(kind, d))
    out = str(d / ("bench" if verb == "benchmark" else "out.h5"))
    argv = verb_argv(verb, d, out)
    if slot == "--config":
        argv += ["--config", bad]
    elif slot == "--truth":
        argv[argv.index("--truth") + 1] = bad
    else:                          # the positional input
        argv[1] = bad
    before = snapshot(d)
    rc, err = run(argv, seconds=60)
    assert_refused(rc, err, bad, fault)
    assert snapshot(d) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_input_is_refused(d: Path, no_work) -> None:
    (d / "rec.h5").chmod(0)
    try:
        rc, err = run(verb_argv("project", d, str(d / "out.h5")))
        assert_refused(rc, err, "cannot be read")
    finally:
        (d / "rec.h5").chmod(0o600)


# ------------------------------------------------------------------ failed writes

@pytest.mark.parametrize("verb", FILE_VERBS)
def test_full_disk_keeps_the_earlier_output_in_one_line(verb: str, d: Path, monkeypatch) -> None:
    import pathlib

    import xray4d.io.hdf5 as xio

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    out = d / ("out.json" if verb == "evaluate" else "out.h5")
    out.write_bytes(b"an earlier result")
    if verb == "evaluate":
        monkeypatch.setattr(pathlib.Path, "write_text", full)
    else:
        monkeypatch.setattr(xio, "_version", full)       # after the datasets were written
    before = snapshot(d)
    rc, err = run(verb_argv(verb, d, str(out)) + ["--force"])
    assert_refused(rc, err, str(out), "No space left on device", "left as it was")
    after = snapshot(d)
    if verb == "reconstruct":        # the fitted state is kept: --resume writes it later
        assert "--resume --force" in err
        assert after.pop(str(out) + ".ckpt")
    assert after == before
    if verb == "reconstruct":
        monkeypatch.undo()
        rc, err = run(verb_argv(verb, d, str(out)) + ["--force", "--resume"])
        assert rc == 0, err
        with h5py.File(out, "r") as f:
            assert f["/reconstruction/volume"].shape == (T, H, W, W)
        assert not (d / "out.h5.ckpt").exists()


def test_file_size_limit_ends_in_one_line_and_no_partial_file(tmp_path: Path) -> None:
    """A real failed write (no monkeypatch): the file size limit makes HDF5's writes fail."""
    import resource

    out = tmp_path / "sim.h5"

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))

    r = subprocess.run([sys.executable, "-m", "xray4d", "simulate", "droplets", "--size", "16",
                        "--frames", "4", "--out", str(out)], capture_output=True, text=True,
                       timeout=300, env=ENV, preexec_fn=limit)
    assert_refused(r.returncode, r.stderr, str(out), "File too large")
    assert list(tmp_path.iterdir()) == []


def test_hdf5_built_in_memory_has_the_bytes_hdf5_writes_to_disk(tmp_path: Path,
                                                                monkeypatch) -> None:
    """The in-memory image (written by Python, so a full disk is a plain OSError) is the
    same file, byte for byte, as HDF5 writing to disk itself (what xray4d wrote before)."""
    import xray4d.io.hdf5 as xio
    from xray4d.io import load_recording, save_recording

    rec = load_recording(write_recording(tmp_path / "src.h5"))
    rec.attrs["description"] = "a droplet " * 20
    save_recording(rec, tmp_path / "memory.h5")
    monkeypatch.setattr(xio, "IN_MEMORY_SHARE", 0.0)
    save_recording(rec, tmp_path / "disk.h5")
    assert (tmp_path / "memory.h5").read_bytes() == (tmp_path / "disk.h5").read_bytes()


def test_hdf5_too_large_for_memory_and_disk_is_refused_before_writing(tmp_path: Path,
                                                                       monkeypatch) -> None:
    import xray4d.io.hdf5 as xio

    class Full:
        f_bavail, f_frsize = 10, 4096           # 40 KiB free

    monkeypatch.setattr(xio, "IN_MEMORY_SHARE", 0.0)
    monkeypatch.setattr(xio.os, "statvfs", lambda _p: Full())
    out = tmp_path / "sim.h5"
    rc, err = run(["simulate", "droplets", "--size", "8", "--frames", "2", "--out", str(out)])
    assert_refused(rc, err, str(out), "GB free on its file system; nothing was written")
    assert list(tmp_path.iterdir()) == []
