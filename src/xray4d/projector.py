"""Parallel-beam projector: volume -> line integrals, and its adjoint.

Two paths, one convention (``geometry.py``):

* **matrix** (default): for each view angle a precomputed linear operator maps one
  (Y, X) slice to one detector row. Built with Joseph's method (bilinear
  interpolation of the voxel grid, one sample per row or column crossed, the
  same discretisation as ASTRA's ``linear`` 2D projector). All detector rows,
  views and frames are then matrix products, and the adjoint is the transposed
  product. The operator is stored dense, or sparse (CSR, with its transpose for
  the adjoint and the gradient: Joseph's operator has about two nonzeros per
  detector pixel and line crossed, a dense one does W times the arithmetic).
  A volume whose slices are stored voxel-major (``torch.channels_last``: memory
  (B, Y, X, Z), as the X-Hexplane renderer writes them) is projected without any
  copy: each frame is one (V*W, Y*X) @ (Y*X, Z) product; this is the training
  path, and it asks for the sparse operator. Row-major volumes (the conventional
  methods, simulations) are fastest with the dense operator, the default below
  512 MB of operator: the sparse one must transpose them. Differentiable.
* **ray-sampled**: arbitrary rays, points along them sampled with trilinear
  interpolation (``grid_sample``) and summed. Slower, but works for any field
  that can be evaluated at points and any ray set (``project_rays``).

Both honour the per-view detector geometry (``Geometry.detector``): the dense path projects
onto the virtual detector and resamples onto each real one (:mod:`.alignment`); the
ray-sampled path sends each real pixel's ray through the virtual point it sees. With ideal
detectors nothing is resampled.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F

from .alignment import to_detectors, to_detectors_adjoint
from .geometry import Geometry, centred_coordinates
# above this many bytes for the stacked dense operator a sparse one is used instead
from .resources import DENSE_OPERATOR_LIMIT_BYTES

__all__ = ["slice_projection_matrix", "Projector", "project_rays", "project_volume_rays"]


def _joseph_entries(angle_deg: float, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nonzero entries (detector column, voxel index y*W+x, weight) for one angle."""
    theta = math.radians(angle_deg)
    c, s = math.cos(theta), math.sin(theta)
    coord = centred_coordinates(width)
    u = coord[:, None]            # detector column positions (W, 1)
    along = coord[None, :]        # grid lines crossed (1, W)
    centre = (width - 1) / 2.0
    if abs(c) >= abs(s):
        # step over rows y_i; the ray crosses row y at x = u / cos - y tan
        pos = u / c - along * (s / c) + centre
        weight = 1.0 / abs(c)
        minor_is_x = True
    else:
        # step over columns x_i; y = u / sin - x cot
        pos = u / s - along * (c / s) + centre
        weight = 1.0 / abs(s)
        minor_is_x = False
    i0 = np.floor(pos)
    frac = pos - i0
    i0 = i0.astype(np.int64)
    det = np.broadcast_to(np.arange(width)[:, None], pos.shape)
    major = np.broadcast_to(np.arange(width)[None, :], pos.shape)
    dets, idxs, wts = [], [], []
    for minor, w in ((i0, 1.0 - frac), (i0 + 1, frac)):
        ok = (minor >= 0) & (minor < width) & (w > 0)
        if minor_is_x:
            vox = major * width + minor
        else:
            vox = minor * width + major
        dets.append(det[ok])
        idxs.append(vox[ok])
        wts.append(w[ok] * weight)
    return np.concatenate(dets), np.concatenate(idxs), np.concatenate(wts)


def slice_projection_matrix(angle_deg: float, width: int, *, dtype=torch.float32,
                            device=None) -> torch.Tensor:
    """Dense operator (W, W*W) projecting one slice f[y, x] to one detector row at an angle."""
    det, vox, w = _joseph_entries(angle_deg, width)
    m = np.zeros((width, width * width), dtype=np.float64)
    np.add.at(m, (det, vox), w)
    return torch.as_tensor(m, dtype=dtype, device=device)


def _sparse_operator(angles: np.ndarray, width: int, dtype, device) -> torch.Tensor:
    """The stacked operator (V*W, W*W) of one angle set as a coalesced sparse COO tensor."""
    rows, cols, vals = [], [], []
    for v, a in enumerate(angles):
        det, vox, w = _joseph_entries(float(a), width)
        rows.append(det + v * width)
        cols.append(vox)
        vals.append(w)
    idx = torch.as_tensor(np.stack([np.concatenate(rows), np.concatenate(cols)]))
    val = torch.as_tensor(np.concatenate(vals), dtype=dtype)
    return torch.sparse_coo_tensor(idx, val, (len(angles) * width, width * width),
                                   device=device, check_invariants=True).coalesce()


def _csr_pair(angles: np.ndarray, width: int, dtype, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The operator and its transpose as CSR tensors (for the forward and the adjoint)."""
    coo = _sparse_operator(angles, width, dtype, device)
    with warnings.catch_warnings():     # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return coo.to_sparse_csr(), coo.t().coalesce().to_sparse_csr()


def _sparse_columns(op: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``op @ cols[b]`` for every frame b: (B, K, N) from a CSR ``op`` (M, K) -> (B, M, N)."""
    out = cols.new_empty(cols.shape[0], op.shape[0], cols.shape[2])
    for b in range(cols.shape[0]):
        torch.mm(op, cols[b], out=out[b])
    return out


class _SparseProduct(torch.autograd.Function):
    """Frames (B, Y*X, Z) -> (B, V*W, Z) through a CSR operator; the gradient is the product
    with the transposed CSR operator (autograd through ``torch.sparse.mm`` is slower)."""

    @staticmethod
    def forward(ctx, cols: torch.Tensor, op: torch.Tensor, op_t: torch.Tensor) -> torch.Tensor:
        ctx.op_t = op_t
        return _sparse_columns(op, cols)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _sparse_columns(ctx.op_t, grad.contiguous()), None, None


def _as_columns(volume: torch.Tensor) -> torch.Tensor:
    """Frames (B, Z, Y, X) as (B, Y*X, Z): a view of a voxel-major (channels-last) volume,
    a transposed copy of any other."""
    b, z, y, x = volume.shape
    cl = volume.contiguous(memory_format=torch.channels_last)
    return cl.permute(0, 2, 3, 1).reshape(b, y * x, z)


class Projector:
    """Whole-frame projector for a :class:`Geometry`.

    ``forward`` maps volumes (T, Z, Y, X) to projections (T, V, Z, W);
    ``adjoint`` maps projections back to volumes (the exact transpose).
    Both accept a subset of frames, given by their indices in the geometry.

    Args:
        geometry: the views of every frame.
        dtype: of the operator; volumes are cast to it (projections accumulate in it).
        device: where the operator lives.
        sparse: the operator as CSR (True) or dense (False); None: dense up to
            ``DENSE_OPERATOR_LIMIT_BYTES`` of operator, sparse above. Voxel-major
            volumes (the training path) are fastest with the sparse one.
    """

    def __init__(self, geometry: Geometry, *, dtype=torch.float32, device=None,
                 sparse: bool | None = None) -> None:
        self.geometry = geometry
        self.dtype = dtype
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        w = geometry.width
        angles = geometry.angles_deg
        self.shared = geometry.angles_shared
        sets = angles[:1] if self.shared else angles
        # one operator per distinct set of per-frame angles
        uniq, inverse = np.unique(sets, axis=0, return_inverse=True)
        self._frame_to_set = np.zeros(geometry.frames, dtype=np.int64) if self.shared \
            else inverse.reshape(-1)
        n_bytes = uniq.size * w * w * w * torch.tensor([], dtype=dtype).element_size()
        self.sparse = (n_bytes > DENSE_OPERATOR_LIMIT_BYTES) if sparse is None else bool(sparse)
        self._ops: list[torch.Tensor] = []
        self._ops_t: list[torch.Tensor] = []      # the CSR transposes (sparse only)
        for a_set in uniq:
            if self.sparse:
                op, op_t = _csr_pair(a_set, w, dtype, self.device)
                self._ops.append(op)
                self._ops_t.append(op_t)
            else:
                self._ops.append(torch.cat([slice_projection_matrix(float(a), w, dtype=dtype,
                                                                    device=self.device)
                                            for a in a_set], dim=0))

    def _frames(self, frames) -> np.ndarray:
        if frames is None:
            return np.arange(self.geometry.frames)
        return np.asarray(frames, dtype=np.int64).reshape(-1)

    def _columns(self, cols: torch.Tensor, sets: np.ndarray, transpose: bool) -> torch.Tensor:
        """Per frame, operator (or its transpose) @ columns: (B, K, N) -> (B, M, N)."""
        def one(s: int, c: torch.Tensor) -> torch.Tensor:
            if self.sparse:
                op, op_t = self._ops[s], self._ops_t[s]
                return _SparseProduct.apply(c, *((op_t, op) if transpose else (op, op_t)))
            return torch.matmul(self._ops[s].t() if transpose else self._ops[s], c)

        if np.all(sets == sets[0]):
            return one(int(sets[0]), cols)
        return torch.cat([one(int(s), cols[i:i + 1]) for i, s in enumerate(sets)])

    def _rows(self, x: torch.Tensor, sets: np.ndarray, transpose: bool) -> torch.Tensor:
        """Dense operator on rows: (B, R, K) @ op.T (or op) -> (B, R, M), no copy of ``x``."""
        if np.all(sets == sets[0]):
            op = self._ops[sets[0]]
            b, r = x.shape[:2]
            return (x.reshape(b * r, -1) @ (op if transpose else op.t())).reshape(b, r, -1)
        return torch.stack([x[i] @ (self._ops[s] if transpose else self._ops[s].t())
                            for i, s in enumerate(sets)])

    def detector_parameters(self, frames=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Shift (B, V, 2), tilt (B, V), magnification (B, V) of the frames' detectors."""
        d = self.geometry.detector
        if d is None:
            raise ValueError("the geometry has ideal detectors")
        return d.tensors(self._frames(frames), dtype=self.dtype, device=self.device)

    def forward(self, volume: torch.Tensor, frames=None) -> torch.Tensor:
        """Project volumes (B, Z, Y, X) of the given frames to (B, V, Z, W) on the real
        detectors (the geometry's shift, tilt and magnification of each view)."""
        out = self.project_virtual(volume, frames)
        if self.geometry.aligned:
            return out
        return to_detectors(out, *self.detector_parameters(frames))

    def project_virtual(self, volume: torch.Tensor, frames=None) -> torch.Tensor:
        """Project volumes (B, Z, Y, X) of the given frames to (B, V, Z, W) on the virtual
        (ideal) detector."""
        g = self.geometry
        fr = self._frames(frames)
        if volume.dim() != 4 or volume.shape[1:] != g.volume_shape or volume.shape[0] != len(fr):
            raise ValueError(f"volume shape {tuple(volume.shape)} does not match "
                             f"({len(fr)}, {g.height}, {g.width}, {g.width})")
        volume = volume.to(self.dtype)
        b, z = volume.shape[:2]
        sets = self._frame_to_set[fr]
        if not self.sparse and volume.is_contiguous():
            out = self._rows(volume.reshape(b, z, -1), sets, False)
            return out.reshape(b, z, g.views, g.width).permute(0, 2, 1, 3)
        out = self._columns(_as_columns(volume), sets, False)          # (B, V*W, Z)
        return out.reshape(b, g.views, g.width, z).transpose(2, 3)

    __call__ = forward

    def adjoint(self, projections: torch.Tensor, frames=None) -> torch.Tensor:
        """Back-project projections (B, V, Z, W) of the given frames to volumes (B, Z, Y, X)."""
        g = self.geometry
        fr = self._frames(frames)
        if projections.dim() != 4 or projections.shape[0] != len(fr) or \
                projections.shape[1:] != (g.views, g.height, g.width):
            raise ValueError(f"projection shape {tuple(projections.shape)} does not match "
                             f"({len(fr)}, {g.views}, {g.height}, {g.width})")
        if not g.aligned:
            projections = to_detectors_adjoint(projections, *self.detector_parameters(frames))
        b = projections.shape[0]
        sets = self._frame_to_set[fr]
        projections = projections.to(self.dtype)
        if not self.sparse:
            p = projections.permute(0, 2, 1, 3).reshape(b, g.height, g.views * g.width)
            return self._rows(p, sets, True).reshape(b, *g.volume_shape)
        cols = projections.transpose(2, 3).reshape(b, g.views * g.width, g.height)
        out = self._columns(cols, sets, True)                        # (B, Y*X, Z)
        return out.reshape(b, g.width, g.width, g.height).permute(0, 3, 1, 2).contiguous()


def project_rays(field_fn, geometry: Geometry, angles_deg: torch.Tensor, rows: torch.Tensor,
                 cols: torch.Tensor, n_samples: int, times: torch.Tensor | None = None,
                 chunk: int = 1 << 20, margin: float = 0.0,
                 dtype: torch.dtype = torch.float32, frames: torch.Tensor | None = None,
                 views: torch.Tensor | None = None) -> torch.Tensor:
    """Ray-sampled line integrals of a field given as a function of points.

    Args:
        field_fn: maps points (N, 3) in normalised (x, y, z) [and times (N,)] to values (N,).
        angles_deg, rows, cols: one entry per ray, shape (R,).
        n_samples: points per ray.
        margin: how far beyond the outer voxel centres (normalised units) points are
            still evaluated in x and y; a voxel volume sampled with zero padding uses one
            voxel, 2 / (W - 1), so that its interpolant is integrated to where it reaches zero.
        dtype: dtype of the sample points.
        times: optional normalised time of each ray, shape (R,).
        frames, views: frame and view of each ray (R,); needed when the detectors are not
            ideal (:meth:`~xray4d.geometry.Geometry.ray_points`).

    Returns:
        line integrals of shape (R,).
    """
    pts, ds = geometry.ray_points(angles_deg, rows, cols, n_samples, device=rows.device,
                                  dtype=dtype, margin=margin, frames=frames, views=views)
    r = pts.shape[0]
    flat = pts.reshape(-1, 3)
    inside = (flat[:, :2].abs() <= 1.0 + margin + 1e-6).all(dim=1) & (flat[:, 2].abs() <= 1.0 + 1e-6)
    t_flat = None if times is None else times.to(flat.dtype)[:, None].expand(r, n_samples).reshape(-1)
    idx = torch.nonzero(inside).squeeze(1)
    parts = []
    for start in range(0, idx.numel(), chunk):
        sel = idx[start:start + chunk]
        args = (flat[sel],) if t_flat is None else (flat[sel], t_flat[sel])
        parts.append(field_fn(*args))
    if parts:
        inner = torch.cat(parts)
        vals = torch.zeros(flat.shape[0], dtype=inner.dtype, device=flat.device).index_put((idx,), inner)
    else:
        vals = torch.zeros(flat.shape[0], dtype=flat.dtype, device=flat.device)
    return vals.reshape(r, n_samples).sum(1) * ds


def project_volume_rays(volume: torch.Tensor, geometry: Geometry, frame: int = 0,
                        n_samples: int | None = None) -> torch.Tensor:
    """Ray-sampled projections (V, H, W) of one volume frame (Z, Y, X), trilinear sampling.

    The reference for the dense path: same geometry, different discretisation.
    """
    g = geometry
    n_samples = n_samples or 4 * g.width
    vol = volume[None, None]
    dtype = volume.dtype if volume.dtype.is_floating_point else torch.float32

    def sample(p: torch.Tensor) -> torch.Tensor:
        grid = p.to(vol.dtype).reshape(1, -1, 1, 1, 3)
        return F.grid_sample(vol, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=True).reshape(-1)

    out = []
    kk, jj = torch.meshgrid(torch.arange(g.height), torch.arange(g.width), indexing="ij")
    for v in range(g.views):
        a = torch.full((kk.numel(),), float(g.angles_deg[frame, v]), dtype=torch.float64)
        proj = project_rays(sample, g, a, kk.reshape(-1).to(volume.device),
                            jj.reshape(-1).to(volume.device), n_samples,
                            margin=2.0 / (g.width - 1) if g.width > 1 else 0.0, dtype=dtype,
                            frames=torch.full_like(a, frame, dtype=torch.long),
                            views=torch.full_like(a, v, dtype=torch.long))
        out.append(proj.reshape(g.height, g.width))
    return torch.stack(out)
