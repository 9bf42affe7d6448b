"""Turn a budget into a training horizon: how many optimizer steps each budget allows, and
which one binds (the smallest). Pure functions: the budget callback feeds them measured costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from frugal.core.keys import CONFIG_KEY, UNIT
from frugal.core.units import format_use

_EPS = 1e-9  # 2e9 FLOP / 1e7 FLOP per step must give 200 steps, not 199.999…


@dataclass
class Plan:
    max_steps: int  # -1: unbounded
    binding: str | None  # budget key whose limit sets max_steps; None: the trainer's own horizon
    allowed_steps: dict[str, int] = field(default_factory=dict)  # budget key -> step it allows
    configured_steps: int = -1

    @property
    def fits(self) -> bool:
        """True when the configured run ends before any budget runs out."""
        if self.configured_steps < 0:
            return not self.allowed_steps
        return all(steps >= self.configured_steps for steps in self.allowed_steps.values())

    @property
    def tightest(self) -> str | None:
        """The budget key allowing the fewest steps (binding or not)."""
        if not self.allowed_steps:
            return None
        return min(self.allowed_steps, key=self.allowed_steps.__getitem__)

    def shortfall(self) -> str:
        """One line: which budget is short, and by how many steps."""
        key = self.tightest
        want = "an unbounded run" if self.configured_steps < 0 else f"{self.configured_steps} steps"
        return (
            f"budget.{key} allows {self.allowed_steps[key]} steps, the configured run needs {want}"
        )

    def describe(self) -> str:
        horizon = "unbounded" if self.max_steps < 0 else f"{self.max_steps} steps"
        allowed = ", ".join(f"{k}: {v}" for k, v in sorted(self.allowed_steps.items()))
        return f"plan: {horizon}, binding {self.binding or 'none'} ({allowed or 'no budget'})"


def steps_allowed(
    limits: dict[str, float],
    spent: dict[str, float | None],
    cost_per_step: dict[str, float | None],
    current_step: int,
    reserve: dict[str, float] | None = None,
) -> dict[str, int]:
    """The global step each limited, per-step-costed budget lets training reach, keeping
    `reserve[key]` (the closing validation and checkpoint) unspent."""
    allowed: dict[str, int] = {}
    reserve = reserve or {}
    for spent_key, limit in limits.items():
        cost = cost_per_step.get(spent_key)
        if cost is None or cost <= 0:
            continue  # not per-step (memory, params) or not yet measured (time, energy)
        remaining = limit - (spent.get(spent_key) or 0.0) - reserve.get(spent_key, 0.0)
        extra = max(math.floor(remaining / cost + _EPS), 0)
        allowed[CONFIG_KEY[spent_key]] = current_step + extra
    return allowed


def first_to_run_out(
    limits: dict[str, float],
    spent: dict[str, float | None],
    cost_to_continue: dict[str, float],
) -> str | None:
    """The first spent key whose limit is crossed, or would be by continuing: one more step
    and what must follow it (`cost_to_continue`, 0 for keys not known per step)."""
    for key, limit in limits.items():
        used = spent.get(key)
        if used is None:
            continue
        if used > limit or used + cost_to_continue.get(key, 0.0) > limit * (1 + _EPS):
            return key
    return None


def make_plan(configured_steps: int, allowed_steps: dict[str, int]) -> Plan:
    """Shorten the configured horizon (-1 = unbounded) to the tightest budget."""
    if not allowed_steps:
        return Plan(configured_steps, None, {}, configured_steps)
    plan = Plan(configured_steps, None, allowed_steps, configured_steps)
    binding = plan.tightest
    if 0 <= configured_steps <= allowed_steps[binding]:
        return plan
    return Plan(allowed_steps[binding], binding, allowed_steps, configured_steps)


def describe_use(spent_key: str, spent: float | None, limit: float, estimated: bool) -> str:
    """`1.2/2 kJ est.`-style text for the progress bar."""
    return format_use(spent, limit, UNIT[spent_key]) + (" est." if estimated else "")
