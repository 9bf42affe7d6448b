"""Budget enforcement: plan before the first step, book spending every step, stop cleanly.

Shaped after Lightning's `Timer`: the hooks only wire parts that each do one thing — `Books`
(booking.py: readings into the ledger, agreed across ranks), `Planner` (planner.py: horizons,
what continuing costs, the LR clock), `Stopper` (stopping.py, over budget/decision.py: the stop
rule and its messages) and `LedgerSidecar` (sidecar.py: `ledger.json`).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from typing_extensions import override

from frugal.budget.costs import CostModel
from frugal.budget.decision import NO_REQUEST, Diverged, StopKind, StopRequest, effective_limits
from frugal.budget.display import budget_metrics, budget_use
from frugal.budget.spec import BudgetSpec
from frugal.callbacks.booking import Books, measure_step
from frugal.callbacks.energy_window import EnergyWindow
from frugal.callbacks.last_checkpoint import finite, keep_after, save_last
from frugal.callbacks.planner import Planner
from frugal.callbacks.protocols import budgeted
from frugal.callbacks.sidecar import LedgerSidecar
from frugal.callbacks.stopping import Stopper
from frugal.core.status import Status
from frugal.meters.base import EnergyMeter
from frugal.meters.carbon import carbon_g
from frugal.runs.signals import StopSignals

__all__ = ["BudgetCallback", "Diverged"]


class BudgetCallback(L.Callback):
    def __init__(
        self,
        spec: BudgetSpec,
        energy_meter: EnergyMeter | None = None,
        meter_started: Future | None = None,
        carbon_g_per_kwh: float | None = None,
        count_params: Callable[[L.LightningModule], int] | None = None,
        ledger_path: str | Path | None = None,
        signals: StopSignals | None = None,
        clock: Callable[[], float] | None = None,
        replan_every_n_steps: int = 10,
        forecast_window_steps: int = 200,
    ):
        super().__init__()
        if replan_every_n_steps < 1:
            raise ValueError(f"replan_every_n_steps={replan_every_n_steps}: expected >= 1")
        self.spec = spec
        carbon = None if carbon_g_per_kwh is None else partial(carbon_g, g_per_kwh=carbon_g_per_kwh)
        costs = CostModel(forecast_window_steps, carbon)
        self._books = Books(EnergyWindow(energy_meter, meter_started), costs, count_params, clock)
        self._planner = Planner(spec, costs)
        self._stopper = Stopper(spec, signals or StopSignals(), energy_meter)
        self._sidecar = LedgerSidecar(ledger_path) if ledger_path is not None else None
        self._replan_every = replan_every_n_steps
        self._trainer: L.Trainer | None = None

    # ---- queries: how the run ended (so far), what it measured --------------------------------
    status = property(lambda self: self._stopper.outcome.status)
    stopped_by = property(lambda self: self._stopper.outcome.stopped_by)  # a budget's key
    message = property(lambda self: self._stopper.outcome.message)
    signal = property(lambda self: self._stopper.outcome.signal)  # the one that interrupted it
    plan = property(lambda self: self._planner.plan)  # the latest: each budget's horizon
    train_flop_per_sample = property(lambda self: self._planner.costs.flop_per_sample)
    energy_meter = property(lambda self: self._books.energy.meter)
    energy_estimated = property(lambda self: self._books.energy.estimated)

    def spent(self) -> dict[str, float | None]:
        """The run's spending so far, in SI units; None where unknown."""
        return self._books.spent()

    def effective_limits(self) -> dict[str, float]:
        """Enforced limits; energy and carbon stop `estimate_margin` short when estimated."""
        limits = self._planner.limits  # fixed once every rank agreed on `energy_estimated`
        return dict(limits or effective_limits(self.spec, self.energy_estimated))

    def lr_progress(self, step: int) -> float | None:
        """The clock of budget-aware LR schedules, asked for the step about to run."""
        # (Lightning steps schedulers before on_train_batch_end: the step just run is pending)
        pending = max(step - self._books.booked_step, 0)
        return self._planner.lr_progress(self._trainer, step, self._books.ledger.totals(), pending)

    def progress(self) -> dict[str, str]:
        """Each enforced budget's use, for the progress bar (`energy 1.2/2 kJ est.`)."""
        spent = self._books.ledger.totals()
        return budget_use(self.spec.enforced(), spent, self.energy_estimated)

    def mark_interrupted(self, signum: int | None, how: str) -> None:
        """A stop request the step loop did not see (a signal during the closing validation or
        the test, or one Lightning handled itself)."""
        self._stopper.interrupted(signum, how, self._trainer)

    # ---- checkpoints and resumes --------------------------------------------------------------
    @override
    def state_dict(self) -> dict[str, Any]:
        return {"ledger": self._books.ledger.state_dict()}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Only a resumed fit continues the books; testing a checkpoint must not rewind them.
        if self._trainer is not None and self._trainer.state.fn == TrainerFn.FITTING:
            self._books.restore(state_dict["ledger"])

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The checkpoint is restored by now (on most strategies; on_train_start charges again
        # for those that restore after setup): charge ledger.json also when no step will run.
        self._books.charge_sidecar(trainer.ckpt_path)

    @override
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._books.started or not self._books.restored or trainer.train_dataloader is None:
            return
        # Lightning skipped the fit loop (resumed at its max_steps): measure what the result
        # reports anyway. The strategy has moved the module back by now: measure where it is.
        self.remeasure(trainer, pl_module, device=pl_module.device)

    # ---- start: measure one step, plan, check a resumed run -----------------------------------
    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stopper.signals.install()  # after Lightning installed its own, at the start of fit
        self.remeasure(trainer, pl_module)
        params = self._books.open(trainer, pl_module)
        self._planner.limits = effective_limits(self.spec, self.energy_estimated)
        # agree on the starting totals (energy unknown on a dead meter), and on a signal that
        # arrived while fit was setting up: then the run stops before its first step
        own = self._stopper.request(pl_module)
        request = self._books.book(trainer.global_step, own, machine=True)
        if request.kind:
            return self._decide(trainer, request)
        self._stopper.warn_estimated(self.energy_estimated)
        if self._stopper.refuse_params(trainer, params):
            return
        self._replan(trainer)
        if self.plan is not None:
            rank_zero_info(self.plan.describe())
            if self._stopper.refuse_short(trainer, self.plan):
                return
        self._decide(trainer, NO_REQUEST)

    def remeasure(
        self, trainer: L.Trainer, pl_module: L.LightningModule, device: torch.device | None = None
    ) -> None:
        """Measure one training step's FLOPs and samples (all ranks): at the start, and again
        when a callback changes the model's shapes mid-run (structured pruning)."""
        samples, step_flop = measure_step(trainer, budgeted(pl_module), device)
        self._planner.costs.measured_step(samples, step_flop, trainer.world_size)
        if self._books.started:
            self._books.count_params(pl_module)

    # ---- every step: book, forecast, decide ---------------------------------------------------
    @override
    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._books.evaluations.end()

    @override
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self._books.started:
            return
        if not finite(pl_module):  # never validate (or checkpoint) diverged weights
            pl_module.diverged_at = trainer.global_step
            self._stopper.stop(trainer, StopKind.DIVERGED)
        self._books.evaluations.begin()

    @override
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._books.evaluations.validated()

    @override
    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        samples = float(len(batch[1]) if isinstance(batch, list | tuple) else len(batch))
        self._books.add_batch(samples, self.train_flop_per_sample)
        step = trainer.global_step
        since_warmup = step - self._books.segment_start_step - self.spec.warmup_steps
        replanning = since_warmup >= 0 and since_warmup % self._replan_every == 0
        request = self._books.book(step, self._stopper.request(pl_module), machine=replanning)
        if replanning:
            self._planner.costs.forecast.refit()
            self._replan(trainer)
            if self._sidecar is not None and self._sidecar.due(self._books.clock()):
                self._write_sidecar(trainer, background=True)
            self._stopper.refuse_short(trainer, self.plan)
        self._decide(trainer, request)
        if trainer.loggers and step % max(trainer.log_every_n_steps, 1) == 0:
            metrics = budget_metrics(self.spec.enforced(), self._books.ledger.totals())
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=step)

    def _replan(self, trainer: L.Trainer) -> None:
        assert self._books.agreement is not None
        self._planner.replan(trainer, self._books.ledger.totals(), self._books.agreement)

    def _decide(self, trainer: L.Trainer, request: StopRequest) -> None:
        limits, spent = self.effective_limits(), self._books.ledger.totals()
        to_continue = partial(self._planner.to_continue, trainer)
        self._stopper.decide(trainer, request, limits, spent, to_continue)

    # ---- end: name the stop, keep a checkpoint --------------------------------------------------
    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        step = trainer.global_step
        self._books.evaluations.end()
        self._books.count_params(pl_module)  # sparsity may have changed it during training
        self._books.settle(step)  # the closing validation spends too
        self._stopper.outcome.close(self.spec, self._books.ledger.totals(), self.plan, step)
        if self.status is not Status.REFUSED or step > self._books.segment_start_step:
            save_last(trainer)
            self._books.settle(step)  # the final checkpoint too
        self._write_sidecar(trainer)

    @override
    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        step = trainer.global_step
        self._stopper.outcome.fail(exception, step)
        trained = step > self._books.segment_start_step
        settle, write = partial(self._books.settle, step), partial(self._write_sidecar, trainer)
        keep_after(trainer, pl_module, exception, trained, settle, write)

    def _write_sidecar(self, trainer: L.Trainer, background: bool = False) -> None:
        if self._sidecar is None or not trainer.is_global_zero or not self._books.started:
            return
        state, now_s = self._books.ledger.state_dict(), self._books.clock()
        self._sidecar.write(state, trainer.global_step, now_s, background)
