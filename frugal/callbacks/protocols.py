"""What the budget callback reads from the LightningModule, declared: `frugal.module.FrugalModule`
implements it. (What the module reads from the callback, the LR clock, is declared beside its
reader: `frugal.schedules.LRClock`.)"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from torch import Tensor


@runtime_checkable
class BudgetedModule(Protocol):
    """What the budget callback reads from (and marks on) the LightningModule."""

    diverged_at: int | None  # the step whose loss or gradient was not finite; None: finite

    def step_flops(self, x: Tensor, y: Tensor) -> int:
        """FLOPs of one training step on batch (x, y), as the budget books them."""
        ...


def budgeted(module: object) -> BudgetedModule:
    """`module` as the budget callback reads it; TypeError naming what it lacks otherwise."""
    if not isinstance(module, BudgetedModule):
        raise TypeError(
            f"{type(module).__name__} cannot train under a budget: it needs `diverged_at` and "
            "`step_flops(x, y)` (frugal.callbacks.protocols.BudgetedModule)"
        )
    return module
