"""A method added in one file: a toy voxel method registered here and run through
``xray4d reconstruct`` on line-integral and intensity recordings, nothing outside this file
changed. It fits one voxel volume per frame (a bounded sigmoid of free parameters) with the
project's trainer, so intensity data reach it through the propagation model like X-Hexplane.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from xray4d.cli import main
from xray4d.config import ReconstructionConfig
from xray4d.data import FitResult
from xray4d.fields.base import Field
from xray4d.io import load_reconstruction, save_recording
from xray4d.reconstruct import available_methods
from xray4d.reconstruct.measurement import MeasuredData
from xray4d.reconstruct.registry import Method, register_method
from xray4d.reconstruct.schedule import normalised_times
from xray4d.reconstruct.fit import fit_field
from xray4d.reconstruct.trainer import FieldModel
from xray4d.simulate import simulate_droplets, simulate_droplets_intensity


class VoxelMovie(Field):
    """One voxel volume per frame, each value ``bound * sigmoid(raw)``; a query time uses
    the nearest frame."""

    def __init__(self, frame_times: torch.Tensor, shape: tuple[int, int, int],
                 bound: float) -> None:
        super().__init__()
        self.register_buffer("frame_times", frame_times)
        self.raw = nn.Parameter(torch.full((frame_times.numel(), *shape), -4.0))
        self.bound = bound

    def render_frames(self, times: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
        idx = (times[:, None] - self.frame_times[None]).abs().argmin(dim=1)
        return self.bound * torch.sigmoid(self.raw[idx])


class VoxelModel(FieldModel):
    """The trainer's view of :class:`VoxelMovie`: one stage, one learning rate."""

    def __init__(self, data: MeasuredData, config: ReconstructionConfig) -> None:
        rec = data.recording
        self.shape = rec.geometry.volume_shape
        self.times = torch.as_tensor(normalised_times(rec.time), dtype=torch.float32)
        # the physics' bound for a known material, else twice the largest line integral's
        # value per voxel along the shortest chord that could carry it
        self.value_max = data.value_max or 2 * float(rec.projections.max()) / rec.geometry.width

    def make_field(self) -> Field:
        return VoxelMovie(self.times, self.shape, self.value_max)

    def parameter_groups(self, field: Field) -> list[dict]:
        return [{"params": list(field.parameters()), "lr": 0.1}]


@register_method
class ToyVoxels(Method):
    """A toy: free voxels per frame, fitted by the project's trainer."""

    name = "toy-voxels"
    description = "test: free voxel volumes per frame, fitted by the trainer"
    fits_measurement_model = True
    fits_field = True

    def fit(self, data, config, *, checkpoint_path=None, progress=True,
            resume=False) -> FitResult:
        return fit_field(VoxelModel(data, config), data, config, method=self.name,
                         checkpoint_path=checkpoint_path, progress=progress, resume=resume)


def test_the_toy_method_is_listed() -> None:
    assert "toy-voxels" in available_methods()


def test_toy_method_through_the_cli_on_line_integrals(tmp_path: Path) -> None:
    rec = simulate_droplets(size=16, frames=3, noise=0.0, seed=0)
    src, out = tmp_path / "rec.h5", tmp_path / "out.h5"
    save_recording(rec, src)
    assert main(["reconstruct", str(src), "--out", str(out), "--method", "toy-voxels",
                 "--iterations", "60", "--quiet"]) == 0
    r = load_reconstruction(out)
    assert r.method == "toy-voxels" and r.volume.shape == (3, 16, 16, 16)
    terms = r.config["resolved"]["loss_terms"]
    assert set(terms) == {"data", "plane_tv", "temporal_smoothness"}
    assert terms["data"]["weight"] == 1.0
    # the trainer fits the free voxels: the data term falls (measured: 4x in 60 steps)
    assert terms["data"]["final"] < 0.4 * terms["data"]["first"]
    assert (out.parent / "out_preview" / "loss.png").stat().st_size > 0


def test_toy_method_through_the_cli_on_intensities(tmp_path: Path) -> None:
    rec = simulate_droplets_intensity(size=12, frames=2, fluence=None, seed=0)
    src, out = tmp_path / "int.h5", tmp_path / "out.h5"
    save_recording(rec, src)
    assert main(["reconstruct", str(src), "--out", str(out), "--method", "toy-voxels",
                 "--iterations", "20", "--quiet", "--no-preview"]) == 0
    r = load_reconstruction(out)
    # fitted on the twice finer grid through the propagation model, averaged back to voxels
    assert r.volume.shape == r.volume_beta.shape == (2, 12, 12, 12)
    assert r.attrs["quantity"] == "delta" and r.config["measurement"] == "intensity-model"
    assert r.config["resolved"]["fine_render"]["oversample"] == 2
    assert set(r.config["resolved"]["loss_terms"]) >= {"data", "material_prior",
                                                     "volume_conservation"}
    assert np.all(r.volume >= 0) and np.all(r.volume <= 1.02 * rec.truth.max() + 1e-12)


@pytest.mark.parametrize("quantity", ["line_integral", "intensity"])
def test_toy_method_through_the_api(quantity: str) -> None:
    from xray4d.api import reconstruct, resolve_config

    rec = (simulate_droplets(size=12, frames=2, noise=0.0, seed=1) if quantity == "line_integral"
           else simulate_droplets_intensity(size=12, frames=2, fluence=None, seed=1))
    cfg = resolve_config("fast", {"train": {"iterations": 10, "time_budget_s": None}},
                         method="toy-voxels", quantity=quantity)
    result = reconstruct(rec, cfg, progress=False)
    assert result.iterations == 10 and len(result.losses) == 10
    assert set(result.loss_terms) >= {"data"}
    assert all(len(v) == 10 for v in result.loss_terms.values())
    assert result.losses == result.loss_terms["data"]
