"""When Lightning validates, as the cost model needs it: whether a validation follows the step
about to end (continuing, or stopping after the next), how many batches one runs and how many
steps lie between two. `Schedule.of` reads the fit loop's position from the trainer; the
answers are pure, so they are tested without one."""

from __future__ import annotations

import math
from dataclasses import dataclass

import lightning as L


@dataclass(slots=True)  # built twice a step: not frozen, whose __init__ is slower
class Schedule:
    val_batches: float | None  # batches per validation; None: the run does not validate
    every_n_epochs: int | None  # None: validations every `val_check_batch` batches of the run
    val_check_batch: float
    training_batches: float  # per epoch
    epoch: int
    batch_idx: int  # in the epoch
    total_batch_idx: int  # in the run
    last_batch: bool  # of the epoch

    @classmethod
    def of(cls, trainer: L.Trainer, validates: bool) -> Schedule:
        loop = trainer.fit_loop.epoch_loop
        val_batches = trainer.num_val_batches
        return cls(
            val_batches=(sum(val_batches) if val_batches else 1) if validates else None,
            every_n_epochs=trainer.check_val_every_n_epoch,
            val_check_batch=trainer.val_check_batch,
            training_batches=trainer.num_training_batches,
            epoch=trainer.current_epoch,
            batch_idx=loop.batch_idx,
            total_batch_idx=loop.total_batch_idx,
            last_batch=loop.batch_progress.is_last_batch,
        )

    def due(self, steps_ahead: int, stopping: bool) -> bool:
        """Whether Lightning validates after the step `steps_ahead` from now (0: this one),
        continuing or stopping there (a stop validates in every validation epoch)."""
        if self.val_batches is None:
            return False
        epoch = self.epoch + (1 if steps_ahead and self.last_batch else 0)
        every = self.every_n_epochs
        if every is not None and (epoch + 1) % every != 0:
            return False
        if stopping:
            return True
        if steps_ahead:
            return False  # only asked for this step when continuing
        if every is None:
            return (self.total_batch_idx + 1) % self.val_check_batch == 0
        return self.last_batch or (self.batch_idx + 1) % self.val_check_batch == 0

    def validations_to_continue(self) -> int:
        """Validations a step pays for: one due after it, and one at a stop after the next."""
        return int(self.due(0, stopping=False)) + int(self.due(1, stopping=True))

    def interval(self) -> int | None:
        """Steps between two validations; None when not validating or unknown."""
        if self.val_batches is None or not self.training_batches:
            return None
        if self.every_n_epochs is None:
            return int(self.val_check_batch)
        batches = self.training_batches * self.every_n_epochs
        return int(batches) if math.isfinite(batches) else None


def configured_steps(trainer: L.Trainer) -> int:
    """The trainer's horizon in steps (-1: unbounded), before any budget shortened it."""
    if trainer.max_steps is not None and trainer.max_steps >= 0:
        return int(trainer.max_steps)
    epochs = trainer.max_epochs
    if epochs is None or epochs < 0:
        return -1
    return int(epochs * trainer.num_training_batches)
