"""Property-based fuzzing of ``--config`` files (``hypothesis``; issue 27).

Random YAML trees (the config's sections and keys mixed with unknown ones; values
valid for their field, or of any type: NaN, infinities, huge integers, strings,
lists, mappings, null) are written to a file and given to ``xray4d reconstruct``.
The verdict comes from :func:`test_config.expected_faults`, written from the
issue's specification, not from ``xray4d.config``: a valid tree must resolve (the
fit is not run), an invalid one must be refused naming one of its faulty
fields. Random text and bytes (YAML fragments, anchors and aliases, deep
nesting, control characters) must load or be refused. Every refusal goes
through ``xray4d.cli.main`` in-process: exit 2, exactly one line on stderr, no
traceback, nothing written; every example runs under a time limit (a hang
fails).

XRAY4D_CONFIG_FUZZ_EXAMPLES=2000 for a longer hunt (default 200 per property).
"""
from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from test_config import (SECTIONS, SPEC, bad_values, expected_faults, good_values, time_limit,
                         write_tiny_recording)
from xray4d import cli
from xray4d.commands.reconstruct import build_config
from xray4d.config import ReconstructionConfig
from xray4d.errors import InputError

EXAMPLES = int(os.environ.get("XRAY4D_CONFIG_FUZZ_EXAMPLES", "200"))
FUZZ = settings(deadline=None, max_examples=EXAMPLES, suppress_health_check=list(HealthCheck),
                derandomize=False)
#: seconds one example may take (they take milliseconds; a hang or a blow-up fails)
EXAMPLE_LIMIT_S = 20
PARSER = cli.build_parser()

# ------------------------------------------------------------------ strategies

NAMES = sorted({n for spec in SPEC.values() if spec[0] == "choice" for n in spec[1]}
               | {"cpu", "cuda", "cuda:0", "cuda:1", "hexplane", "fbp", "H2O", ""})
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=-(2**80), max_value=2**80),
    st.integers(0, 400).map(lambda n: 10**n),  # up to 10^400
    st.sampled_from([0, 1, -1, 2**63 - 1, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 1e300, math.nan, math.inf, -math.inf, 0.5, 1.0]),
    st.text(max_size=12), st.sampled_from(NAMES))
junk = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.one_of(st.text(max_size=6), st.sampled_from(sorted(SPEC)),
                                                st.integers()), inner, max_size=4),
                    max_leaves=8)


def good(spec: tuple) -> st.SearchStrategy:
    """Values valid for a field of kind ``spec`` (drawn anew, and the test's list)."""
    kind = spec[0]
    if kind == "int":
        s = st.integers(spec[1], spec[2])
    elif kind == "real":
        low, high, ends = spec[1], spec[2], spec[3]
        s = st.floats(low, high, exclude_min=ends[0] == "(", exclude_max=ends[1] == ")")
    elif kind == "schedule":
        s = st.lists(st.floats(0, 1, exclude_min=True, exclude_max=True), max_size=16,
                     unique=True).map(sorted)
    elif kind == "name":
        s = st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")),
                    min_size=1, max_size=64)
    else:
        s = st.nothing()
    return st.one_of(s, st.sampled_from(good_values(spec)))


def noisy_value(path: str) -> st.SearchStrategy:
    """A valid value, a value just out of range or of a wrong type (the test's list), or
    anything."""
    return st.one_of(good(SPEC[path]), st.sampled_from(bad_values(SPEC[path])), junk)


def section(name: str, noisy: bool) -> st.SearchStrategy:
    """A mapping of some of a section's keys: valid values only, or (``noisy``) valid values
    mixed with values of any type, unknown keys and non-mappings."""
    keys = [p.split(".", 1)[1] for p in SPEC if p.startswith(name + ".")]
    if not noisy:
        return st.fixed_dictionaries({}, optional={k: good(SPEC[f"{name}.{k}"]) for k in keys})
    known = st.fixed_dictionaries({}, optional={k: noisy_value(f"{name}.{k}") for k in keys})
    with_unknown = st.tuples(known, st.dictionaries(st.text(max_size=8), junk, min_size=1,
                                                    max_size=2)).map(lambda kv: {**kv[0], **kv[1]})
    return st.one_of(known, known, with_unknown, junk)


def tree(noisy: bool) -> st.SearchStrategy:
    top = {k: noisy_value(k) if noisy else good(SPEC[k]) for k in ("method", "preset")}
    return st.fixed_dictionaries({}, optional={**top, **{name: section(name, noisy)
                                                         for name in SECTIONS}})


def _with_leaf(tree: dict, path: str, value: Any) -> dict:
    head, _, leaf = path.rpartition(".")
    if head:
        tree[head] = {**tree.get(head, {}), leaf: value}
    else:
        tree[leaf] = value
    return tree


#: a valid tree with one leaf set to a value just out of range, of a wrong type, or anything
one_fault = st.sampled_from(sorted(SPEC)).flatmap(
    lambda path: st.builds(_with_leaf, tree(noisy=False), st.just(path),
                           st.one_of(st.sampled_from(bad_values(SPEC[path])), junk)))

#: config trees: valid ones, ones with one fault, noisy ones, and anything at all
trees = st.one_of(tree(noisy=False), one_fault, tree(noisy=True), junk)


def _yaml_fragments() -> st.SearchStrategy:
    """Text near YAML: dumped trees cut and spliced with syntax, aliases, tags and deep
    nesting."""
    syntax = st.sampled_from(["[", "]", "{", "}", ":", ": ", "- ", "&a ", "*a", "!!binary ",
                              "!!python/tuple ", "!!set ", "? ", "---\n", "...\n", "\n", "  ",
                              "\t", "'", '"', "#", "<<: *a\n", "%YAML 1.1\n", "\x00", "\x85",
                              "\ufeff", "2020-13-45", "0x" + "f" * 4400, "1_000", "1:2:3",
                              ".nan", ".inf", "~", "yes", "train:\n  seed: "])
    dumped = trees.map(lambda t: yaml.safe_dump(t, allow_unicode=True))
    deep = st.integers(1, 300).map(lambda n: "train: {seed: " + "[" * n + "]" * n + "}\n")
    spliced = st.tuples(dumped, st.lists(st.tuples(st.integers(0, 400), syntax), max_size=6)).map(
        lambda t: _splice(*t))
    return st.one_of(spliced, deep, st.text(max_size=200), dumped)


def _splice(text: str, edits: list[tuple[int, str]]) -> str:
    for at, piece in edits:
        at = at % (len(text) + 1)
        text = text[:at] + piece + text[at:]
    return text


contents = st.one_of(_yaml_fragments().map(lambda t: t.encode("utf-8", "surrogatepass")),
                     st.binary(max_size=300))


# ------------------------------------------------------------------ the contract

@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_recording(tmp_path_factory.mktemp("rec") / "rec.h5")


def _args(recording: Path, config: Path, out: Path) -> Any:
    return PARSER.parse_args(["reconstruct", str(recording), "--out", str(out), "--config",
                              str(config), "--quiet", "--no-preview"])


def _refusal_line(recording: Path, config: Path, out: Path, capsys) -> str:
    """Run the CLI in-process on a config that build_config refused: exit 2, one line,
    no traceback, nothing on stdout; the line."""
    capsys.readouterr()
    status = cli.main(["reconstruct", str(recording), "--out", str(out), "--config",
                       str(config), "--quiet", "--no-preview"])
    stdout, err = capsys.readouterr()
    assert status == 2, (status, stdout, err)
    assert len(err.splitlines()) == 1 and err.endswith("\n"), err
    assert "Traceback" not in err and stdout == ""
    assert err.startswith("xray4d reconstruct: error: ")
    return err.strip()


def _check(recording: Path, content: bytes, capsys) -> tuple[ReconstructionConfig | None, str]:
    """Resolve ``content`` as a --config file: (config, "") or (None, the refusal line)."""
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        config = d / "config.yaml"
        config.write_bytes(content)
        out = d / "out.h5"
        with time_limit(EXAMPLE_LIMIT_S):
            try:
                cfg = build_config(_args(recording, config, out))
            except (InputError, cli.UsageError):
                line = _refusal_line(recording, config, out, capsys)
                cfg = None
        assert sorted(p.name for p in d.iterdir()) == ["config.yaml"]  # nothing written
    return cfg, ("" if cfg is not None else line)


@pytest.mark.slow
@FUZZ
@given(tree=trees)
def test_config_tree_is_resolved_or_refused_as_the_spec_says(tree: Any, recording: Path,
                                                              capsys) -> None:
    text = yaml.safe_dump(tree, allow_unicode=True)
    tree = yaml.safe_load(text)  # what the file holds (the test's own reading)
    faults = expected_faults(tree)
    cfg, line = _check(recording, text.encode("utf-8", "surrogatepass"), capsys)
    event("accepted" if cfg is not None else "refused")
    if faults is None:
        assert cfg is not None, line
        assert isinstance(cfg, ReconstructionConfig)
        ReconstructionConfig.from_dict(cfg.to_dict())  # the resolved config is valid as a whole
        for key, value in (tree or {}).items():        # and holds what the file says
            if key in SECTIONS:
                for k, v in value.items():
                    assert getattr(getattr(cfg, key), k) == v or v != v
            elif key == "method":
                assert cfg.method == value
    else:
        assert cfg is None, (tree, faults)
        assert any(f"{fault}: " in line for fault in faults), (line, faults)
        assert len(line) < 400, line


@pytest.mark.slow
@FUZZ
@given(content=contents)
def test_config_text_loads_or_is_refused_in_one_line(content: bytes, recording: Path,
                                                      capsys) -> None:
    cfg, line = _check(recording, content, capsys)
    event("accepted" if cfg is not None else "refused")
    if cfg is not None:
        cfg.validate()
    else:
        assert len(line) < 400, line


def test_fuzz_strategies_reach_both_verdicts() -> None:
    """The tree strategy makes valid configs of several keys and invalid ones (else the
    first property would test one verdict only)."""
    seen: set[str] = set()

    @settings(max_examples=300, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(trees)
    def draw(tree: Any) -> None:
        faults = expected_faults(yaml.safe_load(yaml.safe_dump(tree)))
        if faults is None and isinstance(tree, dict) and len(tree) >= 3:
            seen.add("valid")
        elif faults is not None and isinstance(tree, dict):
            seen.add("invalid")

    draw()
    assert seen == {"valid", "invalid"}
