"""Files written safely: outputs checked before any work, locked while a run writes them,
written to a marked temporary file and renamed when complete.

The rules every verb follows:

- **Outputs checked first** (:func:`xray4d.io.checks.check_outputs`): before any work, every path a verb
  will write is compared with every input (the same file however spelled: ``..``,
  symlinks, hard links), with what exists (``force`` needed to replace a file or
  write into a folder; a folder where a file must go, or a file where a folder must
  go, is refused even with ``force``), and with the file system (the folder can be
  written in, which a probe file proves; the name fits ``NAME_MAX``; not under
  ``/proc`` or ``/sys``).
- **Inputs checked** (:func:`xray4d.io.checks.check_inputs`): a regular file that can be opened for
  reading; a folder, a named pipe, a device or a socket is refused (reading a pipe
  or ``/dev/zero`` would hang or never end).
- **One writer per output** (:class:`OutputLock`): an exclusive ``flock`` on
  ``.NAME.lock`` beside an output file (``DIR/.xray4d.lock`` inside an output folder),
  held for the whole run. The kernel drops the
  lock when its process dies, so a lock file left by a killed run blocks nothing;
  the file holds ``xray4d output lock, pid N`` and a run removes it at its end.
- **Temporary files carry a marker** (:func:`atomic_path`): ``.NAME.xray4d-PID-RAND.tmp``
  beside ``NAME`` (``RAND``: 8 random characters from :func:`tempfile.mkstemp`).
  :func:`remove_own_stale_temps` removes one only when all of these hold: the name
  has exactly that form for that target, it is a regular file (not a link) owned by
  this user, and no process ``PID`` exists any more. Anything else is kept, so an
  input or another program's file is never removed for its name alone.
- **A failed write loses nothing**: an ``OSError`` while writing (a full disk:
  ``ENOSPC``, a file size limit, an I/O error) removes the temporary file, leaves any
  earlier file untouched and becomes :class:`~xray4d.errors.OutputError`, one line
  naming the file.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from ..errors import OutputError

__all__ = ["atomic_path", "new_temp_path", "remove_own_stale_temps", "is_own_temp_name",
           "temp_name_overhead", "lock_path", "OutputLock", "os_reason"]

#: the marker in every temporary file name: ``.NAME.xray4d-PID-RAND.tmp``
TEMP_TAG = "xray4d"
#: the first bytes of every lock file xray4d writes
LOCK_MAGIC = b"xray4d output lock"
#: folders of the kernel's virtual file systems: nothing a verb writes belongs there
VIRTUAL_ROOTS = ("/proc", "/sys")


def os_reason(exc: OSError) -> str:
    """The fault of an OSError in a few words (``No space left on device``), one line."""
    if exc.errno:
        return os.strerror(exc.errno)
    m = re.search(r"error message = '([^']*)'", str(exc))   # HDF5 puts it inside a long text
    if m:
        return m.group(1)
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


# ------------------------------------------------------------------ temporary files

def _temp_prefix(target: Path) -> str:
    return f".{target.name}.{TEMP_TAG}-{os.getpid()}-"


def _temp_pattern(target: Path) -> re.Pattern[str]:
    return re.compile(re.escape(f".{target.name}.{TEMP_TAG}-") + r"([1-9][0-9]{0,9})-[a-z0-9_]{8}\.tmp")


def temp_name_overhead() -> int:
    """How many bytes the temporary file's name adds to the target's name."""
    return len(_temp_prefix(Path("x"))) - 1 + 8 + len(".tmp")


def is_own_temp_name(path: str | os.PathLike, target: str | os.PathLike) -> bool:
    """True when ``path`` is named like a temporary file of ``target`` (name only)."""
    path, target = Path(path), Path(target)
    return _temp_pattern(target).fullmatch(path.name) is not None


def new_temp_path(target: str | os.PathLike) -> Path:
    """Create an empty, marked temporary file beside ``target`` and return its path."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(tmp)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True          # another user's process, or not a pid: assume alive, keep its file
    return True


def remove_own_stale_temps(target: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of ``target`` that a killed xray4d process left behind.

    A file is removed only when it is named ``.NAME.xray4d-PID-RAND.tmp`` for this
    target, is a regular file owned by this user, and process ``PID`` no longer
    exists; everything else is kept. Returns the files removed.
    """
    target = Path(target)
    pattern = _temp_pattern(target)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return removed
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m is None:
            continue
        pid = int(m.group(1))
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            continue
        if pid == os.getpid() or _process_exists(pid):
            continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    On any exception the temporary file is removed and ``target`` is untouched; an
    ``OSError`` (a full disk, an I/O error) becomes :class:`~xray4d.errors.OutputError`
    naming ``target``. The temporary file is ``.NAME.xray4d-PID-RAND.tmp``; those a killed
    process left for the same target are removed first (:func:`remove_own_stale_temps`).
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_own_stale_temps(target)
        tmp_path = new_temp_path(target)
    except OSError as exc:
        raise OutputError(target, "write failed", f"{os_reason(exc)}; nothing was written") from None
    try:
        yield tmp_path
        # mkstemp makes the file 0600; give the result the usual mode (0666 minus umask)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, target)
    except OSError as exc:
        raise OutputError(target, "write failed",
                          f"{os_reason(exc)}; the file was left as it was") from None
    finally:
        with contextlib.suppress(OSError):
            tmp_path.unlink()


# ------------------------------------------------------------------ the output lock

def lock_path(target: str | os.PathLike, folder: bool = False) -> Path:
    """The lock file of an output: ``.NAME.lock`` beside a file, ``DIR/.xray4d.lock`` in a
    folder (so that ``--out .`` needs no write permission above it)."""
    p = Path(os.path.abspath(target))
    return p / f".{TEMP_TAG}.lock" if folder else p.parent / f".{p.name}.lock"


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created, outermost first."""
    missing = []
    p = folder
    while not os.path.lexists(p):
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    made = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        made.append(d)
    return made


class OutputLock:
    """An exclusive lock on an output while a run writes it: ``flock`` on ``.NAME.lock``.

    A second run (any process) that tries to lock the same output is refused at once
    with :class:`~xray4d.errors.OutputError`. The kernel releases a ``flock`` when its
    process dies, so the lock file a killed run leaves behind does not block the next
    run. The lock file is removed on release. Use as a context manager; the folders
    created to hold the output (or the output folder) are removed again if the block
    fails while they are empty.

    Args:
        target: the output file or folder.
        option: how the user named it (``--out``), for the messages.
        folder: ``target`` is a folder (the lock goes inside it).
    """

    def __init__(self, target: str | os.PathLike, option: str = "--out",
                 folder: bool = False) -> None:
        self.target = Path(target)
        self.option = option
        self.path = lock_path(target, folder)
        self._fd: int | None = None
        self._made: list[Path] = []

    def _refuse(self, fault: str) -> OutputError:
        return OutputError(self.target, self.option, fault)

    def acquire(self) -> "OutputLock":
        """Take the lock; OutputError when another run holds it or it cannot be made."""
        try:
            self._made = _make_parents(self.path.parent)
        except OSError as exc:
            raise self._refuse(f"cannot create its folder ({os_reason(exc)})") from None
        try:
            self._fd = self._open_locked()
        except BaseException:
            self._remove_made()
            raise
        return self

    def _open_locked(self) -> int:
        flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
        for _ in range(100):
            created = True
            try:
                fd = os.open(self.path, flags | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                created = False
                try:
                    fd = os.open(self.path, flags | os.O_NONBLOCK)
                except FileNotFoundError:
                    continue                     # its holder removed it meanwhile: again
                except OSError as exc:
                    raise self._refuse(f"its lock file {self.path} cannot be opened "
                                       f"({os_reason(exc)}); remove it if no run is writing "
                                       "this output") from None
            except OSError as exc:
                raise self._refuse(f"cannot create the lock file {self.path} "
                                   f"({os_reason(exc)})") from None
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise self._refuse(f"{self.path} is in the way of its lock file and is not "
                                       "a regular file")
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    holder = _lock_holder(fd)
                    raise self._refuse(f"another xray4d run{holder} is writing it (lock "
                                       f"{self.path.name}); wait for it to end or choose "
                                       "another output") from None
                # a holder may have removed the file between our open and our lock
                try:
                    if os.stat(self.path, follow_symlinks=False).st_ino != os.fstat(fd).st_ino:
                        os.close(fd)
                        continue
                except FileNotFoundError:
                    os.close(fd)
                    continue
                content = os.pread(fd, 64, 0)
                if content and not content.startswith(LOCK_MAGIC):
                    raise self._refuse(f"{self.path} is in the way of its lock file and is not "
                                       "an xray4d lock file; move it away")
                with contextlib.suppress(OSError):     # the pid is for people; best effort
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, LOCK_MAGIC + f", pid {os.getpid()}\n".encode(), 0)
                return fd
            except BaseException:
                os.close(fd)
                if created:
                    with contextlib.suppress(OSError):
                        os.unlink(self.path)
                raise
        raise self._refuse(f"its lock file {self.path} keeps changing; is another run "
                           "starting and stopping?")

    def _remove_made(self) -> None:
        for d in reversed(self._made):
            with contextlib.suppress(OSError):
                d.rmdir()                        # only when empty
        self._made = []

    def release(self, failed: bool = False) -> None:
        """Remove the lock file and drop the lock; after a failure also the empty folders
        that :meth:`acquire` created."""
        if self._fd is None:
            return
        try:
            if os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(self._fd).st_ino:
                os.unlink(self.path)
        except OSError:
            pass
        finally:
            os.close(self._fd)
            self._fd = None
        if failed:
            self._remove_made()

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.release(failed=exc_type is not None)


def _lock_holder(fd: int) -> str:
    try:
        m = re.match(rb"xray4d output lock, pid ([0-9]+)", os.pread(fd, 64, 0))
    except OSError:
        return ""
    return f" (pid {int(m.group(1))})" if m else ""
