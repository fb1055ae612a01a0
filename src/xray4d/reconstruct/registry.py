"""Reconstruction methods by name, behind one contract, so the CLI, benchmarks and tests
pick them alike.

A method (:class:`Method`) has a ``name``, a :meth:`~Method.check` that runs before
anything is allocated (what the method needs of the recording and the config, and the
memory estimate; refused with a one-line error) and a :meth:`~Method.fit` that returns
a :class:`~xray4d.data.FitResult`. Callers use :meth:`Method.reconstruct`, which runs the
check, prepares what the method fits (:mod:`xray4d.reconstruct.measurement`: line
integrals as recorded, intensities through the propagation model, or intensities turned
into line integrals, as ``config.physics.intensity`` says) and labels the result.

Built in: ``hexplane`` and its ablations ``static`` and ``perframe``
(:mod:`xray4d.reconstruct.hexplane`); the conventional baselines ``fbp``, ``sirt``,
``cgls`` (:mod:`xray4d.reconstruct.conventional`); the ASTRA cross-checks ``astra-fbp``
and ``astra-sirt`` (:mod:`xray4d.reconstruct.astra`, listed always, runnable with the
``astra`` extra). A new method is a subclass registered with :func:`register_method`;
field methods reuse :func:`xray4d.reconstruct.trainer.fit_field`.
"""
from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, ClassVar

from ..errors import InputError
from ..resources import check_reconstruction
from .measurement import check_intensity_setup, finish, measured_data

if TYPE_CHECKING:
    from ..config import ReconstructionConfig
    from ..data import FitResult, Recording
    from .measurement import MeasuredData  # noqa: F401 (annotations)

__all__ = ["Method", "register_method", "get_method", "available_methods", "unavailable_reason",
           "needs_extra", "MissingExtraError"]


class MissingExtraError(ImportError):
    """A method needs an optional extra (e.g. ``astra``) that is not installed; the one-line
    message says what to install."""


class Method:
    """The contract of a reconstruction method.

    Subclasses set :attr:`name` and :attr:`description` and implement :meth:`fit`; they
    may extend :meth:`check` (calling ``super().check``) and override
    :meth:`unavailable_reason` when they need an optional extra.
    """

    #: the name users pick the method by (``--method``)
    name: ClassVar[str] = ""
    #: one line for listings
    description: ClassVar[str] = ""
    #: the method fits a field through a differentiable measurement model, so intensity
    #: recordings can be fitted through the propagation model (``physics.intensity: model``);
    #: methods that cannot get line integrals retrieved from the intensities instead
    fits_measurement_model: ClassVar[bool] = False
    #: the memory estimate counts a fitted field (True) or voxel volumes of all frames
    fits_field: ClassVar[bool] = False

    def unavailable_reason(self) -> str | None:
        """None when the method can run here; else one line saying what to install."""
        return None

    def check(self, recording: "Recording", config: "ReconstructionConfig") -> None:
        """Refuse, before anything is allocated, what this method cannot do.

        Raises:
            MissingExtraError: an optional extra is missing.
            xray4d.errors.InputError: the recording or the config does not suit the method.
            xray4d.errors.ResourceError: the run cannot fit in memory.
        """
        missing = self.unavailable_reason()
        if missing:
            raise MissingExtraError(missing)
        if recording.quantity not in ("line_integral", "intensity"):
            raise InputError(recording.path or "recording", "/exchange/data",
                             f"quantity {recording.quantity!r} is not supported yet; "
                             "reconstruct needs line_integral or intensity data")
        if recording.quantity == "intensity":
            check_intensity_setup(recording, config, self)
        if config.validation.stop != "fixed" and not self.fits_field:
            raise InputError(recording.path or "recording", "config validation.stop",
                             f"{config.validation.stop!r} needs a method that trains a field "
                             f"(e.g. hexplane), not {self.name!r}")
        if config.adversarial.enabled and not self.fits_field:
            raise InputError(recording.path or "recording", "config adversarial.enabled",
                             f"the adversarial term needs a method that trains a field "
                             f"(e.g. hexplane), not {self.name!r}")
        g = recording.geometry
        check_reconstruction(g.frames, g.views, g.height, g.width, config,
                             angle_sets=g.angle_sets, in_memory=True,
                             intensity=recording.quantity == "intensity",
                             source=str(recording.path or ""), field_method=self.fits_field)

    def fit(self, data: "MeasuredData", config: "ReconstructionConfig", *,
            checkpoint_path: str | os.PathLike | None = None, progress: bool = True,
            resume: bool = False) -> "FitResult":
        """Fit the prepared data (see :class:`~xray4d.reconstruct.measurement.MeasuredData`)."""
        raise NotImplementedError

    def reconstruct(self, recording: "Recording", config: "ReconstructionConfig", *,
                    checkpoint_path: str | os.PathLike | None = None, progress: bool = True,
                    resume: bool = False) -> "FitResult":
        """Check, prepare the data as the config says, fit, and label the result.

        The reconstruction's ``volume`` is on the recording's voxel grid; from
        intensity data it is delta and ``volume_beta`` beta.
        """
        self.check(recording, config)
        data = measured_data(recording, config)
        result = self.fit(data, config, checkpoint_path=checkpoint_path, progress=progress,
                          resume=resume)
        return finish(result, data)


_METHODS: dict[str, Method] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator registering a :class:`Method` subclass under its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__}: a method needs a name")
    if cls.name in _METHODS:
        raise ValueError(f"method {cls.name!r} registered twice")
    _METHODS[cls.name] = cls()
    return cls


def get_method(name: str) -> Method:
    """The method registered as ``name``; ValueError naming the known ones otherwise."""
    _load_builtin()
    if name not in _METHODS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(available_methods())}")
    return _METHODS[name]


def unavailable_reason(name: str) -> str | None:
    """None when the registered method ``name`` can run here; else one line saying why not
    (an optional extra that is not installed). ValueError for an unknown method."""
    return get_method(name).unavailable_reason()


def needs_extra(name: str) -> bool:
    """Whether the registered method ``name`` needs an optional extra (installed or not)."""
    return type(get_method(name)).unavailable_reason is not Method.unavailable_reason


def available_methods() -> dict[str, str]:
    """Registered method names and their one-line descriptions."""
    _load_builtin()
    return {k: m.description for k, m in sorted(_METHODS.items())}


#: modules whose import registers the built-in methods (imported on first use: the
#: registry is imported by the methods themselves)
_BUILTIN_MODULES = ("xray4d.reconstruct.hexplane", "xray4d.reconstruct.ablations",
                    "xray4d.reconstruct.conventional", "xray4d.reconstruct.astra")


def _load_builtin() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
