"""The LightningModule that wraps any backbone: cross-entropy (or a distillation loss, with a
teacher: `frugal.runs.distill`), torchmetrics accuracy for train/val/test, optimizer and LR
scheduler built from Hydra partials."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torchmetrics.classification import MulticlassAccuracy

from frugal.meters.flops import forward_flops, train_step_flops
from frugal.schedules import BudgetLR, LRClock, Progress

if TYPE_CHECKING:
    from frugal.runs.distill import Distillation


class FrugalModule(L.LightningModule):
    def __init__(
        self,
        backbone: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        num_classes: int,
        scheduler: Callable[..., Any] | None = None,
        distillation: Distillation | None = None,
    ):
        super().__init__()
        self.backbone = backbone
        # A plain object, not a submodule: the teacher stays out of parameters(), state_dict()
        # and DDP; `_apply` moves it along with the student.
        self.distillation = distillation
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.diverged_at: int | None = None  # the step whose loss or gradient was not finite
        self._last_loss: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        return self.backbone(x)

    def loss_fn(self, logits: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(logits, y)

    def step_flops(self, x: Tensor, y: Tensor) -> int:
        """FLOPs of one training step on batch (x, y), as the budget books them: the model's
        forward and backward, plus the teacher's forward when distilling."""
        flop = train_step_flops(self, x, y, self.loss_fn)
        if self.distillation is not None:
            flop += forward_flops(self.distillation.teacher, x)
        return flop

    def _apply(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> FrugalModule:
        # .to(device), .double(), … reach every submodule through here; the teacher is not one.
        super()._apply(fn, *args, **kwargs)
        if self.distillation is not None:
            self.distillation.teacher._apply(fn)
        return self

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        if self.distillation is None:
            loss = self.loss_fn(logits, y)
        else:
            loss = self.distillation.loss(logits, x, y)
        self._last_loss = loss.detach()
        # Logging through Lightning costs about as much as a small model's step, so only on the
        # steps the logger writes; train/acc is that batch's accuracy.
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            batch_acc = (logits.detach().argmax(1) == y).float().mean()
            self.log_dict({"train/loss": loss.detach(), "train/acc": batch_acc}, on_step=True)
        return loss

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str, metric: MulticlassAccuracy):
        x, y = batch
        logits = self(x)
        metric(logits, y)
        self.log(f"{stage}/loss", self.loss_fn(logits, y), prog_bar=stage == "val")
        self.log(f"{stage}/acc", metric, prog_bar=True)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_acc)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_acc)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        # A non-finite loss skips this update, keeping the weights finite, and the budget
        # callback ends the run on this step (agreed by every rank) with status `diverged`.
        # One check of one scalar per step; a non-finite gradient under a finite loss shows up
        # as a non-finite loss one step later, and the budget callback checks the weights
        # before every validation.
        loss = self._last_loss
        if loss is not None and not bool(loss.isfinite()):
            self.diverged_at = self.global_step
            optimizer.zero_grad(set_to_none=True)  # optimizers skip parameters without grads

    def _budget_progress(self) -> Progress:
        """The budget callback's clock (found once: the callbacks are set by now); without
        one, the trainer's own horizon."""
        clock = next((c for c in self.trainer.callbacks if isinstance(c, LRClock)), None)
        return clock.lr_progress if clock is not None else self._horizon_progress

    def _horizon_progress(self, step: int) -> float | None:
        horizon = self.trainer.max_steps
        return min(step, horizon - 1) / (horizon - 1) if horizon and horizon > 1 else None

    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        # The batches are already CPU tensors: skip Lightning's generic collection walk, which
        # costs a noticeable share of a small model's step.
        if device.type == "cpu":
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer=optimizer)
        if isinstance(scheduler, BudgetLR):
            scheduler.progress = self._budget_progress()
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
