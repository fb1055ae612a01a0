"""A recording of an object of negative sign warns in one line (the reconstructions are
non-negative and would show it as 0); noisy recordings of positive objects do not."""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest

from xray4d.api import resolve_config
from xray4d.cli import main
from xray4d.errors import NegativeDataWarning
from xray4d.io import save_recording
from xray4d.reconstruct.measurement import (measured_data, negative_signal_share,
                                         warn_about_negative_signal)
from xray4d.simulate import simulate_droplets


@pytest.mark.parametrize("noise", [0.01, 0.05, 0.1])
def test_noise_alone_does_not_warn(noise: float) -> None:
    rec = simulate_droplets(size=16, frames=4, noise=noise, seed=0)
    assert (rec.projections < 0).any()            # the noise does make negative pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error", NegativeDataWarning)
        measured_data(rec, resolve_config())


def test_a_negative_object_warns_in_one_line(tmp_path: Path, capsys) -> None:
    rec = simulate_droplets(size=16, frames=4, noise=0.01, seed=0)
    negative = dataclasses.replace(rec, projections=-rec.projections)
    assert negative_signal_share(negative.projections) > 10
    with pytest.warns(NegativeDataWarning, match="strongly negative"):
        measured_data(negative, resolve_config())
    path = tmp_path / "negative.h5"
    save_recording(negative, path)
    assert main(["reconstruct", str(path), "--out", str(tmp_path / "out.h5"), "--iterations",
                 "3", "--quiet", "--no-preview"]) == 0
    lines = [l for l in capsys.readouterr().err.splitlines() if "strongly negative" in l]
    assert len(lines) == 1 and lines[0].startswith("xray4d reconstruct: warning:")


def test_share_is_zero_without_negative_values() -> None:
    assert negative_signal_share(np.ones((1, 1, 8, 8))) == 0.0


def test_projections_with_no_positive_value_say_so() -> None:
    """All negative (e.g. the sign flipped on an empty-looking recording): the share is
    infinite and the warning names that instead of printing 'inf'."""
    data = -np.ones((1, 1, 8, 8), dtype=np.float32)
    assert negative_signal_share(data) == np.inf
    with pytest.warns(NegativeDataWarning, match=r"strongly negative \(no positive value\)"):
        warn_about_negative_signal(data)
