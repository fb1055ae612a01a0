"""Reconstruction methods by name, so the CLI, benchmarks and tests pick them alike.

A method is a callable ``(recording, config, checkpoint_path, progress, resume) -> FitResult``.
Built in: ``hexplane``; the conventional baselines ``fbp``, ``sirt``, ``cgls``
(:mod:`xray4d.conventional`); the ablations ``static`` and ``perframe``
(:mod:`xray4d.ablations`).
"""
from __future__ import annotations

from typing import Callable

__all__ = ["register_method", "get_method", "available_methods"]

_METHODS: dict[str, tuple[Callable, str]] = {}


def register_method(name: str, description: str = "") -> Callable[[Callable], Callable]:
    """Decorator registering a reconstruction method under ``name``."""
    def deco(fn: Callable) -> Callable:
        if name in _METHODS:
            raise ValueError(f"method {name!r} registered twice")
        _METHODS[name] = (fn, description)
        return fn
    return deco


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
_BUILTIN_MODULES = ("xray4d.conventional", "xray4d.ablations")
_builtin_loaded = False


def _load_builtin() -> None:
    global _builtin_loaded
    if _builtin_loaded:
        return
    _builtin_loaded = True
    import importlib

    @register_method("hexplane", "X-Hexplane: six feature planes shared over time, tiny decoder")
    def _hexplane(recording, config, checkpoint_path=None, progress=True, resume=False):
        from .reconstruct import HexPlaneReconstructor
        return HexPlaneReconstructor(recording, config, checkpoint_path, progress).fit(resume=resume)

    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
