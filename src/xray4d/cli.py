"""Command line: a thin layer over the Python API.

Each verb lives in its own module of ``xray4d.commands`` (:data:`VERB_MODULES`);
input faults become one line on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from pathlib import Path

import yaml

from . import __version__
from .errors import DivergenceError, InputError, ResourceError

__all__ = ["main"]


class UsageError(Exception):
    """A bad command-line request (exit 2, one line)."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def parse_angles(text: str) -> list[float]:
    """Comma-separated finite angles in degrees; UsageError naming ``--angles`` otherwise."""
    try:
        vals = [float(a) for a in text.split(",") if a.strip() != ""]
    except ValueError:
        raise UsageError(f"--angles: angles must be comma-separated degrees, got {text!r}") from None
    if not vals:
        raise UsageError("--angles: at least one angle is needed")
    if not all(math.isfinite(a) for a in vals):
        raise UsageError(f"--angles: angles must be finite, got {text!r}")
    return vals


def read_config_overrides(path: str | Path) -> dict:
    """The mapping of config overrides in a ``--config`` YAML file (empty file: none).

    UsageError (one line naming the file) when it cannot be read or is not a mapping.
    """
    try:
        overrides = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: --config: cannot read YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(overrides, dict):
        raise UsageError(f"{path}: --config: expected a mapping of config keys")
    return overrides


def _same_file(a: Path, b: Path) -> bool:
    """True when two paths name one file: equal once resolved (symlinks, ``..``), or one
    inode (hard links, bind mounts)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:          # one of them does not exist (yet)
        return False


def check_output(out: str | Path, inputs: list[str | Path], force: bool = False,
                 option: str = "--out") -> None:
    """Refuse an output path that is one of the inputs (however spelled), or that exists
    already unless ``force``. UsageError naming ``option`` otherwise; nothing is touched."""
    out_p = Path(out)
    for i in inputs:
        if _same_file(out_p, Path(i)):
            raise UsageError(f"{out}: {option}: refusing to overwrite the input file {i}")
    if out_p.is_dir():
        raise UsageError(f"{out}: {option}: is a directory")
    if (out_p.exists() or out_p.is_symlink()) and not force:
        raise UsageError(f"{out}: {option}: exists (use --force to overwrite)")


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
VERB_MODULES = ("info", "project", "simulate", "evaluate", "reconstruct", "validate", "demo",
                "benchmark")


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = args.func
    try:
        return int(func(args) or 0)
    except (InputError, UsageError, ResourceError) as exc:
        print(f"xray4d {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except DivergenceError as exc:
        print(f"xray4d {args.command}: error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"xray4d {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    # import through the package so that exceptions raised by verb modules are the same classes
    from xray4d.cli import main as _main
    sys.exit(_main())
