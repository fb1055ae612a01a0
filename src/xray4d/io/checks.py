"""Checks before any work: every output against the inputs, what exists and the file system;
every input readable; the first output locked for the run (:func:`locked_outputs`).

The rules are those of :mod:`xray4d.io.files` (outputs checked first, inputs checked,
one writer per output); this module holds the checks, :mod:`xray4d.io.files` the
temporary files and the lock.
"""
from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..errors import InputError, OutputError
from .files import (VIRTUAL_ROOTS, OutputLock, is_own_temp_name, lock_path, new_temp_path, os_reason,
                    temp_name_overhead)

__all__ = ["Output", "check_outputs", "check_inputs", "locked_outputs", "same_file"]

def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when two paths name one file: equal once resolved (symlinks, ``..``), or one
    inode (hard links, bind mounts)."""
    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:          # one of them does not exist (yet)
        return False


@dataclass(frozen=True)
class Output:
    """A path a verb writes.

    Attributes:
        path: the file, or the folder files are written into.
        option: how the user named it, for messages (``--out``, ``preview folder of --out``).
        folder: a folder (else a file, written atomically).
        replace: an existing one is replaced (a file) or written into (a folder) without
            ``force``: a folder that holds the outputs, or the checkpoint ``--resume`` consumes.
        exists_hint: what the message advises when it exists and ``force`` is missing.
    """

    path: Path
    option: str = "--out"
    folder: bool = False
    replace: bool = False
    exists_hint: str = "use --force to overwrite"


def _inside(path: Path, folder: Path) -> bool:
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(folder))
    except ValueError:
        return False
    return True


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _check_against_inputs(o: Output, inputs: Sequence[Path]) -> None:
    p = Path(o.path)
    for i in inputs:
        if same_file(p, i):
            raise OutputError(p, o.option, f"refusing to overwrite the input file {i}")
        if o.folder and _inside(i, p):
            raise OutputError(p, o.option, f"refusing to write into it: it holds the input file {i}")
        if not o.folder and (same_file(lock_path(p), i) or is_own_temp_name(i, p)):
            raise OutputError(p, o.option, f"refusing to write it: the input file {i} is named "
                                           "like its lock or temporary file")


def _check_existing(o: Output, force: bool) -> None:
    p = Path(o.path)
    try:
        st = os.stat(p)
    except (FileNotFoundError, NotADirectoryError):   # absent (a file above: _check_place)
        if os.path.islink(p) and o.folder:      # a dangling link where a folder must go
            raise OutputError(p, o.option, "is a broken symbolic link, a folder is needed") from None
        if os.path.islink(p) and not (force or o.replace):
            raise OutputError(p, o.option, f"exists ({o.exists_hint})") from None
        return
    except OSError as exc:
        raise OutputError(p, o.option, f"cannot be checked ({os_reason(exc)})") from None
    if o.folder:
        if not stat.S_ISDIR(st.st_mode):
            raise OutputError(p, o.option, "exists and is not a folder")
    elif stat.S_ISDIR(st.st_mode):
        raise OutputError(p, o.option, "is a directory, a file is needed")
    elif not stat.S_ISREG(st.st_mode):
        raise OutputError(p, o.option, f"is {_kind(st.st_mode)}, not a regular file; refusing "
                                       "to replace it")
    if not (force or o.replace):
        raise OutputError(p, o.option, f"exists ({o.exists_hint})")


def _check_place(o: Output) -> None:
    """The output can be created: not in a virtual file system, its folder (or the
    nearest existing one above it) is a folder that can be written in, names fit."""
    p = Path(o.path)
    real = os.path.realpath(p)
    for root in VIRTUAL_ROOTS:
        if real == root or real.startswith(root + "/"):
            raise OutputError(p, o.option, f"is under {root}, a kernel file system where "
                                           "files cannot be written")
    is_folder_here = o.folder and os.path.isdir(p)
    holder = p if is_folder_here else p.parent
    holder = Path(os.path.abspath(holder))
    missing: list[str] = []
    while not os.path.lexists(holder):
        missing.append(holder.name)
        holder = holder.parent
    if not os.path.isdir(holder):
        raise OutputError(p, o.option, f"cannot be created: {holder} is not a folder")
    try:
        name_max = os.pathconf(holder, "PC_NAME_MAX")
        path_max = os.pathconf(holder, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    names = [(n, 0) for n in reversed(missing)]
    if not is_folder_here:
        names.append((p.name, temp_name_overhead()))
    for name, extra in names:
        size = len(os.fsencode(name))
        if size + extra > name_max:
            raise OutputError(p, o.option, f"name {name[:40]!r}... too long for the file system "
                                           f"({size} bytes; at most {name_max - extra} here, "
                                           "leaving room for the temporary file)")
    if len(os.fsencode(os.path.abspath(p))) + temp_name_overhead() >= path_max:
        raise OutputError(p, o.option, f"path too long for the file system (at most "
                                       f"{path_max - temp_name_overhead() - 1} bytes here)")
    if not os.access(holder, os.W_OK | os.X_OK):
        raise OutputError(p, o.option, f"cannot write in the folder {holder} (permission denied)")
    # the only proof: create (and remove) a file there; catches read-only file systems
    probe = Path(holder) / (p.name if not missing and not is_folder_here else "probe")
    try:
        new_temp_path(probe).unlink()
    except OSError as exc:
        raise OutputError(p, o.option, f"cannot write in the folder {holder} "
                                       f"({os_reason(exc)})") from None


def check_outputs(outputs: Iterable[Output], inputs: Iterable[str | os.PathLike | None] = (),
                  force: bool = False) -> None:
    """Check, before any work, that a verb can write ``outputs`` without losing anything.

    Each output must not be one of ``inputs`` (however spelled), nor the lock or a
    temporary file name of one; a folder output must not hold an input. An existing
    output needs ``force`` (unless ``replace``); a folder where a file must go, a file
    where a folder must go, a pipe or a device are refused even with ``force``. The
    folder it goes in (or the nearest existing folder above) must accept a new file
    and names must fit the file system. Writes nothing (a probe file is made and
    removed at once).

    Raises:
        xray4d.errors.OutputError: one line naming the output, its option and the fault.
    """
    ins = [Path(i) for i in inputs if i is not None]
    outs = list(outputs)
    for n, o in enumerate(outs):
        for other in outs[:n]:
            if not (o.folder or other.folder) and same_file(o.path, other.path):
                raise OutputError(o.path, o.option, f"is also the {other.option}")
        _check_against_inputs(o, ins)
        _check_existing(o, force)
        _check_place(o)


def check_inputs(inputs: Iterable[tuple[str | os.PathLike, str]]) -> None:
    """Check that each input is a regular file that can be opened for reading.

    Args:
        inputs: ``(path, field)`` pairs; ``field`` names the input in the message
            (``"/"`` for an HDF5 file as a whole, ``"--config"``).

    Raises:
        xray4d.errors.InputError: no such file, a folder, a named pipe, a device, a
            socket, or a file that cannot be opened.
    """
    for path, field in inputs:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise InputError(path, field, "no such file") from None
        except OSError as exc:
            raise InputError(path, field, f"cannot be read ({os_reason(exc)})") from None
        if stat.S_ISDIR(st.st_mode):
            raise InputError(path, field, "is a directory, a file is needed")
        if not stat.S_ISREG(st.st_mode):
            raise InputError(path, field, f"is {_kind(st.st_mode)}, not a regular file")
        try:
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC))
        except OSError as exc:
            raise InputError(path, field, f"cannot be read ({os_reason(exc)})") from None


@contextlib.contextmanager
def locked_outputs(outputs: Sequence[Output], inputs: Iterable[str | os.PathLike | None] = (),
                   force: bool = False) -> Iterator[OutputLock]:
    """Check ``outputs`` (:func:`check_outputs`), lock the first for the block
    (:class:`OutputLock`) and check again under the lock, so that a run that ended
    meanwhile cannot have its output replaced without ``force``."""
    ins = [i for i in inputs if i is not None]
    check_outputs(outputs, ins, force)
    with OutputLock(outputs[0].path, outputs[0].option, outputs[0].folder) as lock:
        check_outputs(outputs, ins, force)
        yield lock
