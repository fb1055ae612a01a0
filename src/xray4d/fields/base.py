"""The interface every field of the refractive index obeys."""
from __future__ import annotations

import torch
from torch import nn


class Field(nn.Module):
    """A model of f(x, y, z, t) (delta, or several channels such as delta and beta) on
    normalised coordinates.

    Space coordinates are in [-1, 1] with the first and last voxel centres at
    -1 and +1 (``grid_sample`` with ``align_corners=True``); time is in [-1, 1]
    over the recording's first to last frame.

    Two ways to evaluate:

    * :meth:`forward` at arbitrary points (the ray-sampled path);
    * :meth:`render_frames` on the whole voxel grid of several frames at once
      (the dense path, which fields should make fast).

    A field of one channel returns (N,) and (B, Z, Y, X); a field of O > 1 channels
    (e.g. :class:`~xray4d.fields.HexPlaneField` with ``outputs=2``) returns (N, O)
    and (B, O, Z, Y, X).
    """

    def forward(self, points: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Values at points (N, 3) ordered (x, y, z) and times (N,) -> (N,) (or (N, O))."""
        raise NotImplementedError

    def render_frames(self, times: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
        """Values on the voxel grid (Z, Y, X) at each normalised time (B,) -> (B, Z, Y, X)
        (or (B, O, Z, Y, X)).

        The default evaluates :meth:`forward` at every voxel centre; fields
        override it with a faster equivalent.
        """
        z, y, x = shape
        kw = {"device": times.device, "dtype": times.dtype}
        axes = [torch.linspace(-1, 1, n, **kw) if n > 1 else torch.zeros(1, **kw) for n in (z, y, x)]
        gz, gy, gx = torch.meshgrid(*axes, indexing="ij")
        pts = torch.stack([gx, gy, gz], dim=-1).reshape(-1, 3)
        out = [self.forward(pts, t.expand(pts.shape[0])) for t in times]
        return torch.stack([o.T.reshape(-1, z, y, x).squeeze(0) if o.dim() == 2
                            else o.reshape(z, y, x) for o in out])
