"""Gradual structured pruning during training, under the budget (`sparsity=structured`).

At each milestone — a fraction of the run's progress on the budget's clock
(`BudgetCallback.lr_progress`, the one budget-aware LR schedules follow: step ÷ last step of
the planned horizon, spent ÷ spendable for time and energy, whichever is furthest) — every
layer but the classifier is cut to `channel_ratio ** (i / n)` of its original channels
(milestone i of n: each prune removes the same fraction of what is left), ending at
`channel_ratio`. The cut happens before the step runs
(`on_train_batch_start`), so that step already runs, and is booked, at the new size. After
each cut:

- the optimizers point at the new, smaller parameters (same parameter groups, so the LR
  schedule goes on untouched); a cut parameter's optimizer state (Adam moments, momentum)
  starts afresh, the others keep theirs;
- the budget callback re-measures the step (`BudgetCallback.remeasure`): FLOPs per step and
  the parameter count follow the new shapes from this step on, and so does the next re-plan;
- the best checkpoints of the larger model are forgotten (and their files removed): they
  cannot load into the pruned model, and `test_on=best` must test the model the run produced.

The checkpoint holds the original widths and the prunes done; the pruned shapes themselves are
in its weights. Before a checkpoint loads (resume, or testing the best one) the model is pruned
to its widths (`fit_checkpoint`; `frugal.models.structured.match_widths`). One device only:
DDP's gradient buckets are built for the shapes at the start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from typing_extensions import override

from frugal.callbacks.budget import BudgetCallback
from frugal.core.errors import ConfigError, bad, setting
from frugal.models.accounting import count_params
from frugal.models.structured import (
    check_prunable,
    kept_widths,
    match_widths,
    prune_to_widths,
    widths,
)
from frugal.runs.checkpoint import load_checkpoint


def check_milestones(milestones: Sequence[float]) -> None:
    values = list(milestones)
    if not values or any(not 0 <= m < 1 for m in values) or values != sorted(set(values)):
        raise ValueError(
            f"milestones must be a rising list of fractions in [0, 1), got {list(milestones)}"
        )


class StructuredPruning(Callback):
    def __init__(self, channel_ratio: float = 0.25, milestones: Sequence[float] = (0.1, 0.2, 0.3)):
        if not 0 < channel_ratio <= 1:
            raise ValueError(f"channel_ratio must be in (0, 1], got {channel_ratio}")
        check_milestones(milestones)
        self.channel_ratio = channel_ratio
        self.milestones = tuple(float(m) for m in milestones)
        self.prunes_done = 0
        self.original_widths: dict[str, int] = {}

    def keep_ratio(self, prunes: int) -> float:
        """Fraction of the original channels kept after `prunes` of the milestones."""
        return self.channel_ratio ** (prunes / len(self.milestones))

    def prunes_due(self, progress: float) -> int:
        """Milestones reached at `progress` (a fraction of the run)."""
        return sum(progress >= m for m in self.milestones)

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        try:
            check_prunable(pl_module.backbone)
        except ValueError as err:
            raise ConfigError(f"sparsity=structured: {err}") from None
        if stage == "fit" and trainer.world_size > 1:
            raise bad(
                "sparsity=structured",
                ...,
                f"{trainer.world_size} processes",
                "one device (pruning changes shapes DDP has already bucketed)",
            )
        input_shape = getattr(trainer.datamodule, "input_shape", None)
        if trainer.ckpt_path and input_shape is not None:  # before Lightning loads it
            self.fit_checkpoint(pl_module, trainer.ckpt_path, tuple(input_shape))
        if stage == "fit":
            self.original_widths = widths(pl_module.backbone)  # a resumed fit loads its own

    def fit_checkpoint(
        self, pl_module: L.LightningModule, ckpt_path: str, input_shape: tuple[int, ...]
    ) -> None:
        """Prune the fresh `pl_module.backbone` to the widths of the pruned checkpoint it is
        about to load (a no-op when they match). Raises ConfigError for a checkpoint wider than
        the model."""
        state = load_checkpoint(ckpt_path)["state_dict"]
        backbone = {k.removeprefix("backbone."): v for k, v in state.items()}
        try:
            match_widths(pl_module.backbone, backbone, input_shape)
        except ValueError as err:
            raise ConfigError(f"{setting('ckpt_path', ckpt_path)}: {err}") from None

    @override
    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step  # optimizer steps done: this is the step about to run
        budget = budget_callback(trainer)
        due = self.prunes_due(progress(trainer, budget, step))
        if due <= self.prunes_done:
            return
        before = dict(pl_module.named_parameters())
        targets = kept_widths(self.original_widths, self.keep_ratio(due))
        x = batch[0] if isinstance(batch, list | tuple) else batch
        prune_to_widths(pl_module.backbone, x, targets)
        rebind_optimizers(trainer, before, dict(pl_module.named_parameters()))
        forget_best_checkpoints(trainer)
        if budget is not None:
            budget.remeasure(trainer, pl_module)
        self.prunes_done = due
        flop = budget.train_flop_per_sample if budget is not None else None
        rank_zero_info(
            f"structured pruning {due}/{len(self.milestones)} at step {step}: "
            f"{self.keep_ratio(due):.0%} of the channels kept, "
            f"{count_params(pl_module.backbone):,} parameters"
            + (f", {flop:,.0f} training FLOP per sample" if flop is not None else "")
        )

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"prunes_done": self.prunes_done, "original_widths": dict(self.original_widths)}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.prunes_done = state_dict["prunes_done"]
        self.original_widths = dict(state_dict["original_widths"])


def rebind_optimizers(
    trainer: L.Trainer,
    before: dict[str, torch.nn.Parameter],
    after: dict[str, torch.nn.Parameter],
) -> None:
    """Point every optimizer at the parameters pruning replaced (matched by name). The
    optimizer objects stay, so their LR schedulers go on; the state of a replaced parameter is
    dropped (its shape changed), the others keep theirs."""
    replaced = {id(old): after[name] for name, old in before.items() if after[name] is not old}
    for optimizer in trainer.optimizers:
        for group in optimizer.param_groups:
            group["params"] = [replaced.get(id(p), p) for p in group["params"]]
        for old in [p for p in optimizer.state if id(p) in replaced]:
            del optimizer.state[old]


def forget_best_checkpoints(trainer: L.Trainer) -> None:
    """Top-k checkpoints saved before a prune hold the larger model: forget them and remove
    their files, so the best checkpoint is chosen among the pruned model's."""
    for checkpoint in trainer.checkpoint_callbacks:
        if getattr(checkpoint, "monitor", None) is None:
            continue
        for path in checkpoint.best_k_models:
            trainer.strategy.remove_checkpoint(path)
        checkpoint.best_k_models = {}
        checkpoint.kth_best_model_path = checkpoint.best_model_path = ""
        checkpoint.best_model_score = checkpoint.current_score = None
        checkpoint.kth_value = torch.tensor(-torch.inf if checkpoint.mode == "max" else torch.inf)


def progress(trainer: L.Trainer, budget: Any, step: int) -> float:
    """The budget's clock at `step`; without a budget callback (or one without a clock) the
    fraction of the trainer's horizon."""
    clock = budget.lr_progress(step) if budget is not None else None
    if clock is not None:
        return clock
    horizon = trainer.max_steps if trainer.max_steps > 0 else trainer.estimated_stepping_batches
    return step / max(float(horizon), 1.0)


def budget_callback(trainer: L.Trainer) -> Any:
    return next((c for c in trainer.callbacks if isinstance(c, BudgetCallback)), None)
