"""The clock budget-aware LR schedules follow (`frugal.schedules`): the largest fraction of any
enforced budget spent by the step about to run — step ÷ last step for a horizon (compute, data,
the trainer's own), spent ÷ spendable for time and energy (`CostModel.spent_fractions`). It never
goes back, so a forecast that moves does not raise the LR again. Pure Python."""

from __future__ import annotations


def horizon_fraction(step: int, horizon: int | None) -> list[float]:
    """[step ÷ last step] of a horizon of more than one step; [] when there is none."""
    if horizon is None or horizon <= 1:
        return []
    return [min(step, horizon - 1) / (horizon - 1)]


class ProgressClock:
    def __init__(self) -> None:
        self.progress = 0.0

    def advance(self, fractions: list[float]) -> float | None:
        """The clock after `fractions` of the budgets; None when there are none (constant LR)."""
        if not fractions:
            return None
        self.progress = max(self.progress, min(max(fractions), 1.0))
        return self.progress
