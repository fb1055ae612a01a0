"""Intensity recordings: preprocessing into line integrals, and the measurement model
that lets a line-integral reconstructor fit raw intensities.

* :func:`transmission`: flat/dark-corrected intensity ``(I - dark) / (white - dark)``.
* :func:`to_line_integrals`: an ``intensity`` recording turned into a
  ``line_integral`` recording the reconstructors accept, by ``-log``
  (attenuation contrast: the field is beta) or Paganin phase retrieval (single
  material: the field is delta).
* :class:`IntensityModel`: predicted line integrals of delta (pixel units) ->
  exit wave -> Fresnel propagation -> PSF -> transmission; differentiable, for
  fitting the corrected intensities directly (``reconstruct_intensity``).
* :func:`reconstruct_intensity_recording`: what ``xray4d.api.reconstruct`` runs on
  intensity data, as ``config.physics.intensity`` says (``model``, ``paganin``
  or ``log``); the output ``volume`` is delta and ``volume_beta`` beta.

Physical parameters come from the recording's root attributes ``energy_keV``,
``pixel_size_m`` and ``propagation_distance_m`` (data-format.md); the material
(formula, density) is an argument, since the file format does not carry it.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch

from . import physics
from .io import Recording
from .regularizers import VALUE_MARGIN

__all__ = ["OpticsSetup", "optics_of", "transmission", "to_line_integrals", "IntensityModel",
           "reconstruct_intensity", "reconstruct_intensity_recording", "intensity_line_integrals",
           "check_intensity_setup", "beta_over_delta_range", "LINE_INTEGRAL_METHODS",
           "DELTA_ATTRS"]

LINE_INTEGRAL_METHODS = ("paganin", "attenuation")


@dataclass(frozen=True)
class OpticsSetup:
    """Energy (keV), pixel size (m), propagation distance (m) of a recording."""

    energy_kev: float
    pixel_size_m: float
    distance_m: float

    @property
    def fresnel_number(self) -> float:
        return physics.fresnel_number(self.pixel_size_m, self.distance_m, self.energy_kev)


def optics_of(rec: Recording) -> OpticsSetup:
    """The optics of a recording from its root attributes; ValueError naming the missing one."""
    missing = [k for k in ("energy_keV", "pixel_size_m", "propagation_distance_m")
               if k not in rec.attrs]
    if missing:
        raise ValueError(f"{rec.path or 'recording'}: / attribute {missing[0]}: missing, needed "
                         "to model intensity data")
    return OpticsSetup(float(rec.attrs["energy_keV"]), float(rec.attrs["pixel_size_m"]),
                       float(rec.attrs["propagation_distance_m"]))


def transmission(rec: Recording) -> np.ndarray:
    """Flat/dark-corrected transmission (T, V, H, W) float32 of an ``intensity`` recording."""
    if rec.quantity != "intensity":
        raise ValueError(f"quantity {rec.quantity!r}: flat/dark correction needs intensity data")
    if rec.white is None:
        raise ValueError(f"{rec.path or 'recording'}: /exchange/data_white: missing, needed for "
                         "quantity=intensity")
    data = torch.as_tensor(rec.projections, dtype=torch.float64)
    white = torch.as_tensor(rec.white, dtype=torch.float64)
    dark = None if rec.dark is None else torch.as_tensor(rec.dark, dtype=torch.float64)
    if white.dim() == 3:
        white = white[None]
    if dark is not None and dark.dim() == 3:
        dark = dark[None]
    return physics.flat_dark_correct(data, white, dark).float().numpy()


def _line_integral_recording(rec: Recording, values: np.ndarray, how: str) -> Recording:
    out = copy.copy(rec)
    out.projections = np.ascontiguousarray(values, dtype=np.float32)
    out.quantity = "line_integral"
    out.white = out.dark = None
    out.attrs = dict(rec.attrs)
    out.attrs["preprocessing"] = how
    return out


def to_line_integrals(rec: Recording, method: str = "paganin", *, material: str = "H2O",
                      density_g_cm3: float = 1.0) -> Recording:
    """Turn an ``intensity`` recording into a ``line_integral`` one.

    Args:
        rec: intensity recording with flat (and optionally dark) fields and optics attributes.
        method: ``paganin``: single-material phase retrieval; line integrals of
            delta in pixel units (``delta * thickness / pixel``), so the field
            reconstructed is delta; truth stays delta. ``attenuation``: ``-log`` of
            the transmission as Beer-Lambert attenuation, divided by ``2 k p``:
            line integrals of beta, the field is beta (``truth`` becomes beta if known).
            Ignores propagation: edge fringes become artefacts.
        material, density_g_cm3: the single material (Paganin's delta/beta).
    """
    if method not in LINE_INTEGRAL_METHODS:
        raise ValueError(f"method must be one of {', '.join(LINE_INTEGRAL_METHODS)}, got {method!r}")
    opt = optics_of(rec)
    trans = torch.as_tensor(transmission(rec), dtype=torch.float64)
    if method == "attenuation":
        mu_int = physics.minus_log(trans)
        beta_px = mu_int / (2 * physics.wavenumber_per_m(opt.energy_kev) * opt.pixel_size_m)
        out = _line_integral_recording(rec, beta_px.numpy(), "-log(flat/dark corrected), beta")
        if rec.truth_beta is not None:
            out.truth = rec.truth_beta
        return out
    index = physics.refractive_index(material, density_g_cm3, opt.energy_kev)
    thick = physics.paganin_thickness(trans, delta=index.delta, beta=index.beta,
                                      energy_kev=opt.energy_kev, distance_m=opt.distance_m,
                                      pixel_size_m=opt.pixel_size_m)
    return _line_integral_recording(rec, (index.delta * thick / opt.pixel_size_m).numpy(),
                                    f"paganin ({material}, {density_g_cm3} g/cm3), delta")


class IntensityModel:
    """Predicted line integrals of delta (pixel units) -> detector transmission.

    Single material: the line integral of beta is that of delta divided by
    ``delta_over_beta`` (pass None for a pure phase object); with ``two_channel``
    the line integrals of beta are an input of their own. The chain, on a
    grid ``oversample`` times finer than the detector: bicubic upsampling of the
    line integrals, edge padding by ``pad`` fine pixels, exit wave, Fresnel
    propagation over the distance (FFT transfer function), intensity, crop,
    Gaussian PSF of ``psf_sigma_px`` detector pixels (replicated borders), and
    the mean over each detector pixel. Differentiable; the input is (..., H, W)
    (e.g. (B, V, H, W) from the projector).

    The linear steps are applied as small matrices along each axis (upsampling
    with padding before the exit wave; crop, PSF and binning after the
    intensity), built once per detector size, and the transfer function is
    cached: the result equals composing :func:`torch.nn.functional.interpolate`
    (bicubic), :func:`xray4d.physics.propagated_intensity`,
    :func:`xray4d.physics.gaussian_psf` and a block mean.

    Args:
        optics: energy, pixel size and propagation distance.
        delta_over_beta: the material's delta / beta, or None (pure phase object).
        psf_sigma_px: Gaussian PSF standard deviation in detector pixels (0: none).
        pad: fine pixels of edge padding on each side against the FFT's
            wrap-around; None: twice the reach of the band-limited Fresnel kernel
            (``lambda z / (2 p_fine^2)`` fine pixels) plus 4, e.g. 8 at Fresnel number 1
            with ``oversample=2``.
        oversample: propagate on a grid this many times finer (fringes about a
            pixel wide at Fresnel number ~1 are then sampled without aliasing).
        fine_input: the input is already on the fine grid ((..., H m, W m), line
            integrals in fine pixels, e.g. projections of a field rendered ``oversample``
            times finer): no upsampling; the output is still on the detector grid.
        two_channel: the input holds line integrals of delta and of beta,
            (..., 2, V, H, W) (e.g. (B, 2, V, H, W) from a two-channel field);
            ``delta_over_beta`` is then ignored.
    """

    def __init__(self, optics: OpticsSetup, delta_over_beta: float | None,
                 psf_sigma_px: float = 0.0, pad: int | None = None, oversample: int = 1,
                 fine_input: bool = False, two_channel: bool = False) -> None:
        self.fine_input = bool(fine_input)
        self.two_channel = bool(two_channel)
        self.optics = optics
        self.delta_over_beta = delta_over_beta
        self.psf_sigma_px = float(psf_sigma_px)
        self.oversample = int(oversample)
        if self.oversample < 1:
            raise ValueError(f"oversample must be >= 1, got {oversample}")
        fine = optics.pixel_size_m / self.oversample
        reach = physics.wavelength_m(optics.energy_kev) * abs(optics.distance_m) / (2 * fine ** 2)
        self.pad = int(pad) if pad is not None else 2 * math.ceil(reach - 1e-6) + 4
        self._cache: dict = {}

    def _operators(self, h: int, w: int, dtype: torch.dtype, device: torch.device):
        """Upsampling (with padding) and PSF-binning matrices per axis, and the transfer
        function, for a detector of h x w pixels."""
        key = (h, w, dtype, device)
        if key not in self._cache:
            m, p = self.oversample, self.pad
            up = [_padded_upsampling(n * m if self.fine_input else n, 1 if self.fine_input
                                     else m, p).to(device=device, dtype=dtype) for n in (h, w)]
            down = [_psf_binning(n, m, p, self.psf_sigma_px).to(device=device, dtype=dtype)
                    for n in (h, w)]
            hk = None
            if self.optics.distance_m != 0:
                hk = physics.fresnel_transfer_function(
                    (h * m + 2 * p, w * m + 2 * p), self.optics.pixel_size_m / m,
                    self.optics.distance_m, self.optics.energy_kev, device=device, dtype=dtype)
            self._cache[key] = (up, down, hk)
        return self._cache[key]

    def __call__(self, line_integrals_px: torch.Tensor) -> torch.Tensor:
        o, m = self.optics, self.oversample
        beta_px = None
        if self.two_channel:
            if line_integrals_px.dim() < 4 or line_integrals_px.shape[-4] != 2:
                raise ValueError(f"two-channel input must be (..., 2, V, H, W), got "
                                 f"{tuple(line_integrals_px.shape)}")
            delta_px, beta_px = line_integrals_px.unbind(-4)
        else:
            delta_px = line_integrals_px
        h, w = delta_px.shape[-2:]
        if self.fine_input:
            if h % m or w % m:
                raise ValueError(f"fine input of {h} x {w} pixels is not {m} times a detector")
            h, w = h // m, w // m
        (uh, uw), (bh, bw), hk = self._operators(h, w, delta_px.dtype, delta_px.device)
        # padded (and upsampled): line integrals in fine pixels
        gain = 1 if self.fine_input else m
        fine_px = uh @ delta_px @ uw.T * gain
        if beta_px is not None:
            beta_m = uh @ beta_px @ uw.T * (gain * o.pixel_size_m / m)
        elif self.delta_over_beta is None:
            beta_m = None
        else:
            beta_m = fine_px * (o.pixel_size_m / m / self.delta_over_beta)
        wave = physics.exit_wave(fine_px * (o.pixel_size_m / m), beta_m, o.energy_kev)
        if hk is not None:
            wave = torch.fft.ifft2(torch.fft.fft2(wave) * hk)
        return bh @ physics.intensity(wave) @ bw.T


def _padded_upsampling(n: int, m: int, pad: int) -> torch.Tensor:
    """(n m + 2 pad, n) matrix: bicubic upsampling by m (as ``F.interpolate``, align_corners
    False), then edge padding by ``pad`` fine pixels."""
    eye = torch.eye(n, dtype=torch.float64)
    if m > 1:
        # bicubic interpolation in torch is separable: one axis of an identity image
        up = torch.nn.functional.interpolate(eye.reshape(n, 1, n, 1), size=(n * m, 1),
                                             mode="bicubic", align_corners=False)
        eye = up.reshape(n, n * m).T
    idx = torch.arange(-pad, n * m + pad).clamp(0, n * m - 1)
    return eye[idx].contiguous()


def _psf_binning(n: int, m: int, pad: int, sigma_px: float) -> torch.Tensor:
    """(n, n m + 2 pad) matrix: crop the padding, Gaussian PSF of ``sigma_px`` detector
    pixels with replicated borders (as :func:`xray4d.physics.gaussian_psf`), mean over
    each block of m fine pixels."""
    nf = n * m
    blur = torch.eye(nf, dtype=torch.float64)
    if sigma_px > 0:
        k = physics.gaussian_kernel_1d(sigma_px * m, dtype=torch.float64)
        r = (k.numel() - 1) // 2
        blur = torch.zeros(nf, nf, dtype=torch.float64)
        rows = torch.arange(nf)
        for j, weight in enumerate(k):
            blur.index_put_((rows, (rows + j - r).clamp(0, nf - 1)), weight.expand(nf),
                            accumulate=True)
    binning = torch.zeros(n, nf, dtype=torch.float64)
    binning[torch.arange(nf) // m, torch.arange(nf)] = 1.0 / m
    out = torch.zeros(n, nf + 2 * pad, dtype=torch.float64)
    out[:, pad:pad + nf] = binning @ blur
    return out


#: attributes of a reconstruction from intensity data: what ``volume`` and ``volume_beta`` hold
DELTA_ATTRS = {"quantity": "delta", "units": "dimensionless",
               "quantity_beta": "beta", "units_beta": "dimensionless"}


def reconstruct_intensity(rec: Recording, config, *, material: str | None = None,
                          density_g_cm3: float | None = None, psf_sigma_px: float | None = None,
                          oversample: int | None = None, fine_render: bool | None = None,
                          checkpoint_path=None, progress: bool = False, resume: bool = False):
    """Fit an X-Hexplane field of delta to flat/dark-corrected intensities through
    the propagation model (:class:`IntensityModel`).

    The material, PSF, oversampling and ``fine_render`` default to
    ``config.physics``. Unless the ``regularizers`` section sets them, the fit adds
    the one-material prior (``physics.material_prior``; not with ``beta: fitted``) and
    volume conservation (``physics.volume_conservation``: every frame holds the same
    total delta). Every regulariser weight is multiplied by
    ``physics.regularizer_gain``, and the learning rates warm up over
    ``physics.warmup_fraction`` of training unless ``train.warmup_fraction`` is
    set (the saved config shows what was used). The bound of the field
    (``field.value_max``), unless set in ``config``, is 1.02 times the delta of
    the material (the physics prior of
    a single known liquid; Paganin-based estimates are noise-limited for weak
    absorbers). The model propagates on a grid ``oversample`` times finer than
    the detector.

    With ``fine_render`` the field itself is rendered and projected on that
    finer grid (its planes keep the resolution ``field.space_scale`` asks for
    relative to the detector grid), so that edges can sit between voxels as the
    pixel-wide fringes say; the output volume is the mean over each voxel of the
    detector grid (a voxel average, like the simulator's truth). Otherwise the
    field is rendered on the detector grid and its projections are upsampled
    (bicubic) before propagation: faster, but the edges it can represent are
    blurred by a voxel, which costs ~3 dB on the droplet benchmark.

    With ``physics.beta: fitted`` the field has two output channels sharing its
    planes: delta (bounded as above) and the ratio beta / delta (bounded by
    ``physics.beta_over_delta_max``, default 4 times the material's, and started
    at the material's, so the fit starts as the single-material one); the model
    takes the line integrals of delta and of beta = delta * ratio. Fitting
    delta and beta as two free channels instead let delta collapse to zero
    while beta explained the low frequencies (measured on the droplets).

    Returns:
        a :class:`~xray4d.reconstruct.FitResult` whose reconstruction has
        ``volume`` = delta and ``volume_beta`` = beta (delta / (delta/beta) of the
        material, or the fitted channel) on the detector's voxel grid, and whose
        ``measured`` holds the corrected intensities (``predicted`` is their model
        prediction).
    """
    from .geometry import Geometry
    from .reconstruct import HexPlaneReconstructor

    phys = config.physics
    material = phys.material if material is None else material
    density_g_cm3 = phys.density_g_cm3 if density_g_cm3 is None else density_g_cm3
    psf_sigma_px = phys.psf_sigma_px if psf_sigma_px is None else psf_sigma_px
    oversample = phys.oversample if oversample is None else int(oversample)
    fine_render = phys.fine_render if fine_render is None else bool(fine_render)
    fine_render = fine_render and oversample > 1
    opt = optics_of(rec)
    index = physics.refractive_index(material, density_g_cm3, opt.energy_kev)
    fitted_beta = phys.beta == "fitted"
    model = IntensityModel(opt, index.delta_over_beta, psf_sigma_px, oversample=oversample,
                           fine_input=fine_render, two_channel=fitted_beta)
    target = copy.copy(rec)
    target.projections = transmission(rec)
    target.white = target.dark = None
    if not config.field.value_max:  # one known material: delta bounds the field
        config = config.updated({"field": {"value_max": VALUE_MARGIN * index.delta}})
    updates = {"train": {"ema_decay": phys.ema_decay}}
    priors = phys.model_fit_priors(config.regularizers)
    if priors:
        updates["regularizers"] = priors
    config = config.updated(updates)
    if phys.regularizer_gain != 1:  # the intensities' noise floor is far above the line integrals'
        weights = dataclasses.asdict(config.regularizers)
        config = config.updated({"regularizers": {k: v * phys.regularizer_gain
                                                  for k, v in weights.items()}})
    if not config.train.warmup_fraction:
        config = config.updated({"train": {"warmup_fraction": phys.warmup_fraction}})
    bounds = init = None
    if fitted_beta:  # second channel: beta / delta, started at the material's
        ratio, ratio_max = beta_over_delta_range(index, phys.beta_over_delta_max)
        bounds = (float(config.field.value_max), ratio_max)
        init = (config.field.init_value, ratio / ratio_max)
    if fine_render:
        # the field is rendered and projected on the fine grid; the data stay on the
        # detector grid (the model bins its prediction)
        g, m = rec.geometry, oversample
        target.geometry = Geometry.from_angles(g.angles_deg, g.frames, g.height * m,
                                               g.width * m, opt.pixel_size_m / m)
        config = config.updated({"field": {"space_scale": config.field.space_scale / m}})
    result = HexPlaneReconstructor(target, config, checkpoint_path, progress,
                                   measurement=model, output_bounds=bounds, output_init=init,
                                   relative=fitted_beta).fit(resume=resume)
    if fine_render:
        r, m = result.reconstruction, oversample
        r.volume = _voxel_mean(r.volume, m)
        if r.volume_beta is not None:
            r.volume_beta = _voxel_mean(r.volume_beta, m)
        r.config.setdefault("resolved", {})["fine_render"] = {
            "oversample": m, "space_scale_on_fine_grid": config.field.space_scale}
    _label_delta(result, index, fitted_beta=fitted_beta)
    result.measured = target.projections
    return result


def beta_over_delta_range(index: physics.RefractiveIndex, limit: float | None
                          ) -> tuple[float, float]:
    """Start and bound of a fitted beta/delta: the material's ratio, and ``limit`` (default
    4 times it); ValueError (one line) when the bound is not above the start."""
    ratio = 1.0 / index.delta_over_beta
    ratio_max = float(limit or 4 * ratio)
    if ratio >= ratio_max:
        raise ValueError(f"{ratio_max:g} is not above the beta/delta of {index.formula} "
                         f"({ratio:.4g}), where the fit starts")
    return ratio, ratio_max


def _voxel_mean(volume: np.ndarray, m: int) -> np.ndarray:
    """(T, Z m, Y m, X m) -> (T, Z, Y, X): the mean over each block of m^3 fine voxels."""
    t, z, y, x = volume.shape
    return np.ascontiguousarray(volume.reshape(t, z // m, m, y // m, m, x // m, m)
                                .mean(axis=(2, 4, 6), dtype=np.float64), np.float32)


def _label_delta(result, index: physics.RefractiveIndex, fitted_beta: bool = False) -> None:
    """Add volume_beta (from delta by the material's delta/beta, unless the field fitted
    it) and the unit attributes."""
    r = result.reconstruction
    if not fitted_beta:
        r.volume_beta = (r.volume / np.float32(index.delta_over_beta)).astype(np.float32)
    r.attrs = {**r.attrs, **DELTA_ATTRS,
               "material": f"{index.formula}, {index.density_g_cm3:g} g/cm3, "
                           f"{index.energy_kev:g} keV: delta {index.delta:.6g}, beta {index.beta:.6g}",
               "volume_beta": "fitted: the field's second output channel" if fitted_beta
               else "derived: volume / (delta/beta of the material)"}


def intensity_line_integrals(rec: Recording, how: str, material: str = "H2O",
                             density_g_cm3: float = 1.0) -> Recording:
    """Line integrals of delta (pixel units) of an ``intensity`` recording, for any method.

    Args:
        rec: intensity recording with flat (and optionally dark) fields and optics attributes.
        how: ``paganin`` (single-material phase retrieval) or ``log`` (``-log`` of
            the transmission as attenuation, propagation ignored, times the
            material's delta/beta).
        material, density_g_cm3: the single material.

    Returns:
        a ``line_integral`` recording of delta; its truth (if any) stays delta.
    """
    if how == "paganin":
        return to_line_integrals(rec, "paganin", material=material, density_g_cm3=density_g_cm3)
    if how != "log":
        raise ValueError(f"intensity preprocessing must be 'paganin' or 'log', got {how!r}")
    index = physics.refractive_index(material, density_g_cm3, optics_of(rec).energy_kev)
    out = to_line_integrals(rec, "attenuation", material=material, density_g_cm3=density_g_cm3)
    out.projections = (out.projections * np.float32(index.delta_over_beta)).astype(np.float32)
    out.truth = rec.truth
    out.attrs["preprocessing"] = f"-log(flat/dark corrected) * delta/beta ({material}), delta"
    return out


def check_intensity_setup(rec: Recording, config) -> physics.RefractiveIndex:
    """Refuse, before any fitting, an ``intensity`` recording that ``config`` cannot reconstruct.

    Returns the material's refractive index at the recording's energy.

    Raises:
        xray4d.io.InputError: one line naming the file and what is missing or
            incompatible: an optics attribute, the flat fields, method ``hexplane``
            for ``physics.intensity=model``, ``physics.beta: fitted`` without it, a
            material xraydb does not know, or a beta/delta bound below the material's.
    """
    from .io import InputError

    where = rec.path or "recording"
    for key in ("energy_keV", "pixel_size_m", "propagation_distance_m"):
        if key not in rec.attrs:
            raise InputError(where, f"/ attribute {key}", "missing, needed to reconstruct "
                             "intensity data (quantity=intensity)")
    if rec.white is None:
        raise InputError(where, "/exchange/data_white", "missing, needed for quantity=intensity")
    phys = config.physics
    if phys.beta == "fitted" and phys.intensity != "model":
        raise InputError(where, "config physics.beta",
                         f"'fitted' needs physics.intensity model (--intensity model), not "
                         f"{phys.intensity!r}: retrieved line integrals carry one channel")
    if phys.intensity == "model" and config.method != "hexplane":
        raise InputError(where, "/exchange/data",
                         f"quantity 'intensity' is fitted through the propagation model by "
                         f"method hexplane only, not {config.method!r}; use --intensity paganin "
                         "or log (config physics.intensity) for other methods")
    try:
        index = physics.refractive_index(phys.material, phys.density_g_cm3,
                                         float(rec.attrs["energy_keV"]))
    except ValueError as exc:
        raise InputError(where, "config physics.material",
                         str(exc).splitlines()[0].rstrip(":")) from None
    if phys.beta == "fitted":
        try:
            beta_over_delta_range(index, phys.beta_over_delta_max)
        except ValueError as exc:
            raise InputError(where, "config physics.beta_over_delta_max", str(exc)) from None
    return index


def reconstruct_intensity_recording(rec: Recording, config, checkpoint_path=None,
                                    progress: bool = True, resume: bool = False):
    """Reconstruct an ``intensity`` recording as ``config.physics.intensity`` says.

    ``model`` fits the intensities through the propagation model
    (:func:`reconstruct_intensity`; method ``hexplane`` only); ``paganin`` and
    ``log`` turn them into line integrals of delta (:func:`intensity_line_integrals`)
    and run ``config.method`` on those. Either way the reconstruction's
    ``volume`` is delta, ``volume_beta`` is beta derived by the material's
    delta/beta, and its attributes name both and their units.

    Raises:
        xray4d.io.InputError: see :func:`check_intensity_setup`.
    """
    from .methods import get_method

    phys = config.physics
    index = check_intensity_setup(rec, config)
    if phys.intensity == "model":
        return reconstruct_intensity(rec, config, checkpoint_path=checkpoint_path,
                                     progress=progress, resume=resume)
    li = intensity_line_integrals(rec, phys.intensity, phys.material, phys.density_g_cm3)
    result = get_method(config.method)(li, config, checkpoint_path, progress, resume)
    _label_delta(result, index)
    result.reconstruction.attrs["preprocessing"] = li.attrs["preprocessing"]
    result.measured = li.projections
    return result
