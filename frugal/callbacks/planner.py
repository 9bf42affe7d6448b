"""The plan: the horizon each budget allows, re-planned as the forecasts learn (decided on rank 0
and agreed by every rank), what continuing one more step costs (for the stop rule) and the LR
clock. Wires the `CostModel` to the trainer's validation schedule; the arithmetic is in
`frugal.budget` (costs, plan, clock)."""

from __future__ import annotations

import lightning as L

from frugal.budget.clock import ProgressClock, horizon_fraction
from frugal.budget.costs import CostModel
from frugal.budget.plan import Plan, make_plan, steps_allowed
from frugal.budget.spec import BudgetSpec
from frugal.callbacks.agreement import RankAgreement
from frugal.callbacks.schedule import Schedule, configured_steps

EXACT = ("compute", "data")  # budgets whose horizon is known exactly: they move the trainer's


class Planner:
    def __init__(self, spec: BudgetSpec, costs: CostModel) -> None:
        self.spec = spec
        self.costs = costs
        self.plan: Plan | None = None  # the latest, agreed by every rank
        self.limits: dict[str, float] | None = None  # effective limits, fixed once agreed
        self._clock = ProgressClock()
        self._validates: bool | None = None  # Lightning works it out at every access: once

    def schedule(self, trainer: L.Trainer) -> Schedule:
        if self._validates is None:
            self._validates = bool(trainer.enable_validation)
        return Schedule.of(trainer, self._validates)

    def to_continue(self, trainer: L.Trainer) -> dict[str, float]:
        """Per enforced budget: the next step and what must follow it (`CostModel`)."""
        schedule = self.schedule(trainer)
        validations = schedule.validations_to_continue()
        return self.costs.to_continue(self.spec.enforced(), schedule.val_batches, validations)

    def lr_progress(
        self, trainer: L.Trainer | None, step: int, spent: dict[str, float | None], pending: int
    ) -> float | None:
        """The LR clock (`frugal.budget.clock`) at `step`, once training started with
        `pending` steps run and not booked yet (counted at their forecast cost)."""
        if trainer is None:  # before setup: neither a horizon nor a budget
            return None
        fractions = horizon_fraction(step, trainer.fit_loop.max_steps)
        if self.limits is not None:
            continuing = self.to_continue(trainer)
            fractions += self.costs.spent_fractions(self.limits, spent, pending, continuing)
        return self._clock.advance(fractions)

    def replan(
        self, trainer: L.Trainer, spent: dict[str, float | None], agreement: RankAgreement
    ) -> None:
        """Plan again from what was spent; shorten the trainer's horizon to the exact budgets."""
        if self.spec.plan == "off" or self.limits is None:
            return
        # the trainer's horizon before any budget shortened it: the first plan keeps it
        configured = (
            self.plan.configured_steps if self.plan is not None else configured_steps(trainer)
        )
        schedule = self.schedule(trainer)
        per_step, reserve = self.costs.rates(
            self.spec.enforced(), schedule.val_batches, schedule.interval()
        )
        allowed = steps_allowed(self.limits, spent, per_step, trainer.global_step, reserve)
        self.plan = agreement.from_rank_zero(make_plan(configured, allowed))
        # Only exact budgets move the trainer's horizon: a forecast one is held by the stop
        # rule at every step, so a forecast that errs low never ends a run early.
        if self.spec.plan == "fit" and self.spec.on_exceed != "warn":
            exact = {k: v for k, v in self.plan.allowed_steps.items() if k in EXACT}
            trainer.fit_loop.epoch_loop.max_steps = make_plan(configured, exact).max_steps
