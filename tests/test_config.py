"""The config schema and the config file reader (issue 27).

Every field's kind and range is written down here, in :data:`SPEC`, from the
issue and the fields' documentation (not read from ``xray4d.config``); the
tests check the code against it, field by field and class of bad value by
class, in-process and through ``xray4d reconstruct --config``: exit 2, one line
on stderr naming the file and the field, no traceback, nothing written.
``test_config_fuzz.py`` uses the same :data:`SPEC` as its oracle.
"""
from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np
import pytest
import torch
import yaml

from xray4d import cli
from xray4d.config import (PRESETS, RULES, ReconstructionConfig, load_config_file,
                           load_preset)
from xray4d.errors import InputError

CUDA = torch.cuda.is_available()
CUDA_COUNT = torch.cuda.device_count() if CUDA else 0
INF = math.inf


# ------------------------------------------------------------------ the specification

def I(low: int, high: int, null: bool = False) -> tuple:  # noqa: E743 - reads as the kind
    """An integer (not a bool) in low..high."""
    return ("int", low, high, null)


def R(low: float, high: float, ends: str = "[]", null: bool = False) -> tuple:
    """A finite number (not a bool) between low and high; ``ends`` "(]" etc. says which
    ends are open."""
    return ("real", low, high, ends, null)


def C(*names: str, null: bool = False) -> tuple:
    return ("choice", names, null)


FLAG, NAME, SCHEDULE, DEVICE = ("flag",), ("name",), ("schedule",), ("device",)

#: every leaf field of the config: kind and range (issue 27 and the fields' docs)
SPEC: dict[str, tuple] = {
    "method": NAME,
    "preset": C("fast", "default", "quality"),
    "measurement": C("intensity-model", "intensity-model-fitted-beta", null=True),
    "field.channels": I(1, 1024),
    "field.space_scale": R(0, 4, "(]"),
    "field.time_scale": R(0, 4, "(]"),
    "field.initial_scale": R(0, 1, "(]"),
    "field.upsample_at": SCHEDULE,
    "field.decoder": C("linear", "mlp"),
    "field.mlp_hidden": I(1, 4096),
    "field.activation": C("sigmoid", "softplus"),
    "field.value_max": R(0, 1e6, "()", null=True),
    "field.init_value": R(0, 1, "()"),
    "field.init_scale": R(0, 10, "(]"),
    "field.lateral_margin": R(0, 2, "[]", null=True),
    "regularizers.plane_tv": R(0, 1e9),
    "regularizers.temporal_smoothness": R(0, 1e9),
    "regularizers.l1_sparsity": R(0, 1e9),
    "regularizers.volume_tv": R(0, 1e9),
    "regularizers.material_prior": R(0, 1e9),
    "regularizers.volume_conservation": R(0, 1e9),
    "train.iterations": I(1, 10**9 - 1, null=True),
    "train.time_budget_s": R(0, 1e8, "(]", null=True),
    "train.frames_per_batch": I(1, 65536),
    "train.lr_planes": R(0, 10, "(]"),
    "train.lr_decoder": R(0, 10, "(]"),
    "train.lr_final_ratio": R(0, 1, "(]"),
    "train.warmup_fraction": R(0, 1, "[)"),
    "train.ema_decay": R(0, 1, "[)"),
    "train.checkpoint_every_s": R(0, 1e8),
    "train.seed": I(0, 2**63 - 1),
    "train.device": DEVICE,
    "train.render_chunk": I(1, 65536),
    # float16 only with a CUDA device (expected_faults; test_float16_needs_cuda)
    "train.precision": C("float32", "bfloat16", "float16"),
    "conventional.iterations": I(1, 10**9 - 1, null=True),
    "conventional.filter": C("ram-lak", "shepp-logan", "cosine", "hamming", "hann"),
    "conventional.cutoff": R(0, 1, "(]"),
    "conventional.relaxation": R(0, 2, "()"),
    "conventional.nonnegative": FLAG,
    "conventional.value_max": R(0, 1e6, "()", null=True),
    "physics.intensity": C("model", "paganin", "log"),
    "physics.material": NAME,
    "physics.density_g_cm3": R(0, 30, "(]"),
    "physics.psf_sigma_px": R(0, 64),
    "physics.oversample": I(1, 8),
    "physics.fine_render": FLAG,
    "physics.beta": C("material", "fitted"),
    "physics.beta_over_delta_max": R(0, 1e3, "(]", null=True),
    "physics.value_from_material": FLAG,
    "validation.holdout": R(0, 0.5, "(]"),
    "validation.block_px": I(1, 1024),
    "validation.holdout_seed": I(0, 2**63 - 1),
    "validation.stop": C("fixed", "auto"),
    "validation.stop_holdout": R(0, 0.5, "(]"),
    "validation.stop_every": I(1, 10**6),
    "validation.stop_patience": I(1, 10**6),
    "validation.stop_min_improvement": R(0, 1, "[)"),
    "flow.transport_weight": R(0, 1e9),
    "flow.divergence_weight": R(0, 1e9),
    "flow.warmup_iterations": I(0, 10**9 - 1),
    "flow.points": I(1, 10**7),
    "flow.velocity_channels": I(1, 256),
    "flow.velocity_space_scale": R(0, 1, "(]"),
    "flow.lr_velocity": R(0, 10, "(]"),
    # issue 22: the adversarial term on novel views
    "adversarial.enabled": FLAG,
    "adversarial.weight": R(0, 1e9),
    "adversarial.warmup_fraction": R(0, 1, "[)"),
    "adversarial.lr": R(0, 1, "(]"),
    "adversarial.discriminator_steps": I(1, 100),
    "adversarial.patch_px": I(4, 4096),
    "adversarial.patches": I(1, 65536),
    "adversarial.channels": I(1, 256),
    "adversarial.loss": C("non-saturating", "hinge"),
    "adversarial.angle_range_deg": R(0, 360, "(]"),
    "adversarial.novel_angles": I(1, 360),
    "adversarial.match_noise": FLAG,
    "adversarial.angle_gap_deg": R(0, 45),
    # issue 24: self-calibration of the detector geometry
    "calibration.enabled": FLAG,
    "calibration.warmup_fraction": R(0, 1, "[)"),
    "calibration.lr_shift_px": R(0, 10, "(]"),
    "calibration.lr_tilt_deg": R(0, 10, "(]"),
    "calibration.lr_log_magnification": R(0, 1, "(]"),
    "calibration.tilt": FLAG,
    "calibration.magnification": FLAG,
}
SECTIONS = ("field", "regularizers", "train", "conventional", "physics", "validation", "flow",
            "adversarial", "calibration")
#: the default preset's stopping rule (src/xray4d/presets/default.yaml)
DEFAULT_ITERATIONS, DEFAULT_BUDGET_S = None, 120


def _is_real(v: Any) -> bool:
    return type(v) in (int, float) and (type(v) is int or math.isfinite(v))


def leaf_ok(spec: tuple, v: Any) -> bool:
    """Whether ``v`` is a valid value of a field of kind ``spec``."""
    kind = spec[0]
    if kind in ("int", "real") and v is None:
        return spec[-1]
    if kind == "int":
        return type(v) is int and spec[1] <= v <= spec[2]
    if kind == "real":
        low, high, ends = spec[1], spec[2], spec[3]
        return _is_real(v) and (v > low if ends[0] == "(" else v >= low) \
            and (v < high if ends[1] == ")" else v <= high)
    if kind == "choice":
        return (v is None and spec[2]) or (type(v) is str and v in spec[1])
    if kind == "flag":
        return type(v) is bool
    if kind == "name":
        return type(v) is str and 1 <= len(v) <= 64 and v.isprintable()
    if kind == "schedule":
        return type(v) is list and len(v) <= 16 and all(_is_real(x) and 0 < x < 1 for x in v) \
            and all(a < b for a, b in zip(v, v[1:]))
    if kind == "device":
        if v == "cpu" and type(v) is str:
            return True
        if type(v) is not str or not (v == "cuda" or (v.startswith("cuda:") and v[5:].isdigit()
                                                       and len(v) <= 8)):
            return False
        return CUDA and int(v[5:] or 0) < CUDA_COUNT
    raise AssertionError(kind)


def expected_faults(tree: Any) -> set[str] | None:
    """None when ``tree`` (the overrides of a ``--config`` file) is valid on the default
    preset; otherwise the paths, any of which the one-line refusal may name."""
    if tree is None:
        return None
    if not isinstance(tree, dict):
        return {"config file"}
    faults = set()
    for key, value in tree.items():
        if key in SECTIONS:
            if not isinstance(value, dict):
                faults.add(f"config.{key}")
                continue
            for k, v in value.items():
                spec = SPEC.get(f"{key}.{k}") if isinstance(k, str) else None
                if spec is None:
                    faults.add(f"config.{key}")
                elif not leaf_ok(spec, v):
                    faults.add(f"config.{key}.{k}")
        elif isinstance(key, str) and "." not in key and key in SPEC:
            if not leaf_ok(SPEC[key], value):
                faults.add(f"config.{key}")
        else:
            faults.add("config")
    if faults:
        return faults
    train = tree.get("train", {})
    if train.get("iterations", DEFAULT_ITERATIONS) is None \
            and train.get("time_budget_s", DEFAULT_BUDGET_S) is None:
        return {"config.train.iterations"}
    if train.get("precision") == "float16" and not str(train.get("device", "cpu")).startswith("cuda"):
        return {"config.train.precision"}
    return None


def nested(path: str, value: Any) -> dict:
    """{"a": {"b": value}} for "a.b"."""
    head, _, leaf = path.rpartition(".")
    return {head: {leaf: value}} if head else {leaf: value}


def bad_values(spec: tuple) -> list[Any]:
    """Values of every class that the spec refuses: wrong types, NaN, infinities, values
    beyond each end, bools, lists, null where it is not allowed."""
    kind = spec[0]
    common = [True, [1], {"a": 1}] + ([] if kind in ("int", "real", "choice") and spec[-1]
                                      else [None])
    if kind == "int":
        low, high = spec[1], spec[2]
        return common + [str(low), float(low), low + 0.5, low - 1, high + 1, -(2**70), 1e23]
    if kind == "real":
        low, high, ends = spec[1], spec[2], spec[3]
        vals = common + [str(high), math.nan, INF, -INF, low - 1, -1e300]
        if ends[0] == "(":
            vals += [low, 0.0]
        if ends[1] == ")":
            vals.append(high)
        vals += [high * 1.5 + 1, 10**400]
        return vals
    if kind == "choice":
        return common + ["nope", spec[1][0].upper(), 1, [spec[1][0]]]
    if kind == "flag":
        return common[1:] + ["true", 1, 0, "no"]
    if kind == "name":
        return common + ["", 5, 2.5, ["hexplane"], "a" * 65, "a\nb", "tab\there"]
    if kind == "schedule":
        return common[1:] + [0.5, "0.1", [0.5, 0.2], [0.1, 0.1], [0.0, 0.5], [0.5, 1.0],
                             [math.nan], [True], [-0.1], [(i + 1) / 20 for i in range(17)]]
    if kind == "device":
        return common + ["gpu", "CPU", "cuda:x", "cuda:", 0, "cuda:99", "cpu "] \
            + ([] if CUDA else ["cuda", "cuda:0"])
    raise AssertionError(kind)


def good_values(spec: tuple) -> list[Any]:
    """Values the spec accepts, at and between the ends of each range."""
    kind = spec[0]
    if kind == "int":
        return [spec[1], spec[2], (spec[1] + spec[2]) // 2] + ([None] if spec[-1] else [])
    if kind == "real":
        low, high, ends = spec[1], spec[2], spec[3]
        vals = [low + (high - low) / 3]
        vals += [low] if ends[0] == "[" else [low + 1e-9 * (high - low)]
        vals += [high] if ends[1] == "]" else [high * (1 - 1e-9)]
        if type(low) is int and ends[0] == "[":
            vals.append(int(low))
        return vals + ([None] if spec[-1] else [])
    if kind == "choice":
        return [v for v in spec[1] if v != "float16"]     # float16: with CUDA only
    if kind == "flag":
        return [True, False]
    if kind == "name":
        return ["hexplane", "H2O", "x" * 64]
    if kind == "schedule":
        return [[], [0.5], [0.1, 0.25], [1e-6, 0.5, 0.999999], [(i + 1) / 17 for i in range(16)]]
    if kind == "device":
        return ["cpu"] + (["cuda", "cuda:0"] if CUDA else [])
    raise AssertionError(kind)


#: a base whose stopping rule keeps both fields set, so that null is valid for either
BASE_OVERRIDES = {"train": {"iterations": 2000, "time_budget_s": 60}}

BAD_CASES = [(path, v) for path, spec in SPEC.items() for v in bad_values(spec)]
GOOD_CASES = [(path, v) for path, spec in SPEC.items() for v in good_values(spec)]


# ------------------------------------------------------------------ schema, in-process

def test_spec_and_rules_name_the_same_fields() -> None:
    """The rule table covers every leaf of every section, and nothing else."""
    cfg = ReconstructionConfig()
    leaves = {f"{k}.{kk}" for k, sec in cfg.to_dict().items() if isinstance(sec, dict)
              for kk in sec} | {k for k, v in cfg.to_dict().items() if not isinstance(v, dict)}
    rules = {f"{s}.{k}" if s else k for s, table in RULES.items() for k in table}
    assert leaves == rules == set(SPEC)


def test_the_test_values_are_what_the_spec_says() -> None:
    """(The lists above are the test's own: each bad value breaks the spec, each good one
    keeps it.)"""
    assert all(not leaf_ok(SPEC[p], v) for p, v in BAD_CASES)
    assert all(leaf_ok(SPEC[p], v) for p, v in GOOD_CASES)
    assert len(BAD_CASES) > 500


def test_defaults_and_presets_are_valid_and_unchanged() -> None:
    ReconstructionConfig().validate()
    budgets = {"fast": 60, "default": 120, "quality": 300, "ct": 120}
    for name in PRESETS:
        cfg = load_preset(name)
        cfg.validate()
        assert cfg.preset == name and cfg.method == "hexplane"
        assert cfg.train.iterations is None and cfg.train.time_budget_s == budgets[name]
        assert cfg.field.upsample_at == [0.1, 0.25] and cfg.train.lr_planes == 0.3


@pytest.mark.parametrize("path,value", BAD_CASES, ids=[f"{p}={v!r}"[:60] for p, v in BAD_CASES])
def test_bad_value_is_refused_naming_its_field(path: str, value: Any) -> None:
    base = ReconstructionConfig().updated(BASE_OVERRIDES)
    with pytest.raises(ValueError) as info:
        base.updated(nested(path, value))
    message = str(info.value)
    assert message.startswith(f"config.{path}: "), message
    assert len(message.splitlines()) == 1 and len(message) < 300, message
    with pytest.raises(ValueError, match=f"^config.{path}: "):
        ReconstructionConfig.from_dict(nested(path, value))


@pytest.mark.parametrize("path,value", GOOD_CASES, ids=[f"{p}={v!r}"[:60] for p, v in GOOD_CASES])
def test_good_value_is_kept_as_given(path: str, value: Any) -> None:
    cfg = ReconstructionConfig().updated(BASE_OVERRIDES).updated(nested(path, value))
    section, _, leaf = path.rpartition(".")
    got = getattr(getattr(cfg, section) if section else cfg, leaf)
    assert got == value and type(got) is type(value)


def test_a_run_needs_iterations_or_a_time_budget() -> None:
    with pytest.raises(ValueError, match=r"^config\.train\.iterations: .*time_budget_s"):
        load_preset("default").updated({"train": {"time_budget_s": None}})
    with pytest.raises(ValueError, match=r"^config\.train\.iterations: "):
        ReconstructionConfig().updated({"train": {"iterations": None}})
    assert load_preset("fast").updated({"train": {"iterations": 5}}).train.time_budget_s == 60


def test_float16_needs_cuda() -> None:
    with pytest.raises(ValueError, match=r"^config\.train\.precision: float16 needs a CUDA"):
        ReconstructionConfig().updated({"train": {"precision": "float16"}})
    if CUDA:
        cfg = ReconstructionConfig().updated({"train": {"precision": "float16", "device": "cuda"}})
        assert cfg.train.precision == "float16"


def test_unknown_keys_and_non_mappings_are_refused() -> None:
    for data, start in (({"trian": {}}, "config: unknown key 'trian'"),
                        ({"train": {"itrations": 3}}, "config.train: unknown key 'itrations'"),
                        ({"train": [1]}, "config.train: expected a mapping"),
                        ({"field": None}, "config.field: expected a mapping"),
                        ({1: 2}, "config: unknown key 1"),
                        ({"train": {None: 2}}, "config.train: unknown key None")):
        with pytest.raises(ValueError) as info:
            ReconstructionConfig.from_dict(data)
        assert str(info.value).startswith(start), info.value


# ------------------------------------------------------------------ the command line

T, V, H, W = 2, 2, 8, 8


def write_tiny_recording(path: Path) -> Path:
    """A tiny valid recording (2 frames, 2 views, 8 x 8 pixels), written with h5py."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["/exchange/data"] = rng.random((T, V, H, W), dtype=np.float32)
        f["/exchange/theta"] = np.array([0.0, 90.0])
        f["/exchange/time"] = np.arange(T, dtype=np.float64)
    return path


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_recording(tmp_path_factory.mktemp("rec") / "rec.h5")


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """TimeoutError if the block runs longer than ``seconds`` (a hang fails, not blocks)."""
    def fire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")
    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_refused(recording: Path, config: Path | str, capsys: pytest.CaptureFixture,
                out_dir: Path, extra: tuple[str, ...] = ()) -> str:
    """``xray4d reconstruct REC --out OUT --config CONFIG`` in-process: exit 2, one line on
    stderr, no traceback, nothing on stdout, nothing written; returns the line."""
    out_dir.mkdir(exist_ok=True)
    before = sorted(out_dir.iterdir())
    with time_limit(60):
        status = cli.main(["reconstruct", str(recording), "--out", str(out_dir / "out.h5"),
                           "--config", str(config), "--quiet", *extra])
    out, err = capsys.readouterr()
    assert status == 2, (status, out, err)
    assert len(err.splitlines()) == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and out == ""
    assert err.startswith("xray4d reconstruct: error: ")
    assert sorted(out_dir.iterdir()) == before  # no output, checkpoint, preview or temp file
    return err.strip()


def write(tmp_path: Path, text: str | bytes, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


#: the issue's findings (and one of each class of bad value) as --config files
CLI_VALUES = {
    "string": ("train: {lr_planes: fast}", "config.train.lr_planes"),
    "nan": ("train: {lr_decoder: .nan}", "config.train.lr_decoder"),
    "infinity": ("field: {init_scale: .inf}", "config.field.init_scale"),
    "negative iterations": ("train: {iterations: -5}", "config.train.iterations"),
    "zero iterations": ("conventional: {iterations: 0}", "config.conventional.iterations"),
    "negative budget": ("train: {time_budget_s: -1}", "config.train.time_budget_s"),
    "negative rate": ("train: {lr_planes: -0.3}", "config.train.lr_planes"),
    "negative value_max": ("field: {value_max: -1.0}", "config.field.value_max"),
    "zero frames_per_batch": ("train: {frames_per_batch: 0}", "config.train.frames_per_batch"),
    "zero space_scale": ("field: {space_scale: 0}", "config.field.space_scale"),
    "zero initial_scale": ("field: {initial_scale: 0}", "config.field.initial_scale"),
    "unsorted upsample_at": ("field: {upsample_at: [0.5, 0.2]}", "config.field.upsample_at"),
    "float seed": ("train: {seed: 1.0e+23}", "config.train.seed"),
    "huge seed": ("train: {seed: 9223372036854775808}", "config.train.seed"),
    "negative seed": ("train: {seed: -1}", "config.train.seed"),
    "bool seed": ("train: {seed: true}", "config.train.seed"),
    "list method": ("method: [hexplane]", "config.method"),
    "unknown decoder": ("field: {decoder: cnn}", "config.field.decoder"),
    "unknown device": ("train: {device: tpu}", "config.train.device"),
    "device index": ("train: {device: 'cuda:99'}", "config.train.device"),
    "bool as number": ("regularizers: {plane_tv: yes}", "config.regularizers.plane_tv"),
    "number as flag": ("conventional: {nonnegative: 1}", "config.conventional.nonnegative"),
    "unknown key": ("train: {iteration: 5}", "config.train"),
    "section not a mapping": ("physics: H2O", "config.physics"),
    "no stopping rule": ("train: {time_budget_s: null}", "config.train.iterations"),
}
if not CUDA:
    CLI_VALUES["cuda without CUDA"] = ("train: {device: cuda}", "config.train.device")


@pytest.mark.parametrize("case", sorted(CLI_VALUES))
def test_cli_refuses_bad_value_in_one_line(case: str, recording: Path, tmp_path: Path,
                                           capsys) -> None:
    text, where = CLI_VALUES[case]
    cfg = write(tmp_path, text + "\n")
    line = run_refused(recording, cfg, capsys, tmp_path / "out")
    if case == "no stopping rule":  # only the resolved config knows: no file to name
        assert f"{where}: " in line, line
    else:
        assert f"{cfg}: {where}: " in line, line


def _deep_block_mapping(levels: int) -> str:
    return "".join(" " * i + "a:\n" for i in range(levels)) + " " * levels + "1\n"


#: --config files that are not config files: (builder(tmp_path) -> path, fault in the line)
CLI_FILES = {
    "flow nesting 5000 deep": (lambda d: write(d, "[" * 5000 + "]" * 5000),
                               "nested deeper than 64 levels"),
    "block nesting 200 deep": (lambda d: write(d, _deep_block_mapping(200)),
                               "nested deeper than 64 levels"),
    "billion laughs": (lambda d: write(d, "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
                                          + "".join(f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n"
                                                    for p, n in zip("abcdefgh", "bcdefghi"))),
                       "aliases (*name) are not allowed"),
    "one alias": (lambda d: write(d, "train: {seed: &s 1, render_chunk: *s}\n"),
                  "aliases (*name) are not allowed"),
    "/dev/zero": (lambda d: Path("/dev/zero"), "is a character device, not a regular file"),
    "symlink to /dev/zero": (lambda d: _symlink(d, "/dev/zero"), "is a character device"),
    "named pipe": (lambda d: _fifo(d), "is a named pipe, not a regular file"),
    "directory": (lambda d: d, "is a directory, not a regular file"),
    "missing file": (lambda d: d / "missing.yaml", "cannot open (No such file or directory)"),
    "oversize file": (lambda d: write(d, "# padding\n" * 7000), "is 70000 bytes"),
    "binary garbage": (lambda d: write(d, bytes(np.random.default_rng(1).integers(
        0, 256, 4096, dtype=np.uint8))), "not UTF-8 text"),
    "NUL byte": (lambda d: write(d, "train: {seed: 1}\x00\n"), "not valid YAML"),
    "two documents": (lambda d: write(d, "train: {}\n---\nfield: {}\n"), "not valid YAML"),
    "bad YAML": (lambda d: write(d, "train: {seed: [}\n"), "not valid YAML"),
    "list at the top": (lambda d: write(d, "- train\n- field\n"),
                        "expected a mapping of config keys, got a list"),
    "number at the top": (lambda d: write(d, "42\n"), "expected a mapping of config keys, got 42"),
    "5000-digit integer": (lambda d: write(d, "train: {seed: " + "9" * 5000 + "}\n"),
                           "an integer of more than 4300 digits"),
    "impossible date": (lambda d: write(d, "train: {seed: 2020-13-45}\n"),
                        "a YAML value cannot be read"),
    "python tag": (lambda d: write(d, "train: {seed: !!python/object/apply:os.getpid []}\n"),
                   "not valid YAML"),
}
if os.path.isdir("/proc/self"):
    CLI_FILES["/proc file"] = (lambda d: Path("/proc/self/status"), "is a file of /proc, /sys")
    CLI_FILES["symlink to a /proc file"] = (lambda d: _symlink(d, "/proc/self/status"),
                                            "is a file of /proc, /sys")


def _symlink(d: Path, target: str) -> Path:
    link = d / "link.yaml"
    link.symlink_to(target)
    return link


def _fifo(d: Path) -> Path:
    path = d / "pipe.yaml"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("case", sorted(CLI_FILES))
def test_cli_refuses_what_is_not_a_config_file(case: str, recording: Path, tmp_path: Path,
                                               capsys) -> None:
    build, fault = CLI_FILES[case]
    src = tmp_path / "src"
    src.mkdir()
    cfg = build(src)
    line = run_refused(recording, cfg, capsys, tmp_path / "out")
    # what is not a regular file is refused by the input checks that run first (--config),
    # the rest by the config reader (config file)
    assert (f"{cfg}: config file: " in line or f"{cfg}: --config: " in line), line
    assert fault in line or ("--config: " in line and any(
        word in fault.lower() and word in line.lower()
        for word in ("device", "pipe", "directory", "no such file"))), line
    assert len(line) < 300


def test_config_file_limits_are_at_their_documented_values(tmp_path: Path) -> None:
    """65536 bytes are read, 65537 are not; 64 levels of nesting are read, 65 are not."""
    at = write(tmp_path, "#" * 65535 + "\n", "at.yaml")
    over = write(tmp_path, "#" * 65536 + "\n", "over.yaml")
    assert load_config_file(at) == {}
    with pytest.raises(InputError, match="65537 bytes"):
        load_config_file(over)
    # the top mapping is level 1, "train" and its mapping level 2, "seed" and the outer list
    # level 3: 62 nested lists reach level 64
    ok = write(tmp_path, "train: {seed: " + "[" * 62 + "]" * 62 + "}\n", "ok.yaml")
    deep = write(tmp_path, "train: {seed: " + "[" * 63 + "]" * 63 + "}\n", "deep.yaml")
    with pytest.raises(InputError, match=r"config\.train\.seed: must be an integer"):
        load_config_file(ok)
    with pytest.raises(InputError, match="config file: nested deeper than 64 levels"):
        load_config_file(deep)
    many = write(tmp_path, "train: {seed: [" + "0," * 10_000 + "]}\n", "many.yaml")
    with pytest.raises(InputError, match="more than 10000 YAML nodes"):
        load_config_file(many)


def test_empty_and_complete_config_files_load(tmp_path: Path) -> None:
    """An empty file overrides nothing; a saved complete config loads back unchanged; the
    configs of the existing tests and docs still load."""
    assert load_config_file(write(tmp_path, "", "empty.yaml")) == {}
    assert load_config_file(write(tmp_path, "# only a comment\n", "c.yaml")) == {}
    cfg = load_preset("quality").updated({"train": {"seed": 7}, "physics": {"beta": "fitted"}})
    data = load_config_file(write(tmp_path, cfg.to_yaml(), "full.yaml"))
    assert ReconstructionConfig.from_dict(data) == cfg
    assert load_config_file(write(tmp_path, "\ufefftrain: {seed: 3}\n", "bom.yaml")) == \
        {"train": {"seed": 3}}
    text = "train:\n  checkpoint_every_s: 0.0\n  frames_per_batch: 2\n"
    assert load_config_file(write(tmp_path, text, "ckpt.yaml")) == \
        {"train": {"checkpoint_every_s": 0.0, "frames_per_batch": 2}}
    assert cli.read_config_overrides(tmp_path / "ckpt.yaml") == yaml.safe_load(text)


def test_valid_config_file_resolves_through_the_cli(recording: Path, tmp_path: Path) -> None:
    from xray4d.commands.reconstruct import build_config

    cfg = write(tmp_path, "method: fbp\ntrain: {seed: 11, iterations: 7}\n"
                          "field: {upsample_at: [0.2, 0.4, 0.8], value_max: 2}\n", "ok.yaml")
    args = cli.build_parser().parse_args(["reconstruct", str(recording), "--out",
                                          str(tmp_path / "o.h5"), "--config", str(cfg),
                                          "--preset", "fast"])
    resolved = build_config(args)
    assert resolved.method == "fbp" and resolved.preset == "fast"
    assert (resolved.train.seed, resolved.train.iterations, resolved.train.time_budget_s) == \
        (11, 7, 60)
    assert resolved.field.upsample_at == [0.2, 0.4, 0.8] and resolved.field.value_max == 2


def test_real_program_refuses_bad_config_files_in_one_line(recording: Path,
                                                           tmp_path: Path) -> None:
    """The real program (a fresh interpreter, default recursion limit) on the findings that
    printed thousands of lines, hung or ate the memory: exit 2, one line, no traceback."""
    cases = {
        "deep.yaml": write(tmp_path, "[" * 5000 + "]" * 5000, "deep.yaml"),
        "laughs.yaml": CLI_FILES["billion laughs"][0](tmp_path),
        "pipe.yaml": _fifo(tmp_path),
        "/dev/zero": Path("/dev/zero"),
        "seed.yaml": write(tmp_path, "train: {seed: .nan}\n", "seed.yaml"),
    }
    before = sorted(tmp_path.iterdir())
    procs = {name: subprocess.Popen(
        [sys.executable, "-m", "xray4d", "reconstruct", str(recording), "--out",
         str(tmp_path / f"out{i}.h5"), "--config", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i, (name, path) in enumerate(cases.items())}
    for name, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise AssertionError(f"{name}: still running after 120 s") from None
        assert proc.returncode == 2, (name, stderr[-2000:])
        assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr, stderr[-2000:]
        assert str(cases[name]) in stderr and stdout == ""
    assert sorted(tmp_path.iterdir()) == before
