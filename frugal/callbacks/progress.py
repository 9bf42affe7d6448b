"""How a run shows its progress: a live bar on a terminal, a few log lines elsewhere.

A tqdm bar written to a file or a pipe is one line rewritten thousands of times (`make train
> log` left 116 kB of it); `progress=auto` (the default) therefore draws the bar only when
stdout is a terminal and otherwise logs one line per tenth of the planned run.
"""

from __future__ import annotations

import logging
import math
import sys
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import TQDMProgressBar
from typing_extensions import override

from frugal.callbacks.budget import BudgetCallback
from frugal.core.errors import bad

log = logging.getLogger(__name__)

MODES = ("auto", "bar", "log")


def budget_use(trainer: L.Trainer) -> dict[str, str]:
    """Each enforced budget's use (`energy: 1.2/2 kJ est.`), from the budget callback."""
    for callback in trainer.callbacks:
        if isinstance(callback, BudgetCallback):
            return callback.progress()
    return {}


class BudgetProgressBar(TQDMProgressBar):
    """Lightning's bar, with each enforced budget's use next to the loss."""

    @override
    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        metrics.update(budget_use(trainer))
        return metrics


class ProgressLog(L.Callback):
    """One log line each `fraction` of the planned horizon (it follows re-plans), and one at the
    end: `step 600/6000: loss 0.412, val/acc 0.873, energy 50/500 J est.`"""

    def __init__(self, fraction: float = 0.1):
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction={fraction}: expected a number in (0, 1]")
        self.fraction = fraction
        self._logged_step = 0
        self._loss: float | None = None

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._logged_step = trainer.global_step

    @override
    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        step, horizon = trainer.global_step, trainer.max_steps
        every = max(1, math.ceil(self.fraction * horizon)) if horizon > 0 else 100
        if step - self._logged_step < every and step != horizon:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        self._loss = None if loss is None else float(loss)
        self._write(trainer)

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.global_step != self._logged_step:
            self._write(trainer)

    def _write(self, trainer: L.Trainer) -> None:
        self._logged_step = trainer.global_step
        if not trainer.is_global_zero:
            return
        horizon = f"/{trainer.max_steps}" if trainer.max_steps > 0 else ""
        parts = [] if self._loss is None else [f"loss {self._loss:.3f}"]
        val_acc = trainer.callback_metrics.get("val/acc")
        if val_acc is not None:
            parts.append(f"val/acc {float(val_acc):.3f}")
        parts += [f"{key} {use}" for key, use in budget_use(trainer).items()]
        log.info("step %d%s: %s", trainer.global_step, horizon, ", ".join(parts) or "-")


def progress_callback(mode: str, refresh_rate: int) -> L.Callback:
    """`mode`: `bar`, `log`, or `auto` (a bar when stdout is a terminal, else log lines)."""
    if mode not in MODES:
        raise bad("progress", mode, "", f"one of {', '.join(MODES)}")
    if mode == "auto":
        mode = "bar" if sys.stdout.isatty() else "log"
    return BudgetProgressBar(refresh_rate=refresh_rate) if mode == "bar" else ProgressLog()
