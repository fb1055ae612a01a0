"""Typed run configuration, YAML presets, the config file reader, and validation.

A config is saved beside every output (and inside the reconstruction file) so
that a run can be repeated exactly.

Validation. Every leaf field of every section has one rule in :data:`RULES`:
its kind (integer, finite number, flag, name from a list, schedule, device) and
range. The rules run whenever values come from a mapping (:meth:`ReconstructionConfig.from_dict`,
:meth:`~ReconstructionConfig.updated`, the presets, a ``--config`` file), then each
section's cross-field rules (``validate()``). A fault is a :class:`ConfigError`
(a ValueError) of one line naming the field's path: ``config.train.iterations:
must be an integer in 1..999999999 or null, got -5``.

:func:`load_config_file` reads a YAML file of overrides defensively: regular files
only (checked by ``stat`` before ``open``, so a named pipe or ``/dev/zero`` is never
read), at most :data:`MAX_CONFIG_BYTES`, UTF-8, safe YAML with no aliases, at most
:data:`MAX_CONFIG_DEPTH` levels and :data:`MAX_CONFIG_NODES` nodes, a mapping at the
top, every key known and every value within its rule. Each fault is an
:class:`~xray4d.errors.InputError` naming the file (exit status 2 on the command line).

Why a rule table and not pydantic: see ``docs/design.md`` (Configuration).
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .config_adversarial import ADVERSARIAL_RULES, AdversarialConfig
from .config_calibration import CALIBRATION_RULES, CalibrationConfig
from .config_flow import FLOW_RULES, FlowConfig
from .config_files import (MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH, MAX_CONFIG_NODES, parse_yaml,
                           read_config_bytes)
from .config_rules import (ITERATION_LIMIT, SECONDS_LIMIT, VALUE_LIMIT, WEIGHT_LIMIT, Choice,
                           ConfigError, Device, Flag, Integer, Name,
                           Number, Rule, Schedule, check_fields,
                           fraction, positive, section_path, show)
from .config_validation import STOP_RULES, VALIDATION_RULES, ValidationConfig
from .errors import InputError

__all__ = ["FieldConfig", "TrainConfig", "RegularizerConfig", "ConventionalConfig",
           "PhysicsConfig", "ValidationConfig", "FlowConfig", "AdversarialConfig",
           "ReconstructionConfig", "PRESETS", "load_preset",
           "FBP_FILTERS", "INTENSITY_PATHS", "BETA_SOURCES", "ConfigError", "RULES",
           "check_overrides", "load_config_file", "MAX_CONFIG_BYTES", "MAX_CONFIG_DEPTH",
           "MAX_CONFIG_NODES", "resolve_config", "measurement_preset", "MEASUREMENT_PRESETS",
           "STOP_RULES", "MANY_VIEWS", "ONE_VIEW_TIME_SCALE", "preset_for_views"]

#: the presets by name: ``fast``, ``default`` and ``quality`` are made for a few views per
#: frame (XMPI, 2-4 views); ``ct`` for many angles per frame (static CT as T = 1 with
#: hundreds of angles, see ``presets/ct.yaml``). ``auto`` (:func:`resolve_config`) picks
#: ``ct`` or ``default`` by the recording's view directions per frame.
PRESETS = ("fast", "default", "quality", "ct")
#: ``auto`` picks the ``ct`` preset from this many distinct view directions per frame on
#: (angles modulo 180 degrees; :meth:`xray4d.geometry.Geometry.directions_per_frame`)
MANY_VIEWS = 32
#: ``auto``'s ``field.time_scale`` for one view direction per frame (a rotating sample seen
#: once per projection time): 0.5 gives each time node two projections. Rotating droplets
#: and jet, 32^3, 120 projections 6 deg apart, 2000 iterations: 38.7 -> 40.9 and 34.7 ->
#: 41.8 dB against 1.0 (docs/results/tomography.md)
ONE_VIEW_TIME_SCALE = 0.5
#: measurement presets: the defaults that differ when intensities are fitted through the
#: propagation model (the data term's noise floor is ~100x that of line integrals with 1 %
#: noise, so every regulariser is 30x stronger; the one-material prior and volume
#: conservation; a shorter weight average; a learning-rate warm-up). See
#: ``presets/intensity-model.yaml``.
MEASUREMENT_PRESETS = ("intensity-model", "intensity-model-fitted-beta")



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
    #: voxels added along y and x on each side, as a share of the width, for objects wider
    #: than the detector (fitted on the measured columns only, cropped after); None: 0.5
    #: when the projections are truncated, else 0 (reconstruct/field_of_view.py)
    lateral_margin: float | None = None

    def validate(self) -> None:
        """ConfigError (one line) for an option out of its rule (:data:`RULES`)."""
        _validate_section(self)


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
        """ConfigError (one line) for a weight out of its rule (:data:`RULES`)."""
        _validate_section(self)

    def weights(self) -> dict[str, float]:
        """Every regulariser's weight by name."""
        return dataclasses.asdict(self)


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
    #: dtype of the field's rendering while fitting: float32, bfloat16 (autocast; CPU and
    #: CUDA) or float16 (autocast with loss scaling; CUDA only). The projection, the loss
    #: terms and the optimiser stay float32 (docs/results/performance.md)
    precision: str = "float32"

    def validate(self) -> None:
        """ConfigError (one line) for an option out of its rule (:data:`RULES`), no
        stopping rule (``iterations`` and ``time_budget_s`` both null), or float16 off CUDA."""
        _validate_section(self)
        if self.iterations is None and self.time_budget_s is None:
            raise ConfigError("config.train.iterations", "null and train.time_budget_s null too: "
                              "a run needs at least one of them")
        if self.precision == "float16" and not self.device.startswith("cuda"):
            raise ConfigError("config.train.precision", f"float16 needs a CUDA device "
                              f"(train.device is {self.device}); use bfloat16 on the CPU")


#: dtypes of the field's rendering while fitting (``train.precision``)
PRECISIONS = ("float32", "bfloat16", "float16")


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
        """ConfigError (one line) for an option out of its rule (:data:`RULES`)."""
        _validate_section(self)


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
    #: line integrals (of delta) and phase data: bound the field at the value of
    #: ``material`` (its delta, at the recording's energy_keV; k delta pixel for phase data)
    #: instead of estimating it from the projections (``--material`` sets this)
    value_from_material: bool = False

    def validate(self) -> None:
        """ConfigError (one line) for an option out of its rule (:data:`RULES`)."""
        _validate_section(self)


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
    flow: FlowConfig = dataclasses.field(default_factory=FlowConfig)
    adversarial: AdversarialConfig = dataclasses.field(default_factory=AdversarialConfig)
    calibration: CalibrationConfig = dataclasses.field(default_factory=CalibrationConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ReconstructionConfig":
        """Build from a (possibly partial) nested dict; unknown keys and values out of
        their rule (:data:`RULES`) are ConfigErrors (one line)."""
        cfg = cls()
        _merge(cfg, data)
        return cfg

    def updated(self, data: dict[str, Any]) -> "ReconstructionConfig":
        """A copy with a nested dict of overrides applied (validated as :meth:`from_dict`)."""
        cfg = ReconstructionConfig.from_dict(self.to_dict())
        _merge(cfg, data)
        return cfg

    def validate(self) -> None:
        """ConfigError (one line) for a value out of its rule, in any section."""
        _validate_section(self)
        for f in dataclasses.fields(self):
            section = getattr(self, f.name)
            if dataclasses.is_dataclass(section):
                section.validate()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)



#: the rule of every leaf field, by section (the key of ``ReconstructionConfig``; "" for
#: its own leaves); a test checks that this table and the dataclasses name the same fields
RULES: dict[str, dict[str, Rule]] = {
    "": {
        # an unknown method's name is refused by the registry, which knows the methods
        "method": Name(64),
        "preset": Choice(PRESETS),
        "measurement": Choice(MEASUREMENT_PRESETS, nullable=True),
    },
    "field": {
        "channels": Integer(1, 1024),
        "space_scale": positive(4.0),
        "time_scale": positive(4.0),
        "initial_scale": positive(1.0),
        "upsample_at": Schedule(16),
        "decoder": Choice(("linear", "mlp")),          # fields.HexPlaneField
        "mlp_hidden": Integer(1, 4096),
        "activation": Choice(("sigmoid", "softplus")),  # fields.HexPlaneField
        "value_max": positive(VALUE_LIMIT, high_open=True, nullable=True),
        "init_value": Number(0.0, 1.0, low_open=True, high_open=True),  # sigmoid(bias) < 1
        "init_scale": positive(10.0),
        "lateral_margin": Number(0.0, 2.0, nullable=True),
    },
    "regularizers": {
        "plane_tv": Number(0.0, WEIGHT_LIMIT),
        "temporal_smoothness": Number(0.0, WEIGHT_LIMIT),
        "l1_sparsity": Number(0.0, WEIGHT_LIMIT),
        "volume_tv": Number(0.0, WEIGHT_LIMIT),
        "material_prior": Number(0.0, WEIGHT_LIMIT),
        "volume_conservation": Number(0.0, WEIGHT_LIMIT),
    },
    "train": {
        "iterations": Integer(1, ITERATION_LIMIT, nullable=True),
        "time_budget_s": positive(SECONDS_LIMIT, nullable=True),
        "frames_per_batch": Integer(1, 65536),
        "lr_planes": positive(10.0),
        "lr_decoder": positive(10.0),
        "lr_final_ratio": positive(1.0),
        "warmup_fraction": fraction(),
        "ema_decay": fraction(),
        "checkpoint_every_s": Number(0.0, SECONDS_LIMIT),  # 0: after every iteration
        "seed": Integer(0, 2**63 - 1),  # torch.manual_seed takes 64 bits
        "device": Device(),
        "render_chunk": Integer(1, 65536),
        "precision": Choice(PRECISIONS),
    },
    "conventional": {
        "iterations": Integer(1, ITERATION_LIMIT, nullable=True),
        "filter": Choice(FBP_FILTERS),
        "cutoff": positive(1.0),
        "relaxation": positive(2.0, high_open=True),
        "nonnegative": Flag(),
        "value_max": positive(VALUE_LIMIT, high_open=True, nullable=True),
    },
    "physics": {
        "intensity": Choice(INTENSITY_PATHS),
        "material": Name(64),  # a formula xraydb does not know is refused where it is used
        "density_g_cm3": positive(30.0),  # osmium, the densest element: 22.6 g/cm^3
        "psf_sigma_px": Number(0.0, 64.0),
        "oversample": Integer(1, 8),
        "fine_render": Flag(),
        "beta": Choice(BETA_SOURCES),
        # beta/delta is below ~1 for every material above 1 keV
        "beta_over_delta_max": positive(1e3, nullable=True),
        "value_from_material": Flag(),
    },
    "validation": VALIDATION_RULES,       # config_validation.py
    "flow": FLOW_RULES,                   # config_flow.py
    "adversarial": ADVERSARIAL_RULES,     # config_adversarial.py
    "calibration": CALIBRATION_RULES,     # config_calibration.py
}

#: section name -> its dataclass
SECTIONS: dict[str, type] = {"field": FieldConfig, "regularizers": RegularizerConfig,
                             "train": TrainConfig, "conventional": ConventionalConfig,
                             "physics": PhysicsConfig, "validation": ValidationConfig,
                             "flow": FlowConfig,
                             "adversarial": AdversarialConfig,
                             "calibration": CalibrationConfig}
_SECTION_OF: dict[type, str] = {cls: name for name, cls in SECTIONS.items()}
_SECTION_OF[ReconstructionConfig] = ""


def _validate_section(obj: Any) -> None:
    """Check every leaf of one section (or the top level) against its rule."""
    section = _SECTION_OF[type(obj)]
    check_fields(obj, RULES[section], section)


def check_overrides(data: Any, section: str = "") -> None:
    """ConfigError (one line, naming the field's path) unless ``data`` is a nested mapping
    of known keys whose leaves each satisfy their rule (:data:`RULES`).

    ``section`` is the section the mapping is for ("" for the whole config). Rules that
    join several fields (``TrainConfig.validate``) need the resolved config and are not
    checked here.
    """
    where = section_path(section)
    if not isinstance(data, dict):
        raise ConfigError(where, f"expected a mapping, got {show(data)}")
    rules = RULES[section]
    known = list(rules) + ([] if section else list(SECTIONS))
    for key, value in data.items():
        if isinstance(key, str) and key in SECTIONS and not section:
            check_overrides(value, key)
        elif isinstance(key, str) and key in rules:
            rules[key].check(f"{where}.{key}", value)
        else:
            raise ConfigError(where, f"unknown key {show(key)} (known: {', '.join(known)})")


def _merge(obj: Any, data: dict[str, Any]) -> None:
    """Apply a nested mapping of overrides to ``obj`` (checked first: nothing is set from
    a mapping with a fault), then validate the result."""
    check_overrides(data, _SECTION_OF[type(obj)])
    for key, value in data.items():
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _merge(current, value)
        else:
            setattr(obj, key, value)
    obj.validate()


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The nested mapping of config overrides in a YAML file (an empty file: none).

    The file must be a regular file of at most :data:`MAX_CONFIG_BYTES` bytes of UTF-8
    text holding one YAML document (safe tags, no aliases, at most
    :data:`MAX_CONFIG_DEPTH` levels and :data:`MAX_CONFIG_NODES` nodes) whose top level
    is a mapping of known keys, each value within its rule (:func:`check_overrides`).

    Raises:
        xray4d.errors.InputError: one line naming the file and the fault: ``FILE: config
            file: ...`` for the file itself, ``FILE: config.train.seed: ...`` for a value.
    """
    path = Path(path)
    raw = read_config_bytes(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, "config file", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} "
                         f"at offset {exc.start})") from None
    try:
        data = parse_yaml(text)
    except ValueError as exc:
        raise InputError(path, "config file", str(exc)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(path, "config file", f"expected a mapping of config keys, got "
                         f"{'a list' if isinstance(data, list) else show(data)}")
    try:
        check_overrides(data)
    except ConfigError as exc:
        raise InputError(path, exc.where, exc.fault) from None
    return data




def measurement_preset(quantity: str | None, physics: PhysicsConfig) -> str | None:
    """The measurement preset for a recording's ``quantity`` under ``physics`` (None: none)."""
    if quantity != "intensity" or physics.intensity != "model":
        return None
    return "intensity-model-fitted-beta" if physics.beta == "fitted" else "intensity-model"


def _preset_text(name: str) -> str:
    return resources.files("xray4d.presets").joinpath(f"{name}.yaml").read_text()


def _preset_data(name: str) -> dict[str, Any]:
    return parse_yaml(_preset_text(name)) or {}


def preset_for_views(views: int | None) -> str:
    """The preset ``auto`` stands for: ``ct`` for at least :data:`MANY_VIEWS` distinct view
    directions per frame, else ``default`` (also when the views are not known)."""
    return "ct" if views is not None and views >= MANY_VIEWS else "default"


def resolve_config(preset: str = "default", overrides: dict[str, Any] | None = None,
                   method: str | None = None, *, quantity: str | None = None,
                   views: int | None = None) -> ReconstructionConfig:
    """The config of a run: the named preset, the measurement preset for ``quantity``
    (e.g. ``intensity``, see :func:`measurement_preset`), the nested ``overrides``, then the
    method if given. Values set in ``overrides`` always win.

    ``preset="auto"`` is ``ct`` or ``default`` by ``views``, the recording's distinct view
    directions per frame (:func:`preset_for_views`); with one view per frame its
    ``field.time_scale`` is :data:`ONE_VIEW_TIME_SCALE` unless ``overrides`` set it."""
    overrides = overrides or {}
    cfg = load_preset(preset_for_views(views) if preset == "auto" else preset)
    if preset == "auto" and views == 1:
        # one view per frame (a rotating sample): two frames per time node, so that each node
        # is seen from two directions, as two views per frame are in the default
        cfg = cfg.updated({"field": {"time_scale": ONE_VIEW_TIME_SCALE}})
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
    """The config of a named preset (``fast``, ``default``, ``quality``, ``ct``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    data = parse_yaml(_preset_text(name)) or {}
    cfg = ReconstructionConfig.from_dict(data)
    cfg.preset = name
    return cfg
