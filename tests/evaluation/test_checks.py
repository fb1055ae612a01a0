"""The quality score of :mod:`xray4d.evaluation.checks`: its terms by hand, its ranking on
numbers measured in docs/results/validation.md, and what it does without a term."""
from __future__ import annotations

import math

import pytest

from xray4d.evaluation.checks import quality_components, quality_error, quality_score

#: numbers of two measured settings (docs/results/validation.md, main set): head-on
#: collision, 2 views, 1 % noise, fitted with the bound the projections suggest (36.6 dB)
#: and with the bound at half the truth (20.2 dB)
GOOD = {"heldout_excess_relative_error": 0.053, "uncertainty_mean_object": 0.0243,
        "value_max": 0.972, "saturation_share": 0.60, "value_bound_over_estimate": 1.02}
HALF_BOUND = {"heldout_excess_relative_error": 0.072, "uncertainty_mean_object": 0.0217,
              "value_max": 0.5, "saturation_share": 0.63, "value_bound_over_estimate": 0.5247}


def test_the_terms_by_hand() -> None:
    s = {"heldout_excess_relative_error": 0.1, "uncertainty_mean_object": 0.02,
         "value_max": 0.5, "saturation_share": 0.6, "value_bound_over_estimate": 0.5}
    parts = quality_components(s)
    assert parts == pytest.approx({"heldout_excess": 0.1, "ensemble_spread": 0.04,
                                   "value_deficit": 0.3})
    assert quality_error(s) == pytest.approx(0.44)
    assert quality_score(s) == pytest.approx(7.1309, abs=1e-3)   # -20 log10(0.44)


def test_a_bound_above_the_estimate_costs_nothing() -> None:
    assert quality_components(GOOD)["value_deficit"] == 0.0
    assert quality_error(GOOD) == pytest.approx(0.053 + 0.0243 / 0.972)


def test_a_physical_bound_has_no_value_term() -> None:
    s = {**HALF_BOUND, "value_bound_over_estimate": None}
    assert quality_components(s)["value_deficit"] == 0.0
    assert quality_error(s) == pytest.approx(0.072 + 0.0217 / 0.5)


def test_the_half_bound_that_no_held_out_pixel_sees_ranks_below_the_good_fit() -> None:
    # its held-out error is as low as the good fit's: the value term ranks it
    assert HALF_BOUND["heldout_excess_relative_error"] < 2 * GOOD["heldout_excess_relative_error"]
    assert quality_error(HALF_BOUND) > 3 * quality_error(GOOD)
    assert quality_score(HALF_BOUND) < quality_score(GOOD) - 10


@pytest.mark.parametrize("missing", ["heldout_excess_relative_error", "uncertainty_mean_object",
                                     "value_max"])
def test_missing_numbers_give_no_score(missing: str) -> None:
    s = {**GOOD, missing: None}
    assert quality_error(s) is None and quality_score(s) is None


def test_a_nan_term_gives_no_score() -> None:
    assert quality_error({**GOOD, "heldout_excess_relative_error": math.nan}) is None
