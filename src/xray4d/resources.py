"""Memory estimates: refuse a request that cannot fit before allocating anything.

A reconstruction holds, at its peak, the recording, the projector's operator,
the field being fitted with its optimiser state, one training batch with its
autograd intermediates, and the rendered output movie. :func:`estimate_reconstruction`
adds these up from the sizes alone (no array is made); :func:`check_fits`
compares the total with the memory the machine has available now
(:func:`available_memory`, from ``/proc/meminfo``, the cgroup limit and the
process's address-space limit) and
raises :class:`ResourceError`, one line with the estimate and the available
memory, when it does not fit.

The factors below were measured on CPU with torch 2.13 (the rise of the peak
resident memory over a run, 16^3 to 128^3 voxels; ``tests/test_resources.py``
checks one). The parts are summed although training and rendering do not
peak at the same time, so the estimate errs high: measured 0.96-1.4x the real
rise for hexplane, static and perframe, 1.1x for SIRT, 1.7x for CGLS. That is
enough to refuse a request hundreds of times too large before it starts, and
to let through what fits with room to spare.

With ``train.device: cuda`` the recording, the operator, the field and the batch
live on the GPU: :func:`check_reconstruction` also compares them with the GPU's free
memory (:func:`gpu_memory_available`). The host check then errs high. The memory
that other processes take after the check is not foreseen.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ResourceError

if TYPE_CHECKING:  # pragma: no cover
    from .config import ReconstructionConfig

__all__ = ["MemoryEstimate", "ResourceError", "available_memory", "estimate_reconstruction",
           "estimate_simulation", "estimate_projection", "estimate_evaluation", "check_fits",
           "check_reconstruction", "for_processes_on_this_machine", "processes_on_this_machine",
           "torchrun_processes",
           "gpu_memory_available", "GPU_PARTS", "GB"]

#: the parts of :func:`estimate_reconstruction` that sit on the training device
GPU_PARTS = ("recording", "operator", "field", "batch")

GB = 1e9
F32 = 4
#: above this many bytes for the stacked operator the projector (xray4d.projector) uses a sparse
#: matrix instead (the training path always does); defined here, in a module without torch, so
#: the estimate follows the same switch
DENSE_OPERATOR_LIMIT_BYTES = 512 * 2**20
#: bytes per nonzero of the projector's operator (xray4d.projector): the CSR operator and its
#: CSR transpose, an int64 column index and a float32 value each
SPARSE_BYTES_PER_NONZERO = 2 * (8 + 4)
#: bytes per nonzero of one angle set's operator while it is built: the coalesced COO tensor
#: (two int64 indices and a value) and the float64/int64 arrays it is assembled from
SPARSE_BUILD_BYTES_PER_NONZERO = (2 * 8 + 4) + 3 * 8
#: live float32 copies of one batch volume during a training step with the linear decoder
#: (pair-term buffers, the activation and its gradient path, the projection's input;
#: measured 5-10 at 64^3-128^3)
BATCH_VOLUME_COPIES = 8
#: working volumes of the conventional methods, all frames at once (SIRT: x, step, the
#: back-projection, the weights and matmul temporaries: measured 6.6 at 96^3 x 24)
CONVENTIONAL_VOLUME_COPIES = 7
#: copies of the output movie while it is rendered (chunks, their concatenation, a cast)
OUTPUT_VOLUME_COPIES = 3
#: what the first training step adds whatever the size (autograd, optimiser and kernel
#: workspaces, thread pools): measured 85-100 MB on a 16^3 x 2 run
FIELD_LIBRARY_BYTES = 100 * 10**6
#: what fitting intensities through the propagation model adds to that: the X-ray
#: materials database (xraydb's tables, loaded for the material's refractive index; measured
#: 60 MB resident) and the FFT workspaces of the propagator (measured 8 MB)
INTENSITY_LIBRARY_BYTES = 70 * 10**6
#: live float32 copies of the batch volume that a volume regulariser adds to a training step
#: (the tensors it saves for the backward pass and its gradient's temporaries): measured 5-7
#: for each at 64^3 (line integrals) and 48^3-112^3 (fine grid of an intensity fit), 4 frames;
#: ``l1_sparsity`` adds none measurable; ``volume_conservation`` (a mean per frame) at most
#: the gradient of its mean. ``material_prior`` and it see the first channel only.
REGULARIZER_VOLUME_COPIES = {"volume_tv": 6, "material_prior": 6, "volume_conservation": 1}
#: of those, the ones that see only the first channel (delta) of a two-channel field
FIRST_CHANNEL_REGULARIZERS = frozenset({"material_prior", "volume_conservation"})
#: the same for the conventional methods (no autograd): measured 8 MB
CONVENTIONAL_LIBRARY_BYTES = 10 * 10**6
#: float32 copies of every field parameter: value, gradient, Adam's two moments
PARAMETER_COPIES = 4


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a request needs at its peak, by part.

    Attributes:
        what: what is estimated (e.g. ``reconstruction (hexplane)``).
        parts: bytes per named part (recording, operator, field, batch, volumes, ...).
        hint: what to change when it does not fit.
    """

    what: str
    parts: dict[str, int] = field(default_factory=dict)
    #: what to change when it does not fit
    hint: str = ""

    @property
    def total(self) -> int:
        """Sum of the parts, bytes."""
        return int(sum(self.parts.values()))

    def describe(self) -> str:
        """``12.3 GB (volumes 10.2 GB, recording 2.0 GB, ...)``, largest parts first."""
        parts = sorted(self.parts.items(), key=lambda kv: -kv[1])
        return (f"{self.total / GB:.3g} GB ("
                + ", ".join(f"{k} {v / GB:.3g} GB" for k, v in parts if v > 0) + ")")


def _meminfo_available(meminfo: str | os.PathLike = "/proc/meminfo") -> int | None:
    try:
        text = Path(meminfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            fields = line.split()
            return int(fields[1]) * (1024 if len(fields) < 3 or fields[2] == "kB" else 1)
    return None


def _cgroup_headroom() -> int | None:
    """Limit minus usage of this process's memory cgroup (v2, else v1), or None if unlimited."""
    for limit_f, usage_f in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                             ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                              "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_f).read_text().strip()
            usage = int(Path(usage_f).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or not limit.isdigit() or int(limit) >= 2**60:
            return None
        return max(0, int(limit) - usage)
    return None


def _address_space_headroom(status: str | os.PathLike = "/proc/self/status") -> int | None:
    """The soft address-space limit of this process (``RLIMIT_AS``, as ``ulimit -v`` sets)
    minus the address space it maps now (``VmSize``), or None when unlimited.

    Every allocation takes address space, so a request beyond this headroom fails
    however much memory the machine has free.
    """
    try:
        import resource
    except ImportError:          # not a Unix
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    mapped = 0
    try:
        for line in Path(status).read_text().splitlines():
            if line.startswith("VmSize:"):
                mapped = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    return max(0, int(soft) - mapped)


def available_memory() -> int | None:
    """Bytes of memory available to this process now, or None when unknown.

    ``MemAvailable`` of ``/proc/meminfo`` (what the kernel can give without
    swapping), lowered to the headroom of the memory cgroup when one is set
    and to the headroom under the process's address-space limit (``ulimit -v``)
    when one is set.
    """
    known = [m for m in (_meminfo_available(), _cgroup_headroom(), _address_space_headroom())
             if m is not None]
    return min(known) if known else None


def _operator_bytes(views: int, width: int, angle_sets: int, sparse: bool = False) -> int:
    """The projector's operator per angle set: dense (V*W, W*W) float32 up to 512 MiB unless
    ``sparse`` (the training path), else CSR with its transpose, and the arrays one set is
    built from."""
    dense = angle_sets * views * width ** 3 * F32
    if not sparse and dense <= DENSE_OPERATOR_LIMIT_BYTES:
        # plus one float64 (W, W*W) matrix per angle while it is assembled
        return dense + width ** 3 * 8
    # Joseph's method: two weights per detector column and row (or column) crossed
    nonzeros = views * 2 * width * width
    row_pointers = (views * width + width * width + 2) * 8
    return angle_sets * (nonzeros * SPARSE_BYTES_PER_NONZERO + row_pointers) \
        + nonzeros * SPARSE_BUILD_BYTES_PER_NONZERO


def _plane_bytes(config: "ReconstructionConfig", frames: int, height: int, width: int) -> int:
    """Float32 parameters of one X-Hexplane field at its final resolution."""
    fc = config.field
    rz = max(2, round(fc.space_scale * height))
    rxy = max(2, round(fc.space_scale * width))
    rt = max(2, round(fc.time_scale * frames)) if frames > 1 else 1
    if config.method in ("static", "perframe"):
        rt = 1
    spatial = rxy * rxy + 2 * rz * rxy               # xy, xz, yz
    temporal = rt * (2 * rxy + rz)                   # xt, yt, zt
    return fc.channels * (spatial + temporal) * F32


#: methods that fit an X-Hexplane field (the others work on voxel volumes of all frames)
FIELD_METHODS = ("hexplane", "static", "perframe")


def _field_method_parts(config: "ReconstructionConfig", t: int, plane_hw: tuple[int, int],
                        vox: int, proj: int, channels: int, model_fit: bool) -> dict[str, int]:
    """The parts of :func:`estimate_reconstruction` for a method that fits a field:
    ``libraries``, ``field`` (parameters, gradients, optimiser state), ``batch`` (one
    training step, with the volume regularisers' temporaries) and ``volumes`` (the output
    movie, its predicted projections and one chunk being rendered); ``vox`` voxels per
    frame on the fit's grid, ``proj`` bytes of the predicted projections."""
    method = config.method
    planes = _plane_bytes(config, t, *plane_hw) * (t if method == "perframe" else 1)
    batch = max(1, min(int(config.train.frames_per_batch), t))
    per_voxel = BATCH_VOLUME_COPIES
    if config.field.decoder == "mlp":
        # the (B, Z, Y, X, 3C) feature tensor, its products and the hidden layer
        per_voxel += 3 * (3 * config.field.channels) + 2 * config.field.mlp_hidden
    per_voxel *= channels
    for name, copies in REGULARIZER_VOLUME_COPIES.items():
        if getattr(config.regularizers, name):
            per_voxel += copies * (1 if name in FIRST_CHANNEL_REGULARIZERS else channels)
    chunk = max(1, min(int(config.train.render_chunk), t))
    return {"libraries": FIELD_LIBRARY_BYTES + (INTENSITY_LIBRARY_BYTES if model_fit else 0),
            "field": PARAMETER_COPIES * planes,
            "batch": batch * vox * F32 * per_voxel,
            "volumes": channels * ((OUTPUT_VOLUME_COPIES * t + chunk) * vox * F32 + proj)}


def estimate_reconstruction(frames: int, views: int, height: int, width: int,
                            config: "ReconstructionConfig", *, angle_sets: int = 1,
                            truth: bool = False, in_memory: bool = False,
                            intensity: bool = False, field_method: bool | None = None,
                            output_frames: int | None = None) -> MemoryEstimate:
    """Peak memory a reconstruction of a (frames, views, height, width) recording allocates.

    Args:
        frames, views, height, width: the recording's shape (T, V, H, W); the
            volume is (T, H, W, W).
        config: the run's config (method, field, batch size).
        angle_sets: distinct sets of per-frame angles (1 when every frame is
            seen at the same angles; up to T for a rotating sample).
        truth: the recording holds a ground-truth volume (kept in memory).
        in_memory: the recording is loaded already (its arrays are not counted).
        intensity: the recording holds intensities; fitted through the propagation
            model (``physics.intensity: model``) with ``physics.fine_render`` the
            field is rendered and projected ``physics.oversample`` times finer along
            each axis, and with ``physics.beta: fitted`` in two channels (its priors are
            the config's, resolved with the ``intensity-model`` preset).
        field_method: the method fits a field (True) or voxel volumes of every frame
            (False); None: decided by the method's name (:data:`FIELD_METHODS`).
        output_frames: frames of the output movie when other times than the recorded
            ones are asked for (``--times``); None: the recorded frames.

    Returns:
        the estimate, by part: ``recording`` and ``truth`` (unless
        ``in_memory``), ``operator``, ``libraries`` (workspaces that torch
        allocates on first use; the materials database for intensities), ``field`` (parameters, gradients,
        optimiser state), ``batch`` (one training step, with the volume
        regularisers' temporaries) or ``working volumes``
        (conventional methods), and ``volumes`` (the rendered output movie and
        its predicted projections). The Python runtime itself (a few hundred
        MB) is not included. No array is allocated.
    """
    t, v, h, w = (int(n) for n in (frames, views, height, width))
    if min(t, v, h, w) < 1:
        raise ValueError(f"sizes must be >= 1, got (T, V, H, W) = ({t}, {v}, {h}, {w})")
    plane_hw = h, w
    recorded = t * v * h * w * F32                   # the recording, on the detector grid
    channels = 1
    phys = config.physics
    model_fit = intensity and phys.intensity == "model"
    if model_fit:
        if phys.fine_render and phys.oversample > 1:  # the fit's grid is finer
            h, w = h * phys.oversample, w * phys.oversample
        channels = 2 if phys.beta == "fitted" else 1
    vox = h * w * w                                  # voxels of one frame
    proj = t * v * h * w * F32
    parts = {"recording": 0 if in_memory else recorded,
             "truth": t * vox * F32 if truth and not in_memory else 0,
             "operator": 0}
    method = config.method
    if field_method is None:
        field_method = method in FIELD_METHODS
    # the field methods project their voxel-major frames through the sparse operator
    parts["operator"] = _operator_bytes(v, w, max(1, min(int(angle_sets), t)), field_method)
    if not field_method:
        parts["libraries"] = CONVENTIONAL_LIBRARY_BYTES
        parts["working volumes"] = CONVENTIONAL_VOLUME_COPIES * t * vox * F32
        parts["volumes"] = proj                      # predicted projections; x is the output
    else:
        parts.update(_field_method_parts(config, t, plane_hw, vox, proj, channels, model_fit))
    if output_frames is not None and output_frames > t:
        # the movie at the times asked for, beside the recorded frames' (and their copy)
        parts["volumes"] += channels * OUTPUT_VOLUME_COPIES * output_frames * vox * F32
    adversarial = config.adversarial
    if field_method and adversarial.enabled:
        # the projector of the candidate novel angles, one view each (built once), and the
        # novel views rendered for a batch
        parts["operator"] += _operator_bytes(1, w, adversarial.novel_angles, sparse=True)
        parts["batch"] += channels * max(1, min(int(config.train.frames_per_batch), t)) \
            * h * w * F32 * 2
    flow = config.flow
    if field_method and (flow.transport_weight or flow.divergence_weight):
        # the flow prior's velocity (3 components) at every output frame, and its copy
        parts["volumes"] += 2 * 3 * max(t, output_frames or 0) * vox * F32
    return MemoryEstimate(f"reconstruction ({method})", parts,
                          "use fewer frames or a smaller detector (crop or bin the recording)")


def estimate_simulation(size: int, frames: int, views: int, oversample: int = 2, *,
                        intensity: bool = False) -> MemoryEstimate:
    """Peak memory of simulating a droplet recording of ``size``^3 voxels x ``frames``.

    Parts: ``truth`` (T, N, N, N) float32, ``projections`` (and
    their noisy copy), ``fine render`` (one frame on the oversampled grid with
    its temporaries) and ``operator`` (the oversampled detector's projector).

    With ``intensity`` (:func:`xray4d.simulate.simulate_droplets_intensity`) the
    occupancy is rendered and projected on the grid ``oversample`` times finer for
    the whole movie: ``fine truth`` (T, Nm, Nm, Nm), the fine projections with the
    exit waves (float64 thickness and complex128 waves), and ``truth`` in three
    copies (occupancy, delta, beta). Measured rise 236 MB at 64^3 x 20, oversample 2,
    against 311 MB estimated.
    """
    n, t, v, o = (int(x) for x in (size, frames, views, oversample))
    if min(n, t, v, o) < 1:
        raise ValueError(f"sizes must be >= 1, got size {n}, frames {t}, views {v}, oversample {o}")
    fine = n * o
    if intensity:
        parts = {"fine truth": t * fine ** 3 * F32,
                 "projections": 2 * t * v * fine * fine * F32 + t * v * fine * fine * (8 + 16),
                 "fine render": 3 * fine ** 3 * F32,
                 "operator": _operator_bytes(v, fine, 1),
                 "truth": 3 * t * n ** 3 * F32}
        return MemoryEstimate("simulation (intensity)", parts,
                              "use fewer frames, a smaller size or less oversampling")
    parts = {"truth": t * n ** 3 * F32,
             "projections": 2 * t * v * n * n * F32 + v * fine * fine * F32,
             # the liquid's box on the fine grid and its temporaries (the box is at most
             # the whole grid; measured rise: 0.8x the estimate at 64^3 x 40, 0.5x at 128^3 x 16)
             "fine render": 3 * fine ** 3 * F32,
             "operator": _operator_bytes(v, fine, 1)}
    return MemoryEstimate("simulation", parts, "use fewer frames or a smaller size")


def estimate_projection(frames: int, views: int, height: int, width: int) -> MemoryEstimate:
    """Peak memory of forward-projecting a (frames, height, width, width) volume at ``views``
    angles into a recording (:func:`xray4d.simulate.simulate_recording`, the ``project`` verb).

    Parts: ``volume`` (three float32 copies: the volume as read, which takes two while a
    float64 file is cast, and the copy the recording keeps as truth), ``projections`` (the
    clean ones and their noisy copy) and ``operator`` (the projector's, as for
    :func:`estimate_reconstruction`). No array is allocated.
    """
    t, v, h, w = (int(n) for n in (frames, views, height, width))
    if min(t, v, h, w) < 1:
        raise ValueError(f"sizes must be >= 1, got (T, V, H, W) = ({t}, {v}, {h}, {w})")
    return MemoryEstimate("projection", {"volume": 3 * t * h * w * w * F32,
                                         "projections": 2 * t * v * h * w * F32,
                                         "operator": _operator_bytes(v, w, 1)},
                          "use fewer frames or a smaller volume (crop or bin it)")


#: what scoring adds whatever the size: the float64 temporaries of one chunk of frames
#: (xray4d.evaluation.metrics bounds them to about 1M voxels on CPU: ~50 MB)
METRIC_WORKSPACE_BYTES = 100 * 10**6


def estimate_evaluation(volume_shape: tuple[int, int, int, int],
                        recording_shape: tuple[int, int, int, int], *,
                        channels: int = 1) -> MemoryEstimate:
    """Peak memory of scoring a reconstruction against a recording's truth (``evaluate``).

    Args:
        volume_shape: (T, Z, Y, X) of the reconstruction.
        recording_shape: (T, V, H, W) of the recording, whose projections and truth
            (T, H, W, W) are loaded.
        channels: 2 when both files hold a second channel (``volume_beta``).

    Parts: ``reconstruction`` and ``truth`` (float32, per channel), ``recording`` (its
    projections) and ``metrics`` (:data:`METRIC_WORKSPACE_BYTES`). No array is allocated.
    """
    t, z, y, x = (int(n) for n in volume_shape)
    rt, v, h, w = (int(n) for n in recording_shape)
    c = int(channels)
    return MemoryEstimate("evaluation", {"reconstruction": c * t * z * y * x * F32,
                                         "truth": c * rt * h * w * w * F32,
                                         "recording": rt * v * h * w * F32,
                                         "metrics": METRIC_WORKSPACE_BYTES},
                          "score fewer frames or a cropped volume")


def check_fits(estimate: MemoryEstimate, *, available: int | None = None) -> None:
    """Raise :class:`ResourceError` when ``estimate`` exceeds the available memory.

    Args:
        estimate: what the request needs.
        available: bytes available (default :func:`available_memory`); when
            unknown, nothing is refused.
    """
    avail = available_memory() if available is None else available
    if avail is None or estimate.total <= avail:
        return
    raise ResourceError(f"{estimate.what} needs about {estimate.describe()} of memory, "
                        f"but only {avail / GB:.3g} GB is available"
                        + (f"; {estimate.hint}" if estimate.hint else ""))


def torchrun_processes(variable: str = "WORLD_SIZE") -> int:
    """A process count ``torchrun`` sets in the environment: ``WORLD_SIZE`` (all processes)
    or ``LOCAL_WORLD_SIZE`` (those on this machine); 1 outside it or when unreadable."""
    try:
        return max(1, int(os.environ.get(variable, "1")))
    except ValueError:
        return 1


def processes_on_this_machine() -> int:
    """How many processes ``torchrun`` started on this machine (``LOCAL_WORLD_SIZE``)."""
    return torchrun_processes("LOCAL_WORLD_SIZE")


def for_processes_on_this_machine(estimate: MemoryEstimate, device: str = "cpu"
                                  ) -> MemoryEstimate:
    """The memory that every process of a ``torchrun`` on this machine needs together.

    Under data-parallel training each process holds its own recording, operator, field and
    batch; on the CPU they share the machine's memory, so the check must count them all.
    On CUDA each process has a GPU of its own, and the estimate is unchanged.
    """
    n = processes_on_this_machine()
    if n == 1 or str(device).startswith("cuda"):
        return estimate
    return MemoryEstimate(f"{estimate.what} in each of {n} processes on this machine",
                          {k: v * n for k, v in estimate.parts.items()}, estimate.hint)


def check_reconstruction(frames: int, views: int, height: int, width: int,
                         config: "ReconstructionConfig", *, angle_sets: int = 1,
                         truth: bool = False, in_memory: bool = False,
                         source: str = "", intensity: bool = False,
                         field_method: bool | None = None,
                         output_frames: int | None = None) -> MemoryEstimate:
    """:func:`estimate_reconstruction` then :func:`check_fits`; returns the estimate.

    ``source`` (a file name) is put in front of the message when given.
    """
    est = estimate_reconstruction(frames, views, height, width, config, angle_sets=angle_sets,
                                  truth=truth, in_memory=in_memory, intensity=intensity,
                                  field_method=field_method, output_frames=output_frames)
    try:
        check_fits(for_processes_on_this_machine(est, str(config.train.device)))
        device = str(config.train.device)
        if device.startswith("cuda") and est.parts.get("field"):
            _check_gpu(est, device)
    except ResourceError as exc:
        raise ResourceError(f"{source}: {exc}" if source else str(exc)) from None
    return est


def gpu_memory_available(device: str = "cuda") -> int | None:
    """Bytes free on a CUDA device now (``torch.cuda.mem_get_info``), or None without one."""
    try:
        import torch    # lazily: the estimates are used where torch is not imported yet
        if not torch.cuda.is_available():
            return None
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    except (ImportError, RuntimeError, ValueError):
        return None


def _check_gpu(est: MemoryEstimate, device: str) -> None:
    """ResourceError when the parts a field method keeps on the GPU exceed its free memory."""
    free = gpu_memory_available(device)
    needed = sum(est.parts.get(name, 0) for name in GPU_PARTS)
    if free is None or needed <= free:
        return
    raise ResourceError(f"{est.what} needs about {needed / GB:.3g} GB of GPU memory on "
                        f"{device} (recording, operator, field, batch), but only "
                        f"{free / GB:.3g} GB is free there"
                        + (f"; {est.hint}" if est.hint else ""))
