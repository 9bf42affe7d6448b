"""What a size search records (`frugal.sweep.auto_size`): each pilot as a candidate — its
validation curve against the budget it spent, the power law fitted to it — and the search as a
whole, in the final run's `result.json` under `size_search`."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from frugal.budget.spec import BudgetSpec
from frugal.core.curves import as_error, fit_power_law
from frugal.core.keys import ADDITIVE_KEYS

CURVE_COLUMN = {  # curve.csv column holding each axis (carbon follows energy, times intensity)
    "energy_j": "energy_j",
    "carbon_g": "energy_j",
    "time_s": "time_s",
    "compute_flop": "compute_flop",
    "data_samples": "samples",
}


def pilot_candidate(
    size: Mapping[str, Any], pilot_dir: Path, result: dict[str, Any], axis: str, metric: str
) -> dict[str, Any]:
    """One pilot as a candidate size: what it spent, its curve against `axis` and the power law
    fitted to it (keys starting with `_` are the search's own, never recorded)."""
    points = curve_points(pilot_dir / "curve.csv", axis, metric, result)
    fit = fit_power_law([(x, as_error(metric, y)) for x, y in points])
    spent = result.get("spent") or {}
    samples, on_axis = spent.get("data_samples"), spent.get(axis)
    model = result.get("model") or {}
    return {
        "size": dict(size),
        "dir": str(pilot_dir),
        "status": result.get("status"),
        "spent": {k: (result.get("spent") or {}).get(k) for k in ADDITIVE_KEYS},
        "points": points,
        "fit": fit.record(),
        "_fit": fit,
        "_margin": float((result.get("energy") or {}).get("estimate_margin") or 0.0),
        "_params": float(model.get("params_effective") or model.get("params") or 0),
        "_samples_points": curve_points(pilot_dir / "curve.csv", "data_samples", metric, result),
        "_samples_per_x": samples / on_axis if samples and on_axis else None,
    }


def curve_points(
    path: Path, axis: str, metric: str, result: Mapping[str, Any]
) -> list[tuple[float, float]]:
    """(spent on the axis, metric) at each validation of a run's curve.csv."""
    column = CURVE_COLUMN[axis]
    scale = 1.0
    if axis == "carbon_g":  # carbon = energy x intensity: the same curve, rescaled
        spent = result.get("spent") or {}
        if spent.get("carbon_g") and spent.get("energy_j"):
            scale = float(spent["carbon_g"]) / float(spent["energy_j"])
    points = []
    try:
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                x, y = _number(row.get(column)), _number(row.get(metric))
                if x is not None and y is not None:
                    points.append((x * scale, y))
    except OSError:
        return []
    return points


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def search_record(
    search: Mapping[str, Any],
    metric: str,
    axis: str,
    budget: BudgetSpec,
    share: float,
    candidates: list[dict[str, Any]],
    chosen: dict[str, Any],
    pilot_spent: Mapping[str, float | None],
    final_budget: Mapping[str, float],
    run_dir: Path,
    result: Mapping[str, Any],
    warm_start: bool,
) -> dict[str, Any]:
    knobs = list(chosen["size"])
    own = (chosen["spent"].get(axis) or 0.0) if warm_start else 0.0
    curve = curve_points(run_dir / "curve.csv", axis, metric, result)
    final_points = [(own + x, y) for x, y in curve]
    metrics = result.get("metrics") or {}
    return {
        "knob": knobs[0] if len(knobs) == 1 else knobs,
        "metric": metric,
        "budget_key": axis,
        "budget": budget.enforced()[axis],
        "share": share,
        "candidates": [
            {
                "size": c["size"][knobs[0]] if len(knobs) == 1 else c["size"],
                "dir": str(Path(c["dir"]).relative_to(run_dir)),
                "status": c["status"],
                "spent": c["spent"],
                "points": c["points"],
                "fit": c["fit"],
                "predicted": c["predicted"],
                "predicted_at": c["predicted_at"],
            }
            for c in candidates
        ],
        "pilot_spent": dict(pilot_spent),
        "final_budget": dict(final_budget),
        "choice": chosen["size"][knobs[0]] if len(knobs) == 1 else chosen["size"],
        "predicted": chosen["predicted"],
        "predicted_at": chosen["predicted_at"],
        "achieved": {k: metrics.get(k) for k in ("val/loss", "val/acc", "test/acc", "test/loss")},
        "final_points": final_points,
        "warm_start": warm_start,
    }
