"""The stop rule's decisions: which kind of stop a step ends with, how the run's outcome records
it, and the one table of the lines a stop writes. Pure Python: the budget callback feeds in the
agreed request, the limits, what was spent and what continuing costs.

Every rank asks for a stop of its own (`StopRequest`: a signal it received, a loss it saw
diverge); the ranks agree on the maximum of each field, so a higher kind wins and every rank
takes the same decision on the same step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from frugal.budget.plan import Plan, first_to_run_out
from frugal.budget.spec import BudgetSpec
from frugal.core.keys import CONFIG_KEY
from frugal.core.status import Status

METERED = ("energy_j", "carbon_g")  # budgets a meter must answer for: lost with it


class StopKind(IntEnum):
    """Why training stops, by precedence: agreed across ranks by the maximum."""

    NONE = 0
    BUDGET = 1
    REFUSED = 2
    UNENFORCEABLE = 3
    INTERRUPTED = 4
    DIVERGED = 5


STATUS = {
    StopKind.BUDGET: Status.BUDGET_EXHAUSTED,
    StopKind.REFUSED: Status.REFUSED,
    StopKind.UNENFORCEABLE: Status.UNENFORCEABLE,
    StopKind.INTERRUPTED: Status.INTERRUPTED,
    StopKind.DIVERGED: Status.DIVERGED,
}

# Every line the stop rule writes, by name (a stop kind's own is its lowercase name).
MESSAGES = {
    "budget": "budget.{key} spent at step {step}",
    "refused": "{detail}",
    "unenforceable": (
        "budget.{key} cannot be enforced: the energy meter stopped answering ({detail}) "
        "at step {step}"
    ),
    "interrupted": "{detail} received; stopped at step {step}",
    "diverged": "non-finite loss or gradient at step {step}: training stopped",
    "failed": "{detail} at step {step}",
    "warned": "budget.{key} exhausted at step {step} (on_exceed=warn): going on",
    "exceeded": "budget.{key} exceeded (on_exceed=warn)",
    "horizon": "budget.{key} reached its planned horizon",
    "params": "the model has {params} effective parameters, budget.params is {limit}",
    "estimated": (
        "energy is estimated ({method}), not read from counters: enforcing {percent:.0f}% "
        "below the energy/carbon limits (budget.estimate_margin={margin})"
    ),
}


def line(name: str, **fields: object) -> str:
    """The line `name` of `MESSAGES`, filled in."""
    return MESSAGES[name].format(**fields)


class Diverged(RuntimeError):
    """A non-finite loss or gradient: raised on every rank at the same step, so training ends
    at once (no validation or checkpoint of diverged weights)."""


@dataclass(frozen=True)
class StopRequest:
    """One rank's own reason to stop; `signum`: the signal behind an INTERRUPTED request."""

    kind: StopKind = StopKind.NONE
    signum: int = 0

    def codes(self) -> list[float]:
        """The fields as numbers, each agreed across ranks by its maximum."""
        return [float(self.kind), float(self.signum)]

    @classmethod
    def from_codes(cls, codes: Sequence[float]) -> StopRequest:
        return cls(StopKind(int(codes[0])), int(codes[1]))


NO_REQUEST = StopRequest()


def effective_limits(spec: BudgetSpec, energy_estimated: bool) -> dict[str, float]:
    """Enforced limits; energy and carbon stop `estimate_margin` short when estimated."""
    limits = spec.enforced()
    if energy_estimated:
        for key in METERED:
            if key in limits:
                limits[key] *= 1.0 - spec.estimate_margin
    return limits


def decide(
    request: StopRequest,
    limits: dict[str, float],
    spent: dict[str, float | None],
    to_continue: Callable[[], dict[str, float]],
) -> tuple[StopKind, str | None] | None:
    """The stop this step ends with — (kind, the config key of the budget) — or None. From
    figures every rank agreed on; `to_continue` is asked only when a budget is checked."""
    if request.kind in (StopKind.DIVERGED, StopKind.INTERRUPTED):
        return request.kind, None
    if not limits:
        return None  # nothing enforced: nothing to decide
    for key in METERED:  # an enforced budget whose meter no longer answers
        if key in limits and spent.get(key) is None:
            return StopKind.UNENFORCEABLE, CONFIG_KEY[key]
    key = first_to_run_out(limits, spent, to_continue())
    return None if key is None else (StopKind.BUDGET, CONFIG_KEY[key])


def too_large(spec: BudgetSpec, params: int | None) -> str | None:
    """The refusal of a model over `budget.params`, or None."""
    if spec.params is None or params is None or params <= spec.params:
        return None
    return line("params", params=params, limit=int(spec.params))


def short_plan(spec: BudgetSpec, plan: Plan | None) -> tuple[str, str] | None:
    """Under `budget.plan=refuse`, a plan some budget cuts short: (its key, the refusal)."""
    if spec.plan != "refuse" or plan is None or plan.fits:
        return None
    assert plan.tightest is not None
    return plan.tightest, plan.shortfall()


def estimate_warning(spec: BudgetSpec, estimated: bool, method: str | None) -> str | None:
    """The warning that an enforced energy or carbon budget is held on an estimate."""
    if not estimated or method is None or not set(METERED) & set(spec.enforced()):
        return None
    margin = spec.estimate_margin
    return line("estimated", method=method, percent=100 * margin, margin=margin)


@dataclass
class Outcome:
    """How the run ends, so far: its status, the budget that stopped it, one line why."""

    status: Status = Status.COMPLETED
    stopped_by: str | None = None
    message: str | None = None
    signal: int | None = None  # the signal that interrupted the run
    warned: set[str] = field(default_factory=set)  # budgets crossed under on_exceed=warn

    def stop(self, kind: StopKind, step: int, key: str | None, detail: object = None) -> bool:
        """Record the first stop; True when this one was recorded."""
        if self.stopped_by is not None or self.status is not Status.COMPLETED:
            return False
        self.stopped_by, self.status = key, STATUS[kind]
        self.message = line(kind.name.lower(), key=key, step=step, detail=detail)
        return True

    def first_warning(self, key: str) -> bool:
        """Whether budget `key` is crossed for the first time (on_exceed=warn warns once)."""
        first = key not in self.warned
        self.warned.add(key)
        return first

    def interrupt(self, signum: int | None, cause: str, step: int) -> None:
        """A stop request the step loop did not see; `cause` names it."""
        if self.status is Status.INTERRUPTED:
            return
        self.status, self.signal = Status.INTERRUPTED, signum
        self.message = line("interrupted", step=step, detail=cause)

    def fail(self, error: BaseException, step: int) -> None:
        """An exception ended training."""
        if self.status is Status.COMPLETED:
            self.status = Status.INTERRUPTED
            self.message = line("failed", step=step, detail=type(error).__name__)

    def close(
        self, spec: BudgetSpec, spent: dict[str, float | None], plan: Plan | None, step: int
    ) -> None:
        """At the end of training: name a budget crossed under on_exceed=warn, or the budget
        whose planned horizon the run reached."""
        if self.status is not Status.COMPLETED or self.stopped_by is not None:
            return
        limits = spec.enforced()
        crossed = [key for key, limit in limits.items() if (spent.get(key) or 0.0) > limit]
        if spec.on_exceed == "warn" and crossed:
            self.stopped_by, self.status = CONFIG_KEY[crossed[0]], Status.BUDGET_EXHAUSTED
            self.message = line("exceeded", key=self.stopped_by)
        elif plan is not None and plan.binding is not None and step >= plan.max_steps:
            self.stopped_by, self.status = plan.binding, Status.BUDGET_EXHAUSTED
            self.message = line("horizon", key=plan.binding)
