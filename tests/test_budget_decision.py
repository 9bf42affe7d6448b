"""The stop rule's decisions, without a Trainer (`frugal.budget.decision`): the kinds of stop and
their agreement across ranks, the decision from agreed figures, the outcome a run records and
the one table of messages."""

from __future__ import annotations

import signal

import pytest

from frugal.budget.decision import (
    MESSAGES,
    NO_REQUEST,
    STATUS,
    Outcome,
    StopKind,
    StopRequest,
    decide,
    effective_limits,
    estimate_warning,
    short_plan,
    too_large,
)
from frugal.budget.plan import make_plan
from frugal.budget.spec import BudgetSpec
from frugal.core.status import Status


def agreed(*requests: StopRequest) -> StopRequest:
    """What the ranks agree on: the maximum of each field (`RankAgreement.combine`)."""
    codes = [max(values) for values in zip(*(r.codes() for r in requests), strict=True)]
    return StopRequest.from_codes(codes)


def never() -> dict[str, float]:
    raise AssertionError("the cost of continuing was asked for")


def test_every_stop_kind_has_a_status_and_a_message():
    for kind in StopKind:
        if kind is not StopKind.NONE:
            assert kind in STATUS
            assert kind.name.lower() in MESSAGES


def test_ranks_agree_on_the_highest_kind_and_the_signal_behind_an_interruption():
    term = StopRequest(StopKind.INTERRUPTED, signal.SIGTERM)
    usr1 = StopRequest(StopKind.INTERRUPTED, signal.SIGUSR1)
    assert agreed(NO_REQUEST, NO_REQUEST) == NO_REQUEST
    assert agreed(NO_REQUEST, term) == term
    assert agreed(usr1, term) == term  # the larger signal number
    assert agreed(term, StopRequest(StopKind.DIVERGED)).kind is StopKind.DIVERGED


def test_a_rank_s_own_request_wins_before_any_budget_is_looked_at():
    request = StopRequest(StopKind.INTERRUPTED, signal.SIGINT)
    assert decide(request, {"time_s": 1.0}, {"time_s": 5.0}, never) == (
        StopKind.INTERRUPTED,
        None,
    )
    diverged = StopRequest(StopKind.DIVERGED)
    assert decide(diverged, {}, {}, never) == (StopKind.DIVERGED, None)
    assert decide(NO_REQUEST, {}, {"time_s": 5.0}, never) is None  # nothing enforced


def test_an_enforced_energy_budget_whose_meter_is_lost_is_unenforceable():
    spent = {"energy_j": None, "time_s": 1.0}
    decision = decide(NO_REQUEST, {"energy_j": 100.0}, spent, never)
    assert decision == (StopKind.UNENFORCEABLE, "energy")


def test_a_budget_stops_when_continuing_would_cross_it():
    limits = {"compute_flop": 100.0}
    assert (
        decide(NO_REQUEST, limits, {"compute_flop": 80.0}, lambda: {"compute_flop": 20.0}) is None
    )
    stop = decide(NO_REQUEST, limits, {"compute_flop": 81.0}, lambda: {"compute_flop": 20.0})
    assert stop == (StopKind.BUDGET, "compute")


def test_estimated_energy_is_enforced_a_margin_short():
    spec = BudgetSpec(energy_j=1000.0, time_s=10.0, estimate_margin=0.1)
    assert effective_limits(spec, energy_estimated=False) == {"energy_j": 1000.0, "time_s": 10.0}
    assert effective_limits(spec, energy_estimated=True) == {
        "energy_j": pytest.approx(900.0),
        "time_s": 10.0,
    }
    warning = estimate_warning(spec, estimated=True, method="fake")
    assert warning == (
        "energy is estimated (fake), not read from counters: enforcing 10% below the "
        "energy/carbon limits (budget.estimate_margin=0.1)"
    )
    assert estimate_warning(spec, estimated=False, method="fake") is None
    assert estimate_warning(BudgetSpec(time_s=1.0), estimated=True, method="fake") is None


def test_refusals_name_the_budget_and_the_shortfall():
    spec = BudgetSpec(params=1000.0, compute_flop=1e6, plan="refuse")
    assert too_large(spec, 1001) == "the model has 1001 effective parameters, budget.params is 1000"
    assert too_large(spec, 1000) is None
    assert too_large(spec, None) is None
    short = make_plan(500, {"compute": 200})
    assert short_plan(spec, short) == ("compute", short.shortfall())
    assert short_plan(spec, make_plan(100, {"compute": 200})) is None
    assert short_plan(BudgetSpec(compute_flop=1e6), short) is None  # plan=fit: no refusal


def test_the_first_stop_is_the_one_recorded():
    outcome = Outcome()
    assert outcome.stop(StopKind.BUDGET, 12, "energy")
    assert not outcome.stop(StopKind.UNENFORCEABLE, 13, "energy", "rapl")
    assert (outcome.status, outcome.stopped_by) == (Status.BUDGET_EXHAUSTED, "energy")
    assert outcome.message == "budget.energy spent at step 12"
    refused = Outcome()
    refused.stop(StopKind.REFUSED, 0, "params", "the model is too large")
    assert (refused.status, refused.message) == (Status.REFUSED, "the model is too large")


def test_an_interruption_outside_the_step_loop_overrides_the_status_once():
    outcome = Outcome()
    outcome.stop(StopKind.BUDGET, 7, "time")
    outcome.interrupt(signal.SIGTERM, "SIGTERM", 8)
    outcome.interrupt(signal.SIGINT, "SIGINT", 9)  # the first interruption is the one kept
    assert (outcome.status, outcome.signal) == (Status.INTERRUPTED, signal.SIGTERM)
    assert outcome.message == "SIGTERM received; stopped at step 8"
    failed = Outcome()
    failed.fail(RuntimeError("boom"), 3)
    assert (failed.status, failed.message) == (Status.INTERRUPTED, "RuntimeError at step 3")


def test_warnings_are_said_once_per_budget():
    outcome = Outcome()
    assert outcome.first_warning("energy")
    assert not outcome.first_warning("energy")
    assert outcome.first_warning("time")


def test_closing_names_a_budget_crossed_under_warn_or_the_horizon_it_set():
    warned = Outcome()
    spec = BudgetSpec(time_s=10.0, on_exceed="warn")
    warned.close(spec, {"time_s": 11.0}, None, 50)
    assert (warned.status, warned.stopped_by) == (Status.BUDGET_EXHAUSTED, "time")
    assert warned.message == "budget.time exceeded (on_exceed=warn)"
    planned = Outcome()
    plan = make_plan(500, {"compute": 200})
    planned.close(BudgetSpec(compute_flop=1e6), {"compute_flop": 9e5}, plan, 200)
    assert planned.message == "budget.compute reached its planned horizon"
    untouched = Outcome()
    untouched.close(BudgetSpec(compute_flop=1e6), {"compute_flop": 9e5}, plan, 199)
    assert (untouched.status, untouched.stopped_by) == (Status.COMPLETED, None)
