"""The stored validation rows again, with the saturation check's current value estimate.

The saturation check and the quality score's value term compare the value bound with the
value the projections suggest. Rows stored before that estimate changed (the lower of the
disc and moment estimates; now the value bound's own estimator, see
``xray4d.evaluation.validation._value_estimate``) are recomputed here without any fit:
each setting's recording is simulated again (same size, frames, noise and seed), the
estimate taken from its projections, and the row's warnings and quality error recomputed
from its stored numbers (the saturation share and the bound do not depend on the
estimate). Writes ``benchmarks/results/validation_recheck.json`` (``sets``: name -> rows,
for ``validation_rankings.py --sets-from``) and prints what changed.

    PYTHONPATH=src python benchmarks/validation_recheck.py
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_validation import SETS  # noqa: E402

from xray4d.evaluation.cases import simulate_case  # noqa: E402
from xray4d.evaluation.checks import check_warnings, quality_error  # noqa: E402
from xray4d.evaluation.validation import _value_estimate  # noqa: E402

RESULTS = Path(__file__).parent / "results"
#: the sets stored before the estimate changed, and their files
STORED = {"main": "validation.json", "check": "validation_check.json",
          "fresh": "validation_fresh.json", "fresh2": "validation_fresh2.json"}


def recheck(row: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """``row`` with the current value estimate, warnings and quality error."""
    case, views, noise, _, _ = SETS[stored["settings"]][row["setting"]]
    rec = simulate_case(case, views, stored["size"], stored["frames"], noise,
                        stored["noise_seed"])
    new = {**row, **_value_estimate(rec, row["value_max"])}
    new["warnings"] = check_warnings(new)
    new["warned"] = bool(new["warnings"])
    new["quality_error"] = quality_error(new)
    new["before"] = {k: row.get(k) for k in ("value_estimate", "value_bound_over_estimate",
                                             "warnings")}
    new["before"]["quality_error"] = quality_error(row)
    return new


def main() -> None:
    sets: dict[str, list[dict[str, Any]]] = {}
    for name, file in STORED.items():
        stored = json.loads((RESULTS / file).read_text())
        sets[name] = [recheck(r, stored) for r in stored["rows"] if "psnr" in r]
        for r in sets[name]:
            b = r["before"]
            heads = lambda ws: "; ".join(w.split(":")[0] for w in ws) or "-"  # noqa: E731
            print(f"{name:6s} | {r['setting']:28s} | {r['kind']} | estimate "
                  f"{b['value_estimate']:.3f} -> {r['value_estimate']:.3f} | bound/estimate "
                  f"{b['value_bound_over_estimate']:.2f} -> {r['value_bound_over_estimate']:.2f}"
                  f" | quality {b['quality_error']:.3f} -> {r['quality_error']:.3f} | "
                  f"{heads(b['warnings'])} -> {heads(r['warnings'])}", flush=True)
    (RESULTS / "validation_recheck.json").write_text(json.dumps({"sets": sets}, indent=1))


if __name__ == "__main__":
    main()
