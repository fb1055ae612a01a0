"""From the virtual detector to each real detector: the per-view detector mapping.

The projector computes line integrals on the ideal (virtual) detector of ``geometry.py``;
each real detector sees that image shifted, tilted and magnified
(:class:`~xray4d.geometry.DetectorGeometry`, mapping
:func:`~xray4d.geometry.detector_to_virtual`). :func:`to_detectors` resamples the virtual
images at the points the real pixels see (bicubic, zero outside the virtual detector:
on simulated misaligned recordings it has about half the model error of bilinear
interpolation, whose half-pixel shifts blur like a two-pixel box), differentiably in the images and in the parameters (the self-calibration's gradients);
:func:`to_detectors_adjoint` is its exact transpose in the images (for the adjoint of the
projector: back-projection, SIRT, CGLS, FBP). :func:`from_detectors` is the approximate
inverse, measured images brought onto the virtual detector (for estimates that read
projections as if aligned, e.g. the value bound).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .geometry import detector_to_virtual, virtual_to_detector

__all__ = ["detector_grid", "to_detectors", "to_detectors_adjoint", "from_detectors"]


def detector_grid(shift: torch.Tensor, tilt_deg: torch.Tensor, magnification: torch.Tensor,
                  height: int, width: int) -> torch.Tensor:
    """``grid_sample`` grid (N, H, W, 2) of the virtual points the real pixels see.

    Args:
        shift: (N, 2) shift (columns, rows) in pixels; tilt_deg, magnification: (N,).
        height, width: the detector H and W.
    """
    dev, dt = shift.device, shift.dtype
    rows = torch.arange(height, device=dev, dtype=dt)[None, :, None]
    cols = torch.arange(width, device=dev, dtype=dt)[None, None, :]
    u, z = detector_to_virtual(rows, cols, shift[:, None, None, :], tilt_deg[:, None, None],
                               magnification[:, None, None], height, width)
    sx = (width - 1) / 2.0 if width > 1 else 1.0
    sz = (height - 1) / 2.0 if height > 1 else 1.0
    return torch.stack([u / sx, z / sz], dim=-1)


def to_detectors(virtual: torch.Tensor, shift: torch.Tensor, tilt_deg: torch.Tensor,
                 magnification: torch.Tensor) -> torch.Tensor:
    """Images on the real detectors from images on the virtual one.

    Args:
        virtual: (B, V, H, W) projections on the virtual detector.
        shift: (B, V, 2); tilt_deg, magnification: (B, V): each frame's and view's detector.

    Returns:
        (B, V, H, W): pixel (k, j) of view v holds the bicubic interpolation of the virtual
        image at :func:`~xray4d.geometry.detector_to_virtual` of (k, j), zero outside.
    """
    b, v, h, w = virtual.shape
    grid = detector_grid(shift.reshape(b * v, 2).to(virtual.dtype),
                         tilt_deg.reshape(b * v).to(virtual.dtype),
                         magnification.reshape(b * v).to(virtual.dtype), h, w)
    out = F.grid_sample(virtual.reshape(b * v, 1, h, w), grid, mode="bicubic",
                        padding_mode="zeros", align_corners=True)
    return out.reshape(b, v, h, w)


def to_detectors_adjoint(detector: torch.Tensor, shift: torch.Tensor, tilt_deg: torch.Tensor,
                         magnification: torch.Tensor) -> torch.Tensor:
    """The transpose of :func:`to_detectors` in the images: real detectors -> virtual one.

    Exact (the vector-Jacobian product of the linear resampling); the geometry is held fixed.
    """
    with torch.enable_grad():
        x = torch.zeros(detector.shape, dtype=detector.dtype, device=detector.device,
                        requires_grad=True)
        y = to_detectors(x, shift.detach(), tilt_deg.detach(), magnification.detach())
        (grad,) = torch.autograd.grad(y, x, grad_outputs=detector.detach())
    return grad


def from_detectors(detector: torch.Tensor, shift: torch.Tensor, tilt_deg: torch.Tensor,
                   magnification: torch.Tensor) -> torch.Tensor:
    """Images on the real detectors (B, V, H, W) brought onto the virtual one: the inverse
    mapping, bicubic, zero where a virtual pixel falls outside the real detector."""
    b, v, h, w = detector.shape
    dt, dev = detector.dtype, detector.device
    z = torch.arange(h, device=dev, dtype=dt)[None, :, None] - (h - 1) / 2.0
    u = torch.arange(w, device=dev, dtype=dt)[None, None, :] - (w - 1) / 2.0
    rows, cols = virtual_to_detector(u, z, shift.reshape(b * v, 1, 1, 2).to(dt),
                                     tilt_deg.reshape(b * v, 1, 1).to(dt),
                                     magnification.reshape(b * v, 1, 1).to(dt), h, w)
    # grid_sample's normalised coordinates of the real detector's centred pixel positions
    sx = (w - 1) / 2.0 if w > 1 else 1.0
    sz = (h - 1) / 2.0 if h > 1 else 1.0
    grid = torch.stack([(cols - (w - 1) / 2.0) / sx, (rows - (h - 1) / 2.0) / sz], dim=-1)
    out = F.grid_sample(detector.reshape(b * v, 1, h, w), grid, mode="bicubic",
                        padding_mode="zeros", align_corners=True)
    return out.reshape(b, v, h, w)
