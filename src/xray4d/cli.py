"""Command line: a thin layer over the Python API.

Each verb lives in its own module of ``xray4d.commands`` (:data:`VERB_MODULES`);
input faults become one line on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import os
import sys
import warnings
from pathlib import Path
from typing import Callable, TypeVar


from . import __version__
from .errors import DivergenceError, InputError, OutputError, ResourceError

__all__ = ["main", "int_range", "float_range", "list_of", "with_range", "SEED_MAX",
           "ANGLE_LIMIT_DEG"]

_T = TypeVar("_T")

#: largest seed a flag takes: numpy's and torch's generators take any 32-bit unsigned integer
SEED_MAX = 2**32 - 1
#: view angles are degrees in [-ANGLE_LIMIT_DEG, ANGLE_LIMIT_DEG] (any direction, either sense)
ANGLE_LIMIT_DEG = 360.0


class UsageError(Exception):
    """A bad command-line request (exit 2, one line)."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def _number_text(x: float) -> str:
    """``x`` as a user would type it: ``0.5``, ``1e7``, ``1e-6``, ``inf``."""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    mantissa, _, exponent = f"{x:g}".partition("e")
    return mantissa + (f"e{int(exponent)}" if exponent else "")


def int_range(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer literal in ``[lo, hi]``.

    ``1e23``, ``2.5``, ``nan`` or a value outside the range is refused with
    ``argparse.ArgumentTypeError``, which the parser turns into one line naming the
    flag (exit status 2). The callable's ``range_text`` describes the range for --help;
    its ``bounds`` are ``(lo, hi, False, False)``.
    """
    text = f"an integer from {lo} to {hi}"

    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {text}, got {value!r}") from None
        if not lo <= n <= hi:
            raise argparse.ArgumentTypeError(f"must be {text}, got {value!r}")
        return n

    parse.range_text = text  # type: ignore[attr-defined]
    parse.bounds = (lo, hi, False, False)  # type: ignore[attr-defined]
    parse.__name__ = "integer"
    return parse


def float_range(lo: float, hi: float, *, lo_open: bool = False,
                hi_open: bool = False) -> Callable[[str], float]:
    """An argparse ``type``: a number in the interval from ``lo`` to ``hi``.

    Each end is closed unless ``lo_open`` / ``hi_open``; NaN is always refused and an
    infinity only where a closed end is infinite. Faults are ``argparse.ArgumentTypeError``
    (one line naming the flag, exit status 2); ``range_text`` describes the range for --help
    and ``bounds`` is ``(lo, hi, lo_open, hi_open)``.
    """
    text = (f"a number in {'(' if lo_open else '['}{_number_text(lo)}, "
            f"{_number_text(hi)}{')' if hi_open else ']'}")

    def parse(value: str) -> float:
        try:
            x = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {text}, got {value!r}") from None
        inside = ((lo < x if lo_open else lo <= x) and (x < hi if hi_open else x <= hi))
        if math.isnan(x) or not inside:
            raise argparse.ArgumentTypeError(f"must be {text}, got {value!r}")
        return x

    parse.range_text = text  # type: ignore[attr-defined]
    parse.bounds = (lo, hi, lo_open, hi_open)  # type: ignore[attr-defined]
    parse.__name__ = "number"
    return parse


def list_of(item: Callable[[str], _T], *, max_items: int = 1000) -> Callable[[str], list[_T]]:
    """An argparse ``type``: a comma-separated list of 1 to ``max_items`` values, each parsed
    by ``item`` (e.g. :func:`int_range`); faults name the offending item."""
    def parse(value: str) -> list[_T]:
        parts = [v.strip() for v in value.split(",") if v.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {value!r}")
        if len(parts) > max_items:
            raise argparse.ArgumentTypeError(f"at most {max_items} values, got {len(parts)}")
        return [item(v) for v in parts]

    text = getattr(item, "range_text", "")
    parse.range_text = f"comma-separated, each {text}" if text else "comma-separated"  # type: ignore[attr-defined]
    parse.item = item  # type: ignore[attr-defined]
    parse.__name__ = "list"
    return parse


def with_range(help_text: str, kind: Callable[[str], object]) -> str:
    """``help_text`` followed by the range of an argparse type made by :func:`int_range`,
    :func:`float_range` or :func:`list_of`."""
    return f"{help_text}; {kind.range_text}"  # type: ignore[attr-defined]


#: flag types shared by the verbs; their limits are printed by --help
#: (sizes, frames and views are also checked against the memory available, before any work)
SEED = int_range(0, SEED_MAX)
#: voxels per side of a cube or detector width: 4096 is a large detector's full width
SIZE_MAX = 4096
SIZE = int_range(2, SIZE_MAX)
#: frames of a movie: 100000 is far beyond any ultra-fast camera's memory
FRAMES_MAX = 100_000
FRAMES = int_range(1, FRAMES_MAX)
#: Gaussian noise sigma as a fraction of the largest line integral: 10 buries any signal
NOISE = float_range(0.0, 10.0)
#: iterations of a fit
ITERATIONS = int_range(1, 10**9)
#: wall-time budgets in seconds: at most 1e7 s (16 weeks)
TIME_BUDGET_S = float_range(0.0, 1e7, lo_open=True)
#: torch threads
THREADS = int_range(1, 4096)


def parse_angles(text: str) -> list[float]:
    """Comma-separated finite angles in degrees, each within +-:data:`ANGLE_LIMIT_DEG`;
    UsageError naming ``--angles`` otherwise."""
    try:
        vals = [float(a) for a in text.split(",") if a.strip() != ""]
    except ValueError:
        raise UsageError(f"--angles: angles must be comma-separated degrees, got {text!r}") from None
    if not vals:
        raise UsageError("--angles: at least one angle is needed")
    if not all(math.isfinite(a) for a in vals):
        raise UsageError(f"--angles: angles must be finite, got {text!r}")
    if not all(abs(a) <= ANGLE_LIMIT_DEG for a in vals):
        raise UsageError(f"--angles: angles must be degrees in [-{ANGLE_LIMIT_DEG:g}, "
                         f"{ANGLE_LIMIT_DEG:g}], got {text!r}")
    return vals


def read_config_overrides(path: str | Path) -> dict:
    """The mapping of config overrides in a ``--config`` YAML file (empty file: none).

    A thin alias of :func:`xray4d.config.load_config_file`: an
    :class:`~xray4d.errors.InputError` (one line naming the file and the fault) when the
    file is not a regular file, too large, not UTF-8, not YAML within the limits, not a
    mapping, or holds an unknown key or a value out of its rule.
    """
    from .config import load_config_file

    return load_config_file(path)


def _same_file(a: Path, b: Path) -> bool:
    """True when two paths name one file (see :func:`xray4d.io.checks.same_file`)."""
    from .io.checks import same_file
    return same_file(a, b)


def check_output(out: str | Path, inputs: list[str | Path], force: bool = False,
                 option: str = "--out") -> None:
    """Check one output file before any work (:func:`xray4d.io.checks.check_outputs`):
    not an input however spelled, replaced only with ``force``, creatable there.
    OutputError naming ``option`` otherwise; nothing is touched."""
    from .io.checks import Output, check_outputs
    check_outputs([Output(Path(out), option)], inputs, force)


def claim_outputs(args: argparse.Namespace, outputs: list, inputs: list | tuple = (),
                  force: bool = False) -> None:
    """Check a verb's outputs before any work and lock the first until the verb returns.

    ``outputs`` are :class:`xray4d.io.checks.Output`; ``inputs`` the files the verb reads
    (None entries are skipped). The lock is held by :func:`main` (``args.exit_stack``);
    called without it, the outputs are only checked.
    """
    from .io.checks import check_outputs, locked_outputs
    stack = getattr(args, "exit_stack", None)
    if stack is None:
        check_outputs(outputs, [i for i in inputs if i is not None], force)
    else:
        stack.enter_context(locked_outputs(outputs, inputs, force))


def build_parser() -> argparse.ArgumentParser:
    """The ``xray4d`` parser: one subcommand per module of :data:`VERB_MODULES`."""
    p = OneLineArgumentParser(prog="xray4d",
                              description="4D reconstruction from sparse X-ray projections")
    p.add_argument("--version", action="version", version=f"xray4d {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineArgumentParser)
    for name in VERB_MODULES:
        importlib.import_module(f"xray4d.commands.{name}").add_parser(sub)
    return p


#: modules of ``xray4d.commands`` each adding one verb: ``add_parser(subparsers)`` sets ``func``
VERB_MODULES = ("info", "project", "simulate", "evaluate", "reconstruct", "validate", "convert",
                "demo",
                "benchmark")


#: exit status when the reader of stdout went away (``xray4d info F | head -1``): 128 + SIGPIPE,
#: what a shell reports for a program that the signal ended
BROKEN_PIPE_STATUS = 141


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = args.func
    try:
        with contextlib.ExitStack() as stack, warnings.catch_warnings():
            args.exit_stack = stack   # output locks a verb holds until it returns
            # warnings (e.g. a value bound that may cap the reconstruction) as one line each
            warnings.showwarning = lambda message, category, *_a, **_k: print(
                f"xray4d {args.command}: warning: {message}", file=sys.stderr)
            return int(func(args) or 0)
    except (InputError, OutputError, UsageError, ResourceError) as exc:
        print(f"xray4d {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except DivergenceError as exc:
        print(f"xray4d {args.command}: error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"xray4d {args.command}: interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    0 done, 2 bad input (one line on stderr), 3 diverged, 130 interrupted, and
    :data:`BROKEN_PIPE_STATUS` quietly when stdout's reader closed the pipe early.
    """
    try:
        try:
            return _run(argv)
        finally:
            # what is still buffered goes now, so that a closed pipe shows here and not
            # as an error Python prints while it exits
            if sys.stdout is not None:
                sys.stdout.flush()
    except BrokenPipeError:
        # nothing more can reach the reader; stdout is pointed at /dev/null so that the
        # flush at exit does not fail again
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (AttributeError, OSError, ValueError):     # not a file (e.g. captured)
            pass
        return BROKEN_PIPE_STATUS


if __name__ == "__main__":  # pragma: no cover
    # import through the package so that exceptions raised by verb modules are the same classes
    from xray4d.cli import main as _main
    sys.exit(_main())
