"""``xray4d reconstruct A.h5 B.h5 ... --out DIR``: many recordings, each result independent.

Every recording ``NAME.h5`` gives ``DIR/NAME.h5`` (and ``DIR/NAME_preview/``). All inputs
and outputs are checked before the first fit, so a clumsy ``--out`` costs nothing. Then
the recordings are reconstructed one after another; a recording that fails (bad data,
not enough memory, a diverged fit) is reported in one line and the next one starts, so
a failure loses none of the others. Under ``torchrun`` the recordings are shared between
the processes instead (each its own, whole: no gradients cross), and every process writes
its own results. At the end a summary table is printed and written to
``DIR/summary.json`` (by rank 0 under ``torchrun``, once every process is done); the
exit status is 0 when every recording was reconstructed, 1 when any failed.

``--resume`` continues a batch that was stopped: a finished output (no checkpoint beside
it) is kept and skipped, a recording with a checkpoint resumes, the others start.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from ..api import checkpoint_file, reconstruct_file, reconstruct_outputs
from ..cli import UsageError
from ..errors import DivergenceError, InputError, OutputError, ResourceError
from ..io import atomic_path
from ..io.checks import Output, check_inputs, check_outputs
from ..reconstruct.distributed import launched_processes
from .convert import import_options

__all__ = ["reconstruct_many", "batch_outputs"]

#: the faults one recording of a batch may end with, reported and passed over
RECORDING_FAULTS = (InputError, OutputError, ResourceError, DivergenceError, UsageError,
                    ValueError, RuntimeError, MemoryError, OSError)


def batch_outputs(recordings: list[str], out_dir: str | os.PathLike) -> list[Path]:
    """The output file of each recording, ``DIR/NAME.h5``; two recordings of one name are
    refused (:class:`~xray4d.cli.UsageError`)."""
    seen: dict[str, str] = {}
    outs = []
    for rec in recordings:
        name = Path(rec).stem
        if name in seen:
            raise UsageError(f"{rec}: RECORDING: its output {name}.h5 would be that of "
                             f"{seen[name]} as well; rename one of them")
        seen[name] = rec
        outs.append(Path(out_dir) / f"{name}.h5")
    return outs


def _is_finished(out: Path) -> bool:
    return out.exists() and not checkpoint_file(out).exists()


def _one(args: argparse.Namespace, recording: str, out: Path, build_config) -> dict[str, Any]:
    """Reconstruct one recording of the batch: its row of the summary."""
    row: dict[str, Any] = {"recording": recording, "output": str(out)}
    t0 = time.perf_counter()
    try:
        one = argparse.Namespace(**{**vars(args), "recording": recording})
        cfg = build_config(one)
        resume = args.resume and checkpoint_file(out).exists()
        result = reconstruct_file(recording, out, cfg, resume=resume, progress=not args.quiet,
                                  previews=not args.no_preview, force=True,
                                  import_options=import_options(args),
                                  times=getattr(args, "times", None))
    except RECORDING_FAULTS as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"xray4d reconstruct: error: {text}; going on with the next recording",
              flush=True)
        row.update(status="failed", error=text, seconds=round(time.perf_counter() - t0, 1))
        return row
    r = result.reconstruction
    row.update(status="resumed" if resume else "done", frames=int(r.volume.shape[0]),
               method=r.method, iterations=int(result.iterations),
               final_loss=float(result.losses[-1]) if result.losses else math.nan,
               seconds=round(time.perf_counter() - t0, 1))
    print(f"wrote {out}: method {r.method}, {result.iterations} iterations, "
          f"{row['seconds']:.1f} s", flush=True)
    return row


def _gather_rows(rows: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    """Every process's rows on every process (as JSON text in byte tensors: no pickles)."""
    if size == 1:
        return rows
    data = torch.tensor(list(json.dumps(rows).encode()), dtype=torch.uint8)
    length = torch.tensor([data.numel()])
    lengths = [torch.zeros_like(length) for _ in range(size)]
    dist.all_gather(lengths, length)
    longest = int(max(n.item() for n in lengths))
    padded = torch.zeros(longest, dtype=torch.uint8)
    padded[:data.numel()] = data
    parts = [torch.zeros_like(padded) for _ in range(size)]
    dist.all_gather(parts, padded)
    out: list[dict[str, Any]] = []
    for part, n in zip(parts, lengths):
        out += json.loads(bytes(part[:int(n.item())].tolist()).decode())
    return out


def _table(rows: list[dict[str, Any]]) -> str:
    head = f"{'recording':<32} {'status':<8} {'frames':>6} {'iterations':>10} {'seconds':>8}  output / error"
    lines = [head, "-" * len(head)]
    for r in rows:
        tail = r.get("error") or r["output"]
        lines.append(f"{Path(r['recording']).name[:32]:<32} {r['status']:<8} "
                     f"{r.get('frames', ''):>6} {r.get('iterations', ''):>10} "
                     f"{r.get('seconds', ''):>8}  {tail}")
    return "\n".join(lines)


def reconstruct_many(args: argparse.Namespace, build_config) -> int:
    """Reconstruct every recording of ``args.recording`` into the folder ``args.out``.

    ``build_config(args)`` resolves one recording's config (its quantity chooses the
    measurement preset). Returns the exit status: 0 all done, 1 some failed.
    """
    recordings: list[str] = list(args.recording)
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir}: --out: with several recordings --out is a folder, "
                         "and this is a file")
    outs = batch_outputs(recordings, out_dir)
    check_inputs([(r, "/") for r in recordings] + ([(args.config, "--config")] if args.config else []))
    todo = [(r, o) for r, o in zip(recordings, outs) if not (args.resume and _is_finished(o))]
    outputs = [Output(out_dir, "--out", folder=True, replace=True)]
    for rec, out in todo:
        resume = args.resume and checkpoint_file(out).exists()
        outputs += reconstruct_outputs(out, previews=not args.no_preview, resume=resume)
    outputs.append(Output(out_dir / "summary.json", "summary of --out", replace=args.resume))
    size, rank = launched_processes(), int(os.environ.get("RANK", "0") or 0)
    if rank == 0:     # under torchrun rank 0 checks; its refusal ends every process
        check_outputs(outputs, [*recordings, args.config], force=args.force)
    rows = [{"recording": r, "output": str(o), "status": "kept"}
            for r, o in zip(recordings, outs) if (r, o) not in todo] if rank == 0 else []
    for i, (rec, out) in enumerate(todo):
        if i % size == rank:
            rows.append(_one(args, rec, out, build_config))
    if size > 1:
        # the process group only now, to collect the rows: while fitting, no process waits
        # for another (a process group would make the trainer share batches between them)
        dist.init_process_group(backend="gloo", timeout=datetime.timedelta(days=7))
    rows = _gather_rows(rows, size)
    order = {r: i for i, r in enumerate(recordings)}
    rows.sort(key=lambda r: order[r["recording"]])
    failed = sum(r["status"] == "failed" for r in rows)
    if rank == 0:
        with atomic_path(out_dir / "summary.json") as tmp:
            tmp.write_text(json.dumps({"processes": size, "recordings": rows}, indent=1))
        print(_table(rows))
        print(f"{len(rows) - failed} of {len(rows)} recordings reconstructed into {out_dir}/"
              + (f"; {failed} failed" if failed else ""))
    if size > 1:
        dist.destroy_process_group()
    return 1 if failed else 0
