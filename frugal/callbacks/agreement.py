"""Rank agreement through the Lightning strategy: one small all-gather per step.

Every rank contributes its own figures (samples, FLOPs, its node's joules, its clock, its stop
request); every rank then computes the same totals from the same gathered tensor, so budgets,
horizons and stops agree by construction. Collectives go through `trainer.strategy` on its
root device, so the same code runs under gloo (CPU) and NCCL (GPU); their waits are bounded by
the process group's timeout (`trainer=ddp` sets it).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from lightning.pytorch.strategies import Strategy


class RankAgreement:
    def __init__(self, strategy: Strategy, world_size: int) -> None:
        self._strategy = strategy
        self.world_size = world_size

    def combine(self, sums: list[float], maxes: list[float]) -> tuple[list[float], list[float]]:
        """(sum over ranks of `sums`, max over ranks of `maxes`). A NaN (unknown) in any rank's
        sum keeps that total unknown."""
        if self.world_size <= 1:
            return sums, maxes
        local = torch.tensor(
            [*sums, *maxes], dtype=torch.float64, device=self._strategy.root_device
        )
        gathered = self._strategy.all_gather(local).reshape(self.world_size, -1).cpu()
        n = len(sums)
        return gathered[:, :n].sum(dim=0).tolist(), gathered[:, n:].max(dim=0).values.tolist()

    def from_rank_zero(self, value: Any) -> Any:
        """Rank 0's `value` on every rank (decided once, agreed everywhere)."""
        if self.world_size <= 1:
            return value
        return self._strategy.broadcast(value, src=0)


def nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


def none_if_nan(value: float) -> float | None:
    return None if math.isnan(value) else value
