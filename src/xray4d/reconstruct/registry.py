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
``astra`` extra); 4D-ONIX ``onix`` (:mod:`xray4d.reconstruct.onix`: one network trained on
several recordings at once). A new method is a subclass registered with :func:`register_method`;
field methods reuse :func:`xray4d.reconstruct.fit.fit_field`.
"""
from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from ..errors import InputError
from ..resources import check_reconstruction
from .field_of_view import field_of_view, lateral_padding
from .measurement import check_intensity_setup, finish, measured_data
from .times import TimeRequest, recorded_index, resolve_times

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
    #: the method's result can be evaluated at any time between the recorded frames (a
    #: field continuous in time, :meth:`at_times`); otherwise only the recorded frames
    #: exist, and ``--times`` off them is refused
    continuous_time: ClassVar[bool] = False
    #: the method is made to train one network on several recordings and apply it to new
    #: ones (``onix``); the benchmark of single recordings runs it only when named
    trains_across_recordings: ClassVar[bool] = False
    #: the method fits only the pixels of ``MeasuredData.fit_mask``, so it can fit a field
    #: of view wider than the detector (:mod:`.field_of_view`) for truncated projections
    fits_masked_pixels: ClassVar[bool] = False

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
        flow = config.flow
        if (flow.transport_weight or flow.divergence_weight) and not (
                self.fits_field and self.continuous_time and self.name != "static"):
            raise InputError(recording.path or "recording", "config flow",
                             f"the flow prior needs a field continuous in time (hexplane), "
                             f"not {self.name!r}")
        if config.adversarial.enabled and not self.fits_field:
            raise InputError(recording.path or "recording", "config adversarial.enabled",
                             f"the adversarial term needs a method that trains a field "
                             f"(e.g. hexplane), not {self.name!r}")
        g = recording.geometry
        if config.field.lateral_margin and recording.quantity == "intensity" and \
                config.physics.intensity == "model":
            raise InputError(recording.path or "recording", "config field.lateral_margin",
                             "a field of view wider than the detector is fitted to line "
                             "integrals, not through the propagation model; use --intensity "
                             "paganin or log, or lateral_margin 0")
        if config.field.lateral_margin and not self.fits_masked_pixels:
            raise InputError(recording.path or "recording", "config field.lateral_margin",
                             f"a field of view wider than the detector needs a method that "
                             f"fits a field (e.g. hexplane), not {self.name!r}")
        pad = lateral_padding(recording, config) if self.fits_masked_pixels else 0
        if config.calibration.enabled and not (self.fits_field and g.views >= 2):
            raise InputError(recording.path or "recording", "config calibration.enabled",
                             "self-calibration needs a method that trains a field (e.g. "
                             f"hexplane) and 2+ views per frame, not {self.name!r} with "
                             f"{g.views} view{'s' if g.views != 1 else ''}")
        check_reconstruction(g.frames, g.views, g.height, g.width + 2 * pad, config,
                             angle_sets=g.angle_sets, in_memory=True,
                             intensity=recording.quantity == "intensity",
                             source=str(recording.path or ""), field_method=self.fits_field)

    def measured(self, recording: "Recording", config: "ReconstructionConfig") -> "MeasuredData":
        """What this method fits for ``recording`` (:func:`~.measurement.measured_data`): on
        a field of view widened for truncated projections when it fits masked pixels
        (:func:`~.field_of_view.field_of_view`, which warns in one line)."""
        data = measured_data(recording, config)
        return field_of_view(data, config) if self.fits_masked_pixels else data

    def fit(self, data: "MeasuredData", config: "ReconstructionConfig", *,
            checkpoint_path: str | os.PathLike | None = None, progress: bool = True,
            resume: bool = False) -> "FitResult":
        """Fit the prepared data (see :class:`~xray4d.reconstruct.measurement.MeasuredData`)."""
        raise NotImplementedError

    def check_times(self, recording: "Recording", config: "ReconstructionConfig",
                    request: TimeRequest) -> np.ndarray:
        """The times ``request`` asks of ``recording`` (:func:`~.times.resolve_times`),
        refused in one line (:class:`~xray4d.errors.InputError`, ``--times``) when they fall
        outside the recording, between recorded frames of a method that has only those
        (not :attr:`continuous_time`), or do not fit in memory."""
        source = recording.path or "recording"
        times = resolve_times(request, recording.time, source)
        between = recorded_index(times, recording.time) < 0
        if between.any() and not self.continuous_time:
            raise InputError(source, "--times", f"{times[between][0]:g} s lies between recorded "
                             f"frames, and {self.name!r} reconstructs the recorded frames only "
                             "(no interpolation); ask for recorded times, or use a method "
                             "continuous in time (hexplane, static)")
        if times.size > recording.frames:
            g = recording.geometry
            pad = lateral_padding(recording, config) if self.fits_masked_pixels else 0
            check_reconstruction(g.frames, g.views, g.height, g.width + 2 * pad, config,
                                 angle_sets=g.angle_sets, in_memory=True,
                                 intensity=recording.quantity == "intensity",
                                 source=str(source), field_method=self.fits_field,
                                 output_frames=int(times.size))
        return times

    def at_times(self, result: "FitResult", data: "MeasuredData", config: "ReconstructionConfig",
                 times: np.ndarray) -> "FitResult":
        """The fit's reconstruction at ``times`` (checked by :meth:`check_times`), before
        :func:`~.measurement.finish`. This default keeps the recorded frames at those
        times; a method continuous in time renders the others."""
        idx = recorded_index(times, data.recording.time)
        if (idx < 0).any():
            raise ValueError(f"{self.name!r} has the recorded frames only")
        r = result.reconstruction
        r.volume = np.ascontiguousarray(r.volume[idx])
        if r.volume_beta is not None:
            r.volume_beta = np.ascontiguousarray(r.volume_beta[idx])
        if r.velocity is not None:
            r.velocity = np.ascontiguousarray(r.velocity[idx])
        r.time = np.asarray(times, np.float64)
        return result

    def reconstruct(self, recording: "Recording", config: "ReconstructionConfig", *,
                    checkpoint_path: str | os.PathLike | None = None, progress: bool = True,
                    resume: bool = False, times: TimeRequest | None = None) -> "FitResult":
        """Check, prepare the data as the config says, fit, and label the result.

        The reconstruction's ``volume`` is on the recording's voxel grid; from
        intensity data it is delta and ``volume_beta`` beta. Its frames are at the
        recorded times, or at the ``times`` asked for (:meth:`check_times`, before
        anything is fitted); ``predicted`` stays at the recorded frames (what is compared
        with the measurement).
        """
        self.check(recording, config)
        wanted = None if times is None else self.check_times(recording, config, times)
        data = self.measured(recording, config)
        result = self.fit(data, config, checkpoint_path=checkpoint_path, progress=progress,
                          resume=resume)
        if wanted is not None:
            result = self.at_times(result, data, config, wanted)
            result.reconstruction.config.setdefault("resolved", {})["times"] = times.text
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
                    "xray4d.reconstruct.conventional", "xray4d.reconstruct.astra",
                    "xray4d.reconstruct.onix")


def _load_builtin() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
