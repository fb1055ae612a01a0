"""The ``xray4d convert`` verb: other formats in, our recording file out; or a
reconstruction file in, a TIFF stack, an OME-TIFF or an MP4 movie out.

``xray4d convert IN OUT.h5 [--format ...] [--angles ... --views V ...]`` imports a
recording (:func:`xray4d.io.load_any`); ``xray4d convert REC.h5 OUT.{tif,ome.tif,mp4}``
exports a reconstruction (:mod:`xray4d.io.export`). The import options are defined here
once (:func:`add_import_arguments`) and shared with ``xray4d reconstruct``.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from ..cli import UsageError, check_output, float_range, int_range, parse_angles, with_range
from ..data import QUANTITIES
from ..io import (FORMATS, export_kind, export_movie, export_ome_tiff, export_tiff_stack,
                  load_any, load_reconstruction, save_recording)
from ..io.export import is_reconstruction_file, tiff_stack_paths

#: the attribute of each import option in the parsed arguments, with its flag
_IMPORT_ARGS = ("format", "angles", "angles_file", "views", "recording_index", "sources",
                "flats", "darks", "quantity", "channel", "energy", "pixel_size", "distance")


#: ranges of the import and export flags (views of one frame, NXtomo entry, channel of a
#: 4D-ONIX array, X-ray energy, pixel size, propagation distance, movie frame rate)
VIEWS, ENTRY, CHANNEL = int_range(1, 64), int_range(0, 10**6), int_range(0, 64)
ENERGY_KEV, PIXEL_M, DISTANCE_M = float_range(1.0, 800.0), float_range(1e-9, 1.0), float_range(0.0, 1e3)
FPS = float_range(0.1, 1000.0)


def add_import_arguments(p: argparse.ArgumentParser) -> None:
    """The options that say how to read a recording of another format (``convert`` and
    ``reconstruct``)."""
    g = p.add_argument_group("input of another format (docs/data-format.md, "
                             "\"Importing other formats\")")
    g.add_argument("--format", default="auto", choices=(*FORMATS, "auto"),
                   help="input format (default auto: from the name and contents; a .npy "
                        "needs onix-npy or hexplane-npy)")
    g.add_argument("--angles", metavar="DEG,DEG,...",
                   help="view angles in degrees, one per view, the same every frame")
    g.add_argument("--angles-file", metavar="FILE",
                   help="text file of angles in degrees: one per view, or one per image")
    g.add_argument("--views", type=VIEWS, metavar="V",
                   help=with_range("image sequences (dxchange, nxtomo, tiff): V consecutive images form "
                        "one frame (default 1, or the number of --angles)", VIEWS))
    g.add_argument("--recording-index", type=ENTRY, metavar="I",
                   help=with_range("nxtomo: the entry to read when the file holds several (0-based)", ENTRY))
    g.add_argument("--source", dest="sources", action="append", metavar="NAME",
                   help="xfel: a camera source, one per view, in view order (repeat; default "
                        "every camera source)")
    g.add_argument("--flats", metavar="PATH", help="tiff, xfel: flat fields (file, folder or run)")
    g.add_argument("--darks", metavar="PATH", help="tiff, xfel: dark fields (file, folder or run)")
    g.add_argument("--quantity", choices=QUANTITIES,
                   help="tiff, xfel, npy: what the images are (default intensity with "
                        "--flats, else line_integral)")
    g.add_argument("--channel", type=CHANNEL, metavar="C",
                   help=with_range("onix-npy: the channel of a [frame, view, channel, H, W] array (default 0)", CHANNEL))
    g.add_argument("--energy", type=ENERGY_KEV, metavar="KEV", help=with_range("X-ray energy in keV", ENERGY_KEV))
    g.add_argument("--pixel-size", type=PIXEL_M, metavar="METRES", help=with_range("pixel size in metres", PIXEL_M))
    g.add_argument("--distance", type=DISTANCE_M, metavar="METRES",
                   help=with_range("propagation distance (sample to detector) in metres", DISTANCE_M))


def import_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword options of :func:`xray4d.io.load_any` from the parsed arguments (those
    given only; an empty mapping reads our own recording file as before)."""
    opts: dict[str, Any] = {}
    if args.format != "auto":
        opts["format"] = args.format
    if args.angles is not None:
        opts["angles"] = parse_angles(args.angles)
    for attr, key in (("angles_file", "angles_file"), ("views", "views"),
                      ("recording_index", "recording_index"), ("sources", "sources"),
                      ("flats", "flats"), ("darks", "darks"), ("quantity", "quantity"),
                      ("channel", "channel")):
        if getattr(args, attr) is not None:
            opts[key] = getattr(args, attr)
    if opts.get("views", 1) < 1:
        raise UsageError(f"--views: must be positive, got {opts['views']}")
    for key in ("recording_index", "channel"):
        if opts.get(key, 0) < 0:
            raise UsageError(f"--{key.replace('_', '-')}: must be 0 or more, got {opts[key]}")
    for attr, key in (("energy", "energy_keV"), ("pixel_size", "pixel_size_m"),
                      ("distance", "propagation_distance_m")):
        val = getattr(args, attr)
        if val is not None:
            if not math.isfinite(val) or val < 0 or (val == 0 and attr != "distance"):
                raise UsageError(f"--{attr.replace('_', '-')}: must be "
                                 f"{'0 or more' if attr == 'distance' else 'positive'}, got {val}")
            opts[key] = val
    return opts


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``xray4d convert``."""
    p = sub.add_parser(
        "convert", help="import a recording of another format, or export a reconstruction",
        description="IN of another format (Data Exchange, NXtomo, TIFF, European XFEL run, "
                    "4D-ONIX or X-Hexplane .npy) and OUT.h5: write our recording file. IN a "
                    "reconstruction file and OUT.tif (one float32 TIFF per frame), "
                    "OUT.ome.tif (one TZYX OME-TIFF, for napari) or OUT.mp4 (a movie of "
                    "slices and MIPs): export it.")
    p.add_argument("input", metavar="IN", help="file or folder to read")
    p.add_argument("output", metavar="OUT", help="OUT.h5 (import), OUT.tif, OUT.ome.tif or "
                                                 "OUT.mp4 (export)")
    p.add_argument("--fps", type=FPS, default=10.0, help=with_range("MP4: frames per second (default 10)", FPS))
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    add_import_arguments(p)
    p.set_defaults(func=cmd_convert)


def _export(args: argparse.Namespace) -> int:
    given = [f"--{k.replace('_', '-')}" for k in _IMPORT_ARGS
             if getattr(args, k) not in (None, "auto")]
    if given:
        raise UsageError(f"{args.input}: {given[0]}: not used when exporting a reconstruction")
    kind = export_kind(args.output)
    if kind is None:
        raise UsageError(f"{args.output}: OUT: a reconstruction exports to .tif, .ome.tif or "
                         f".mp4, not {Path(args.output).suffix or 'a name without suffix'}")
    if kind == "mp4" and not (math.isfinite(args.fps) and args.fps > 0):
        raise UsageError(f"--fps: must be positive, got {args.fps}")
    rec = load_reconstruction(args.input)
    t = rec.volume.shape[0]
    targets = (tiff_stack_paths(t, args.output, rec.volume_beta is not None)
               if kind == "tiff" else [Path(args.output)])
    for target in targets:
        check_output(target, [args.input], force=args.force, option="OUT")
    if kind == "tiff":
        paths = export_tiff_stack(rec, args.output)
        print(f"wrote {len(paths)} float32 TIFF stacks {paths[0].name} .. {paths[-1].name}: "
              f"{t} frames of {' x '.join(str(n) for n in rec.volume.shape[1:])} (z, y, x)")
    elif kind == "ome-tiff":
        export_ome_tiff(rec, args.output)
        print(f"wrote {args.output}: OME-TIFF {'TCZYX' if rec.volume_beta is not None else 'TZYX'} "
              f"{' x '.join(str(n) for n in rec.volume.shape)} float32")
    else:
        export_movie(rec, args.output, fps=args.fps)
        print(f"wrote {args.output}: {t} video frames at {args.fps:g} fps (slices and MIPs)")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    """Import a recording or export a reconstruction, by what IN holds."""
    opts = import_options(args)
    if Path(args.input).is_file() and is_reconstruction_file(args.input):
        return _export(args)
    if Path(args.output).suffix.lower() not in (".h5", ".hdf5"):
        raise UsageError(f"{args.output}: OUT: a recording is written as .h5 (HDF5), not "
                         f"{Path(args.output).suffix or 'a name without suffix'}")
    check_output(args.output, [args.input], force=args.force, option="OUT")
    rec = load_any(args.input, **opts)
    save_recording(rec, args.output)
    g = rec.geometry
    angles = (", ".join(f"{a:g}" for a in g.angles_deg[0]) + " deg" if g.angles_shared
              else f"per frame, {g.angles_deg.min():g} .. {g.angles_deg.max():g} deg")
    fields = "" if rec.white is None else (
        f", {rec.white.shape[0]} flat" + ("" if rec.dark is None else f" and {rec.dark.shape[0]} dark")
        + " field(s)")
    print(f"wrote {args.output}: {rec.frames} frames x {rec.views} views of {g.height} x "
          f"{g.width} pixels, {rec.quantity}, angles {angles}{fields}")
    return 0
