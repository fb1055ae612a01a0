"""``xray4d simulate droplet-set``: N distinct, valid recordings of random collisions."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xray4d.cli import main
from xray4d.io import load_recording
from xray4d.simulate.droplet_set import MAX_START_DISTANCE, SET_RANGES, random_collision


def test_the_set_command_writes_n_distinct_valid_recordings(tmp_path: Path, capsys) -> None:
    out = tmp_path / "set"
    assert main(["simulate", "droplet-set", "--count", "3", "--frames", "4", "--size", "12",
                 "--out", str(out)]) == 0
    files = sorted(out.glob("collision_*.h5"))
    assert [f.name for f in files] == ["collision_00.h5", "collision_01.h5", "collision_02.h5"]
    recs = [load_recording(f) for f in files]
    for rec in recs:
        assert rec.projections.shape == (4, 2, 12, 12) and rec.truth.shape == (4, 12, 12, 12)
        np.testing.assert_allclose(rec.geometry.angles_deg, [[0.0, 23.8]] * 4)
        # every view of a frame sees all the liquid: its line integrals sum to the truth's
        # volume (up to the 1 % noise and what leaves the detector at 23.8 deg)
        total = rec.truth.sum(axis=(1, 2, 3))
        for v in range(2):
            np.testing.assert_allclose(rec.projections[:, v].sum(axis=(1, 2)), total, rtol=0.05)
    for a in range(3):
        for b in range(a + 1, 3):
            assert not np.allclose(recs[a].truth, recs[b].truth)
    params = json.loads((out / "set.json").read_text())["collisions"]
    assert len({p["radius_1"] for p in params}) == 3 and [p["seed"] for p in params] == [0, 1, 2]
    # the same command again is refused (one line), with --force it writes the same set
    assert main(["simulate", "droplet-set", "--count", "3", "--frames", "4", "--size", "12",
                 "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_random_collisions_stay_in_their_ranges_and_in_view() -> None:
    for seed in range(200):
        p = random_collision(seed)
        for name, (lo, hi) in SET_RANGES.items():
            if name != "approach_speed":
                assert lo <= getattr(p, name) <= hi
        start = p.radius_1 + p.radius_2 + p.approach_speed * p.contact_time
        assert start <= MAX_START_DISTANCE + 1e-12
        assert start / 2 + max(p.radius_1, p.radius_2) < 0.5   # both drops in view at t = 0
    assert random_collision(7) == random_collision(7) and random_collision(7) != random_collision(8)
    assert 20 < sum(random_collision(s).separation for s in range(200)) < 80
