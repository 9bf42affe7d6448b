"""The budget's cost model and LR clock, without a Trainer: what one more step, a validation, the
final checkpoint and a stop cost per budget key (`frugal.budget.costs`), and the clock
budget-aware LR schedules follow (`frugal.budget.clock`)."""

from __future__ import annotations

import pytest

from frugal.budget.clock import ProgressClock, horizon_fraction
from frugal.budget.costs import CostModel

STEP_FLOP = 3_000.0  # one rank's step on a batch of 10


def trained(costs: CostModel, steps: int, s_per_step: float, j_per_step: float) -> None:
    """Feed the forecast `steps` training steps of a constant cost, then refit."""
    for step in range(1, steps + 1):
        spent = {"time_s": step * s_per_step, "energy_j": step * j_per_step}
        none = {"time_s": 0.0, "energy_j": 0.0}  # no validation, no checkpoint save yet
        costs.forecast.observe_step(step, spent, none, none)
    costs.forecast.refit()


def test_compute_and_data_cost_exactly_one_measured_step_on_every_rank():
    costs = CostModel()
    costs.measured_step(samples=10, step_flop=STEP_FLOP, world_size=4)
    assert costs.flop_per_sample == 300.0
    assert costs.per_step("data_samples") == 40.0
    assert costs.per_step("compute_flop") == 4 * STEP_FLOP
    # validations spend no training samples or FLOPs; the final checkpoint costs one step
    assert costs.evaluation("compute_flop", val_batches=5) == 0.0
    assert costs.reserve("compute_flop", val_batches=5) == 0.0
    limits = {"compute_flop": 1e9, "data_samples": 1e9}
    assert costs.to_continue(limits, val_batches=5, validations=2) == {
        "compute_flop": 4 * STEP_FLOP,
        "data_samples": 40.0,
    }


def test_time_is_unknown_until_measured_then_follows_the_forecast():
    costs = CostModel()
    assert costs.per_step("time_s") is None
    assert costs.to_continue({"time_s": 100.0}, val_batches=3, validations=1) == {}
    trained(costs, 10, s_per_step=0.5, j_per_step=2.0)
    assert costs.per_step("time_s") == pytest.approx(0.5)
    assert costs.per_step("energy_j") == pytest.approx(2.0)


def test_a_validation_is_estimated_at_one_step_per_batch_until_one_is_measured():
    costs = CostModel()
    trained(costs, 10, s_per_step=0.5, j_per_step=2.0)
    assert costs.evaluation("time_s", val_batches=4) == pytest.approx(2.0)
    assert costs.evaluation("time_s", val_batches=None) == 0.0  # the run does not validate
    # a measured validation (3 s, 1.5 s of it saving checkpoints) replaces the estimate
    spent = {"time_s": 5.5 + 3.0, "energy_j": 22.0}
    costs.forecast.observe_step(11, spent, {"time_s": 3.0, "energy_j": 0.0}, {"time_s": 1.5})
    assert costs.evaluation("time_s", val_batches=4) == 3.0
    assert costs.checkpoint("time_s") == 1.5  # larger than a step: the save, not the step


def test_what_continuing_costs_reserves_the_closing_validation_and_checkpoint():
    costs = CostModel()
    trained(costs, 10, s_per_step=1.0, j_per_step=2.0)
    # next step 1 s + final checkpoint (at least a step) 1 s + 2 validations of 3 batches
    continuing = costs.to_continue({"time_s": 100.0}, val_batches=3, validations=2)
    assert continuing == {"time_s": pytest.approx(1.0 + 1.0 + 2 * 3.0)}
    per_step, reserve = costs.rates({"time_s": 100.0}, val_batches=3, interval=6)
    assert per_step == {"time_s": pytest.approx(1.0 + 3.0 / 6)}  # a validation every 6 steps
    assert reserve == {"time_s": pytest.approx(3.0 + 1.0)}


def test_carbon_follows_energy_through_the_given_intensity():
    costs = CostModel(carbon_g=lambda joules: joules / 1000)
    trained(costs, 10, s_per_step=1.0, j_per_step=2_000.0)
    assert costs.per_step("carbon_g") == pytest.approx(2.0)
    assert costs.evaluation("carbon_g", val_batches=2) == pytest.approx(4.0)
    assert CostModel().per_step("carbon_g") is None  # no intensity: carbon is not counted


def test_spent_fractions_reach_one_on_the_last_step_the_stop_rule_allows():
    costs = CostModel()
    trained(costs, 10, s_per_step=1.0, j_per_step=1.0)
    limits = {"time_s": 21.0}
    # 10 s spent of the 20 s training may spend (21 s less a 1 s final checkpoint)
    assert costs.spent_fractions(limits, {"time_s": 10.0}, 0, {"time_s": 2.0}) == [0.5]
    # a pending step is counted at its forecast cost
    assert costs.spent_fractions(limits, {"time_s": 10.0}, 2, {"time_s": 2.0}) == [0.6]
    # 19 s + this step + what follows it (2 s) > 21 s: none after this one
    assert costs.spent_fractions(limits, {"time_s": 19.0}, 0, {"time_s": 2.0}) == [1.0]
    assert costs.spent_fractions({"compute_flop": 1e9}, {"compute_flop": 5.0}, 0, {}) == []


def test_the_lr_clock_takes_the_furthest_budget_and_never_goes_back():
    assert horizon_fraction(50, 101) == [0.5]
    assert horizon_fraction(200, 101) == [1.0]
    assert horizon_fraction(3, -1) == horizon_fraction(3, 1) == horizon_fraction(3, None) == []
    clock = ProgressClock()
    assert clock.advance([]) is None  # neither budget nor horizon: constant LR
    assert clock.advance([0.2, 0.4]) == 0.4
    assert clock.advance([0.3]) == 0.4  # a forecast that moved back does not raise the LR
    assert clock.advance([1.7]) == 1.0
