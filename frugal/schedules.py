"""Budget-aware learning-rate schedules.

`budget_linear|cosine|step` follow Li, Yumer & Ramanan, "Budgeted Training" (ICLR 2020);
`budget_wsd` is warmup–stable–decay (Hägele et al., "Scaling Laws and Compute-Optimal Training
Beyond Fixed Training Durations", NeurIPS 2024): constant, then a cooldown over the last
fraction of the budget, so it needs no horizon until the cooldown starts.

The clock is the budget itself, not a step count: `progress(step)` is the fraction of the
binding budget spent (exactly step ÷ last step for compute and data, spent ÷ what may be spent
for time and energy), given by the budget callback and monotone by construction. So the LR
reaches its final value when the budget runs out, whatever a time or energy forecast does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

SHAPES = ("linear", "cosine", "step", "wsd")
STEP_MILESTONES = (0.5, 0.75)  # step shape: ×0.1 at half and three quarters of the budget
COOLDOWN_SHAPES = ("linear", "sqrt")  # sqrt: 1 - sqrt(x), the better cooldown in Hägele et al.

Progress = Callable[[int], "float | None"]


@runtime_checkable
class LRClock(Protocol):
    """What gives a run its clock: the budget callback (`BudgetCallback.lr_progress`)."""

    def lr_progress(self, step: int) -> float | None: ...


class BudgetLR(LambdaLR):
    """LR factor as a function of budget progress p in [0, 1]: from 1 down to `final_ratio`
    at p = 1 (linear, cosine), ×0.1 at 50 % and 75 % (step), or `warmup_steps` of linear
    warm-up, constant, then a cooldown over the last `cooldown_fraction` (wsd)."""

    def __init__(
        self,
        optimizer: Optimizer,
        shape: str = "linear",
        final_ratio: float = 0.0,
        warmup_steps: int = 0,
        cooldown_fraction: float = 0.2,
        cooldown_shape: str = "linear",
        progress: Progress | None = None,
    ):
        if shape not in SHAPES:
            raise ValueError(f"scheduler.shape={shape!r}: expected one of {', '.join(SHAPES)}")
        if not 0 <= final_ratio <= 1:
            raise ValueError(f"scheduler.final_ratio={final_ratio}: expected a fraction in [0, 1]")
        if not 0 < cooldown_fraction <= 1:
            raise ValueError(
                f"scheduler.cooldown_fraction={cooldown_fraction}: expected a fraction in (0, 1]"
            )
        if cooldown_shape not in COOLDOWN_SHAPES:
            raise ValueError(
                f"scheduler.cooldown_shape={cooldown_shape!r}: expected one of "
                f"{', '.join(COOLDOWN_SHAPES)}"
            )
        if warmup_steps < 0:
            raise ValueError(f"scheduler.warmup_steps={warmup_steps}: expected >= 0")
        self.shape = shape
        self.final_ratio = final_ratio
        self.warmup_steps = warmup_steps
        self.cooldown_fraction = cooldown_fraction
        self.cooldown_shape = cooldown_shape
        self.progress = progress  # bound by FrugalModule to the budget callback's clock
        super().__init__(optimizer, self.factor)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.pop("progress", None)  # rebound on resume; a closure cannot be pickled
        return state

    def factor(self, step: int) -> float:
        p = self.progress(step) if self.progress is not None else None
        warm = min((step + 1) / self.warmup_steps, 1.0) if self.warmup_steps else 1.0
        if p is None:
            return warm  # no budget and no horizon: constant LR after warm-up
        p = min(max(p, 0.0), 1.0)
        return warm * self._decay(p)

    def _decay(self, p: float) -> float:
        if self.shape == "step":  # final_ratio does not apply: the classic ×0.1 drops
            return 0.1 ** sum(p >= milestone for milestone in STEP_MILESTONES)
        if self.shape == "linear":
            decay = 1.0 - p
        elif self.shape == "cosine":
            decay = 0.5 * (1.0 + math.cos(math.pi * p))
        else:  # wsd: stable until the cooldown, then down to final_ratio at p = 1
            start = 1.0 - self.cooldown_fraction
            x = max(p - start, 0.0) / self.cooldown_fraction
            decay = 1.0 - (math.sqrt(x) if self.cooldown_shape == "sqrt" else x)
        return self.final_ratio + (1.0 - self.final_ratio) * decay
