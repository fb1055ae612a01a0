"""Typed run configuration, YAML presets, and their resolution.

A config is saved beside every output (and inside the reconstruction file) so
that a run can be repeated exactly.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

__all__ = ["FieldConfig", "TrainConfig", "RegularizerConfig", "ConventionalConfig",
           "PhysicsConfig", "ValidationConfig", "ReconstructionConfig", "PRESETS", "load_preset", "FBP_FILTERS",
           "INTENSITY_PATHS", "BETA_SOURCES", "resolve_config", "measurement_preset",
           "MEASUREMENT_PRESETS", "STOP_RULES"]

PRESETS = ("fast", "default", "quality")


@dataclass
class FieldConfig:
    """The X-Hexplane field."""

    channels: int = 8
    #: final spatial plane resolution as a fraction of the voxel grid (1.0 = one node per voxel)
    space_scale: float = 0.625
    #: final time resolution as a fraction of the number of frames
    time_scale: float = 1.0
    #: spatial/time resolution at the start, as fractions of the final ones (coarse-to-fine)
    initial_scale: float = 0.25
    #: fractions of training at which planes are upsampled (geometric steps to the final size)
    upsample_at: list[float] = field(default_factory=lambda: [0.1, 0.25])
    decoder: str = "linear"
    mlp_hidden: int = 64
    activation: str = "sigmoid"
    #: upper bound of the sigmoid output; None estimates it from the projections
    value_max: float | None = None
    init_value: float = 0.02
    init_scale: float = 0.1


@dataclass
class RegularizerConfig:
    """Weights of the named regularisers (0 switches one off)."""

    plane_tv: float = 1e-4
    temporal_smoothness: float = 1e-4
    l1_sparsity: float = 0.0
    #: total variation of the rendered frames (surface area of a homogeneous object)
    volume_tv: float = 0.0
    #: double well at 0 and the material's value (one material in vacuum)
    material_prior: float = 0.0
    #: relative variance of the frames' totals (a closed sample keeps its amount of
    #: material in every frame; not for samples that enter or leave the field of view)
    volume_conservation: float = 0.0

    def validate(self) -> None:
        """ValueError (one line) for a weight that is not a finite number >= 0."""
        for f in dataclasses.fields(self):
            _check_number(f"regularizers.{f.name}", getattr(self, f.name))

    def weights(self) -> dict[str, float]:
        """Every regulariser's weight by name."""
        return dataclasses.asdict(self)


def _check_number(name: str, value: Any, positive: bool = False) -> None:
    """ValueError (one line) unless ``value`` is a finite number >= 0 (> 0 if ``positive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name}: must be a finite number {'> 0' if positive else '>= 0'}, "
                         f"got {value!r}")


def _check_fraction(name: str, value: Any) -> None:
    """ValueError (one line) unless ``value`` is a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{name}: must be in [0, 1), got {value!r}")


@dataclass
class TrainConfig:
    """Optimisation schedule."""

    #: iterations; None runs until the time budget
    iterations: int | None = 2000
    #: wall-clock seconds for fitting; None for no limit
    time_budget_s: float | None = None
    frames_per_batch: int = 4
    lr_planes: float = 0.3
    lr_decoder: float = 0.02
    #: learning rates decay exponentially to this fraction by the end
    lr_final_ratio: float = 0.1
    #: learning rates rise linearly from zero over this fraction of training, at the start
    #: and again after each upsampling (the optimiser starts afresh then); 0: none
    warmup_fraction: float = 0.0
    #: exponential moving average of the field's weights (0 switches it off); the output is
    #: rendered from the average, which smooths out the noise of frame-batch gradients
    ema_decay: float = 0.9995
    checkpoint_every_s: float = 30.0
    seed: int = 0
    device: str = "cpu"
    #: render at most this many frames at once when writing the output
    render_chunk: int = 8

    def validate(self) -> None:
        """ValueError (one line) for an option out of range."""
        _check_fraction("train.warmup_fraction", self.warmup_fraction)
        _check_fraction("train.ema_decay", self.ema_decay)


#: ramp-filter windows of filtered back-projection (``conventional.filter``)
FBP_FILTERS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann")


@dataclass
class ConventionalConfig:
    """Options of the conventional methods (``fbp``, ``sirt``, ``cgls``), frame by frame.

    They stop after ``iterations`` or at ``train.time_budget_s``, whichever
    comes first; ``train.iterations`` is not read (the command line's
    ``--iterations`` sets both).
    """

    #: iterations of SIRT / CGLS; None: the method's default (SIRT 100, CGLS 20); FBP has none
    iterations: int | None = None
    #: window of the FBP ramp filter: ram-lak (none), shepp-logan, cosine, hamming, hann
    filter: str = "hann"
    #: FBP filter cut-off as a fraction of the Nyquist frequency, in (0, 1]
    cutoff: float = 1.0
    #: SIRT relaxation factor, in (0, 2)
    relaxation: float = 1.0
    #: SIRT: project every iterate onto f >= 0; FBP and CGLS: clip negatives at the end
    nonnegative: bool = True
    #: known upper bound of the value (e.g. the material's density): SIRT projects every iterate
    #: onto f <= value_max, FBP and CGLS clip at the end; None: no upper bound
    value_max: float | None = None

    def validate(self) -> None:
        """ValueError (one line) for an option out of range."""
        if self.value_max is not None and (isinstance(self.value_max, bool)
                                           or not isinstance(self.value_max, (int, float))
                                           or not self.value_max > 0):
            raise ValueError(f"conventional.value_max: must be a positive number or null, "
                             f"got {self.value_max!r}")
        if self.iterations is not None and (isinstance(self.iterations, bool)
                                            or not isinstance(self.iterations, int)
                                            or self.iterations < 1):
            raise ValueError(f"conventional.iterations: must be a positive integer or null, "
                             f"got {self.iterations!r}")
        if self.filter not in FBP_FILTERS:
            raise ValueError(f"conventional.filter: unknown window {self.filter!r}; "
                             f"choose one of {', '.join(FBP_FILTERS)}")
        if not isinstance(self.cutoff, (int, float)) or not 0 < self.cutoff <= 1:
            raise ValueError(f"conventional.cutoff: must be in (0, 1], got {self.cutoff!r}")
        if not isinstance(self.relaxation, (int, float)) or not 0 < self.relaxation < 2:
            raise ValueError(f"conventional.relaxation: must be in (0, 2), got {self.relaxation!r}")
        if not isinstance(self.nonnegative, bool):
            raise ValueError(f"conventional.nonnegative: must be true or false, "
                             f"got {self.nonnegative!r}")


#: how an ``intensity`` recording is reconstructed (``physics.intensity``)
INTENSITY_PATHS = ("model", "paganin", "log")
#: where beta comes from (``physics.beta``)
BETA_SOURCES = ("material", "fitted")


@dataclass
class PhysicsConfig:
    """How ``intensity`` recordings are reconstructed (line-integral data ignore it).

    The reconstructed ``volume`` is delta (dimensionless) and ``volume_beta`` is
    beta: by default delta / (delta/beta of ``material``), a single known
    material; with ``beta: fitted`` a second output channel of the field.
    """

    #: ``model``: fit the flat/dark-corrected intensities through the propagation model
    #: (field methods: hexplane, static, perframe), with the ``intensity-model`` preset's
    #: defaults (:func:`resolve_config`); ``paganin``: Paganin phase retrieval to line integrals of delta;
    #: ``log``: -log as attenuation (propagation ignored), scaled to delta by delta/beta.
    #: paganin and log work with every method.
    intensity: str = "model"
    #: the sample's material (chemical formula) and density in g/cm^3, for delta/beta
    material: str = "H2O"
    density_g_cm3: float = 1.0
    #: detector PSF (Gaussian sigma, detector pixels) in the propagation model
    psf_sigma_px: float = 0.0
    #: the propagation model computes on a grid this many times finer than the detector
    oversample: int = 2
    #: render and project the field on that finer grid (sharp edges between voxels; the
    #: output is the voxel average); false: upsample the projections instead (faster)
    fine_render: bool = True
    #: ``material``: beta = delta / (delta/beta of the material) (one material; best posed);
    #: ``fitted``: the field's second output channel is beta / delta, fitted per voxel
    #: (samples of several materials; ``intensity: model`` only), started at the material's
    #: value. Beta of a nearly pure phase object (water above ~10 keV) is barely determined.
    beta: str = "material"
    #: upper bound of the fitted beta / delta; None: 4 times the material's
    beta_over_delta_max: float | None = None

    def validate(self) -> None:
        """ValueError (one line) for an option out of range."""
        if self.intensity not in INTENSITY_PATHS:
            raise ValueError(f"physics.intensity: unknown {self.intensity!r}; choose one of "
                             f"{', '.join(INTENSITY_PATHS)}")
        if not isinstance(self.material, str) or not self.material:
            raise ValueError(f"physics.material: must be a chemical formula, got {self.material!r}")
        for key in ("density_g_cm3", "psf_sigma_px"):
            _check_number(f"physics.{key}", getattr(self, key), positive=key == "density_g_cm3")
        if isinstance(self.oversample, bool) or not isinstance(self.oversample, int) \
                or not 1 <= self.oversample <= 8:
            raise ValueError(f"physics.oversample: must be an integer in 1..8, got {self.oversample!r}")
        if not isinstance(self.fine_render, bool):
            raise ValueError(f"physics.fine_render: must be true or false, got {self.fine_render!r}")
        if self.beta not in BETA_SOURCES:
            raise ValueError(f"physics.beta: unknown {self.beta!r}; choose one of "
                             f"{', '.join(BETA_SOURCES)}")
        q = self.beta_over_delta_max
        if q is not None and (isinstance(q, bool) or not isinstance(q, (int, float))
                              or not math.isfinite(q) or not q > 0):
            raise ValueError(f"physics.beta_over_delta_max: must be a positive number or null, "
                             f"got {q!r}")


#: how training ends (``validation.stop``)
STOP_RULES = ("fixed", "auto")


@dataclass
class ValidationConfig:
    """Held-out detector pixels: the automatic stop of training and ``xray4d validate``.

    A share of each view's detector pixels, in square blocks (so that neighbouring pixels do
    not leak what was held out), is kept out of the data term and predicted from the fit
    (:mod:`xray4d.reconstruct.holdout`).
    """

    #: share of each view's detector pixels held out, in (0, 0.5]
    holdout: float = 0.1
    #: side of the held-out square blocks, detector pixels
    block_px: int = 4
    #: seed of the held-out blocks (the same blocks for every fit of a validation)
    holdout_seed: int = 0
    #: ``fixed``: train for the iterations or the time budget; ``auto``: stop when the error on
    #: held-out pixels stops improving (the iterations or the time budget still cap the run)
    stop: str = "fixed"
    #: share of each view's detector pixels watched instead of fitted (``stop: auto``), in
    #: (0, 0.5]: every watched pixel is data the fit loses (0.05 ended within 0.5 dB of the
    #: best PSNR along the run on the simulated settings, 0.1 within 1.1 dB)
    stop_holdout: float = 0.05
    #: steps between two evaluations of the held-out error (``stop: auto``)
    stop_every: int = 50
    #: evaluations without an improvement, after the last coarse-to-fine refinement, before
    #: the run stops (``stop: auto``)
    stop_patience: int = 4
    #: an improvement is a relative decrease of the held-out error by at least this
    stop_min_improvement: float = 0.002

    def validate(self) -> None:
        """ValueError (one line) for an option out of range."""
        for key in ("holdout", "stop_holdout"):
            h = getattr(self, key)
            if isinstance(h, bool) or not isinstance(h, (int, float)) or not 0 < h <= 0.5:
                raise ValueError(f"validation.{key}: must be in (0, 0.5], got {h!r}")
        for key in ("block_px", "stop_every", "stop_patience"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"validation.{key}: must be a positive integer, got {v!r}")
        if isinstance(self.holdout_seed, bool) or not isinstance(self.holdout_seed, int):
            raise ValueError(f"validation.holdout_seed: must be an integer, "
                             f"got {self.holdout_seed!r}")
        if self.stop not in STOP_RULES:
            raise ValueError(f"validation.stop: unknown {self.stop!r}; choose one of "
                             f"{', '.join(STOP_RULES)}")
        _check_fraction("validation.stop_min_improvement", self.stop_min_improvement)


@dataclass
class ReconstructionConfig:
    """Everything a reconstruction run needs besides the data."""

    method: str = "hexplane"
    preset: str = "default"
    #: the measurement preset applied on top of ``preset`` (set by :func:`resolve_config`):
    #: ``intensity-model`` (or ``intensity-model-fitted-beta``) for intensities fitted through
    #: the propagation model; None for line integrals
    measurement: str | None = None
    field: FieldConfig = dataclasses.field(default_factory=FieldConfig)
    regularizers: RegularizerConfig = dataclasses.field(default_factory=RegularizerConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    conventional: ConventionalConfig = dataclasses.field(default_factory=ConventionalConfig)
    physics: PhysicsConfig = dataclasses.field(default_factory=PhysicsConfig)
    validation: ValidationConfig = dataclasses.field(default_factory=ValidationConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ReconstructionConfig":
        """Build from a (possibly partial) nested dict; unknown keys are errors."""
        cfg = cls()
        _merge(cfg, data, "config")
        return cfg

    def updated(self, data: dict[str, Any]) -> "ReconstructionConfig":
        """A copy with a nested dict of overrides applied."""
        cfg = ReconstructionConfig.from_dict(self.to_dict())
        _merge(cfg, data, "config")
        return cfg

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _merge(obj: Any, data: dict[str, Any], where: str) -> None:
    names = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in data.items():
        if key not in names:
            raise ValueError(f"{where}: unknown key {key!r} (known: {', '.join(names)})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ValueError(f"{where}.{key}: expected a mapping")
            _merge(current, value, f"{where}.{key}")
        else:
            setattr(obj, key, value)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()


#: measurement presets: the defaults that differ when intensities are fitted through the
#: propagation model (the data term's noise floor is ~100x that of line integrals with 1 %
#: noise, so every regulariser is 30x stronger; the one-material prior and volume
#: conservation; a shorter weight average; a learning-rate warm-up). See
#: ``presets/intensity-model.yaml``.
MEASUREMENT_PRESETS = ("intensity-model", "intensity-model-fitted-beta")


def measurement_preset(quantity: str | None, physics: PhysicsConfig) -> str | None:
    """The measurement preset for a recording's ``quantity`` under ``physics`` (None: none)."""
    if quantity != "intensity" or physics.intensity != "model":
        return None
    return "intensity-model-fitted-beta" if physics.beta == "fitted" else "intensity-model"


def _preset_data(name: str) -> dict[str, Any]:
    text = resources.files("xray4d.presets").joinpath(f"{name}.yaml").read_text()
    return yaml.safe_load(text) or {}


def resolve_config(preset: str = "default", overrides: dict[str, Any] | None = None,
                   method: str | None = None, *, quantity: str | None = None
                   ) -> ReconstructionConfig:
    """The config of a run: the named preset, the measurement preset for ``quantity``
    (e.g. ``intensity``, see :func:`measurement_preset`), the nested ``overrides``, then the
    method if given. Values set in ``overrides`` always win."""
    overrides = overrides or {}
    cfg = load_preset(preset)
    chosen = cfg.updated(overrides)
    if method:
        chosen.method = method
    kind = measurement_preset(quantity, chosen.physics)
    if kind is None:
        return chosen
    cfg = cfg.updated(_preset_data(kind)).updated(overrides)
    cfg.measurement = kind
    if method:
        cfg.method = method
    return cfg


def load_preset(name: str) -> ReconstructionConfig:
    """The config of a named preset (``fast``, ``default``, ``quality``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    cfg = ReconstructionConfig.from_dict(_preset_data(name))
    cfg.preset = name
    return cfg
