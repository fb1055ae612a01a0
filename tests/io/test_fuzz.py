"""Property-based fuzzing of the file readers and the read-only verbs (``hypothesis``).

Recording files are generated with random shapes and dtypes, missing, extra
and misplaced datasets, NaN/Inf, empty arrays, mismatched theta ((V,) and
(T, V)), bad or non-monotone times, wrong or non-string attributes, datasets
too large to load, and then truncated, zero-filled, bit-flipped or replaced by
non-HDF5 bytes. Each case must either load, and then give back exactly what
was written, or be refused with :class:`xray4d.io.InputError`: one line
naming the file, a dataset that really is at fault, and the fault.

The verdict comes from :func:`contract_faults`, an oracle written from
``data-format.md`` alone (it never calls xray4d). The read-only verbs run on
every case in-process, and on a smaller sample as a real program: exit 2,
exactly one line on stderr, no traceback, nothing written.
"""
from __future__ import annotations

import contextlib
import io as _stdio
import os
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from xray4d import cli
from xray4d.io import InputError, load_reconstruction, load_recording

QUANTITIES = ("line_integral", "intensity", "phase")
ROOT_NUMBERS = ("pixel_size_m", "energy_keV", "propagation_distance_m")
GOOD_DTYPES = ("float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8",
               "uint16", "uint32", "uint64")
BAD_DTYPES = ("bool", "complex64", "bytes", "vlen_str", "compound")
#: a declared shape whose float32 array is far larger than any machine this runs on (~275 GB)
HUGE = (2048, 8, 2048, 2048)

#: cases per in-process property; XRAY4D_FUZZ_EXAMPLES=5000 for a longer hunt
EXAMPLES = int(os.environ.get("XRAY4D_FUZZ_EXAMPLES", "300"))
FAST = settings(deadline=None, max_examples=EXAMPLES, suppress_health_check=list(HealthCheck))


# ------------------------------------------------------------------ what a file holds

@dataclass
class Entry:
    """One HDF5 object to write: an array (or a special marker) with storage options."""

    value: Any                      # np.ndarray | "group" | "empty" | "dangling" | ("huge", shape)
    storage: str = "contiguous"     # contiguous | chunked | gzip | fletcher32
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass
class Spec:
    """A recording file to write: entries by path, root attributes, and damage after writing."""

    shape: tuple[int, int, int, int]
    entries: dict[str, Entry]
    root_attrs: dict[str, Any]
    damage: tuple[str, float] = ("none", 0.0)


# ------------------------------------------------------------------ the oracle (contract only)

def _is_array(e: Entry | None) -> bool:
    return e is not None and isinstance(e.value, np.ndarray)


def _array_ok(e: Entry, ranks: tuple[int, ...], as_dtype) -> bool:
    """Contract checks that need nothing else: real numbers, rank, non-empty, finite."""
    if not _is_array(e):
        return False
    a = e.value
    if a.dtype.kind not in "iuf" or a.ndim not in ranks or a.size == 0:
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.all(np.isfinite(a.astype(as_dtype))))


def _quantity(e: Entry) -> str | None:
    """The quantity the attribute names, or None when it names none of them."""
    if "quantity" not in e.attrs:
        return "line_integral"
    q = e.attrs["quantity"]
    if isinstance(q, np.ndarray) and q.shape == (1,) and q.dtype.kind in "OSU":
        q = q[0]
    if isinstance(q, (bytes, np.bytes_)):
        q = q.decode()
    return q if isinstance(q, str) and q in QUANTITIES else None


def _root_number(value: Any, key: str) -> float | None:
    """The value of a numeric root attribute, or None when the contract is broken."""
    try:
        arr = np.asarray(value)
        if arr.size != 1 or arr.dtype.kind not in "iufSU":
            return None
        x = float(arr.reshape(-1)[0])
    except (TypeError, ValueError):
        return None
    if not np.isfinite(x) or x < 0 or (x == 0 and key != "propagation_distance_m"):
        return None
    return x


def contract_faults(spec: Spec) -> set[str]:
    """Every dataset (or root attribute) of ``spec`` that breaks ``data-format.md``.

    Empty: a valid recording. Attributes appear as ``attr:NAME``. A dataset
    declared too large to load is a fault too (it cannot be read).
    """
    faults: set[str] = set()
    ent = spec.entries
    data = ent.get("/exchange/data")
    if data is not None and isinstance(data.value, tuple):        # declared huge
        faults.add("/exchange/data")
        return faults
    if data is None or not _array_ok(data, (4,), np.float32):
        faults.add("/exchange/data")
        shape = None
    else:
        shape = data.value.shape
    if data is not None and _quantity(data) is None:
        faults.add("/exchange/data")
    quantity = _quantity(data) if data is not None else None

    def check(name: str, ranks: tuple[int, ...], as_dtype, shapes, required: bool = False):
        e = ent.get(name)
        if e is None:
            if required:
                faults.add(name)
            return
        if not _array_ok(e, ranks, as_dtype):
            faults.add(name)
        elif shape is not None and shapes is not None and e.value.shape not in shapes:
            faults.add(name)

    t, v, h, w = shape if shape is not None else (None,) * 4
    check("/exchange/theta", (1, 2), np.float64,
          [(v,), (t, v)] if shape else None, required=True)
    check("/exchange/time", (1,), np.float64, [(t,)] if shape else None)
    tm = ent.get("/exchange/time")
    if _array_ok(tm, (1,), np.float64) and tm.value.size > 1 and \
            not np.all(np.diff(tm.value.astype(np.float64)) > 0):
        faults.add("/exchange/time")
    for name in ("/exchange/data_white", "/exchange/data_dark"):
        e = ent.get(name)
        shapes = None
        if shape is not None and _is_array(e) and e.value.ndim in (3, 4):
            shapes = [(v, h, w), (e.value.shape[0], v, h, w)]
        check(name, (3, 4), np.float32, shapes)
    if quantity == "intensity" and "/exchange/data_white" not in ent:
        faults.add("/exchange/data_white")
    fields = [ent.get(n) for n in ("/exchange/data_white", "/exchange/data_dark")]
    if fields[0] is not None and shape is not None and all(
            f is None or (_array_ok(f, (3, 4), np.float32)
                          and f.value.shape in ((v, h, w), (f.value.shape[0], v, h, w)))
            for f in fields):
        # data-format.md: every view needs a pixel where the flat (averaged over its frames)
        # is above the dark (above 0 without one), else no transmission can be computed
        flat, dark = (None if f is None else
                      f.value.astype(np.float32).reshape(-1, v, h, w).mean(0, dtype=np.float64)
                      for f in fields)
        gain = flat - (0.0 if dark is None else dark)
        if not np.all(np.any(gain.reshape(v, -1) > 0, axis=1)):
            faults.add("/exchange/data_white")
    check("/ground_truth/volume", (4,), np.float32, [(t, h, w, w)] if shape else None)
    for key in ROOT_NUMBERS:
        if key in spec.root_attrs and _root_number(spec.root_attrs[key], key) is None:
            faults.add(f"attr:{key}")
    return faults


# ------------------------------------------------------------------ strategies

def _values(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    if dtype in ("bool",):
        return rng.random(shape) > 0.5
    if dtype == "complex64":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    if dtype == "bytes":
        return np.full(shape, b"ab", dtype="S2")
    if dtype == "vlen_str":
        return np.array(np.full(shape, "x", dtype=object), dtype=h5py.string_dtype())
    if dtype == "compound":
        return np.zeros(shape, dtype=[("a", "<i4"), ("b", "<f4")])
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (rng.standard_normal(shape) * 10).astype(dt)
    info = np.iinfo(dt)
    return rng.integers(max(info.min, -1000), min(info.max, 1000), size=shape, endpoint=True,
                        dtype=dt)


@st.composite
def arrays(draw, shape: tuple[int, ...], good: bool = True, float_only: bool = False,
           finite: bool = False) -> np.ndarray:
    """An array of ``shape``: a valid dtype (or, unless ``good``, maybe an invalid one),
    sometimes (unless ``finite``) with a NaN, +Inf or -Inf somewhere, or float64 values
    beyond float32."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    choices = ("float32", "float64") if float_only else GOOD_DTYPES
    dtype = draw(st.sampled_from(choices + (() if good else BAD_DTYPES)))
    a = _values(rng, shape, dtype)
    if not finite and a.dtype.kind == "f" and a.size and draw(st.integers(0, 9)) == 0:
        bad = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e39]))
        if bad == 1e39:
            a = a.astype(np.float64)
        a.reshape(-1)[draw(st.integers(0, a.size - 1))] = bad
    return a


def _mutated_shape(draw, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape near ``shape``: another rank, a dimension off by one, or a zero dimension."""
    how = draw(st.sampled_from(["rank", "dim", "zero"]))
    s = list(shape)
    if how == "rank":
        rank = draw(st.integers(0, 5).filter(lambda r: r != len(shape)))
        return tuple(draw(st.integers(1, 3)) for _ in range(rank))
    i = draw(st.integers(0, max(0, len(s) - 1))) if s else 0
    if not s:
        return (0,)
    s[i] = 0 if how == "zero" else s[i] + draw(st.sampled_from([-1, 1]))
    return tuple(max(0, n) for n in s)


@st.composite
def entry(draw, shape: tuple[int, ...], optional: bool, good_p: int = 6,
          float_only: bool = False) -> Entry | None:
    """A dataset meant to have ``shape``: mostly right, sometimes absent or broken."""
    kind = draw(st.integers(0, 9))
    if optional and kind == 0:
        return None
    if not optional and kind == 0 and good_p < 10 and draw(st.booleans()):
        return None
    storage = draw(st.sampled_from(["contiguous", "chunked", "gzip", "fletcher32"]))
    if kind < good_p:
        return Entry(draw(arrays(shape, good=True, float_only=float_only, finite=good_p >= 10)),
                     storage)
    special = draw(st.sampled_from(["shape", "shape", "dtype", "group", "empty", "dangling"]))
    if special == "shape":
        return Entry(draw(arrays(_mutated_shape(draw, shape), float_only=float_only)), storage)
    if special == "dtype":
        return Entry(draw(arrays(shape, good=False)), storage)
    return Entry(special)


QUANTITY_ATTRS = st.one_of(
    st.sampled_from(QUANTITIES),
    st.sampled_from(QUANTITIES).map(str.encode),
    st.sampled_from(QUANTITIES).map(lambda q: np.array([q], dtype=h5py.string_dtype())),
    st.sampled_from(["", "counts", "Line_Integral", "line_integral ", "absorption"]),
    st.integers(-3, 3), st.floats(allow_nan=True),
    st.just(np.array(["line_integral", "phase"], dtype=h5py.string_dtype())),
    st.just("empty"),
)

ROOT_VALUES = st.one_of(
    st.floats(1e-9, 1e3), st.floats(1e-9, 1e3).map(lambda x: np.array([x])),
    st.sampled_from([0.0, -1.0, np.nan, np.inf, -np.inf]), st.integers(-2, 5),
    st.sampled_from(["abc", "2.5", "", "1e-6"]), st.just(np.array([1e-6, 2e-6])),
    st.just(np.zeros(0)), st.just("empty"),
)


@st.composite
def recording_specs(draw, damage: bool = True) -> Spec:
    """A recording file: mostly valid, with every kind of fault the contract names."""
    t, v, h, w = (draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4)),
                  draw(st.integers(1, 4)))
    # a third of the files are meant to be valid (faults may still slip in through NaN draws)
    clean = draw(st.integers(0, 2)) == 0
    g = 10 if clean else 0
    ent: dict[str, Entry] = {}

    def put(name: str, e: Entry | None) -> None:
        if e is not None:
            ent[name] = e

    if not clean and draw(st.integers(0, 40)) == 0:
        put("/exchange/data", Entry(("huge", HUGE), "chunked"))
    else:
        put("/exchange/data", draw(entry((t, v, h, w), optional=False, good_p=max(g, 8))))
    data = ent.get("/exchange/data")
    if data is not None and isinstance(data.value, np.ndarray) and draw(st.booleans()):
        data.attrs["quantity"] = draw(st.sampled_from(("line_integral", "phase")) if clean
                                      else QUANTITY_ATTRS)
    if data is not None and draw(st.integers(0, 4)) == 0:
        data.attrs["units"] = "pixel"                                  # extra attribute
    theta_shape = draw(st.sampled_from([(v,), (t, v)]))
    put("/exchange/theta", draw(entry(theta_shape, optional=False, good_p=max(g, 7),
                                      float_only=True)))
    put("/exchange/time", draw(entry((t,), optional=True, good_p=max(g, 7), float_only=True)))
    tm = ent.get("/exchange/time")
    if tm is not None and _is_array(tm) and tm.value.shape == (t,) and tm.value.dtype.kind == "f":
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        order = "increasing" if clean else draw(st.sampled_from(["increasing", "increasing",
                                                                  "shuffled", "repeat"]))
        base = np.cumsum(rng.random(t) + 0.01) * draw(st.sampled_from([1e-6, 1.0, 1e3]))
        if order == "shuffled":
            base = base[::-1]
        if order == "repeat" and t > 1:
            base[1] = base[0]
        finite = np.isfinite(tm.value)
        tm.value = np.where(finite, base, tm.value).astype(tm.value.dtype)
    for name in ("data_white", "data_dark"):
        if draw(st.integers(0, 3)) == 0:
            n = draw(st.sampled_from([None, 1, 2]))
            put(f"/exchange/{name}", draw(entry((v, h, w) if n is None else (n, v, h, w),
                                                optional=False, good_p=max(g, 7))))
    if draw(st.booleans()):
        put("/ground_truth/volume", draw(entry((t, h, w, w), optional=False, good_p=max(g, 7))))
    # extra datasets and groups anywhere: to be ignored
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(["/exchange/data_extra", "/exchange/theta2", "/instrument/x",
                                     "/extra", "/ground_truth/notes", "/exchange/dataX"]))
        if name not in ent:
            ent[name] = Entry(draw(arrays((draw(st.integers(1, 3)),), good=False)))
    root: dict[str, Any] = {}
    for key in ROOT_NUMBERS:
        if draw(st.integers(0, 2)) == 0:
            root[key] = draw(st.floats(1e-9, 1e3) if clean else ROOT_VALUES)
    if draw(st.integers(0, 3)) == 0:
        root["description"] = draw(st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20))
    if draw(st.integers(0, 5)) == 0:
        root["operator"] = draw(st.one_of(st.text("abc", max_size=5), st.integers(-1000, 1000)))   # extra attribute
    dmg = ("none", 0.0)
    if damage and not clean and draw(st.integers(0, 4)) == 0:
        dmg = (draw(st.sampled_from(["truncate", "zero_tail", "flip", "random", "empty", "text"])),
               draw(st.floats(0.02, 0.98)))
    return Spec((t, v, h, w), ent, root, dmg)


# ------------------------------------------------------------------ writing a spec

def _attr_value(value: Any, fixed_strings: bool = False) -> Any:
    """What h5py should store for ``value``; text as fixed-length UTF-8 when ``fixed_strings``.

    Files that are damaged afterwards keep their text out of HDF5's global heap: a
    flipped byte in a variable-length string's heap object or datatype makes HDF5 1.14 /
    h5py 3.16 hang or crash in C, which no reader can turn into a one-line refusal
    (measured: 12 hangs and 4 crashes in 11 336 single-byte flips of a 9 kB recording
    with three text attributes; none with fixed-length text; docs/design-notes.md).
    Undamaged files keep h5py's default, variable-length strings.
    """
    if isinstance(value, str) and value == "empty":
        return h5py.Empty("f4")
    if fixed_strings and isinstance(value, str):
        encoded = value.encode("utf-8")
        return np.array(encoded, dtype=h5py.string_dtype("utf-8", max(1, len(encoded))))
    return value


def _write_entry(f: h5py.File, name: str, e: Entry, fixed_strings: bool = False) -> None:
    if isinstance(e.value, str):
        if e.value == "group":
            f.create_group(name)
        elif e.value == "empty":
            f.create_dataset(name, data=h5py.Empty("f4"))
        elif e.value == "dangling":
            f[name] = h5py.SoftLink("/nowhere/at/all")
        return
    if isinstance(e.value, tuple):                         # ("huge", shape): declared, not written
        f.create_dataset(name, shape=e.value[1], dtype="f4", chunks=(1, 1, 64, 64))
        return
    a = e.value
    if fixed_strings and a.dtype.kind == "O":     # vlen text data: fixed-length, as for attributes
        a = np.asarray(a, dtype=h5py.string_dtype("utf-8", 1))
    opts: dict[str, Any] = {}
    if e.storage != "contiguous" and a.ndim > 0 and a.size > 0 and a.dtype.kind in "iufbc":
        opts["chunks"] = True
        if e.storage == "gzip":
            opts["compression"] = "gzip"
        elif e.storage == "fletcher32":
            opts["fletcher32"] = True
    d = f.create_dataset(name, data=a, **opts)
    for k, val in e.attrs.items():
        d.attrs[k] = _attr_value(val, fixed_strings)


def write_spec(spec: Spec, path: Path) -> None:
    """Write the file of ``spec`` with h5py directly, then damage it as asked."""
    mode, frac = spec.damage
    if mode == "random":
        path.write_bytes(np.random.default_rng(int(frac * 1e6)).bytes(int(64 + frac * 4000)))
        return
    if mode == "empty":
        path.write_bytes(b"")
        return
    if mode == "text":
        path.write_text("frame,view,value\n0,0,1.0\n")
        return
    fixed = mode != "none"          # damaged below: keep text out of the global heap
    with h5py.File(path, "w") as f:
        for name, e in spec.entries.items():
            _write_entry(f, name, e, fixed)
        for k, val in spec.root_attrs.items():
            f.attrs[k] = _attr_value(val, fixed)
    raw = bytearray(path.read_bytes())
    cut = max(1, int(len(raw) * frac))
    if mode == "truncate":
        path.write_bytes(bytes(raw[:cut]))
    elif mode == "zero_tail":
        raw[cut:] = bytes(len(raw) - cut)
        path.write_bytes(bytes(raw))
    elif mode == "flip":
        rng = np.random.default_rng(cut)
        for i in rng.integers(0, len(raw), size=8):
            raw[i] ^= 0xFF
        path.write_bytes(bytes(raw))


# ------------------------------------------------------------------ checks

def check_equal_to_written(rec, spec: Spec) -> None:
    """The loaded recording holds exactly what ``spec`` wrote (cast to the contract's dtypes)."""
    ent = spec.entries
    data = ent["/exchange/data"].value
    t, v, h, w = data.shape
    assert rec.projections.dtype == np.float32
    np.testing.assert_array_equal(rec.projections, data.astype(np.float32))
    theta = ent["/exchange/theta"].value.astype(np.float64)
    np.testing.assert_array_equal(rec.geometry.angles_deg, np.broadcast_to(theta, (t, v)))
    assert (rec.geometry.height, rec.geometry.width) == (h, w)
    time = ent.get("/exchange/time")
    np.testing.assert_array_equal(rec.time, time.value.astype(np.float64) if time is not None
                                  else np.arange(t, dtype=np.float64))
    q = _quantity(ent["/exchange/data"])
    assert rec.quantity == q
    for name, got in (("/exchange/data_white", rec.white), ("/exchange/data_dark", rec.dark)):
        e = ent.get(name)
        if e is None:
            assert got is None
        else:
            want = e.value.astype(np.float32)
            np.testing.assert_array_equal(got, want if want.ndim == 4 else want[None])
    truth = ent.get("/ground_truth/volume")
    if truth is None:
        assert rec.truth is None
    else:
        np.testing.assert_array_equal(rec.truth, truth.value.astype(np.float32))
    for key in ROOT_NUMBERS:
        if key in spec.root_attrs:
            assert rec.attrs[key] == _root_number(spec.root_attrs[key], key)
        else:
            assert key not in rec.attrs
    if "description" in spec.root_attrs:
        assert rec.attrs["description"] == spec.root_attrs["description"]


def check_loaded_is_sane(rec) -> None:
    """For damaged files that still load: whatever came back keeps the contract."""
    t, v, h, w = rec.projections.shape
    assert min(t, v, h, w) >= 1 and np.all(np.isfinite(rec.projections))
    assert rec.geometry.angles_deg.shape == (t, v) and np.all(np.isfinite(rec.geometry.angles_deg))
    assert rec.time.shape == (t,) and np.all(np.isfinite(rec.time))
    assert rec.truth is None or rec.truth.shape == (t, h, w, w)


def check_refusal(exc: InputError, path: Path, faults: set[str], damaged: bool) -> None:
    msg = str(exc)
    assert "\n" not in msg and "\r" not in msg, msg
    assert msg.startswith(f"{path}: "), msg
    assert exc.fault.strip(), msg
    if damaged:
        return
    named = exc.dataset
    ok = named in faults or any(f.startswith("attr:") and f[5:] in named for f in faults)
    assert ok, f"refused naming {named!r} but the faults are {sorted(faults)}: {msg}"


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of the CLI run in-process (a flag refused while parsing
    exits through SystemExit, as the program does)."""
    out, err = _stdio.StringIO(), _stdio.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main(argv)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
    return rc, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------ the properties

@FAST
@given(spec=recording_specs())
def test_recording_loads_exactly_or_is_refused_in_one_line(spec: Spec) -> None:
    faults = contract_faults(spec)
    damaged = spec.damage[0] != "none"
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "rec.h5"
        write_spec(spec, path)
        before = sorted(os.listdir(d))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                rec = load_recording(path)
            except InputError as exc:
                check_refusal(exc, path, faults, damaged)
                event(f"refused: {exc.dataset}" + (f" ({spec.damage[0]})" if damaged else ""))
                refused = True
            else:
                refused = False
                event("loaded" + (f" ({spec.damage[0]})" if damaged else ""))
                if damaged:
                    # zeroed or flipped bytes may hit raw data that nothing checks
                    assert spec.damage[0] in ("zero_tail", "flip"), spec.damage
                    check_loaded_is_sane(rec)
                else:
                    assert not faults, f"loaded a file with faults {sorted(faults)}"
                    check_equal_to_written(rec, spec)
        # a warning would be a second line on stderr
        assert not caught, [str(w.message) for w in caught]
        if not damaged:
            assert refused == bool(faults)
        # the info verb in-process: exit 0, or 2 with one line; never an exception
        rc, out, err = run_cli(["info", str(path)])
        assert rc == (2 if refused else 0), err
        if refused:
            assert len(err.splitlines()) == 1 and err.startswith("xray4d info: error: "), err
            assert "Traceback" not in err
        assert sorted(os.listdir(d)) == before


RECON_VOLUMES = st.integers(0, 9)


@st.composite
def reconstruction_files(draw) -> tuple[dict[str, Entry], dict[str, Any], set[str]]:
    """A reconstruction file: entries, attributes of /reconstruction, and its faults."""
    t, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ent: dict[str, Entry] = {}
    faults: set[str] = set()
    vol = draw(entry((t, h, w, w), optional=False, good_p=7))
    if vol is not None:
        ent["/reconstruction/volume"] = vol
    # a mismatch between the volume and its times (or beta) is a fault of either
    vol_ok = vol is not None and _array_ok(vol, (4,), np.float32)
    if not vol_ok or vol.value.shape[2] != vol.value.shape[3]:
        faults.add("/reconstruction/volume")
    tm = draw(entry((t,), optional=True, good_p=8, float_only=True))
    if tm is not None:
        ent["/reconstruction/time"] = tm
        if not _array_ok(tm, (1,), np.float64) or (vol_ok and tm.value.shape != vol.value.shape[:1]):
            faults.add("/reconstruction/time")
    if draw(st.integers(0, 3)) == 0:
        beta = draw(entry((t, h, w, w), optional=False, good_p=7))
        if beta is not None:
            ent["/reconstruction/volume_beta"] = beta
            if not _array_ok(beta, (4,), np.float32) or (vol_ok and beta.value.shape != vol.value.shape):
                faults.add("/reconstruction/volume_beta")
    attrs: dict[str, Any] = {}
    if draw(st.booleans()):
        attrs["method"] = draw(st.one_of(st.sampled_from(["hexplane", "sirt"]), st.integers(-5, 5)))
    if draw(st.booleans()):
        attrs["config"] = draw(st.sampled_from(['{"train": {"seed": 1}}', "{}", "not json", "[1, 2]",
                                                 "null", '"text"']))
        if attrs["config"] not in ('{"train": {"seed": 1}}', "{}"):
            faults.add("/reconstruction attribute config")
    if draw(st.booleans()):
        attrs["wall_seconds"] = draw(st.sampled_from([1.5, 0, "abc", "2.5", np.nan, -1.0]))
        if not (isinstance(attrs["wall_seconds"], (int, float)) and np.isfinite(attrs["wall_seconds"])
                and attrs["wall_seconds"] >= 0) and attrs["wall_seconds"] != "2.5":
            faults.add("/reconstruction attribute wall_seconds")
    return ent, attrs, faults


@settings(deadline=None, max_examples=max(1, EXAMPLES * 2 // 5),
          suppress_health_check=list(HealthCheck))
@given(case=reconstruction_files())
def test_reconstruction_loads_exactly_or_is_refused_in_one_line(case) -> None:
    ent, attrs, faults = case
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "recon.h5"
        with h5py.File(path, "w") as f:
            f.require_group("reconstruction")
            for name, e in ent.items():
                _write_entry(f, name, e)
            for k, val in attrs.items():
                f["reconstruction"].attrs[k] = val
        try:
            rec = load_reconstruction(path)
        except InputError as exc:
            msg = str(exc)
            assert "\n" not in msg and msg.startswith(f"{path}: "), msg
            assert exc.dataset in faults, f"named {exc.dataset!r}, faults {sorted(faults)}"
            refused = True
        else:
            assert not faults, f"loaded a reconstruction with faults {sorted(faults)}"
            vol = ent["/reconstruction/volume"].value
            np.testing.assert_array_equal(rec.volume, vol.astype(np.float32))
            tm = ent.get("/reconstruction/time")
            np.testing.assert_array_equal(rec.time, tm.value.astype(np.float64) if tm else
                                          np.arange(vol.shape[0], dtype=np.float64))
            assert isinstance(rec.config, dict)
            assert isinstance(rec.wall_seconds, float) and np.isfinite(rec.wall_seconds)
            refused = False
        rc, _, err = run_cli(["info", str(path)])
        assert rc == (2 if refused else 0), err
        assert refused or err == ""
        assert not refused or len(err.splitlines()) == 1


# ------------------------------------------------------------------ the real program

def _good_reconstruction(path: Path, shape: tuple[int, int, int, int]) -> None:
    with h5py.File(path, "w") as f:
        f["/reconstruction/volume"] = np.zeros(shape, np.float32)


@pytest.mark.parametrize("verb", ["info", "evaluate", "reconstruct", "project"])
@settings(deadline=None, max_examples=1, suppress_health_check=list(HealthCheck))
@given(spec=recording_specs(damage=True))
def test_real_program_refuses_bad_files_in_one_line(verb: str, spec: Spec) -> None:
    """``python -m xray4d VERB`` on a bad recording: exit 2, one stderr line, nothing written.

    A real process per case (~2 s each), so one random bad file per verb and run; the
    in-process test above drives ``info`` on every case."""
    damaged = spec.damage[0] in ("truncate", "random", "empty", "text")
    faults = contract_faults(spec)
    assume(damaged or (faults and spec.damage[0] == "none"))
    if verb == "project":
        # project reads only the volume: it must be the broken part (or the whole file)
        assume(damaged or "/ground_truth/volume" not in spec.entries)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        path = d / "rec.h5"
        write_spec(spec, path)
        other = d / "recon.h5"
        _good_reconstruction(other, (1, 2, 2, 2))
        out = d / "out.h5"
        argv = {"info": ["info", str(path)],
                "evaluate": ["evaluate", str(other), "--truth", str(path), "--json", str(d / "m.json")],
                "reconstruct": ["reconstruct", str(path), "--out", str(out), "--iterations", "1",
                                "--quiet"],
                "project": ["project", str(path), "--angles", "0,90", "--out", str(out)]}[verb]
        before = sorted(p.name for p in d.iterdir())
        r = subprocess.run([sys.executable, "-m", "xray4d", *argv], capture_output=True, text=True,
                           timeout=120, env=dict(os.environ, OMP_NUM_THREADS="1"))
        assert r.returncode == 2, (r.returncode, r.stderr)
        assert len(r.stderr.splitlines()) == 1, r.stderr
        assert "Traceback" not in r.stderr and r.stderr.startswith(f"xray4d {verb}: error: ")
        assert str(path) in r.stderr, r.stderr
        assert sorted(p.name for p in d.iterdir()) == before


@pytest.mark.parametrize("argv", [
    ["simulate", "droplets", "--size", "0"], ["simulate", "droplets", "--size", "-8"],
    ["simulate", "droplets", "--frames", "0"], ["simulate", "droplets", "--frames", "-1"],
    ["simulate", "droplets", "--size", "4096", "--frames", "1000"],
])
def test_simulate_refuses_bad_sizes_in_one_line(argv: list[str], tmp_path: Path) -> None:
    out = tmp_path / "x.h5"
    rc, _, err = run_cli([*argv, "--out", str(out)])
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert not out.exists() and not list(tmp_path.iterdir())
