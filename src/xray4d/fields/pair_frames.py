"""The linear decoder's frames on the voxel grid, as matrix products into one buffer.

For frames b at the grid's (z, y, x), with the decoder's weights w folded into the time
planes, the raw value is

    raw[b, y, x, z] = sum_c yt[c, b, y] xz[c, z, x] + bias        (one matrix product,
                                                                   rows (b, y), columns (x, z))
                    + sum_c xy[c, y, x] zt[c, b, z]               (per frame b: (Y*X, C) @ (C, Z))
                    + sum_c xt[c, b, x] yz[c, z, y]               (per (b, y): (X, C) @ (C, Z))

All three land in one (B, Y, X, Z) buffer (voxel-major: the (B, Z, Y, X) frames in
``torch.channels_last`` memory, the projector's layout), accumulated in place, and the
sigmoid bound is applied in place too. :class:`PairFrames` is the autograd function of
that: its backward forms the gradients of the six small factors with the same products,
with no copy of the big buffer. The reference it must match is the field's point path
(``grid_sample`` of every plane; ``tests/fields``).
"""
from __future__ import annotations

import torch

__all__ = ["pair_frames", "PairFrames"]


class PairFrames(torch.autograd.Function):
    """Raw (or bounded-sigmoid) frames (B, Y, X, Z) from the factors of the three pairs.

    Inputs: ``a2`` (B*Y, C+1) and ``b2`` (C+1, X*Z) (yt and xz, the bias as a row of ones
    and a row of the bias), ``a1`` (Y*X, C) and ``b1`` (B, C, Z) (xy and zt), ``a3``
    (B, X, C) and ``b3`` (Y, C, Z) (xt and yz), ``dims`` (B, Y, X, Z), and ``bound`` (a
    float: the output is ``bound * sigmoid(raw)``; None: the raw values).
    """

    @staticmethod
    def forward(ctx, a2: torch.Tensor, b2: torch.Tensor, a1: torch.Tensor, b1: torch.Tensor,
                a3: torch.Tensor, b3: torch.Tensor, dims: tuple[int, int, int, int],
                bound: float | None) -> torch.Tensor:
        b, y, x, z = dims
        c = a1.shape[1]
        raw = torch.mm(a2, b2)                                          # (B*Y, X*Z)
        raw.view(b, y * x, z).baddbmm_(a1.expand(b, y * x, c), b1)
        rows = raw.view(b, y, x, z)
        for i in range(b):          # a3[i] broadcast over y without a copy
            rows[i].baddbmm_(a3[i].expand(y, x, c), b3)
        if bound is not None:
            raw.sigmoid_().mul_(bound)
        ctx.dims, ctx.bound = dims, bound
        ctx.save_for_backward(a2, b2, a1, b1, a3, b3, raw if bound is not None else None)
        return raw.view(b, y, x, z)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        a2, b2, a1, b1, a3, b3, out = ctx.saved_tensors
        b, y, x, z = ctx.dims
        g = grad.contiguous().view(b * y, x * z)
        if out is not None:
            # d(bound * s) / d raw = bound * s * (1 - s) = out * (1 - out / bound)
            g = g * out
            g.addcmul_(g, out, value=-1.0 / ctx.bound)
        need = ctx.needs_input_grad
        grads: list[torch.Tensor | None] = [None] * 8
        if need[0]:
            grads[0] = g @ b2.t()
        if need[1]:
            grads[1] = a2.t() @ g
        per_frame = g.view(b, y * x, z)
        if need[2]:
            grads[2] = torch.bmm(per_frame, b1.transpose(1, 2)).sum(0)
        if need[3]:
            grads[3] = torch.bmm(a1.t().expand(b, -1, -1), per_frame)
        rows = g.view(b, y, x, z)
        c = a3.shape[2]
        if need[4]:
            grads[4] = torch.stack([torch.bmm(rows[i], b3.transpose(1, 2)).sum(0)
                                    for i in range(b)])
        if need[5]:
            grads[5] = sum(torch.bmm(a3[i].t().expand(y, c, x), rows[i]) for i in range(b))
        return tuple(grads)


def pair_frames(g: dict[str, torch.Tensor], w: torch.Tensor, bias: torch.Tensor, b: int,
                shape: tuple[int, int, int], bound: torch.Tensor | None) -> torch.Tensor:
    """One output of the linear decoder, (B, Y, X, Z), from the resampled planes.

    Args:
        g: planes on the grid: 'xy' (C, Y, X), 'xz' (C, Z, X), 'yz' (C, Z, Y), and at the
            frames' times 'zt' (C, B, Z), 'yt' (C, B, Y), 'xt' (C, B, X).
        w: the output's decoder weights (3, C), one row per pair (xy*zt, xz*yt, yz*xt).
        bias: the output's bias (a 0-dim tensor).
        b: frames.
        shape: the grid (Z, Y, X).
        bound: the sigmoid's bound (0-dim tensor): the frames are ``bound * sigmoid(raw)``;
            None: the raw values.
    """
    z, y, x = shape
    c = g["xy"].shape[0]
    yt = (g["yt"] * w[1][:, None, None]).permute(1, 2, 0).reshape(b * y, c)
    a2 = torch.cat([yt, yt.new_ones(b * y, 1)], dim=1)
    b2 = torch.cat([g["xz"].permute(0, 2, 1).reshape(c, x * z),
                    bias.reshape(1, 1).expand(1, x * z)])
    a1 = g["xy"].reshape(c, y * x).t()
    b1 = (g["zt"] * w[0][:, None, None]).transpose(0, 1)
    a3 = (g["xt"] * w[2][:, None, None]).permute(1, 2, 0)
    b3 = g["yz"].permute(2, 0, 1).contiguous()
    return PairFrames.apply(a2, b2, a1, b1, a3, b3, (b, y, x, z),
                            None if bound is None else float(bound))
