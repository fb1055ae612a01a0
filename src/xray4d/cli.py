"""Command line: a thin layer over the Python API.

Each verb lives in its own small function; input faults become one line on
stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import math
import sys
from pathlib import Path

from .errors import DivergenceError, InputError, OutputError, ResourceError

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
    import yaml

    try:
        overrides = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: --config: cannot read YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(overrides, dict):
        raise UsageError(f"{path}: --config: expected a mapping of config keys")
    return overrides


def _same_file(a: Path, b: Path) -> bool:
    """True when two paths name one file (see :func:`xray4d.io.files.same_file`)."""
    from .io.files import same_file
    return same_file(a, b)


def check_output(out: str | Path, inputs: list[str | Path], force: bool = False,
                 option: str = "--out") -> None:
    """Check one output file before any work (:func:`xray4d.io.files.check_outputs`):
    not an input however spelled, replaced only with ``force``, creatable there.
    OutputError naming ``option`` otherwise; nothing is touched."""
    from .io.files import Output, check_outputs
    check_outputs([Output(Path(out), option)], inputs, force)


def claim_outputs(args: argparse.Namespace, outputs: list, inputs: list | tuple = (),
                  force: bool = False) -> None:
    """Check a verb's outputs before any work and lock the first until the verb returns.

    ``outputs`` are :class:`xray4d.io.files.Output`; ``inputs`` the files the verb reads
    (None entries are skipped). The lock is held by :func:`main` (``args.exit_stack``);
    called without it, the outputs are only checked.
    """
    from .io.files import check_outputs, locked_outputs
    stack = getattr(args, "exit_stack", None)
    if stack is None:
        check_outputs(outputs, [i for i in inputs if i is not None], force)
    else:
        stack.enter_context(locked_outputs(outputs, inputs, force))


# ------------------------------------------------------------------ verbs

def cmd_info(args: argparse.Namespace) -> int:
    from .io import load_recording, load_reconstruction
    import h5py
    try:
        with h5py.File(args.file, "r") as f:
            is_rec = "reconstruction" in f and "exchange" not in f
    except (OSError, RuntimeError, KeyError):
        is_rec = False  # load_recording below names the fault
    if is_rec:
        r = load_reconstruction(args.file)
        print(f"file:        {args.file}")
        print("kind:        reconstruction")
        print(f"frames:      {r.volume.shape[0]}")
        print(f"volume:      {r.volume.shape[1]} x {r.volume.shape[2]} x {r.volume.shape[3]} (z, y, x)")
        print(f"method:      {r.method}")
        print(f"value range: {r.volume.min():.6g} .. {r.volume.max():.6g}")
        print(f"channels:    {'delta, beta' if r.volume_beta is not None else 'one'}")
        print(f"wall time:   {r.wall_seconds:.1f} s")
        return 0
    rec = load_recording(args.file)
    g = rec.geometry
    ang = g.angles_deg[0] if g.angles_shared else None
    print(f"file:        {args.file}")
    print("kind:        recording")
    print(f"frames:      {rec.frames}")
    print(f"views:       {rec.views}")
    print(f"detector:    {g.height} rows x {g.width} columns")
    if ang is not None:
        print("angles:      " + ", ".join(f"{a:g}" for a in ang) + " deg (same every frame)")
    else:
        print(f"angles:      per frame, {g.angles_deg.min():g} .. {g.angles_deg.max():g} deg")
    print(f"quantity:    {rec.quantity}")
    print(f"value range: {rec.projections.min():.6g} .. {rec.projections.max():.6g}")
    print(f"time:        {rec.time[0]:g} .. {rec.time[-1]:g} s")
    print(f"truth:       {'yes' if rec.has_truth else 'no'}")
    for k, v in rec.attrs.items():
        print(f"{k + ':':<13}{v}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    p = OneLineArgumentParser(prog="xray4d",
                              description="4D reconstruction from sparse X-ray projections")
    p.add_argument("--version", action="version", version=f"xray4d {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineArgumentParser)
    s = sub.add_parser("info", help="summarise a recording or reconstruction file")
    s.add_argument("file")
    s.set_defaults(func=cmd_info)
    for name in VERB_MODULES:
        importlib.import_module(f"xray4d.commands.{name}").add_parser(sub)
    return p


#: modules of ``xray4d.commands`` each adding one verb: ``add_parser(subparsers)`` sets ``func``
VERB_MODULES = ("project", "simulate", "evaluate", "reconstruct", "demo", "benchmark")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = args.func
    try:
        with contextlib.ExitStack() as stack:   # output locks a verb holds until it returns
            args.exit_stack = stack
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


if __name__ == "__main__":  # pragma: no cover
    # import through the package so that exceptions raised by verb modules are the same classes
    from xray4d.cli import main as _main
    sys.exit(_main())
