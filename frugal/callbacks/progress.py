"""Progress bar that shows each enforced budget's use next to the loss (`energy 1.2/2 kJ est.`)."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar

from frugal.callbacks.budget import BudgetCallback


class BudgetProgressBar(TQDMProgressBar):
    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        for callback in trainer.callbacks:
            if isinstance(callback, BudgetCallback):
                metrics.update(callback.progress())
        return metrics
