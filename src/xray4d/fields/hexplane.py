"""X-Hexplane: six feature planes (xy, xz, yz, xt, yt, zt) and a tiny decoder.

Features of paired planes are multiplied (xy*zt, xz*yt, yz*xt) and
concatenated; a decoder regresses the value. Sharing the planes across time is
what gives coherent movies from very few views.

The dense path never interpolates in 3D: on the voxel grid the pairs
factorise, so a frame is built from 2D plane slices resampled by small
interpolation matrices (none where the planes are at the grid's resolution).
With the linear decoder the (N^3 x 3C) feature tensor is never formed: the
decoder's weights are folded into the time planes and the pairs become two
matrix products written into one buffer (:mod:`.pair_frames`), voxel-major
(memory (B, Y, X, Z), ``torch.channels_last`` for the (B, Z, Y, X) frames), the
layout the projector consumes without a copy.
"""
from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Field
from .pair_frames import pair_frames

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


@functools.lru_cache(maxsize=64)
def _grid_matrix(n: int, resolution: int, dtype: torch.dtype,
                 device: torch.device) -> torch.Tensor | None:
    """Interpolation (n, R) of R plane nodes onto n grid nodes; None when they coincide."""
    if n == resolution:
        return None
    return interpolation_matrix(_grid(n, device, dtype), resolution)


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
    def _resampled(self, times: torch.Tensor,
                   shape: tuple[int, int, int]) -> dict[str, torch.Tensor]:
        """Every plane on the grid / time samples: 'ab' -> (C, n_b, n_a); planes at the grid's
        resolution are used as they are."""
        z, y, x = shape
        dev, dt = self.planes["xy"].device, self.planes["xy"].dtype
        rz, ry, rx = self.space_resolution
        mats = {"x": _grid_matrix(x, rx, dt, dev), "y": _grid_matrix(y, ry, dt, dev),
                "z": _grid_matrix(z, rz, dt, dev),
                "t": interpolation_matrix(times.to(dev, dt), self.time_resolution)}
        out = {}
        for name, p in self.planes.items():
            rows, cols = mats[name[1]], mats[name[0]]
            if rows is not None:
                p = torch.matmul(rows, p)
            out[name] = p if cols is None else torch.matmul(p, cols.t())
        return out

    def render_frames(self, times: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
        """Frames (B, Z, Y, X) (or (B, O, Z, Y, X)) at normalised times (B,) on the grid.

        With the linear decoder the frames are voxel-major (``torch.channels_last``) and
        computed in the autocast dtype when autocast is on for the planes' device.
        """
        z, y, x = shape
        g = self._resampled(times, shape)
        # g['xy']: (C, Y, X); g['xz']: (C, Z, X); g['yz']: (C, Z, Y)
        # g['zt']: (C, B, Z); g['yt']: (C, B, Y); g['xt']: (C, B, X)
        b = times.shape[0]
        if self.decoder_kind == "linear":
            return self._linear_frames(g, b, shape)
        c = self.channels
        f1 = g["zt"].permute(1, 2, 0)[:, :, None, None, :] * g["xy"].permute(1, 2, 0)[None, None]
        f2 = g["yt"].permute(1, 2, 0)[:, None, :, None, :] * g["xz"].permute(1, 2, 0)[None, :, None]
        f3 = g["xt"].permute(1, 2, 0)[:, None, None, :, :] * g["yz"].permute(1, 2, 0)[None, :, :, None]
        feats = torch.cat([f1.expand(b, z, y, x, c), f2.expand(b, z, y, x, c),
                           f3.expand(b, z, y, x, c)], dim=-1)
        out = self._activate(self.mlp(feats), -1)                          # (B, Z, Y, X, O)
        return out[..., 0] if self.outputs == 1 else out.permute(0, 4, 1, 2, 3)

    def _linear_frames(self, g: dict[str, torch.Tensor], b: int,
                       shape: tuple[int, int, int]) -> torch.Tensor:
        """Frames of the linear decoder from the resampled planes, voxel-major."""
        dev = g["xy"].device.type
        dt = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else g["xy"].dtype
        g = {k: v.to(dt) for k, v in g.items()}
        fused = self.outputs == 1 and self.activation == "sigmoid" and not self.relative
        per_output = []
        for o in range(self.outputs):
            w = self.weight[o].to(dt)
            per_output.append(pair_frames(g, w, self.bias[o].to(dt), b, shape,
                                          self.value_bounds[o] if fused else None))
        if fused:
            return per_output[0].permute(0, 3, 1, 2)                       # (B, Z, Y, X)
        raw = torch.stack(per_output, dim=1)                               # (B, O, Y, X, Z)
        out = self._activate(raw, 1).permute(0, 1, 4, 2, 3)                # (B, O, Z, Y, X)
        return out[:, 0] if self.outputs == 1 else out
