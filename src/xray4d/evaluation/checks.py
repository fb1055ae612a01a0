"""Judging a validation's numbers: the checks' warnings, a verdict, and one no-truth score.

The numbers come from :func:`xray4d.evaluation.validation.run_validation`; the functions
here read its ``summary`` (or any dict with the same keys, such as the rows of
``benchmarks/bench_validation.py``) and compute nothing from the data themselves.

* :func:`check_warnings`: one line per check that flags the result as suspect
  (:data:`THRESHOLDS`); :func:`verdict`: a paragraph a user can read.
* :func:`quality_error` and :func:`quality_score`: one number to rank reconstructions by,
  without the truth, on the scale of the volume as the PSNR is. It is the sum of two
  errors per voxel of the whole volume, in units of the value bound
  (:func:`quality_components`):

  - ``ensemble_spread``: the ensemble's standard deviation over the whole volume over the
    value bound (``uncertainty_mean / value_max``): how much fits with other seeds and
    other halves of the pixels disagree about the volume. Taken over the whole volume,
    not the object alone, it grows with the object's size as a squared error against
    the truth does, which lets it rank reconstructions of different scenes;
  - ``value_deficit``: the share of the object's voxels at the bound times how far the
    bound lies below the value the projections suggest, times the object's share of the
    volume (``saturation_share * max(0, 1 - value_bound_over_estimate) *
    object_fraction``; 0 when the bound is physical, from the material): a bound too low
    clips the object, which a thicker object explains in every recorded view (with two
    views neither the held-out pixels nor the ensemble see it).

  The held-out pixels' error beyond the noise (``heldout_excess_relative_error``) is a
  share of the signal, blind to how much of the volume the object fills; it is reported
  and checked (:func:`check_warnings`), and :func:`quality_components` returns it for
  comparison, but it is not summed. ``quality_score`` is ``-20 log10(quality_error)``
  (dB, higher is better): a number to rank reconstructions by, not an estimate of their
  PSNR. docs/results/validation.md reports its rank correlation with the true PSNR, and
  the earlier score on the object's scale it replaced.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["THRESHOLDS", "loss_drop", "saturation_share", "check_warnings", "verdict",
           "quality_components", "quality_error", "quality_score", "SUMMED_COMPONENTS"]

#: the checks' thresholds, chosen on the simulated settings of benchmarks/bench_validation.py
#: (docs/results/validation.md says how):
#:
#: * saturated: more than ``saturation_share`` of the object's voxels (above half the
#:   bound) within ``saturation_tolerance`` of the bound, while the bound is below
#:   ``bound_over_estimate`` times the value the projections suggest (a homogeneous object
#:   fitted at a right bound is saturated too: its value is the bound);
#: * held-out error: its root mean square over ``heldout_noise_ratio`` times the noise, or
#:   its part beyond the noise over ``heldout_excess_relative_error`` of the held-out
#:   signal;
#: * not converged: the data term fell by more than ``data_loss_drop`` over the second half
#:   of the main fit (:func:`loss_drop`);
#: * FSC: the half-data resolution (1/7, median over frames) worse than
#:   ``fsc_resolution_voxels``.
THRESHOLDS: dict[str, float] = {"saturation_tolerance": 0.02, "saturation_share": 0.25,
                                "bound_over_estimate": 0.75, "heldout_noise_ratio": 3.0,
                                "heldout_excess_relative_error": 0.3, "data_loss_drop": 0.3,
                                "fsc_resolution_voxels": 4.0}


def loss_drop(losses: list[float]) -> float | None:
    """How much the data term fell over the second half of a fit: 1 - (median over the last
    tenth of the steps) / (median over the tenth before the middle); None for short runs.

    Medians, because the per-step data term jumps with the frames of each batch and with
    an occasional spike of the optimiser. A fit whose learning rate is annealed keeps
    falling a little (measured 0.02-0.19 over the second half of converged fits, 0.4-0.7
    for fits stopped after 60-100 iterations; docs/results/validation.md).
    """
    n = len(losses)
    k = n // 10
    if k < 3:
        return None
    last = float(np.median(losses[-k:]))
    middle = float(np.median(losses[n // 2 - k:n // 2]))
    return 1 - last / middle if middle > 0 else None


def saturation_share(volume: np.ndarray, bound: float,
                     tolerance: float = THRESHOLDS["saturation_tolerance"]) -> float:
    """Share of the object's voxels (above half the bound) within ``tolerance`` of the bound."""
    obj = volume > 0.5 * bound
    n = int(obj.sum())
    return float((volume[obj] >= (1 - tolerance) * bound).sum() / n) if n else 0.0


def quality_components(summary: dict[str, Any]) -> dict[str, float | None]:
    """The terms of :func:`quality_error` from a validation's numbers (module doc).

    Args:
        summary: needs ``uncertainty_mean`` and ``value_max``; ``saturation_share``,
            ``value_bound_over_estimate`` and ``object_fraction`` when the bound is not
            physical (without them the value term is 0); ``heldout_excess_relative_error``
            is passed through.

    Returns:
        ``ensemble_spread`` and ``value_deficit`` (summed by :func:`quality_error`) and
        ``heldout_excess`` (reported, not summed); None where a needed number is missing.
    """
    excess = summary.get("heldout_excess_relative_error")
    unc, bound = summary.get("uncertainty_mean"), summary.get("value_max")
    spread = float(unc) / float(bound) if unc is not None and bound else None
    sat, ratio = summary.get("saturation_share"), summary.get("value_bound_over_estimate")
    share = summary.get("object_fraction")
    deficit = float(sat) * max(0.0, 1.0 - float(ratio)) * float(share) \
        if sat is not None and ratio is not None and share is not None else 0.0
    return {"ensemble_spread": spread, "value_deficit": deficit,
            "heldout_excess": None if excess is None else float(excess)}


#: the terms of :func:`quality_components` that :func:`quality_error` sums
SUMMED_COMPONENTS = ("ensemble_spread", "value_deficit")


def quality_error(summary: dict[str, Any]) -> float | None:
    """The no-truth error estimate: the sum of the :data:`SUMMED_COMPONENTS` of
    :func:`quality_components` (lower is better); None when the ensemble term is missing."""
    parts = quality_components(summary)
    terms = [parts[k] for k in SUMMED_COMPONENTS]
    if any(v is None or not math.isfinite(v) for v in terms):
        return None
    return float(sum(terms))


def quality_score(summary: dict[str, Any]) -> float | None:
    """``-20 log10(quality_error)`` in dB, higher is better (None when it is missing or 0).

    A ranking number, not an estimate of the PSNR: on the simulated settings of
    docs/results/validation.md the good settings score 42-66 dB at PSNRs of 23-42 dB.
    """
    err = quality_error(summary)
    return -20.0 * math.log10(err) if err is not None and err > 0 else None


def check_warnings(summary: dict[str, Any],
                   thresholds: dict[str, float] | None = None) -> list[str]:
    """One line per check that flags the result as suspect (see :data:`THRESHOLDS`)."""
    th = {**THRESHOLDS, **(thresholds or {})}
    out = []
    sat, low = summary.get("saturation_share"), summary.get("value_bound_over_estimate")
    if sat is not None and sat > th["saturation_share"] and low is not None \
            and low < th["bound_over_estimate"]:
        out.append(f"saturated: {100 * sat:.0f} % of the object's voxels are within "
                   f"{100 * th['saturation_tolerance']:g} % of the value bound "
                   f"{summary['value_max']:.4g}, {low:.2f} times the value the projections "
                   f"suggest ({summary['value_estimate']:.4g}): the bound is probably too low "
                   "(--value-max)")
    ratio, excess = summary.get("heldout_noise_ratio"), summary.get("heldout_excess_relative_error")
    if (ratio is not None and ratio > th["heldout_noise_ratio"]) or \
            (excess is not None and excess > th["heldout_excess_relative_error"]):
        out.append(f"held-out error far above the noise: {_fmt(ratio, '.2f')} times the noise "
                   f"level (warning above {th['heldout_noise_ratio']:g}), "
                   f"{_fmt(excess, '.0%')} of the held-out signal beyond the noise (above "
                   f"{th['heldout_excess_relative_error']:.0%}): the fit does not predict the "
                   "pixels it did not see")
    drop = summary.get("data_loss_drop")
    if drop is not None and drop > th["data_loss_drop"]:
        out.append(f"not converged: the data term still fell by {drop:.0%} over the second half "
                   f"of the fit (above {th['data_loss_drop']:.0%}): give more iterations or time")
    fsc = summary.get("fsc_resolution_voxels")
    if fsc is not None and fsc > th["fsc_resolution_voxels"]:
        out.append(f"FSC falls early: the half-data reconstructions correlate below 1/7 from a "
                   f"period of {fsc:.1f} voxels (worse than {th['fsc_resolution_voxels']:g}): "
                   "details finer than that are not reproducible")
    return out


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def verdict(summary: dict[str, Any]) -> str:
    """One paragraph a user can read: what the numbers say about the reconstruction."""
    ratio, fsc = summary.get("heldout_noise_ratio"), summary.get("fsc_resolution_voxels")
    unc, bound = summary.get("uncertainty_mean_object"), summary.get("value_max")
    facts = []
    if ratio is not None:
        facts.append(f"it predicts the detector pixels it did not see with an error "
                     f"{ratio:.2f} times the noise level estimated from the data (1 is the best "
                     "possible)")
    else:
        facts.append("the data show no noise to compare its held-out error with")
    if fsc is not None:
        facts.append(f"two reconstructions from disjoint halves of the pixels agree down to "
                     f"a period of {fsc:.1f} voxels (FSC 1/7)")
    if unc is not None and bound:
        facts.append(f"fits with other seeds and data differ by {unc:.3g} on average inside "
                     f"the object ({100 * unc / bound:.1f} % of the value bound)")
    score, err = summary.get("quality_score"), summary.get("quality_error")
    if score is not None and err is not None:
        facts.append(f"its no-truth error estimate (the ensemble's spread over the volume and "
                     f"the value deficit at the bound, summed) is {err:.3g}, a quality "
                     f"score of {score:.1f} dB (for ranking reconstructions, not a PSNR)")
    warnings = summary.get("warnings") or []
    if warnings:
        names = "; ".join(w.split(":")[0] for w in warnings)
        head = (f"Suspect: {len(warnings)} check{'s' if len(warnings) > 1 else ''} flagged "
                f"this reconstruction ({names}). Besides, ")
    else:
        head = "No check flagged this reconstruction: "
    return (head + "; ".join(facts) + ". These checks test consistency with the recorded "
            "views; shapes that no view constrains (two views leave much open) can still be "
            "wrong without being flagged.")


