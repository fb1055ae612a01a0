"""``xray4d reconstruct A.h5 B.h5 ... --method onix --out DIR``: one network for them all.

4D-ONIX (:mod:`xray4d.reconstruct.onix`) trains ONE network on every recording given,
jointly, and writes one reconstruction per recording: ``DIR/NAME.h5`` (and
``DIR/NAME_preview/``), or the file ``--out`` with one recording. ``--save-model M`` keeps
the trained network (:mod:`xray4d.reconstruct.onix_file`: tensors and plain values);
``--model M`` applies a saved network to the recordings instead of training (no fit: one
forward pass per chunk of frames). All inputs and outputs are checked before anything is
loaded; a recording that does not suit the network is refused in one line naming it
(exit status 2), before any training.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..cli import UsageError, claim_outputs
from ..io import atomic_path
from ..io.checks import Output, check_inputs

__all__ = ["reconstruct_joint", "joint_outputs"]


def joint_outputs(args: argparse.Namespace) -> tuple[list[Path], list[Output]]:
    """The reconstruction file of each recording and every output the run writes (with one
    recording ``--out`` is the file; with several a folder of ``NAME.h5`` and summary.json)."""
    from ..api import reconstruct_outputs
    from .reconstruct_many import batch_outputs

    recordings = list(args.recording)
    outputs: list[Output] = []
    if len(recordings) == 1:
        files = [Path(args.out)]
    else:
        out_dir = Path(args.out)
        if out_dir.exists() and not out_dir.is_dir():
            raise UsageError(f"{out_dir}: --out: with several recordings --out is a folder, "
                             "and this is a file")
        files = batch_outputs(recordings, out_dir)
        outputs.append(Output(out_dir, "--out", folder=True, replace=True))
    for f in files:
        outputs += [o for o in reconstruct_outputs(f, previews=not args.no_preview)
                    if not o.path.name.endswith(".ckpt")]
    if len(recordings) > 1:
        outputs.append(Output(Path(args.out) / "summary.json", "summary of --out"))
    if args.save_model:
        outputs.append(Output(Path(args.save_model), "--save-model"))
    return files, outputs


def _refuse_options(args: argparse.Namespace) -> None:
    for flag, given in (("--resume", args.resume), ("--times", args.times is not None),
                        ("--stop", getattr(args, "stop", None) == "auto")):
        if given:
            raise UsageError(f"{flag}: not with --method onix")
    if args.model and args.save_model:
        raise UsageError("--save-model: with --model nothing is trained; the model is saved")
    if args.model and (args.adversarial or args.adversarial_weight is not None):
        raise UsageError("--adversarial: with --model nothing is trained")


def reconstruct_joint(args: argparse.Namespace, build_config) -> int:
    """Train one onix network on every recording (or apply ``--model``) and write each
    recording's reconstruction; the exit status (0)."""
    from ..api import write_preview_folder
    from ..io import load_any, save_reconstruction
    from ..reconstruct.measurement import finish, measured_data
    from ..reconstruct.onix import apply_network, fit_recordings, Onix
    from ..reconstruct.onix_file import load_onix_model, save_onix_model
    from .convert import import_options

    _refuse_options(args)
    recordings = list(args.recording)
    check_inputs([(r, "/") for r in recordings] + ([(args.config, "--config")] if args.config else [])
                 + ([(args.model, "--model")] if args.model else []))
    files, outputs = joint_outputs(args)
    claim_outputs(args, outputs, [*recordings, args.config, args.model], force=args.force)
    args.method = Onix.name
    cfg = build_config(args)
    t0 = time.perf_counter()
    recs = [load_any(r, **import_options(args)) for r in recordings]
    method = Onix()
    for rec in recs:
        method.check(rec, cfg)
    datas = [measured_data(rec, cfg) for rec in recs]
    if args.model:
        network, description = load_onix_model(args.model, cfg.train.device)
        results = [apply_network(network, d, cfg, description) for d in datas]
    else:
        results, network = fit_recordings(datas, cfg, progress=not args.quiet)
        if args.save_model:
            save_onix_model(args.save_model, network, {
                "trained_on": [Path(r).name for r in recordings],
                "iterations": int(results[0].iterations), "seed": int(cfg.train.seed),
                "angles_deg": [float(a) for a in recs[0].geometry.angles_deg[0]],
                "detector": [recs[0].geometry.height, recs[0].geometry.width]})
    rows = []
    for path, rec, data, result, out in zip(recordings, recs, datas, results, files):
        result = finish(result, data)
        save_reconstruction(result.reconstruction, out)
        if not args.no_preview:
            write_preview_folder(result, rec, path, out, cfg)
        rows.append({"recording": path, "output": str(out), "frames": int(rec.frames)})
        print(f"wrote {out}: {rec.frames} frames, method onix", flush=True)
    seconds = time.perf_counter() - t0
    what = (f"model {args.model} applied" if args.model else
            f"one network trained on {len(recs)} recording{'s' if len(recs) > 1 else ''}, "
            f"{results[0].iterations} iterations")
    if len(recordings) > 1:
        with atomic_path(Path(args.out) / "summary.json") as tmp:
            tmp.write_text(json.dumps({"method": "onix", "model": args.model,
                                       "iterations": int(results[0].iterations),
                                       "seconds": round(seconds, 1), "recordings": rows},
                                      indent=1))
    print(f"onix: {what}; {seconds:.1f} s"
          + (f"; model saved to {args.save_model}" if args.save_model else ""))
    return 0
