"""X-Hexplane field: the dense whole-frame path equals the point path, and
its interpolation follows grid_sample's convention."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xray4d.fields import HexPlaneField
from xray4d.fields.hexplane import interpolation_matrix


def _random_field(decoder: str, value_max: float = 1.0) -> HexPlaneField:
    torch.manual_seed(1)
    f = HexPlaneField(channels=4, space_resolution=(5, 6, 7), time_resolution=3, decoder=decoder,
                      init_scale=0.5, value_max=value_max).double()
    with torch.no_grad():
        for p in f.planes.values():
            p.add_(0.3 * torch.randn_like(p))
        if decoder == "linear":
            f.weight.normal_()
    return f


def _voxel_points(z: int, y: int, x: int) -> torch.Tensor:
    gz, gy, gx = torch.meshgrid(torch.linspace(-1, 1, z, dtype=torch.float64),
                                torch.linspace(-1, 1, y, dtype=torch.float64),
                                torch.linspace(-1, 1, x, dtype=torch.float64), indexing="ij")
    return torch.stack([gx, gy, gz], -1).reshape(-1, 3)


@pytest.mark.parametrize("decoder", ["linear", "mlp"])
def test_dense_rendering_equals_point_evaluation(decoder: str) -> None:
    f = _random_field(decoder)
    times = torch.tensor([-1.0, -0.2, 0.7], dtype=torch.float64)
    shape = (4, 9, 8)
    dense = f.render_frames(times, shape)
    pts = _voxel_points(*shape)
    points = torch.stack([f(pts, t.expand(pts.shape[0])).reshape(shape) for t in times])
    assert dense.shape == (3, *shape)
    torch.testing.assert_close(dense, points, rtol=1e-10, atol=1e-12)
    # and the base class's generic renderer (point path) gives the same
    generic = super(HexPlaneField, f).render_frames(times, shape)
    torch.testing.assert_close(dense, generic, rtol=1e-10, atol=1e-12)


def test_interpolation_matrix_matches_grid_sample() -> None:
    torch.manual_seed(0)
    signal = torch.randn(1, 1, 1, 11, dtype=torch.float64)
    coords = torch.rand(17, dtype=torch.float64) * 2 - 1
    m = interpolation_matrix(coords, 11)
    grid = torch.stack([coords, torch.zeros_like(coords)], -1).reshape(1, 1, -1, 2)
    ref = F.grid_sample(signal, grid, mode="bilinear", align_corners=True).reshape(-1)
    torch.testing.assert_close(m @ signal.reshape(-1), ref)
    np.testing.assert_allclose(m.sum(1).numpy(), 1.0)


def test_output_is_non_negative_and_bounded() -> None:
    f = _random_field("linear", value_max=2.5)
    assert f.value_max == 2.5
    with torch.no_grad():
        f.bias.fill_(30.0)
    v = f.render_frames(torch.tensor([0.0], dtype=torch.float64), (4, 5, 6))
    v = v.detach()
    assert float(v.min()) >= 0 and float(v.max()) <= 2.5 + 1e-12
    assert float(v.max()) > 1.0          # the bound given, not the default 1


def test_upsampling_keeps_the_field_where_it_is_linear() -> None:
    """Planes that are linear ramps are reproduced exactly after upsampling."""
    f = HexPlaneField(channels=2, space_resolution=(3, 3, 3), time_resolution=3).double()
    with torch.no_grad():
        for name, p in f.planes.items():
            ramp = torch.linspace(0.5, 1.5, p.shape[2], dtype=torch.float64)
            p.copy_(ramp.expand_as(p))
        f.weight.fill_(0.3)
    times = torch.tensor([-0.5, 0.5], dtype=torch.float64)
    before = f.render_frames(times, (6, 6, 6))
    f.upsample((7, 9, 11), 5)
    assert f.space_resolution == (7, 9, 11) and f.time_resolution == 5
    torch.testing.assert_close(f.render_frames(times, (6, 6, 6)), before)


def test_gradients_reach_every_plane() -> None:
    f = _random_field("linear")
    v = f.render_frames(torch.tensor([0.1], dtype=torch.float64), (4, 5, 6))
    (v ** 2).sum().backward()
    for name, p in f.planes.items():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name


def test_volume_tv_of_a_ball_is_its_surface_area() -> None:
    """Summed isotropic TV of a voxel-averaged ball vs the analytic area 4 pi R^2 (measured
    ratio 1.11 at R = 6 and 10: forward differences over-count oblique edges); it is the
    surface-area prior of a homogeneous liquid, scaled by the value bound."""
    from xray4d.reconstruct.regularizers import VolumeTV, build_regularizers
    n = 32
    c = (np.arange(4 * n) + 0.5) / 4 - 0.5 - (n - 1) / 2
    z, y, x = np.meshgrid(c, c, c, indexing="ij")
    for radius in (6.0, 10.0):
        ball = (x ** 2 + y ** 2 + z ** 2 < radius ** 2).reshape(n, 4, n, 4, n, 4).mean((1, 3, 5))
        vol = torch.as_tensor(ball, dtype=torch.float32)[None]
        area = float(VolumeTV(1.0).penalty(None, vol)) * (n - 1) ** 3
        assert area == pytest.approx(4 * np.pi * radius ** 2, rel=0.15)
        # a value bound of 2 on a ball of value 2 gives the same penalty; the weight multiplies
        reg = build_regularizers({"volume_tv": 0.5}, value_scale=2.0)[0]
        assert float(reg(None, 2 * vol)) == pytest.approx(0.5 * area / (n - 1) ** 3, rel=1e-5)


@pytest.mark.parametrize("decoder", ["linear", "mlp"])
@pytest.mark.parametrize("relative", [False, True])
def test_two_output_field_dense_equals_points_and_respects_bounds(decoder: str,
                                                                  relative: bool) -> None:
    """Two output channels (delta, beta) share the planes: the dense path equals the point
    path channel by channel; each channel stays within its bound; with ``relative`` the
    second is the first times a ratio bounded by its value_max."""
    torch.manual_seed(2)
    bounds = (2.0, 0.25)
    f = HexPlaneField(channels=4, space_resolution=(5, 6, 7), time_resolution=3, decoder=decoder,
                      init_scale=0.5, value_max=bounds, init_value=(0.3, 0.6), outputs=2,
                      relative=relative).double()
    with torch.no_grad():
        for p in f.planes.values():
            p.add_(0.3 * torch.randn_like(p))
    times = torch.tensor([-1.0, 0.4], dtype=torch.float64)
    shape = (4, 9, 8)
    dense = f.render_frames(times, shape)
    assert dense.shape == (2, 2, *shape)
    pts = _voxel_points(*shape)
    points = torch.stack([f(pts, t.expand(pts.shape[0])).T.reshape(2, *shape) for t in times])
    torch.testing.assert_close(dense, points, rtol=1e-10, atol=1e-12)
    generic = super(HexPlaneField, f).render_frames(times, shape)   # the base class's renderer
    torch.testing.assert_close(dense, generic, rtol=1e-10, atol=1e-12)
    first, second = dense.detach().unbind(1)
    assert 0 <= float(first.min()) and float(first.max()) <= bounds[0]
    if relative:
        ratio = second / first
        assert 0 <= float(ratio.min()) and float(ratio.max()) <= bounds[1]
        assert float(second.max()) <= bounds[0] * bounds[1]
    else:
        assert 0 <= float(second.min()) and float(second.max()) <= bounds[1]
    # at initialisation (planes ~1, decoder weights ~0) each channel starts at its fraction
    g = HexPlaneField(channels=4, space_resolution=(3, 3, 3), time_resolution=2, init_scale=0.0,
                      value_max=bounds, init_value=(0.3, 0.6), outputs=2, relative=relative,
                      decoder="linear").double()
    with torch.no_grad():
        g.weight.zero_()
    v = g.render_frames(torch.tensor([0.0], dtype=torch.float64), (2, 2, 2)).detach()
    expect_second = 0.3 * 2.0 * 0.6 * 0.25 if relative else 0.6 * 0.25
    torch.testing.assert_close(v[:, 0], torch.full((1, 2, 2, 2), 0.6, dtype=torch.float64))
    torch.testing.assert_close(v[:, 1], torch.full((1, 2, 2, 2), expect_second,
                                                   dtype=torch.float64))


def test_two_output_field_refuses_mismatched_bounds() -> None:
    with pytest.raises(ValueError, match="one value_max and init_value per output"):
        HexPlaneField(outputs=2, value_max=(1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="relative needs two outputs"):
        HexPlaneField(outputs=1, relative=True)


def test_material_prior_is_a_double_well_at_zero_and_the_material_value() -> None:
    """mean(f^2 (1 - f)^2) with f = value / (bound / 1.02): zero on vacuum and on the
    material, 1/16 half-way, and its gradient pulls a value towards the nearer well."""
    from xray4d.reconstruct.regularizers import MaterialPrior, build_regularizers
    bound = 1.02 * 3e-6
    reg = build_regularizers({"material_prior": 2.0}, value_scale=bound)[0]
    assert isinstance(reg, MaterialPrior)
    values = torch.tensor([0.0, 3e-6, 1.5e-6, 0.75e-6, 2.25e-6], dtype=torch.float64,
                          requires_grad=True)
    per_voxel = [float(reg(None, values[i:i + 1]).detach()) for i in range(5)]
    f = np.array([0.0, 1.0, 0.5, 0.25, 0.75])
    assert per_voxel == pytest.approx(list(2.0 * f ** 2 * (1 - f) ** 2), abs=1e-12)
    assert per_voxel[2] == pytest.approx(2.0 / 16)
    reg(None, values).backward()
    grad = values.grad.numpy()
    assert grad[0] == 0
    assert abs(grad[1]) < 1e-6 * abs(grad[3]) and abs(grad[2]) < 1e-6 * abs(grad[3])
    assert grad[3] > 0 > grad[4]        # a descent step lowers 0.25 and raises 0.75


def test_volume_conservation_is_the_relative_variance_of_the_frames_totals() -> None:
    """var_t(S_t) / mean_t(S_t)^2 over the batch, S_t the sum of frame t: frames holding 1,
    2 and 3 units give (2/3) / 4 = 1/6; frames of equal totals give zero however the
    material is arranged; the gradient lowers the frame above the mean and raises the one
    below, and none scales all frames together; a single frame or a two-channel field's second channel change nothing."""
    from xray4d.reconstruct.regularizers import VolumeConservation, build_regularizers
    reg = build_regularizers({"volume_conservation": 3.0})[0]
    assert isinstance(reg, VolumeConservation)
    frames = torch.zeros(3, 4, 4, 4, dtype=torch.float64)
    frames[0, 0, 0, 0] = 1.0
    frames[1, 1, 2, 3] = 2.0
    frames[2, 3, 3, :3] = 1.0
    assert float(reg(None, frames)) == pytest.approx(3.0 / 6, rel=1e-12)
    moved = torch.zeros(2, 4, 4, 4, dtype=torch.float64)
    moved[0, :2, :2, :2] = 0.5                      # a cube of 8 voxels at half the value
    moved[1, 3, 0, :] = 1.0                         # a rod of 4 voxels at the full value
    assert float(reg(None, moved)) == pytest.approx(0.0, abs=1e-15)
    assert float(reg(None, 1e-6 * frames)) == pytest.approx(3.0 / 6, rel=1e-9)
    leaf = frames.clone().requires_grad_(True)
    reg(None, leaf).backward()
    per_frame = leaf.grad.flatten(1).sum(1)          # d penalty / d (mean of frame t)
    assert per_frame[2] > 0 > per_frame[0]
    # scale-free (homogeneous of degree 0): no pull on the common scale of the frames
    means = frames.flatten(1).mean(1)
    assert float((means * per_frame).sum()) == pytest.approx(0.0, abs=1e-12)
    assert float(reg(None, frames[:1])) == 0.0
    two_channels = torch.stack([frames, torch.rand_like(frames)], dim=1)
    assert float(reg(None, two_channels)) == pytest.approx(3.0 / 6, rel=1e-12)
