"""The ``xray4d simulate`` verb: simulated recordings with ground truth.

``xray4d simulate droplets --out FILE [--size 64 --frames 40 --angles 0,23.8
--noise 0.01 --seed 0] [physics options]`` writes a recording of a binary
droplet collision (:func:`xray4d.simulate.simulate_droplets`) with its truth
volume under ``/ground_truth/volume``. ``--quantity intensity [--energy-kev 15
--distance-m Z --pixel-size-m 2e-6 --fluence 1e4 --psf-px 0.5]`` records water
droplets as detector counts with flat and dark fields instead
(:func:`xray4d.simulate.simulate_droplets_intensity`).

``xray4d simulate --list`` names every scene of the library
(:data:`xray4d.simulate.SCENES`) with one line each; ``xray4d simulate SCENE --out
FILE [--size --frames --angles --noise --seed --oversample --frame-interval]``
writes a line-integral recording of any of them with its default parameters.

``--rotating TURNS [--angle-step DEG]`` records a continuously rotating sample instead of
fixed views: one projection every ``DEG`` degrees (default 6) over ``TURNS`` rotations,
each its own frame (``T = TURNS * 360 / DEG`` frames of one view, angles (T, 1)), so the
scene evolves over the rotations and the truth is kept at every projection time.

``--detector-shift COL:ROW,... --detector-tilt DEG,... --magnification M,...`` record each
view on a misaligned detector (one entry per view; line integrals): each pixel is the mean
of the fine projection over its footprint, and the geometry is written to ``/geometry``.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from ..cli import (FRAMES, FRAMES_MAX, NOISE, SEED, SIZE, UsageError, claim_outputs, float_range, int_range,
                   parse_angles, with_range)
from ..data import Recording
from ..geometry import DetectorGeometry
from ..io import save_recording
from ..io.checks import Output
from ..physics import refractive_index
from ..resources import check_fits, estimate_simulation
from .simulate_set import add_set_parser
from ..simulate import (SCENES, DropletCollision, get_scene, rotating_angles, simulate_droplets,
                        simulate_droplets_intensity)

#: rotations over the movie (``--rotating``) and degrees between projections (``--angle-step``)
ROTATIONS = float_range(0.0, 1e4, lo_open=True)
ANGLE_STEP = float_range(0.0, 360.0, lo_open=True)

#: times of the collision are fractions of the movie (first frame 0, last 1): durations up to
#: 1000 movies, events from 10 movies before to 10 after
_DURATION = float_range(0.0, 1e3, lo_open=True)

#: command-line flag of each DropletCollision field, its help and its argparse type with the
#: range it accepts (defaults come from the dataclass, which checks the relations between them)
DROPLET_FLAGS: dict[str, tuple[str, str, object]] = {
    "radius_1": ("--radius", "radius of drop 1 (left, moving +x), in units of the field of view",
                 float_range(0.0, 0.5, lo_open=True)),
    "radius_2": ("--radius2", "radius of drop 2 (right, moving -x); default: --radius",
                 float_range(0.0, 0.5, lo_open=True)),
    "approach_speed": ("--speed", "relative closing speed, field of view per movie",
                       float_range(0.0, 100.0, lo_open=True)),
    "contact_time": ("--contact-time", "normalised time of contact (0 = first frame, 1 = last)",
                     float_range(-10.0, 10.0)),
    "impact_parameter": ("--impact", "off-centre impact B = offset / (r1 + r2)",
                         float_range(0.0, 1.0, hi_open=True)),
    "impact_direction_deg": ("--impact-direction", "direction of the offset about x, degrees: "
                                                   "0 = along z (seen by view 0), 90 = along y",
                             float_range(-360.0, 360.0)),
    "neck_time": ("--neck-time", "time constant of the neck growth", _DURATION),
    "neck_blend": ("--neck-blend", "final blend width of the neck, in units of the smaller radius",
                   float_range(0.0, 10.0)),
    "coalescence_time": ("--coalescence-time", "time from contact until the centres meet",
                         _DURATION),
    "oscillation_amplitude": ("--amplitude", "amplitude of the axial stretch of the merged drop",
                              float_range(0.0, 0.9, hi_open=True)),
    "oscillation_period": ("--period", "period of the shape oscillation", _DURATION),
    "damping_time": ("--damping-time", "e-folding time of the oscillation (inf: undamped)",
                     float_range(0.0, math.inf, lo_open=True)),
    "min_distance": ("--min-distance", "separation: closest approach of the centres, in r1 + r2",
                     float_range(0.0, 1.0, hi_open=True)),
    "restitution": ("--restitution", "separation: outgoing over incoming speed",
                    float_range(0.0, 100.0, lo_open=True)),
    "value": ("--value", "value of f inside the liquid", float_range(0.0, 1e6, lo_open=True)),
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``xray4d simulate`` and its phantoms."""
    p = sub.add_parser("simulate", help="simulate a recording with ground truth",
                       description="Simulate a recording (projections + ground-truth volume) "
                                   "of a scene of the library (--list names them).")
    p.add_argument("--list", action="store_true", help="list the scenes, one line each")
    p.set_defaults(func=cmd_simulate_list)
    phantoms = p.add_subparsers(dest="phantom", metavar="SCENE")
    d = phantoms.add_parser(
        "droplets", help="binary droplet collision",
        description="Two drops collide along x (in the xy plane, seen side-on by view 0): "
                    "approach, contact, coalescence through a growing neck, then a damped "
                    "oscillation of the merged drop; or, with --separation, stretching and "
                    "pinch-off into two drops. Lengths are fractions of the field of view, "
                    "times are fractions of the movie (first frame 0, last frame 1).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    d.add_argument("--out", required=True, metavar="FILE", help="recording file to write (HDF5)")
    pixel = float_range(0.0, 1.0, lo_open=True)
    d.add_argument("--noise", type=NOISE, default=None,
                   help=with_range("line integrals: Gaussian noise sigma as a fraction of the "
                                   "largest line integral (default 0.01); intensity data count "
                                   "photons (--fluence) instead", NOISE))
    _add_sampling_arguments(d)
    d.add_argument("--pixel-size", type=pixel, default=None, metavar="METRES",
                   help=with_range("pixel size recorded in the file (optional)", pixel))
    d.add_argument("--force", action="store_true", help="overwrite an existing output file")
    x = d.add_argument_group("X-ray intensity (--quantity intensity)")
    x.add_argument("--quantity", choices=("line_integral", "intensity"), default="line_integral",
                   help="line integrals of --value, or detector intensities of water droplets "
                        "(raw counts with flat and dark fields)")
    # hard X-rays (the materials tables hold up to 800 keV); beamlines are at most ~1 km long;
    # 1e12 photons per pixel is beyond any detector's well; a PSF of 100 pixels blurs any
    # detector to nothing; the densest element (osmium) is 22.6 g/cm^3
    energy = float_range(1.0, 800.0)
    distance = float_range(0.0, 1000.0)
    fluence = float_range(0.0, 1e12, lo_open=True)
    psf = float_range(0.0, 100.0)
    density = float_range(0.0, 30.0, lo_open=True)
    x.add_argument("--energy-kev", type=energy, default=15.0, metavar="KEV",
                   help=with_range("photon energy", energy))
    x.add_argument("--distance-m", type=distance, default=None, metavar="METRES",
                   help=with_range("sample-detector distance; default pixel^2 / wavelength "
                                   "(Fresnel number 1)", distance))
    x.add_argument("--pixel-size-m", type=pixel, default=2e-6, metavar="METRES",
                   help=with_range("pixel size for intensity data", pixel))
    x.add_argument("--fluence", type=fluence, default=1e4, metavar="PHOTONS",
                   help=with_range("photons per pixel in the flat field (Poisson noise)", fluence))
    x.add_argument("--psf-px", type=psf, default=0.5, metavar="PIXELS",
                   help=with_range("standard deviation of the detector's Gaussian PSF", psf))
    x.add_argument("--material", default="H2O", help="chemical formula of the liquid")
    x.add_argument("--density", type=density, default=1.0, metavar="G_CM3",
                   help=with_range("density of the liquid in g/cm^3", density))
    g = d.add_argument_group("physics")
    defaults = DropletCollision()
    for name, (flag, text, kind) in DROPLET_FLAGS.items():
        default = None if name == "radius_2" else getattr(defaults, name)
        g.add_argument(flag, dest=name, type=kind, default=default, help=with_range(text, kind),
                       metavar=flag.lstrip("-").upper().replace("-", "_"))
    g.add_argument("--separation", action="store_true",
                   help="stretching separation instead of coalescence")
    d.set_defaults(func=cmd_simulate_droplets)
    add_set_parser(phantoms, _add_sampling_arguments)
    for scene in SCENES.values():
        if scene.name != "droplets":
            _add_scene_parser(phantoms, scene.name, scene.summary)


def _add_view_arguments(p: argparse.ArgumentParser, frames: int = 40) -> None:
    """``--frames`` and ``--angles`` (fixed views), or ``--rotating`` and ``--angle-step``;
    ``frames``: the default the help names (the command sets it)."""
    p.add_argument("--frames", type=FRAMES, default=None,
                   help=with_range(f"number of frames (default {frames})", FRAMES))
    p.add_argument("--angles", default=None,
                   help="view angles in degrees, comma-separated, each in [-360, 360] "
                        "(default 0,23.8)")
    p.add_argument("--rotating", type=ROTATIONS, default=None, metavar="TURNS",
                   help=with_range("a rotating sample instead of fixed views: one projection "
                                   "per frame over this many rotations (not with --frames, "
                                   "--angles)", ROTATIONS))
    p.add_argument("--angle-step", type=ANGLE_STEP, default=None, metavar="DEG",
                   help=with_range("with --rotating: degrees between two projections "
                                   "(default 6)", ANGLE_STEP))


def views_of(args: argparse.Namespace) -> tuple[list[float] | np.ndarray, int]:
    """The angles (a list of V degrees, or (T, 1) for ``--rotating``) and the frame count."""
    if args.rotating is None:
        if args.angle_step is not None:
            raise UsageError("--angle-step: needs --rotating")
        angles = parse_angles(args.angles if args.angles is not None else "0,23.8")
        return angles, 40 if args.frames is None else args.frames
    for flag, val in (("--frames", args.frames), ("--angles", args.angles)):
        if val is not None:
            raise UsageError(f"{flag}: not with --rotating (one projection per frame, the "
                             "frames follow from the rotations and --angle-step)")
    try:
        angles = rotating_angles(args.rotating, 6.0 if args.angle_step is None
                                 else args.angle_step)
    except ValueError as exc:
        raise UsageError(f"--rotating: {exc}") from None
    if angles.shape[0] > FRAMES_MAX:
        raise UsageError(f"--rotating: {angles.shape[0]} frames, more than {FRAMES_MAX}")
    return angles, angles.shape[0]


def _describe_angles(angles: list[float] | np.ndarray) -> str:
    """The angles for the summary line: every one, or the rotation's range and step."""
    if isinstance(angles, list):
        return ", ".join(f"{a:g}" for a in angles) + " deg"
    a = angles[:, 0]
    step = a[1] - a[0] if a.size > 1 else 0.0
    return f"rotating, {a[0]:g} to {a[-1]:g} deg in steps of {step:g} deg"


def _add_sampling_arguments(p: argparse.ArgumentParser, size: int = 64,
                            frames: int = 40) -> None:
    """What every simulated scene shares: detector size, views, noise seed, oversampling and
    the frame interval; ``size`` and ``frames`` are the defaults."""
    oversample, frame_interval = int_range(1, 8), float_range(0.0, 1e6, lo_open=True)
    p.add_argument("--size", type=SIZE, default=size,
                   help=with_range("detector width and height, voxels per axis", SIZE))
    _add_view_arguments(p, frames)
    p.add_argument("--seed", type=SEED, default=0, help=with_range("seed of the noise", SEED))
    p.add_argument("--oversample", type=oversample, default=2,
                   help=with_range("finer sampling per axis of the rendered object and of the "
                                   "detector", oversample))
    p.add_argument("--frame-interval", type=frame_interval, default=1.0, metavar="SECONDS",
                   help=with_range("time between frames written to /exchange/time",
                                   frame_interval))
    d = p.add_argument_group("detector geometry (one entry per view; default: ideal detectors)")
    d.add_argument("--detector-shift", metavar="COL:ROW,...",
                   help="each view's detector shift in pixels, columns:rows (+: the image moves "
                        "to higher column and row indices), e.g. 0:0,1.5:-2; written to "
                        "/geometry/detector_shift (a first value below 0 needs "
                        "--detector-shift=...)")
    d.add_argument("--detector-tilt", metavar="DEG,...",
                   help="each view's in-plane detector tilt in degrees (+: the image turns from "
                        "the column axis towards the row axis), e.g. 0,1")
    d.add_argument("--magnification", metavar="M,...",
                   help="each view's magnification, detector pixel over sample-plane pixel "
                        "(view 0 is the voxel's scale), e.g. 1,1.05")


def detector_of(args: argparse.Namespace, frames: int, views: int) -> DetectorGeometry | None:
    """The detector geometry of ``--detector-shift``, ``--detector-tilt`` and ``--magnification``
    (None when none is given); UsageError (one line) naming the option at fault."""
    texts = {"--detector-shift": args.detector_shift, "--detector-tilt": args.detector_tilt,
             "--magnification": args.magnification}
    if all(v is None for v in texts.values()):
        return None
    values = {}
    for flag, text in texts.items():
        if text is None:
            continue
        try:
            items = [item.split(":") if flag == "--detector-shift" else [item]
                     for item in text.split(",")]
            arr = np.array([[float(x) for x in item] for item in items], dtype=np.float64)
        except ValueError:
            raise UsageError(f"{flag}: not a comma-separated list of numbers: {text!r}") from None
        if flag == "--detector-shift" and arr.shape[1:] != (2,):
            raise UsageError(f"{flag}: give columns:rows for each view, got {text!r}")
        if arr.shape[0] != views:
            raise UsageError(f"{flag}: {arr.shape[0]} values for {views} view"
                             f"{'s' if views != 1 else ''}")
        values[flag] = arr if flag == "--detector-shift" else arr[:, 0]
    try:
        return DetectorGeometry.build(frames, views, values.get("--detector-shift"),
                                      values.get("--detector-tilt"), values.get("--magnification"))
    except ValueError as exc:
        raise UsageError(f"detector geometry: {exc}") from None


def _add_scene_parser(phantoms: argparse._SubParsersAction, name: str, summary: str) -> None:
    """``xray4d simulate NAME``: the scene with its default parameters."""
    s = phantoms.add_parser(name, help=summary, description=f"{summary[0].upper()}{summary[1:]}. "
                            "Line integrals of a fine grid on a supersampled detector, with the "
                            "voxel-averaged truth.",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--out", required=True, metavar="FILE", help="recording file to write (HDF5)")
    s.add_argument("--noise", type=NOISE, default=0.01,
                   help=with_range("Gaussian noise sigma as a fraction of the largest line "
                                   "integral", NOISE))
    _add_sampling_arguments(s)
    s.add_argument("--force", action="store_true", help="overwrite an existing output file")
    s.set_defaults(func=cmd_simulate_scene)


def cmd_simulate_list(args: argparse.Namespace) -> int:
    """``xray4d simulate --list``: every scene with one line; without --list, ask for a scene."""
    if not args.list:
        raise UsageError("SCENE: name a scene to simulate (xray4d simulate --list names them)")
    width = max(len(n) for n in SCENES)
    for scene in SCENES.values():
        print(f"{scene.name:<{width}}  {scene.summary}")
    return 0


def cmd_simulate_scene(args: argparse.Namespace) -> int:
    """Simulate a scene of the library with its default parameters and write the recording."""
    angles, args.frames = views_of(args)
    for flag, val, low in (("--size", args.size, 2), ("--frames", args.frames, 1),
                           ("--oversample", args.oversample, 1)):
        if val < low:
            raise UsageError(f"{flag}: must be >= {low}, got {val}")
    if not (math.isfinite(args.noise) and args.noise >= 0):
        raise UsageError(f"--noise: must be a finite number >= 0, got {args.noise}")
    if not (math.isfinite(args.frame_interval) and args.frame_interval > 0):
        raise UsageError(f"--frame-interval: must be > 0, got {args.frame_interval}")
    detector = detector_of(args, args.frames, len(angles) if isinstance(angles, list) else 1)
    claim_outputs(args, [Output(Path(args.out))], force=args.force)
    scene = get_scene(args.phantom)
    # a scene wider than the field of view is rendered on a wider fine grid
    check_fits(estimate_simulation(math.ceil(args.size * scene.width), args.frames,
                                   len(angles) if isinstance(angles, list) else 1,
                                   args.oversample))
    t0 = time.perf_counter()
    rec = scene.recording(size=args.size, frames=args.frames, angles_deg=angles,
                          noise=args.noise, seed=args.seed, oversample=args.oversample,
                          frame_interval_s=args.frame_interval, detector=detector)
    seconds = time.perf_counter() - t0
    save_recording(rec, args.out)
    t, v, h, w = rec.projections.shape
    print(f"wrote {args.out}: {t} frames x {v} view{'s' if v != 1 else ''} of {h} x {w} pixels "
          f"(angles {_describe_angles(angles)}), ground truth {t} x {h}^3")
    print(f"{scene.name}: {scene.summary}; values {', '.join(f'{x:g}' for x in scene.values)}; "
          f"noise {args.noise:g}, seed {args.seed}; {seconds:.1f} s")
    return 0


def _frame_of(times: list[str], phase: str) -> int | None:
    return times.index(phase) if phase in times else None


def cmd_simulate_droplets(args: argparse.Namespace) -> int:
    """Simulate a droplet collision and write it as a recording file."""
    angles, args.frames = views_of(args)
    if args.size < 2:
        raise UsageError(f"--size: must be >= 2, got {args.size}")
    if args.frames < 1:
        raise UsageError(f"--frames: must be >= 1, got {args.frames}")
    if args.oversample < 1:
        raise UsageError(f"--oversample: must be >= 1, got {args.oversample}")
    if args.noise is not None and args.quantity == "intensity":
        raise UsageError("--noise: applies to line integrals; intensity data get counting "
                         "noise from --fluence (photons per pixel)")
    if args.noise is None:
        args.noise = 0.01
    if not (math.isfinite(args.noise) and args.noise >= 0):
        raise UsageError(f"--noise: must be a finite number >= 0, got {args.noise}")
    if not (math.isfinite(args.frame_interval) and args.frame_interval > 0):
        raise UsageError(f"--frame-interval: must be > 0, got {args.frame_interval}")
    if args.pixel_size is not None and not (math.isfinite(args.pixel_size) and args.pixel_size > 0):
        raise UsageError(f"--pixel-size: must be > 0, got {args.pixel_size}")
    values = {name: getattr(args, name) for name in DROPLET_FLAGS}
    if values["radius_2"] is None:
        values["radius_2"] = values["radius_1"]
    try:
        params = DropletCollision(separation=bool(args.separation), **values)
    except ValueError as exc:
        msg = str(exc)
        field = msg.split(" ", 1)[0]
        if field in DROPLET_FLAGS:
            msg = f"{DROPLET_FLAGS[field][0]}: {msg.split(' ', 1)[1]}"
        raise UsageError(msg) from None
    if args.quantity == "intensity":
        for flag, val in (("--energy-kev", args.energy_kev), ("--pixel-size-m", args.pixel_size_m),
                          ("--fluence", args.fluence), ("--density", args.density)):
            if not (math.isfinite(val) and val > 0):
                raise UsageError(f"{flag}: must be a finite number > 0, got {val}")
        for flag, val in (("--distance-m", args.distance_m), ("--psf-px", args.psf_px)):
            if val is not None and not (math.isfinite(val) and val >= 0):
                raise UsageError(f"{flag}: must be a finite number >= 0, got {val}")
        try:
            refractive_index(args.material, args.density, args.energy_kev)
        except ValueError as exc:
            raise UsageError(f"--material: {exc}") from None
    detector = detector_of(args, args.frames, len(angles) if isinstance(angles, list) else 1)
    if detector is not None and args.quantity == "intensity":
        raise UsageError("--detector-shift, --detector-tilt, --magnification: line integrals "
                         "only (--quantity line_integral)")
    claim_outputs(args, [Output(Path(args.out))], force=args.force)
    # sizes are the user's: refuse what cannot fit before allocating anything
    check_fits(estimate_simulation(args.size, args.frames,
                                   len(angles) if isinstance(angles, list) else 1, args.oversample,
                                   intensity=args.quantity == "intensity"))

    t0 = time.perf_counter()
    if args.quantity == "intensity":
        rec = simulate_droplets_intensity(
            params, size=args.size, frames=args.frames, angles_deg=angles,
            energy_kev=args.energy_kev, pixel_size_m=args.pixel_size_m, distance_m=args.distance_m,
            fluence=args.fluence, psf_sigma_px=args.psf_px, material=args.material,
            density_g_cm3=args.density, seed=args.seed, oversample=args.oversample,
            frame_interval_s=args.frame_interval)
    else:
        rec = simulate_droplets(params, size=args.size, frames=args.frames, angles_deg=angles,
                                noise=args.noise, seed=args.seed, oversample=args.oversample,
                                frame_interval_s=args.frame_interval, pixel_size_m=args.pixel_size,
                                detector=detector)
    seconds = time.perf_counter() - t0
    save_recording(rec, args.out)
    _print_summary(args, rec, params, angles, seconds)
    return 0


def _print_summary(args: argparse.Namespace, rec: Recording, params: DropletCollision,
                   angles: list[float] | np.ndarray, seconds: float) -> None:
    """What was written: the file, the phases of the collision by frame, the noise, and for
    intensity data the optics and the detector."""
    phases = json.loads(rec.attrs["description"])["phases"]
    events = []
    for phase, text in (("coalescence", "contact"), ("compression", "contact"),
                        ("oscillation", "merged"), ("stretching", "stretching"),
                        ("separated", "pinch-off")):
        f = _frame_of(phases, phase)
        if f is not None and f > 0:
            events.append(f"{text} at frame {f}")
    t, v, h, w = rec.projections.shape
    print(f"wrote {args.out}: {t} frames x {v} view{'s' if v != 1 else ''} of {h} x {w} pixels "
          f"(angles {_describe_angles(angles)}), ground truth {t} x {h}^3")
    print(f"droplets: {'separation' if params.separation else 'coalescence'}"
          f"{'; ' + ', '.join(events) if events else ''}; "
          # intensity data are noisy by photon counting (printed below), not by --noise
          f"{'' if args.quantity == 'intensity' else f'noise {args.noise:g}, '}seed {args.seed}; "
          f"{seconds:.1f} s")
    if args.quantity == "intensity":
        desc = json.loads(rec.attrs["description"])
        print(f"intensity: {args.material} at {args.energy_kev:g} keV (delta {desc['delta']:.3g}, "
              f"beta {desc['beta']:.3g}), pixel {args.pixel_size_m:g} m, distance "
              f"{rec.attrs['propagation_distance_m']:.4g} m (Fresnel number "
              f"{desc['fresnel_number']:.3g}), {args.fluence:g} photons/pixel, PSF {args.psf_px:g} px")
