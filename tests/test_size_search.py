"""model.kwargs.width_mult=auto: pilots, fits, the choice, and the budget held pilots included."""

from __future__ import annotations

import json
import math

import pytest

from frugal.core.curves import fit_power_law
from frugal.core.errors import ConfigError
from frugal.runs.preflight import check_config
from tests.conftest import compose_cfg

# Exact dimensions (compute and data) keep the arithmetic checkable to the FLOP.
SEARCH = [
    "model=mlp",
    "model.kwargs.width_mult=auto",
    "size_search.width_mult=[0.1,0.2,0.4]",
    "trainer.max_steps=100000",
    "budget.compute=6e8",
]


def test_power_law_recovers_a_known_curve_and_extrapolates() -> None:
    xs = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    points = [(x, 0.2 + 1.5 * x**-0.7) for x in xs]
    fit = fit_power_law(points)
    assert fit.ok
    assert fit.e == pytest.approx(0.2, abs=1e-3)
    assert fit.alpha == pytest.approx(0.7, abs=1e-2)
    assert fit.predict(320.0) == pytest.approx(0.2 + 1.5 * 320**-0.7, rel=1e-3)


def test_too_few_points_predict_the_last_error_and_say_so() -> None:
    fit = fit_power_law([(1.0, 0.9), (2.0, 0.7), (3.0, 0.6)])
    assert not fit.ok
    assert fit.predict(1e6) == pytest.approx(0.65)  # the last two, averaged: no invented gain
    assert fit_power_law([]).predict(10.0) is None


def test_search_stays_within_the_budget_pilots_included(run_train, tmp_path) -> None:
    result, _ = run_train(*SEARCH)
    search = result["size_search"]
    budget = 6e8
    assert result["budget"]["compute_flop"] == budget  # the declared budget, not the final run's
    assert result["spent"]["compute_flop"] <= budget
    # the pilots spent the declared share between them (each its part, less one step at most)
    pilots = [c["spent"]["compute_flop"] for c in search["candidates"]]
    assert sum(pilots) == pytest.approx(search["pilot_spent"]["compute_flop"])
    assert 0.15 * budget < sum(pilots) <= 0.2 * budget
    assert search["final_budget"]["compute_flop"] == pytest.approx(budget - sum(pilots))
    # the run's spending is the pilots' plus the final run's, booked once
    final = json.loads((tmp_path / "curve.csv").read_text().splitlines()[-1].split(",")[2])
    assert result["spent"]["compute_flop"] == pytest.approx(sum(pilots) + final)
    assert search["choice"] in (0.1, 0.2, 0.4)
    chosen = next(c for c in search["candidates"] if c["size"] == search["choice"])
    predicted = [c["predicted"] for c in search["candidates"] if c["predicted"] is not None]
    assert chosen["predicted"] == min(predicted)  # val/loss: the lowest predicted
    assert search["achieved"]["test/acc"] == result["metrics"]["test/acc"]
    assert search["final_points"] and search["warm_start"] is True
    # the model trained is the chosen size; its pilots are marked as such, in their own dirs
    assert result["model"]["params"] == _mlp_params(search["choice"])
    for candidate in search["candidates"]:
        pilot = json.loads((tmp_path / candidate["dir"] / "result.json").read_text())
        assert pilot["run"]["role"] == "pilot"
        assert len(candidate["points"]) >= 4  # enough validations to fit a curve
        assert all(math.isfinite(y) for _, y in candidate["points"])


@pytest.mark.slow  # a second search; the default run covers the search once
def test_a_rerun_into_the_same_run_reuses_finished_pilots(run_train, tmp_path) -> None:
    first, _ = run_train(*SEARCH)
    stamps = {
        c["dir"]: (tmp_path / c["dir"] / "result.json").stat().st_mtime_ns
        for c in first["size_search"]["candidates"]
    }
    for name in ("result.json", "ledger.json", "curve.csv"):  # the final run lost
        (tmp_path / name).unlink()
    for path in (tmp_path / "checkpoints").iterdir():
        path.unlink()
    again, _ = run_train(*SEARCH)
    for candidate in again["size_search"]["candidates"]:
        assert (tmp_path / candidate["dir"] / "result.json").stat().st_mtime_ns == stamps[
            candidate["dir"]
        ]
    assert again["size_search"]["choice"] == first["size_search"]["choice"]
    assert again["spent"]["compute_flop"] <= 6e8


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        (["model=mlp", "model.kwargs.width_mult=auto"], "add one, e.g. budget.energy"),
        ([*SEARCH, "size_search.width_mult=[1.0]"], "at least two sizes"),
        ([*SEARCH, "size_search.width_mult=[1.0,-2]"], "size_search.width_mult"),
        ([*SEARCH, "trainer.devices=2"], "one device"),
        ([*SEARCH, "init_from=/nowhere/last.ckpt"], "starts from scratch"),
        ([*SEARCH, "budget.search_share=1.5"], "budget.search_share"),
        (["model=mlp", "model.kwargs.width_mult=big", "budget.compute=1e9"], "width_mult"),
    ],
)
def test_a_search_that_cannot_run_is_refused_up_front(tmp_path, overrides, says) -> None:
    with pytest.raises(ConfigError, match=says.replace(".", r"\.").replace("[", r"\[")):
        check_config(compose_cfg(tmp_path, *overrides))
    assert not (tmp_path / "pilots").exists()


def _mlp_params(width_mult: float) -> int:
    hidden = max(1, math.floor(100 * width_mult + 0.5))
    return 16 * hidden + hidden + hidden * hidden + hidden + hidden * 4 + 4
