"""X-Hexplane: six feature planes (xy, xz, yz, xt, yt, zt) and a tiny decoder.

Features of paired planes are multiplied (xy*zt, xz*yt, yz*xt) and
concatenated; a decoder regresses the value. Sharing the planes across time is
what gives coherent movies from very few views.

The dense path never interpolates in 3D: on the voxel grid the pairs
factorise, so a frame is built from 2D plane slices resampled by small
interpolation matrices. With the linear decoder the (N^3 x 3C) feature tensor
is never formed; each pair contributes one batched matrix product.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Field

__all__ = ["HexPlaneField", "interpolation_matrix"]

PAIRS = (("xy", "zt"), ("xz", "yt"), ("yz", "xt"))


def interpolation_matrix(coords: torch.Tensor, resolution: int) -> torch.Tensor:
    """Linear interpolation weights (N, R) sampling a 1D grid of R nodes spanning [-1, 1].

    Same convention as ``grid_sample(..., align_corners=True)`` (zero outside).
    """
    n = coords.shape[0]
    m = torch.zeros(n, resolution, dtype=coords.dtype, device=coords.device)
    if resolution == 1:
        return m + 1.0
    pos = (coords + 1) * (resolution - 1) / 2
    i0 = torch.floor(pos).long()
    frac = pos - i0
    for idx, w in ((i0, 1 - frac), (i0 + 1, frac)):
        ok = (idx >= 0) & (idx < resolution)
        m[torch.arange(n, device=coords.device)[ok], idx[ok]] += w[ok]
    return m


def _grid(n: int, device, dtype) -> torch.Tensor:
    return torch.linspace(-1, 1, n, device=device, dtype=dtype) if n > 1 else \
        torch.zeros(1, device=device, dtype=dtype)


class HexPlaneField(Field):
    """The X-Hexplane field.

    Args:
        channels: feature channels C per plane.
        space_resolution: (Rz, Ry, Rx) nodes of the spatial axes of the planes.
        time_resolution: nodes Rt of the time axis.
        decoder: ``linear`` (a learned weighted sum of the 3C pair products,
            TensoRF-style) or ``mlp`` (a tiny MLP on the concatenated products).
        mlp_hidden: hidden width of the MLP decoder.
        activation: ``sigmoid`` (bounded by ``value_max``), ``softplus``, or ``identity``
            (signed, unbounded: e.g. a velocity, :class:`~xray4d.fields.velocity.VelocityField`).
        value_max: upper bound of the output for the sigmoid activation; one per
            output channel (a sequence) when ``outputs`` > 1.
        init_value: initial output value everywhere (as fraction of value_max);
            one per output channel (a sequence) when ``outputs`` > 1.
        seed: seed of the initialisation.
        outputs: output channels sharing the planes, e.g. 2 for (delta, beta): the
            decoder regresses each from the same features. With one output the
            values are (N,) and (B, Z, Y, X); with more, (N, O) and (B, O, Z, Y, X).
        relative: with two outputs, the second is the first times its own bounded
            value, e.g. beta = delta * (beta/delta): ``value_max[1]`` then bounds the
            ratio, and the second channel is zero wherever the first is.
    """

    def __init__(self, channels: int = 16, space_resolution: tuple[int, int, int] = (32, 32, 32),
                 time_resolution: int = 16, decoder: str = "linear", mlp_hidden: int = 64,
                 activation: str = "sigmoid", value_max: float = 1.0, init_value: float = 0.02,
                 init_scale: float = 0.1, seed: int = 0, outputs: int = 1,
                 relative: bool = False) -> None:
        super().__init__()
        bounds = [float(v) for v in (value_max if isinstance(value_max, (list, tuple))
                                     else [value_max] * outputs)]
        inits = [float(v) for v in (init_value if isinstance(init_value, (list, tuple))
                                    else [init_value] * outputs)]
        if outputs < 1 or len(bounds) != outputs or len(inits) != outputs:
            raise ValueError(f"need one value_max and init_value per output channel ({outputs}), "
                             f"got {value_max!r}, {init_value!r}")
        if relative and outputs != 2:
            raise ValueError("relative needs two outputs")
        self.relative = bool(relative)
        if decoder not in ("linear", "mlp"):
            raise ValueError(f"decoder must be 'linear' or 'mlp', got {decoder!r}")
        if activation not in ("sigmoid", "softplus", "identity"):
            raise ValueError(f"activation must be 'sigmoid', 'softplus' or 'identity', "
                             f"got {activation!r}")
        self.channels = channels
        self.decoder_kind = decoder
        self.activation = activation
        self.outputs = int(outputs)
        #: the sigmoid's bound per output channel
        self.register_buffer("value_bounds", torch.tensor(bounds))
        gen = torch.Generator().manual_seed(seed)
        rz, ry, rx = space_resolution
        res = {"x": rx, "y": ry, "z": rz, "t": time_resolution}
        self.planes = nn.ParameterDict()
        for a, b in (("x", "y"), ("x", "z"), ("y", "z")):
            # spatial plane 'ab' stored as (C, R_b, R_a): rows along the second axis
            self.planes[a + b] = nn.Parameter(
                init_scale * torch.randn(channels, res[b], res[a], generator=gen) + 1.0)
        for a in ("x", "y", "z"):
            # time plane 'at' stored as (C, R_t, R_a); ones: the field starts static
            self.planes[a + "t"] = nn.Parameter(torch.ones(channels, res["t"], res[a]))
        bias0 = torch.tensor([math.log(p / (1 - p)) if activation == "sigmoid"
                              else p * v if activation == "identity"
                              else math.log(math.expm1(p * v)) for p, v in zip(inits, bounds)])
        if decoder == "linear":
            self.weight = nn.Parameter(0.01 * torch.randn(outputs, 3, channels, generator=gen))
            self.bias = nn.Parameter(bias0)
        else:
            self.mlp = nn.Sequential(nn.Linear(3 * channels, mlp_hidden), nn.ReLU(),
                                     nn.Linear(mlp_hidden, outputs))
            with torch.no_grad():
                for layer in (self.mlp[0], self.mlp[2]):
                    bound = 1 / math.sqrt(layer.in_features)
                    layer.weight.uniform_(-bound, bound, generator=gen)
                    layer.bias.zero_()
                self.mlp[2].weight.mul_(0.1)
                self.mlp[2].bias.copy_(bias0)

    @property
    def value_max(self) -> float | tuple[float, ...]:
        """The sigmoid's bound: a number with one output, one per output channel otherwise."""
        bounds = tuple(float(v) for v in self.value_bounds)
        return bounds[0] if self.outputs == 1 else bounds

    # ------------------------------------------------------------ resolution
    @property
    def space_resolution(self) -> tuple[int, int, int]:
        return (self.planes["xz"].shape[1], self.planes["xy"].shape[1], self.planes["xy"].shape[2])

    @property
    def time_resolution(self) -> int:
        return self.planes["xt"].shape[1]

    @torch.no_grad()
    def upsample(self, space_resolution: tuple[int, int, int], time_resolution: int) -> None:
        """Resample every plane to new resolutions (coarse-to-fine training)."""
        rz, ry, rx = space_resolution
        res = {"x": rx, "y": ry, "z": rz, "t": time_resolution}
        for name, p in self.planes.items():
            size = (res[name[1]], res[name[0]])
            new = F.interpolate(p.data[None], size=size, mode="bilinear", align_corners=True)[0]
            self.planes[name] = nn.Parameter(new.contiguous())

    # ------------------------------------------------------------ decoding
    def _activate(self, raw: torch.Tensor, channel_dim: int) -> torch.Tensor:
        """Bounded output of the raw decoder values, output channels along ``channel_dim``."""
        if self.activation == "identity":
            out = raw
        elif self.activation != "sigmoid":
            out = F.softplus(raw)
        else:
            shape = [1] * raw.dim()
            shape[channel_dim] = self.outputs
            out = torch.sigmoid(raw) * self.value_bounds.to(raw.dtype).view(shape)
        if self.relative:
            first, ratio = out.unbind(channel_dim)
            out = torch.stack([first, first * ratio], dim=channel_dim)
        return out

    def plane_parameters(self) -> list[nn.Parameter]:
        return list(self.planes.values())

    def decoder_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.named_parameters() if not n.startswith("planes.")]

    # ------------------------------------------------------------ point path
    def features(self, points: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """Pair-product features (N, 3, C) at points (N, 3) = (x, y, z) and times (N,)."""
        coord = {"x": points[:, 0], "y": points[:, 1], "z": points[:, 2], "t": times.to(points.dtype)}
        out = []
        for spatial, temporal in PAIRS:
            prod = None
            for name in (spatial, temporal):
                grid = torch.stack([coord[name[0]], coord[name[1]]], dim=-1).reshape(1, -1, 1, 2)
                f = F.grid_sample(self.planes[name][None], grid.to(self.planes[name].dtype),
                                  mode="bilinear", padding_mode="border", align_corners=True)
                f = f.reshape(self.channels, -1).t()
                prod = f if prod is None else prod * f
            out.append(prod)
        return torch.stack(out, dim=1)

    def forward(self, points: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        feats = self.features(points, times)
        if self.decoder_kind == "linear":
            raw = torch.einsum("nkc,okc->no", feats, self.weight) + self.bias
        else:
            raw = self.mlp(feats.reshape(feats.shape[0], -1))
        out = self._activate(raw, 1)
        return out.squeeze(1) if self.outputs == 1 else out

    # ------------------------------------------------------------ dense path
    def _plane_on_grid(self, name: str, mats: dict[str, torch.Tensor]) -> torch.Tensor:
        """Plane 'ab' resampled on the grid/time samples: (C, n_b, n_a)."""
        p = self.planes[name]
        return torch.matmul(torch.matmul(mats[name[1]], p), mats[name[0]].t())

    def render_frames(self, times: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
        z, y, x = shape
        dev, dt = self.planes["xy"].device, self.planes["xy"].dtype
        rz, ry, rx = self.space_resolution
        mats = {"x": interpolation_matrix(_grid(x, dev, dt), rx),
                "y": interpolation_matrix(_grid(y, dev, dt), ry),
                "z": interpolation_matrix(_grid(z, dev, dt), rz),
                "t": interpolation_matrix(times.to(dev, dt), self.time_resolution)}
        g = {name: self._plane_on_grid(name, mats) for name in self.planes.keys()}
        # g['xy']: (C, Y, X); g['xz']: (C, Z, X); g['yz']: (C, Z, Y)
        # g['zt']: (C, B, Z); g['yt']: (C, B, Y); g['xt']: (C, B, X)
        b = times.shape[0]
        if self.decoder_kind == "linear":
            per_output = [self._linear_frames(g, self.weight[o], self.bias[o], b, shape)
                          for o in range(self.outputs)]
            raw = per_output[0].unsqueeze(1) if self.outputs == 1 else \
                torch.stack(per_output, dim=1)                              # (B, O, Z, Y, X)
            out = self._activate(raw, 1)
            return out[:, 0] if self.outputs == 1 else out
        c = self.channels
        f1 = g["zt"].permute(1, 2, 0)[:, :, None, None, :] * g["xy"].permute(1, 2, 0)[None, None]
        f2 = g["yt"].permute(1, 2, 0)[:, None, :, None, :] * g["xz"].permute(1, 2, 0)[None, :, None]
        f3 = g["xt"].permute(1, 2, 0)[:, None, None, :, :] * g["yz"].permute(1, 2, 0)[None, :, :, None]
        feats = torch.cat([f1.expand(b, z, y, x, c), f2.expand(b, z, y, x, c),
                           f3.expand(b, z, y, x, c)], dim=-1)
        out = self._activate(self.mlp(feats), -1)                          # (B, Z, Y, X, O)
        return out[..., 0] if self.outputs == 1 else out.permute(0, 4, 1, 2, 3)

    def _linear_frames(self, g: dict[str, torch.Tensor], w: torch.Tensor, bias: torch.Tensor,
                       b: int, shape: tuple[int, int, int]) -> torch.Tensor:
        """Raw values (B, Z, Y, X) of one output of the linear decoder from the resampled planes.

        All three pair terms land in one contiguous (B*Z, Y, X) buffer: one matmul
        for xy*zt, then two batched matmuls over (frame, slice) accumulated in place.
        """
        z, y, x = shape
        c = self.channels
        zt = (g["zt"] * w[0][:, None, None]).permute(1, 2, 0).reshape(b * z, c)
        raw = torch.addmm(bias.expand(b * z, y * x), zt, g["xy"].reshape(c, y * x))
        raw = raw.view(b * z, y, x)
        yt = (g["yt"] * w[1][:, None, None]).permute(1, 2, 0)            # (B, Y, C)
        left = yt[:, None].expand(b, z, y, c).reshape(b * z, y, c)
        right = g["xz"].permute(1, 0, 2)[None].expand(b, z, c, x).reshape(b * z, c, x)
        raw = torch.baddbmm(raw, left, right)
        yz = (g["yz"] * w[2][:, None, None]).permute(1, 2, 0)            # (Z, Y, C)
        left = yz[None].expand(b, z, y, c).reshape(b * z, y, c)
        right = g["xt"].permute(1, 0, 2)[:, None].expand(b, z, c, x).reshape(b * z, c, x)
        return torch.baddbmm(raw, left, right).view(b, z, y, x)
