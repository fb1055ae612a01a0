"""Data-parallel training over frames with ``torch.distributed`` (launched by ``torchrun``).

``torchrun --nproc_per_node N -m xray4d reconstruct REC.h5 --out OUT.h5`` starts N
processes; each joins the process group (``gloo`` on the CPU, ``nccl`` on CUDA) from the
environment ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ...). Every
process builds the same field from the same seed and draws the same order of frames;
each step's batch of ``frames_per_batch x world_size`` frames is split between the
processes (:func:`shard`), each renders and projects its share, and the gradients are
averaged over the processes (:func:`average_gradients`) before the optimiser's step, so
the weights stay identical everywhere. Each step's batch is ``frames_per_batch`` frames
in all (at least one a process), each process's loss weighted by its share: N processes
take the steps one process takes, each rendering 1/N of the frames. The loss values and
whether the time budget is spent travel with the gradients in the step's one all-reduce
(:func:`average_gradients`); a stop rule's decision, made after the optimiser's step, takes
a second, small one (:func:`agree`). Only rank 0 writes
outputs and checkpoints; every rank reads the checkpoint on resume.

Outside ``torchrun`` (or with one process) every function here is a no-op.
"""
from __future__ import annotations

import os
from typing import Iterable, Sequence

import torch
import torch.distributed as dist

from ..resources import torchrun_processes

__all__ = ["world", "is_writer", "init_from_environment", "shard", "average_gradients",
           "agree", "launched_processes"]


def launched_processes() -> int:
    """The number of processes ``torchrun`` started (``WORLD_SIZE``; 1 outside it)."""
    return torchrun_processes("WORLD_SIZE")


def world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) without a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_writer() -> bool:
    """True in the process that writes outputs, checkpoints and messages (rank 0)."""
    return world()[0] == 0


def init_from_environment(device: str = "cpu") -> tuple[int, int]:
    """Join the process group ``torchrun`` prepared, once; returns (rank, world size).

    ``gloo`` for the CPU, ``nccl`` for CUDA (each process on the GPU of its
    ``LOCAL_RANK``). Does nothing when ``WORLD_SIZE`` is 1 or unset.
    """
    if launched_processes() == 1 or not dist.is_available():
        return 0, 1
    if not dist.is_initialized():
        cuda = str(device).startswith("cuda")
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return world()


def shard(frames: torch.Tensor, rank: int, size: int) -> torch.Tensor:
    """This process's share of a batch of frame indices: every ``size``-th from ``rank``."""
    return frames[rank::size]


@torch.no_grad()
def average_gradients(parameters: Iterable[torch.nn.Parameter],
                      values: Sequence[float] = (), flag: bool = False
                      ) -> tuple[list[float], bool]:
    """Replace each parameter's gradient by its mean over the processes, and agree on
    ``values`` (their means) and ``flag`` (whether any process raised it), all in one
    all-reduce. Without a process group: ``(list(values), flag)``, gradients untouched.
    """
    _, size = world()
    if size == 1:
        return list(values), flag
    params = [p for p in parameters if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    extra = torch.tensor([*values, 1.0 if flag else 0.0], dtype=torch.float64)
    # the values travel with the gradients, in their dtype (float32: the losses' precision)
    flat = torch.cat([g.reshape(-1) for g in grads]
                     + [extra.to(device=grads[0].device if grads else None,
                                 dtype=grads[0].dtype if grads else torch.float64)])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = (flat[offset:offset + n] / size).view_as(g).clone()
        offset += n
    tail = flat[offset:].to(torch.float64)
    return (tail[:-1] / size).tolist(), bool(tail[-1] > 0)


def agree(values: Sequence[float], stop: bool,
          device: torch.device | str = "cpu") -> tuple[list[float], bool]:
    """The mean of ``values`` over the processes, and whether any process wants to stop
    (``device``: where the collective runs, the training device: ``nccl`` needs CUDA)."""
    _, size = world()
    if size == 1:
        return list(values), stop
    t = torch.tensor([*values, 1.0 if stop else 0.0], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    means = (t[:-1] / size).tolist()
    return means, bool(t[-1] > 0)
