"""The 4D-ONIX network: an encoder of the measured views and an implicit generator.

A conditional field: the value at a point (x, y, z) and time t of a frame follows from
that frame's projections, not from weights fitted to one recording. So one network,
trained on several recordings, reconstructs a recording it never saw in one forward pass.

* **encoder** (:class:`ProjectionEncoder`): a small ResNet-style CNN (a stem convolution,
  residual blocks of two 3x3 convolutions, a 1x1 head) applied to every view of a frame,
  on the detector grid; its feature map keeps the projection itself as one more channel.
* **per-view sampling** (:meth:`OnixNetwork.view_features_at`): each point is projected
  onto each view's detector at that view's angle (``u = x cos(theta) + y sin(theta)``,
  row ``z``: the ray convention of :mod:`xray4d.geometry`, in the normalised coordinates
  of ``grid_sample``), and that view's feature map is sampled there bilinearly; the
  views' features are concatenated in view order.
* **generator**: an MLP of the views' features, the positional encoding of (x, y, z)
  and that of t (:func:`positional_encoding`), with the project's bounded output head
  (``value_max * sigmoid``, started at ``init_value`` of the bound).

Projections enter divided by ``input_scale`` (a buffer: the training data's largest
line integral), so a trained network sees new recordings on the same scale.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["positional_encoding", "ResidualBlock", "ProjectionEncoder", "OnixNetwork",
           "ARCHITECTURE_LIMITS"]

#: the architecture's integer options and the ranges a saved model may state
ARCHITECTURE_LIMITS: dict[str, tuple[int, int]] = {
    "views": (1, 64), "encoder_channels": (1, 256), "feature_channels": (1, 256),
    "blocks": (0, 16), "space_bands": (0, 16), "time_bands": (0, 16),
    "hidden": (1, 1024), "layers": (1, 16)}


def positional_encoding(x: torch.Tensor, bands: int) -> torch.Tensor:
    """``x`` (..., D) and ``sin``, ``cos`` of ``2^k pi x`` for k < ``bands``: (..., D (1 + 2 bands))."""
    if bands == 0:
        return x
    freqs = math.pi * 2.0 ** torch.arange(bands, dtype=x.dtype, device=x.device)
    arg = (x[..., None] * freqs).flatten(-2)
    return torch.cat([x, torch.sin(arg), torch.cos(arg)], dim=-1)


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with a ReLU between, added to the input, then a ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, H, W)."""
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class ProjectionEncoder(nn.Module):
    """Feature maps of projections: (N, 1, H, W) -> (N, features + 1, H, W), the last
    channel the projection itself.

    Args:
        channels: channels of the stem and the residual blocks.
        features: channels of the head's output.
        blocks: residual blocks.
    """

    def __init__(self, channels: int, features: int, blocks: int) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, channels, 3, padding=1)
        self.blocks = nn.Sequential(*[ResidualBlock(channels) for _ in range(blocks)])
        self.head = nn.Conv2d(channels, features, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) -> (N, features + 1, H, W)."""
        return torch.cat([self.head(self.blocks(F.relu(self.stem(images)))), images], dim=1)


def _grid_points(shape: tuple[int, int, int], device, dtype) -> torch.Tensor:
    """Voxel centres of a (Z, Y, X) grid in normalised coordinates, (Z Y X, 3) as (x, y, z)."""
    axes = [torch.linspace(-1, 1, n, device=device, dtype=dtype) if n > 1
            else torch.zeros(1, device=device, dtype=dtype) for n in shape]
    gz, gy, gx = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([gx, gy, gz], dim=-1).reshape(-1, 3)


class OnixNetwork(nn.Module):
    """Encoder and generator of 4D-ONIX (see the module docstring).

    Args:
        views: views per frame (the generator's input holds each view's features).
        encoder_channels, feature_channels, blocks: the encoder's width, output channels
            and residual blocks.
        space_bands, time_bands: frequencies of the positional encodings.
        hidden, layers: the generator's width and hidden layers.
        value_max: the output's bound.
        init_value: the output at the start, as a fraction of the bound, in (0, 1).
        input_scale: what the projections are divided by.
        seed: seed of the initial weights (the global random state is left alone).
    """

    def __init__(self, views: int, *, encoder_channels: int = 16, feature_channels: int = 16,
                 blocks: int = 2, space_bands: int = 6, time_bands: int = 4, hidden: int = 64,
                 layers: int = 3, value_max: float = 1.0, init_value: float = 0.02,
                 input_scale: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        self.options = {"views": int(views), "encoder_channels": int(encoder_channels),
                        "feature_channels": int(feature_channels), "blocks": int(blocks),
                        "space_bands": int(space_bands), "time_bands": int(time_bands),
                        "hidden": int(hidden), "layers": int(layers)}
        if not 0 < init_value < 1:
            raise ValueError(f"init_value must be in (0, 1), got {init_value}")
        self.register_buffer("value_bound", torch.tensor(float(value_max)))
        self.register_buffer("input_scale", torch.tensor(float(input_scale)))
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            self.encoder = ProjectionEncoder(encoder_channels, feature_channels, blocks)
            width = (views * (feature_channels + 1) + 3 * (1 + 2 * space_bands)
                     + (1 + 2 * time_bands))
            mlp: list[nn.Module] = []
            for i in range(layers):
                mlp += [nn.Linear(width if i == 0 else hidden, hidden), nn.ReLU()]
            self.generator = nn.Sequential(*mlp)
            self.output = nn.Linear(hidden, 1)
        finally:
            torch.random.set_rng_state(state)
        with torch.no_grad():
            self.output.weight.mul_(0.1)
            self.output.bias.fill_(math.log(init_value / (1 - init_value)))

    @property
    def value_max(self) -> float:
        """The output's bound."""
        return float(self.value_bound)

    def architecture(self) -> dict[str, Any]:
        """The constructor's integer options, plain values (what a saved model states)."""
        return dict(self.options)

    def encode(self, projections: torch.Tensor) -> torch.Tensor:
        """Feature maps of every view of each frame: (B, V, H, W) -> (B, V, F, H, W)."""
        b, v, h, w = projections.shape
        if v != self.options["views"]:
            raise ValueError(f"the network takes {self.options['views']} views, got {v}")
        maps = self.encoder((projections / self.input_scale).reshape(b * v, 1, h, w))
        return maps.reshape(b, v, -1, h, w)

    @staticmethod
    def view_features_at(maps: torch.Tensor, angles_deg: torch.Tensor,
                         points: torch.Tensor) -> torch.Tensor:
        """Each view's features where each point projects onto its detector.

        Args:
            maps: (B, V, F, H, W) feature maps.
            angles_deg: (B, V) view angles.
            points: (P, 3) points (x, y, z) in normalised coordinates.

        Returns:
            (B, P, V F), zero where a point projects off a detector.
        """
        b, v, f, h, w = maps.shape
        theta = torch.deg2rad(angles_deg.to(points.dtype)).reshape(b * v, 1, 1)
        x, y, z = (points[:, i].reshape(1, 1, -1) for i in range(3))
        u = x * torch.cos(theta) + y * torch.sin(theta)                # (B V, 1, P)
        grid = torch.stack([u, z.expand_as(u)], dim=-1)                 # (B V, 1, P, 2)
        out = F.grid_sample(maps.reshape(b * v, f, h, w), grid, mode="bilinear",
                            padding_mode="zeros", align_corners=True)   # (B V, F, 1, P)
        return out.reshape(b, v * f, -1).transpose(1, 2)

    def render(self, projections: torch.Tensor, angles_deg: torch.Tensor, times: torch.Tensor,
               shape: tuple[int, int, int]) -> torch.Tensor:
        """Frames on a (Z, Y, X) grid from their projections.

        Args:
            projections: (B, V, H, W) line integrals of each frame's views.
            angles_deg: (B, V) their angles.
            times: (B,) normalised times of the frames in [-1, 1].
            shape: the grid.

        Returns:
            (B, Z, Y, X) values in (0, value_max).
        """
        b = projections.shape[0]
        points = _grid_points(shape, projections.device, projections.dtype)
        views = self.view_features_at(self.encode(projections), angles_deg, points)
        space = positional_encoding(points, self.options["space_bands"])
        time = positional_encoding(times.reshape(b, 1).to(points.dtype),
                                   self.options["time_bands"])
        inputs = torch.cat([views, space.expand(b, -1, -1),
                            time[:, None, :].expand(-1, points.shape[0], -1)], dim=-1)
        raw = self.output(self.generator(inputs))[..., 0]
        return (self.value_bound * torch.sigmoid(raw)).reshape(b, *shape)
