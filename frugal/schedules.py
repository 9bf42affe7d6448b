"""Budget-aware learning-rate schedules (Li, Yumer & Ramanan, "Budgeted Training", ICLR 2020).

The horizon is not a fixed number: it is read from the trainer's planned `max_steps` at every
step, so when the budget planner re-plans (time and energy are forecast during the run) the
schedule follows and the LR reaches its final value exactly on the last step the budget allows.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

SHAPES = ("linear", "cosine", "step")
STEP_MILESTONES = (0.5, 0.75)  # step shape: ×0.1 at half and three quarters of the horizon


class BudgetLR(LambdaLR):
    """LR factor from 1 at step 0 down to `final_ratio` at step `horizon() - 1` (linear,
    cosine), or ×0.1 at 50 % and 75 % of the horizon (step)."""

    def __init__(
        self,
        optimizer: Optimizer,
        shape: str = "linear",
        final_ratio: float = 0.0,
        horizon: Callable[[], int] | None = None,
    ):
        if shape not in SHAPES:
            raise ValueError(f"scheduler.shape={shape!r}: expected one of {', '.join(SHAPES)}")
        if not 0 <= final_ratio <= 1:
            raise ValueError(f"scheduler.final_ratio={final_ratio}: expected a fraction in [0, 1]")
        self.shape = shape
        self.final_ratio = final_ratio
        self.horizon = horizon  # bound by FrugalModule to the trainer's planned max_steps
        super().__init__(optimizer, self.factor)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.pop("horizon", None)  # rebound to the trainer on resume; a closure cannot pickle
        return state

    def factor(self, step: int) -> float:
        total = self.horizon() if self.horizon is not None else -1
        if total is None or total <= 1:
            return 1.0  # no horizon known (unbounded run): constant LR
        progress = min(step, total - 1) / (total - 1)
        if self.shape == "step":  # final_ratio does not apply: the classic ×0.1 drops
            return 0.1 ** sum(progress >= milestone for milestone in STEP_MILESTONES)
        if self.shape == "linear":
            decay = 1.0 - progress
        else:
            decay = 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.final_ratio + (1.0 - self.final_ratio) * decay
