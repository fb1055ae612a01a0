"""The kinds and ranges of config values: one :class:`Rule` per field (see
:data:`xray4d.config.RULES`), each refusing a bad value with a one-line
:class:`ConfigError` that names the field's path."""
from __future__ import annotations

import math
import numbers
import re
import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["ConfigError", "Rule", "Integer", "Number", "Flag", "Choice", "Name", "Schedule",
           "Device", "fraction", "positive", "show"]


class ConfigError(ValueError):
    """A config value out of its rule: one line, ``where`` (the field's path) + ``fault``."""

    def __init__(self, where: str, fault: str) -> None:
        self.where, self.fault = where, fault
        super().__init__(f"{where}: {fault}")


def show(value: Any) -> str:
    """A short one-line rendering of a value for an error message."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) \
            and int(value).bit_length() > 128:
        return f"an integer of {int(value).bit_length()} bits"
    try:
        text = repr(value)
    except Exception:  # e.g. a huge integer deep inside a list
        text = f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."


class Rule:
    """The kind and range of one config field; :meth:`check` raises a ConfigError."""

    nullable: bool = False

    def check(self, where: str, value: Any) -> None:
        """ConfigError naming ``where`` unless ``value`` satisfies the rule (or is None
        for a nullable field)."""
        if value is None and self.nullable:
            return
        if not self.accepts(value):
            raise ConfigError(where, self.fault(value))

    def accepts(self, value: Any) -> bool:  # pragma: no cover - every rule overrides it
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - every rule overrides it
        raise NotImplementedError

    def fault(self, value: Any) -> str:
        return f"must be {self.describe()}{' or null' if self.nullable else ''}, got {show(value)}"


@dataclass(frozen=True)
class Integer(Rule):
    """An integer (not a bool) in ``low..high``."""

    low: int
    high: int
    nullable: bool = False

    def accepts(self, value: Any) -> bool:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool) \
            and self.low <= value <= self.high

    def describe(self) -> str:
        return f"an integer in {self.low}..{self.high}"


@dataclass(frozen=True)
class Number(Rule):
    """A finite real number (not a bool) between ``low`` and ``high``, each end open or
    closed (``high`` = inf: no upper bound)."""

    low: float
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    nullable: bool = False

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if not isinstance(value, numbers.Integral) and not math.isfinite(value):
            return False  # (an integer is finite; math.isfinite of a huge one would overflow)
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def describe(self) -> str:
        if math.isinf(self.high):
            return f"a finite number {'>' if self.low_open else '>='} {self.low:g}"
        return (f"a finite number in {'(' if self.low_open else '['}{self.low:g}, "
                f"{self.high:g}{')' if self.high_open else ']'}")


@dataclass(frozen=True)
class Flag(Rule):
    """``true`` or ``false``."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Choice(Rule):
    """One of a few names."""

    names: tuple[str, ...]
    nullable: bool = False

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.names

    def describe(self) -> str:
        return f"one of {', '.join(self.names)}"

    def fault(self, value: Any) -> str:
        if isinstance(value, str):
            return f"unknown {show(value)}; choose one of {', '.join(self.names)}"
        return super().fault(value)


@dataclass(frozen=True)
class Name(Rule):
    """A non-empty string of printable characters, at most ``max_length`` of them (a
    method's name, a chemical formula: what it names is checked where it is used)."""

    max_length: int = 64

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and 0 < len(value) <= self.max_length \
            and value.isprintable()

    def describe(self) -> str:
        return f"a name of 1 to {self.max_length} printable characters"


@dataclass(frozen=True)
class Schedule(Rule):
    """A list of strictly increasing fractions of the run in (0, 1), at most ``max_length``."""

    max_length: int = 16

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, (list, tuple)) or len(value) > self.max_length:
            return False
        fraction = Number(0.0, 1.0, low_open=True, high_open=True)
        return all(fraction.accepts(v) for v in value) \
            and all(a < b for a, b in zip(value, value[1:]))

    def describe(self) -> str:
        return f"a list of at most {self.max_length} strictly increasing fractions in (0, 1)"


_CUDA_DEVICE = re.compile(r"cuda(:[0-9]{1,3})?")


@dataclass(frozen=True)
class Device(Rule):
    """``cpu``, ``cuda`` or ``cuda:N``, available on this machine."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and (value == "cpu" or (
            _CUDA_DEVICE.fullmatch(value) is not None and self._cuda_fault(value) is None))

    def describe(self) -> str:
        return "cpu, cuda or cuda:N"

    @staticmethod
    def _cuda_fault(value: str) -> str | None:
        import torch
        if not torch.cuda.is_available():
            return f"{value} requested but no CUDA device is available here"
        index = int(value.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            return f"{value} requested but this machine has {count} CUDA device(s)"
        return None

    def fault(self, value: Any) -> str:
        if isinstance(value, str) and _CUDA_DEVICE.fullmatch(value):
            return self._cuda_fault(value) or super().fault(value)
        return super().fault(value)


def fraction() -> Number:
    """A fraction in [0, 1)."""
    return Number(0.0, 1.0, high_open=True)


def positive(high: float, high_open: bool = False, nullable: bool = False) -> Number:
    """A finite number in (0, high]."""
    return Number(0.0, high, low_open=True, high_open=high_open, nullable=nullable)


def section_path(section: str) -> str:
    """How messages name a config section: ``config.train`` (``config`` for the top level)."""
    return f"config.{section}" if section else "config"


def check_fields(obj: Any, rules: dict[str, Rule], section: str) -> None:
    """Check every field of the dataclass ``obj`` (the config section ``section``) that has a
    rule in ``rules``; the first fault is a :class:`ConfigError` naming the field's path."""
    where = section_path(section)
    for f in dataclasses.fields(obj):
        if f.name in rules:
            rules[f.name].check(f"{where}.{f.name}", getattr(obj, f.name))


#: upper bound of a field's value (``field.value_max``, ``conventional.value_max``): the
#: reconstructed values are attenuation per voxel length (below ~10 even for dense metal
#: at a coarse voxel), densities (below 23 g/cm^3) or refractive index decrements (below
#: 1e-4); 1e6 is far above any of them and keeps squared projections of 1e3-voxel rays
#: (1e18) within float32
VALUE_LIMIT = 1e6
#: upper bound of a regulariser weight: the data term is normalised to O(1) and the
#: default weights are 1e-4 (3e-3 to 0.3 for intensities fitted through the propagation
#: model); 1e9 is far above any useful weight
WEIGHT_LIMIT = 1e9
#: upper bound of iteration counts (``train.iterations``, ``conventional.iterations``)
ITERATION_LIMIT = 10**9 - 1
#: upper bound of wall-clock durations in seconds (about three years)
SECONDS_LIMIT = 1e8
