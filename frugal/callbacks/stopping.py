"""The stop rule applied to the trainer: each rank's own request (a signal, a divergence), one
decision per step from what every rank agreed on (`frugal.budget.decision`), recorded in the
run's `Outcome`, said once (rank zero) and made — `trainer.should_stop`, or `Diverged` at once.

The rule reserves what follows a stop: training goes on only while the next step, any
validation due after it and the closing validation and checkpoint still fit. Compute and data
end within one step below their limit; time and energy at or under theirs (plus what a polled
meter cannot see between samples: README, "How precisely").
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from frugal.budget.decision import (
    NO_REQUEST,
    Diverged,
    Outcome,
    StopKind,
    StopRequest,
    decide,
    estimate_warning,
    line,
    short_plan,
    too_large,
)
from frugal.budget.plan import Plan
from frugal.budget.spec import BudgetSpec
from frugal.callbacks.protocols import BudgetedModule
from frugal.meters.base import EnergyMeter
from frugal.runs.signals import StopSignals, signal_name


class Stopper:
    def __init__(self, spec: BudgetSpec, signals: StopSignals, meter: EnergyMeter | None):
        self.spec = spec
        self.signals = signals
        self.outcome = Outcome()
        self._meter = meter  # named when it stops answering (read then: it may fall back)

    def request(self, module: BudgetedModule) -> StopRequest:
        """This rank's own reason to stop: divergence, or a signal."""
        if module.diverged_at is not None:
            return StopRequest(StopKind.DIVERGED)
        if self.signals.received is not None:
            return StopRequest(StopKind.INTERRUPTED, self.signals.received)
        return NO_REQUEST

    def decide(
        self,
        trainer: L.Trainer,
        request: StopRequest,
        limits: dict[str, float],
        spent: dict[str, float | None],
        to_continue: Callable[[], dict[str, float]],
    ) -> None:
        """One decision per step, from figures every rank agreed on."""
        if request.kind is StopKind.INTERRUPTED:
            self.outcome.signal = request.signum
        verdict = decide(request, limits, spent, to_continue)
        if verdict is not None:
            self.stop(trainer, *verdict)

    def refuse_params(self, trainer: L.Trainer, params: int | None) -> bool:
        """At the start: refuse a model over budget.params. True when refused."""
        refusal = too_large(self.spec, params)
        if refusal is not None:
            self.stop(trainer, StopKind.REFUSED, "params", refusal)
        return refusal is not None

    def refuse_short(self, trainer: L.Trainer, plan: Plan | None) -> bool:
        """Under budget.plan=refuse, stop when the plan falls short. True when refused."""
        short = short_plan(self.spec, plan)
        if short is not None:
            self.stop(trainer, StopKind.REFUSED, *short)
        return short is not None

    def warn_estimated(self, estimated: bool) -> None:
        warning = estimate_warning(self.spec, estimated, self._method())
        if warning is not None:
            rank_zero_warn(warning)

    def stop(
        self, trainer: L.Trainer, kind: StopKind, key: str | None = None, detail: str = ""
    ) -> None:
        step = trainer.global_step
        if kind is StopKind.BUDGET and self.spec.on_exceed == "warn":
            if self.outcome.first_warning(str(key)):
                rank_zero_warn(line("warned", key=key, step=step))
            return
        if kind is StopKind.INTERRUPTED:
            detail = signal_name(self.outcome.signal or 0)
        elif kind is StopKind.UNENFORCEABLE:
            detail = self._method() or "no meter"
        if self.outcome.stop(kind, step, key, detail):
            rank_zero_info(f"{self.outcome.status}: {self.outcome.message}")
        if kind is StopKind.DIVERGED:
            raise Diverged(self.outcome.message)
        trainer.should_stop = True

    def interrupted(self, signum: int | None, how: str, trainer: L.Trainer | None) -> None:
        """A stop request the step loop did not see; `how` names it when no signal does."""
        step = trainer.global_step if trainer is not None else 0
        signum = signum if signum is not None else self.signals.received
        self.outcome.interrupt(signum, signal_name(signum) if signum is not None else how, step)

    def _method(self) -> str | None:
        return self._meter.method if self._meter is not None else None
