"""Self-calibration of the detector geometry: per-view shift, tilt and magnification fitted
jointly with the field (``xray4d reconstruct --calibrate``, config section ``calibration``).

:class:`DetectorCalibration` holds a correction of each view's detector geometry (the same
for every frame) on top of the recording's (``Geometry.detector``, ideal when absent). The
data term (:class:`~.losses.ProjectionDataTerm`) projects the field onto the virtual
detector and resamples it onto each real detector with the corrected parameters
(:func:`~xray4d.alignment.to_detectors`), so the gradient of the data term reaches the
parameters, each kind with its own learning rate. The gauge is fixed: view 0 is the
reference (no correction), and view 1's column shift is held too, since with the object's
translation along view 0's beam it is the same change of the data.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..alignment import to_detectors
from ..config_calibration import CalibrationConfig
from ..geometry import DetectorGeometry, Geometry

__all__ = ["DetectorCalibration", "free_parameters"]


def free_parameters(views: int, config: CalibrationConfig) -> tuple[np.ndarray, np.ndarray,
                                                                     np.ndarray]:
    """Which corrections are fitted: masks of the shift (V, 2) (columns, rows), the tilt (V,)
    and the magnification (V,). View 0 and view 1's column shift are held (the gauge)."""
    shift = np.ones((views, 2))
    shift[0] = 0.0
    if views > 1:
        shift[1, 0] = 0.0
    others = np.ones(views)
    others[0] = 0.0
    return shift, others * config.tilt, others * config.magnification


class DetectorCalibration(torch.nn.Module):
    """Per-view corrections of the detector geometry, fitted with the field.

    Args:
        geometry: the recording's geometry (its detector geometry is the starting point).
        config: the ``calibration`` section (learning rates, warm-up, what is fitted).
        device: where the parameters live.
        pixel_scale: fine pixels per detector pixel of ``geometry`` (the found shifts are
            reported in detector pixels).
    """

    def __init__(self, geometry: Geometry, config: CalibrationConfig, device=None,
                 pixel_scale: int = 1) -> None:
        super().__init__()
        t, v = geometry.frames, geometry.views
        self.config, self.pixel_scale = config, pixel_scale
        base = geometry.detector or DetectorGeometry.build(t, v)
        for name, arr in (("base_shift", base.shift_px), ("base_tilt", base.tilt_deg),
                          ("base_log_mag", np.log(base.magnification))):
            self.register_buffer(name, torch.as_tensor(arr, dtype=torch.float32, device=device))
        for name, arr in zip(("mask_shift", "mask_tilt", "mask_mag"), free_parameters(v, config)):
            self.register_buffer(name, torch.as_tensor(arr, dtype=torch.float32, device=device))
        self.shift = torch.nn.Parameter(torch.zeros(v, 2, device=device))
        self.tilt = torch.nn.Parameter(torch.zeros(v, device=device))
        self.log_mag = torch.nn.Parameter(torch.zeros(v, device=device))

    def parameters_at(self, frames, hold: bool = False
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Shift (B, V, 2), tilt (B, V), magnification (B, V) of the frames (indices (B,));
        ``hold``: the corrections enter without gradient (the warm-up)."""
        fr = torch.as_tensor(np.asarray(frames, dtype=np.int64).reshape(-1),
                             device=self.base_tilt.device)
        ds, dt, dm = (self.shift * self.mask_shift, self.tilt * self.mask_tilt,
                      self.log_mag * self.mask_mag)
        if hold:
            ds, dt, dm = ds.detach(), dt.detach(), dm.detach()
        return (self.base_shift[fr] + ds, self.base_tilt[fr] + dt,
                torch.exp(self.base_log_mag[fr] + dm))

    def forward(self, virtual: torch.Tensor, frames, hold: bool = False) -> torch.Tensor:
        """Virtual-detector projections (B, V, H, W) of the frames -> the real detectors."""
        return to_detectors(virtual, *self.parameters_at(frames, hold))

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Optimiser groups, one per kind of parameter, each with its learning rate."""
        c, s = self.config, self.pixel_scale
        return [{"params": [self.shift], "lr": c.lr_shift_px * s},
                {"params": [self.tilt], "lr": c.lr_tilt_deg},
                {"params": [self.log_mag], "lr": c.lr_log_magnification}]

    @torch.no_grad()
    def found(self) -> DetectorGeometry:
        """The corrected detector geometry of every frame, in detector pixels."""
        t = self.base_tilt.shape[0]
        shift, tilt, mag = (a.double().cpu().numpy()
                            for a in self.parameters_at(np.arange(t), hold=True))
        return DetectorGeometry.build(t, shift.shape[1], shift / self.pixel_scale, tilt, mag)

    def summary(self) -> dict[str, Any]:
        """The values found (frame 0; the corrections are the same for every frame), for the
        output's config and the report."""
        d = self.found()
        return {"detector_shift_px": np.round(d.shift_px[0], 4).tolist(),
                "detector_tilt_deg": np.round(d.tilt_deg[0], 5).tolist(),
                "magnification": np.round(d.magnification[0], 6).tolist(),
                "reference": "view 0 held; view 1's column shift held (gauge)"}
