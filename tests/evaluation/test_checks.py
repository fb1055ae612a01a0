"""The quality score of :mod:`xray4d.evaluation.checks`: its terms by hand, its ranking on
numbers measured in docs/results/validation.md, and what it does without a term."""
from __future__ import annotations

import math

import pytest

from xray4d.evaluation.checks import quality_components, quality_error, quality_score

#: numbers of two measured settings (docs/results/validation.md, main set): head-on
#: collision, 2 views, 1 % noise, fitted with the bound the projections suggest (36.6 dB)
#: and with the bound at half the truth (20.2 dB); the object's share of the volume is
#: the droplets' (about 4 % at 32^3; 7 % clipped at half the bound)
GOOD = {"heldout_excess_relative_error": 0.053, "uncertainty_mean": 0.000926,
        "value_max": 0.972, "saturation_share": 0.60, "value_bound_over_estimate": 1.02,
        "object_fraction": 0.038}
HALF_BOUND = {"heldout_excess_relative_error": 0.072, "uncertainty_mean": 0.00163,
              "value_max": 0.5, "saturation_share": 0.63, "value_bound_over_estimate": 0.5247,
              "object_fraction": 0.075}
#: fresh2 set: a jet (4 views, 3 % noise, 40.2 dB; 1.4 % of the volume) and a bubble
#: column (4 views, 1 % noise, 28.4 dB; 29 % of the volume), both with good settings
JET = {"heldout_excess_relative_error": 0.085, "uncertainty_mean": 0.000733,
       "value_max": 0.950, "saturation_share": 0.46, "value_bound_over_estimate": 5.59,
       "object_fraction": 0.014}
COLUMN = {"heldout_excess_relative_error": 0.024, "uncertainty_mean": 0.00576,
          "value_max": 1.028, "saturation_share": 0.64, "value_bound_over_estimate": 1.80,
          "object_fraction": 0.29}


def test_the_terms_by_hand() -> None:
    s = {"heldout_excess_relative_error": 0.1, "uncertainty_mean": 0.002,
         "value_max": 0.5, "saturation_share": 0.6, "value_bound_over_estimate": 0.5,
         "object_fraction": 0.1}
    parts = quality_components(s)
    assert parts == pytest.approx({"heldout_excess": 0.1, "ensemble_spread": 0.004,
                                   "value_deficit": 0.03})
    assert quality_error(s) == pytest.approx(0.034)      # the held-out term is not summed
    assert quality_score(s) == pytest.approx(29.3704, abs=1e-3)   # -20 log10(0.034)


def test_a_bound_above_the_estimate_costs_nothing() -> None:
    assert quality_components(GOOD)["value_deficit"] == 0.0
    assert quality_error(GOOD) == pytest.approx(0.000926 / 0.972)


def test_a_physical_bound_has_no_value_term() -> None:
    s = {**HALF_BOUND, "value_bound_over_estimate": None}
    assert quality_components(s)["value_deficit"] == 0.0
    assert quality_error(s) == pytest.approx(0.00163 / 0.5)


def test_the_half_bound_that_no_held_out_pixel_sees_ranks_below_the_good_fit() -> None:
    # its held-out error is as low as the good fit's: the value term ranks it
    assert HALF_BOUND["heldout_excess_relative_error"] < 2 * GOOD["heldout_excess_relative_error"]
    assert quality_error(HALF_BOUND) > 10 * quality_error(GOOD)
    assert quality_score(HALF_BOUND) < quality_score(GOOD) - 20


def test_a_large_object_ranks_by_its_error_over_the_volume() -> None:
    # the column's held-out error is the lower (a large homogeneous body), its PSNR 12 dB
    # worse: the spread over the whole volume, which grows with the object, ranks them
    assert COLUMN["heldout_excess_relative_error"] < JET["heldout_excess_relative_error"]
    assert quality_score(COLUMN) < quality_score(JET) - 10


@pytest.mark.parametrize("missing", ["uncertainty_mean", "value_max"])
def test_missing_numbers_give_no_score(missing: str) -> None:
    s = {**GOOD, missing: None}
    assert quality_error(s) is None and quality_score(s) is None


def test_a_missing_held_out_error_does_not_stop_the_score() -> None:
    s = {**GOOD, "heldout_excess_relative_error": None}
    assert quality_components(s)["heldout_excess"] is None
    assert quality_error(s) == pytest.approx(quality_error(GOOD))


def test_a_nan_term_gives_no_score() -> None:
    assert quality_error({**GOOD, "uncertainty_mean": math.nan}) is None
