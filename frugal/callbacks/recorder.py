"""Run outputs during training: one `curve.csv` row per validation (what was spent so far and
the validation metrics), written by global rank 0; never through a link planted at its path
(`frugal.runs.open_nofollow`)."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L

from frugal.callbacks.budget import BudgetCallback
from frugal.runs import open_nofollow
from frugal.runs.record import CURVE_COLUMNS
from frugal.runs.write_faults import writing


class CurveRecorder(L.Callback):
    def __init__(self, budget: BudgetCallback, path: str | Path, resume: bool = False):
        self.budget = budget
        self.path = Path(path)
        self.resume = resume  # a resumed run appends to its curve; a fresh one starts anew
        self._metric_columns: list[str] | None = None
        self._last_step: int | None = None  # the step of the last row written

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        with writing(self.path):  # a write fault names the curve (frugal.runs.write_faults)
            self._write_row(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A run shorter than one validation interval (or one that stopped between two) still
        # leaves its final spending: one row, validation cells empty when none ran there.
        if trainer.is_global_zero and self._last_step != trainer.global_step:
            with writing(self.path):
                self._write_row(trainer, with_metrics=self._last_step is None)

    def _write_row(self, trainer: L.Trainer, with_metrics: bool = True) -> None:
        metrics = {
            key: float(value)
            for key, value in trainer.callback_metrics.items()
            if key.startswith("val/") and with_metrics
        }
        self._last_step = trainer.global_step
        spent = self.budget.spent()
        row = {
            "step": trainer.global_step,
            "samples": spent["data_samples"],
            "compute_flop": spent["compute_flop"],
            "energy_j": spent["energy_j"],
            "time_s": spent["time_s"],
        }
        if self._metric_columns is None:  # first row of this process
            appending = self.resume and self.path.is_file()
            self._metric_columns = self._existing_metric_columns() if appending else sorted(metrics)
            if not appending:
                with open_nofollow(self.path, "w", newline="") as handle:
                    csv.writer(handle).writerow([*CURVE_COLUMNS, *self._metric_columns])
        with open_nofollow(self.path, "a", newline="") as handle:
            values = [*row.values(), *(metrics.get(key) for key in self._metric_columns)]
            csv.writer(handle).writerow(["" if value is None else value for value in values])

    def _existing_metric_columns(self) -> list[str]:
        """A resumed run keeps appending to its curve with the columns it started with."""
        with open_nofollow(self.path, newline="") as handle:
            header = next(csv.reader(handle), [])
        return header[len(CURVE_COLUMNS) :]
