"""Reconstruction methods by name, so the CLI, benchmarks and tests pick them alike.

A method is a callable ``(recording, config, checkpoint_path, progress, resume) -> FitResult``.
Built in: ``hexplane``; the conventional baselines ``fbp``, ``sirt``, ``cgls``
(:mod:`xray4d.conventional`); the ablations ``static`` and ``perframe``
(:mod:`xray4d.ablations`); the ASTRA cross-checks ``astra-fbp`` and ``astra-sirt``
(:mod:`xray4d.astra_methods`, listed always, runnable with the ``astra`` extra).
"""
from __future__ import annotations

from typing import Callable

__all__ = ["register_method", "get_method", "available_methods", "unavailable_reason", "needs_extra",
           "MissingExtraError"]


class MissingExtraError(ImportError):
    """A method needs an optional extra (e.g. ``astra``) that is not installed; the one-line
    message says what to install."""


_METHODS: dict[str, tuple[Callable, str]] = {}
#: methods that need an optional extra: name -> check returning None or why it cannot run
_REQUIRES: dict[str, Callable[[], str | None]] = {}


def register_method(name: str, description: str = "",
                    requires: Callable[[], str | None] | None = None) -> Callable[[Callable], Callable]:
    """Decorator registering a reconstruction method under ``name``.

    ``requires``, for a method that needs an optional extra, is a check called
    before the method runs: None when it can run here, otherwise one line
    saying what to install. Such a method is registered (and listed) either way.
    """
    def deco(fn: Callable) -> Callable:
        if name in _METHODS:
            raise ValueError(f"method {name!r} registered twice")
        _METHODS[name] = (fn, description)
        if requires is not None:
            _REQUIRES[name] = requires
        return fn
    return deco


def unavailable_reason(name: str) -> str | None:
    """None when the registered method ``name`` can run here; else one line saying why not
    (an optional extra that is not installed). ValueError for an unknown method."""
    get_method(name)
    check = _REQUIRES.get(name)
    return check() if check is not None else None


def needs_extra(name: str) -> bool:
    """Whether the registered method ``name`` needs an optional extra (installed or not)."""
    _load_builtin()
    return name in _REQUIRES


def get_method(name: str) -> Callable:
    """The method registered as ``name``; ValueError naming the known ones otherwise."""
    _load_builtin()
    if name not in _METHODS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(available_methods())}")
    return _METHODS[name][0]


def available_methods() -> dict[str, str]:
    """Registered method names and their one-line descriptions."""
    _load_builtin()
    return {k: v[1] for k, v in sorted(_METHODS.items())}


#: modules whose import registers more built-in methods
_BUILTIN_MODULES = ("xray4d.reconstruct.conventional", "xray4d.reconstruct.ablations",
                    "xray4d.reconstruct.astra")
_builtin_loaded = False


def _load_builtin() -> None:
    global _builtin_loaded
    if _builtin_loaded:
        return
    _builtin_loaded = True
    import importlib

    @register_method("hexplane", "X-Hexplane: six feature planes shared over time, tiny decoder")
    def _hexplane(recording, config, checkpoint_path=None, progress=True, resume=False):
        from .hexplane import HexPlaneReconstructor
        return HexPlaneReconstructor(recording, config, checkpoint_path, progress).fit(resume=resume)

    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
