"""Reading a YAML config file defensively: regular files only (checked by ``stat`` before
``open``), at most :data:`MAX_CONFIG_BYTES`, UTF-8, safe YAML without aliases, at most
:data:`MAX_CONFIG_DEPTH` levels and :data:`MAX_CONFIG_NODES` nodes. Faults are one-line
:class:`~xray4d.errors.InputError` naming the file."""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError

__all__ = ["MAX_CONFIG_BYTES", "MAX_CONFIG_DEPTH", "MAX_CONFIG_NODES", "read_config_bytes",
           "parse_yaml"]


#: largest config file read (the complete resolved config is under 2 KB)
MAX_CONFIG_BYTES = 64 * 1024
#: deepest nesting of YAML collections in a config file (a config has 2 levels)
MAX_CONFIG_DEPTH = 64
#: most YAML nodes in a config file (a complete config has about 70)
MAX_CONFIG_NODES = 10_000

_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
               (stat.S_ISSOCK, "a socket"))


class _LimitExceeded(Exception):
    """A YAML document beyond the limits of a config file."""


class _ConfigLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses aliases and stops at MAX_CONFIG_DEPTH levels of
    nesting and MAX_CONFIG_NODES nodes, before the composer's recursion can go deep."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise _LimitExceeded("aliases (*name) are not allowed in a config file")
        self._nodes += 1
        if self._nodes > MAX_CONFIG_NODES:
            raise _LimitExceeded(f"more than {MAX_CONFIG_NODES} YAML nodes")
        self._depth += 1
        if self._depth > MAX_CONFIG_DEPTH:
            raise _LimitExceeded(f"nested deeper than {MAX_CONFIG_DEPTH} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _one_line(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text.strip())


def _yaml_fault(exc: BaseException) -> str:
    """One line saying why YAML could not be read."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem:
        where = (f" at line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"
                 if exc.problem_mark is not None else "")
        return f"not valid YAML: {_one_line(exc.problem)}{where}"
    if isinstance(exc, yaml.YAMLError):
        return f"not valid YAML: {_one_line(str(exc).splitlines()[0] if str(exc) else '')}"
    if isinstance(exc, RecursionError):  # (the limits above should make this unreachable)
        return f"nested deeper than {MAX_CONFIG_DEPTH} levels"
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "integer string conversion" in text:
        text = f"an integer of more than {sys.get_int_max_str_digits()} digits"
    return f"a YAML value cannot be read ({_one_line(text)[:120]})"


def parse_yaml(text: str) -> Any:
    """The one YAML document of ``text`` within the limits; ValueError (one line) otherwise."""
    try:
        loader = _ConfigLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except _LimitExceeded as exc:
        raise ValueError(str(exc)) from None
    except Exception as exc:  # YAMLError, and what constructors raise (bad dates, 5000-digit ints)
        raise ValueError(_yaml_fault(exc)) from None


def _pseudo_file_system(path: Path, st: os.stat_result) -> bool:
    """Whether a file lies under /proc, /sys or /dev, or on the file system of /proc or /sys
    (files that are not what they say: size 0 with content, or reads that block)."""
    parts = Path(os.path.realpath(path)).parts
    if len(parts) > 1 and parts[1] in ("proc", "sys", "dev"):
        return True
    for root in ("/proc", "/sys"):
        try:
            if os.stat(root).st_dev == st.st_dev:
                return True
        except OSError:
            pass
    return False


def read_config_bytes(path: Path) -> bytes:
    """The bytes of a regular file of at most MAX_CONFIG_BYTES; InputError otherwise.

    The kind of file is checked by ``stat`` before it is opened (a named pipe, a device
    such as /dev/zero, a directory is never opened), and again on the open descriptor
    (opened non-blocking, so a pipe put in its place meanwhile cannot block).
    """
    def refuse(fault: str) -> InputError:
        return InputError(path, "config file", fault)

    def kind_fault(st: os.stat_result) -> str | None:
        for test, kind in _FILE_KINDS:
            if test(st.st_mode):
                return f"is {kind}, not a regular file"
        if not stat.S_ISREG(st.st_mode):
            return "is not a regular file"
        if _pseudo_file_system(path, st):
            return "is a file of /proc, /sys or /dev, not a config file"
        if st.st_size > MAX_CONFIG_BYTES:
            return f"is {st.st_size} bytes; a config file is at most {MAX_CONFIG_BYTES}"
        return None

    try:
        fault = kind_fault(os.stat(path))
        if fault:
            raise refuse(fault)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
                     | getattr(os, "O_CLOEXEC", 0))
    except InputError:
        raise
    except OSError as exc:
        raise refuse(f"cannot open ({_one_line(exc.strerror or str(exc))})") from None
    try:
        fault = kind_fault(os.fstat(fd))
        if fault:
            raise refuse(fault)
        chunks, size = [], 0
        while size <= MAX_CONFIG_BYTES:  # a file that grows meanwhile is cut off here
            chunk = os.read(fd, MAX_CONFIG_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise refuse(f"cannot read ({_one_line(exc.strerror or str(exc))})") from None
    finally:
        os.close(fd)
    if size > MAX_CONFIG_BYTES:
        raise refuse(f"holds more than {MAX_CONFIG_BYTES} bytes; a config file is at most "
                     f"{MAX_CONFIG_BYTES}")
    return b"".join(chunks)
