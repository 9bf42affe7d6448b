"""Budget enforcement: plan before the first step, book spending every step, stop cleanly.

Shaped after Lightning's `Timer` callback. The parts, each with one concern:
- `Ledger` (budget/ledger.py): what was spent; the callback's `state_dict`, and `ledger.json`
  beside the run, so a checkpoint or a hard kill never forgets spending.
- `CostForecaster` (budget/forecast.py): per-step time and energy, and the cost of a
  validation with its checkpoint saves.
- `steps_allowed` / `first_to_run_out` (budget/plan.py): pure planning and stop rules.
- `RankAgreement` (agreement.py): one gather per step through the strategy, so every rank books
  the same totals and takes the same decision on the same step.
- `StopSignals` (signals.py): SIGTERM/SIGINT and the pre-emption signals (SIGUSR1/SIGUSR2)
  noted, honoured at the next agreed step.
This class wires them to Lightning's hooks and answers a few queries (`status`, `spent()`,
`lr_progress()`, `progress()`).

The stop rule reserves what follows a stop: training continues only while the next step, any
validation due after it and the closing validation and checkpoint still fit. Compute and data
end within one step below their limit; time and energy at or under theirs (plus what a polled
meter cannot see between samples: README, "How precisely").
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from typing_extensions import override

from frugal.budget.forecast import CostForecaster
from frugal.budget.ledger import LEDGER_FILE, Ledger, read_sidecar
from frugal.budget.plan import Plan, describe_use, first_to_run_out, make_plan, steps_allowed
from frugal.budget.spec import BudgetSpec
from frugal.callbacks.agreement import RankAgreement, nan_if_none, none_if_nan
from frugal.callbacks.signals import StopSignals, signal_name
from frugal.core.keys import CONFIG_KEY
from frugal.core.status import Status
from frugal.meters.base import EnergyMeter
from frugal.meters.carbon import carbon_g
from frugal.meters.flops import train_step_flops
from frugal.meters.memory import PeakMemoryMeter
from frugal.record import write_json_atomic
from frugal.write_faults import WriteFailed, writing

log = logging.getLogger(__name__)

FORECAST = ("time_s", "energy_j", "carbon_g")  # known per step once measured
METER_START_TIMEOUT_S = 60.0
# ledger.json is rewritten at a re-plan once this long has passed since the last write: a hard
# kill loses at most max(one re-plan interval, this) of spending; more often costs step time.
SIDECAR_EVERY_S = 0.25  # the meter bounds its own start; this bounds our wait on it

# Stop requests, agreed across ranks by taking the maximum: a higher kind wins.
_KIND_STEP = 100
BUDGET, REFUSED, UNENFORCEABLE, INTERRUPTED, DIVERGED = range(1, 6)  # 0: no request


class Diverged(RuntimeError):
    """A non-finite loss or gradient: raised on every rank at the same step, so training ends
    at once (no validation or checkpoint of diverged weights)."""


def _now() -> float:
    import time

    return time.perf_counter()


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
        self._meter = energy_meter  # local rank 0's meter of the node's energy; None elsewhere
        self._meter_started = meter_started  # set when the caller started it in the background
        self._carbon_g_per_kwh = carbon_g_per_kwh
        self._count_params = count_params  # effective parameters, counted once masks exist
        self._ledger_path = Path(ledger_path) if ledger_path is not None else None
        self._signals = signals or StopSignals()
        self._clock = clock or _now
        self._replan_every = replan_every_n_steps
        self._ledger = Ledger()
        self._forecast = CostForecaster(forecast_window_steps)
        self._agreement: RankAgreement | None = None
        self._plan: Plan | None = None
        self._status = Status.COMPLETED
        self._stopped_by: str | None = None  # budget key, e.g. "energy"
        self._message: str | None = None
        self._signal: int | None = None  # the signal that interrupted the run
        self._params_effective: int | None = None
        self._train_flop_per_sample: float | None = None
        self._step_cost: dict[str, float] = {}  # exact per-step cost: samples, FLOPs (all ranks)
        self._local = {"data_samples": 0.0, "compute_flop": 0.0}
        self._evaluated_local = {"time_s": 0.0, "energy_j": 0.0}
        self._eval_started: tuple[float, float | None] | None = None
        # The checkpoint saves after a validation (from our on_validation_end, which runs
        # before ModelCheckpoint's, to the next step): what a final checkpoint costs.
        self._saved_local = {"time_s": 0.0, "energy_j": 0.0}
        self._val_ended: tuple[float, float | None] | None = None
        self._energy_baseline_j: float | None = 0.0
        self._machine_baseline_j: float | None = None  # the machine's figure at the first step
        self._machine_j = math.nan  # the machine's joules since then, refreshed at re-plans
        self._memory: PeakMemoryMeter | None = None
        self._start_s = 0.0
        self._segment_start_step = 0
        self._configured: int | None = None
        self._stage: str | None = None
        self._lr_progress = 0.0
        self._booked_step = 0  # the global step of the last booking
        self._warned: set[str] = set()
        self._started = False
        self._restored = False  # a checkpoint's ledger was loaded: a resumed fit
        self._trainer: L.Trainer | None = None
        self._books_energy = False  # whether this rank books energy (0 unless local rank 0)
        self._estimated: bool | None = None  # agreed at the start of training
        self._limits: dict[str, float] | None = None  # effective limits, fixed once agreed
        self._writer: ThreadPoolExecutor | None = None
        self._validation_enabled: bool | None = None
        self._sidecar_written_s = -math.inf  # clock time of the last ledger.json write
        self._pending_write: Future | None = None

    # ---- queries ------------------------------------------------------------------------------
    @property
    def status(self) -> Status:
        """How the run ended (so far)."""
        return self._status

    @property
    def stopped_by(self) -> str | None:
        """The budget key that stopped the run, if one did."""
        return self._stopped_by

    @property
    def message(self) -> str | None:
        return self._message

    @property
    def signal(self) -> int | None:
        """The signal that interrupted the run, if one did."""
        return self._signal

    @property
    def plan(self) -> Plan | None:
        """The latest plan (horizon each budget allows, the binding one)."""
        return self._plan

    @property
    def params_effective(self) -> int | None:
        return self._params_effective

    @property
    def train_flop_per_sample(self) -> float | None:
        """Forward + backward FLOPs per training sample, as measured."""
        return self._train_flop_per_sample

    @property
    def energy_meter(self) -> EnergyMeter | None:
        return self._meter

    @property
    def energy_estimated(self) -> bool:
        """Whether the node's energy is an estimate (rank 0's meter decides for every rank)."""
        if self._estimated is not None:
            return self._estimated
        return self._meter is not None and not self._meter.measured

    def spent(self) -> dict[str, float | None]:
        """The run's spending so far. A resumed fit that trained nothing (Lightning skips the fit
        loop of a run already at its max_steps: no on_train_start) opened no segment: what the
        checkpoint and `ledger.json` recorded, not unknown."""
        if self._restored and not self._started:
            return dict(self._ledger.carried)
        return self._ledger.totals()

    def effective_limits(self) -> dict[str, float]:
        """Enforced limits; energy and carbon stop `estimate_margin` short when estimated."""
        if self._limits is not None:
            return dict(self._limits)
        limits = self.spec.enforced()
        if self.energy_estimated:
            for key in ("energy_j", "carbon_g"):
                if key in limits:
                    limits[key] *= 1.0 - self.spec.estimate_margin
        return limits

    def lr_progress(self, step: int) -> float | None:
        """The clock of budget-aware LR schedules, asked for the step about to run: the largest
        fraction of any enforced budget spent by then — step ÷ last step for a horizon
        (compute, data, the trainer's own), spent ÷ spendable for time and energy, and 1 on
        the step after which the stop rule will not let another run. Never goes back. None
        when there is neither a budget nor a horizon (constant LR)."""
        trainer = self._trainer
        fractions: list[float] = []
        horizon = trainer.fit_loop.max_steps if trainer is not None else -1
        if horizon is not None and horizon > 1:
            fractions.append(min(step, horizon - 1) / (horizon - 1))
        if self._started and trainer is not None:
            spent = self._ledger.totals()
            # Lightning steps schedulers before the step's on_train_batch_end: the step just
            # run is not booked yet, so it is counted at its forecast cost.
            pending = max(step - self._booked_step, 0)
            continuing = self._cost_to_continue(trainer)
            for key, limit in self.effective_limits().items():
                used, per_step = spent.get(key), self._per_step(key)
                if key not in FORECAST or used is None or not per_step:
                    continue
                used += pending * per_step
                # What training steps may spend, the one about to run included: the limit less
                # the final checkpoint (about a step). A closing validation, when one is due,
                # is caught by `last`: the same rule as the stop, so no step runs at LR 0.
                spendable = limit - self._checkpoint_cost(key)
                last = used + per_step + continuing.get(key, 0.0) > limit  # none after this one
                fractions.append(1.0 if last or spendable <= 0 else used / spendable)
        if not fractions:
            return None
        self._lr_progress = max(self._lr_progress, min(max(fractions), 1.0))
        return self._lr_progress

    def progress(self) -> dict[str, str]:
        """Each enforced budget's use, for the progress bar (`energy 1.2/2 kJ est.`)."""
        spent = self._ledger.totals()
        estimated = ("energy_j", "carbon_g") if self.energy_estimated else ()
        return {
            CONFIG_KEY[key]: describe_use(key, spent.get(key), limit, key in estimated)
            for key, limit in self.spec.enforced().items()
        }

    def mark_interrupted(self, signum: int | None, how: str) -> None:
        """A stop request the step loop did not see (a signal during the closing validation or
        the test, or one Lightning handled itself)."""
        if self._status is Status.INTERRUPTED:
            return
        self._status = Status.INTERRUPTED
        self._signal = signum if signum is not None else self._signals.received
        step = self._trainer.global_step if self._trainer is not None else 0
        cause = signal_name(self._signal) if self._signal is not None else how
        self._message = f"{cause} received; stopped at step {step}"

    # ---- checkpointing ------------------------------------------------------------------------
    @override
    def state_dict(self) -> dict[str, Any]:
        return {"ledger": self._ledger.state_dict()}

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._stage = stage
        self._trainer = trainer

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Only a resumed fit continues the books; testing a checkpoint must not rewind them.
        if self._stage == "fit":
            self._ledger.load_state_dict(state_dict["ledger"])
            self._restored = True

    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The checkpoint is restored by now (on most strategies; on_train_start charges again
        # for those that restore after setup): charge ledger.json also when no step will run.
        self._charge_sidecar(trainer)

    @override
    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._started or not self._restored or trainer.train_dataloader is None:
            return
        # Lightning skipped the fit loop (resumed at its max_steps): measure what the result
        # reports anyway. The strategy has moved the module back by now: measure where it is.
        self.remeasure(trainer, pl_module, device=pl_module.device)
        if self._count_params is not None:
            self._params_effective = self._count_params(pl_module)

    # ---- start: measure one step, plan, check a resumed run -----------------------------------
    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._signals.install()  # after Lightning installed its own handlers at the start of fit
        self._agreement = RankAgreement(trainer.strategy, trainer.world_size)
        self.remeasure(trainer, pl_module)
        self._memory = PeakMemoryMeter(pl_module.device)
        self._memory.start()
        self._charge_sidecar(trainer)

        measurable = ["data_samples", "compute_flop", "time_s"]
        self._books_energy = self._meter is not None or trainer.local_rank != 0
        if self._books_energy:
            measurable.extend(("energy_j", "machine_energy_j"))
            if self._carbon_g_per_kwh is not None:
                measurable.append("carbon_g")
        self._start_energy_meter()
        # Every input of a decision must be the same on every rank: only rank 0 has a meter.
        self._estimated = bool(self._agreement.from_rank_zero(self.energy_estimated))
        self._limits = self.effective_limits()
        self._ledger.start_segment(tuple(measurable))
        if self._count_params is not None:  # after setup: sparsity callbacks have added masks
            self._params_effective = self._count_params(pl_module)
        self._ledger.book("params", self._params_effective)
        self._local = {"data_samples": 0.0, "compute_flop": 0.0}
        self._segment_start_step = trainer.global_step
        self._start_s = self._clock()
        self._started = True
        # agree on the starting totals (energy unknown on a dead meter), and on a signal that
        # arrived while fit was setting up: then the run stops before its first step
        agreed_request = self._book(trainer, self._local_request(pl_module), machine=True)
        if agreed_request:
            self._decide(trainer, agreed_request)
            return
        enforced = {"energy_j", "carbon_g"} & set(self.spec.enforced())
        if self.energy_estimated and enforced and self._meter is not None:
            rank_zero_warn(
                f"energy is estimated ({self._meter.method}), not read from counters: "
                f"enforcing {100 * self.spec.estimate_margin:.0f}% below the energy/carbon "
                f"limits (budget.estimate_margin={self.spec.estimate_margin})"
            )

        limit, params = self.spec.params, self._params_effective
        if limit is not None and params is not None and params > limit:
            detail = f"the model has {params} effective parameters, budget.params is {int(limit)}"
            self._stop(trainer, REFUSED, "params", detail)
            return
        self._replan(trainer)
        if self._plan is not None:
            rank_zero_info(self._plan.describe())
            if self.spec.plan == "refuse" and not self._plan.fits:
                assert self._plan.tightest is not None
                self._stop(trainer, REFUSED, self._plan.tightest, self._plan.shortfall())
                return
        self._decide(trainer, local_request=0)

    def remeasure(
        self, trainer: L.Trainer, pl_module: L.LightningModule, device: torch.device | None = None
    ) -> None:
        """Measure one training step's FLOPs and samples (all ranks) — at the start, and again
        by any callback that changes the model's shapes mid-run (structured pruning), so the
        plan and the books follow the new model from the next step. `device`: where to put the
        batch, when not the strategy's (after fit)."""
        with torch.random.fork_rng(devices=[]):  # drawing a batch must not move the data order
            batch = next(iter(trainer.train_dataloader))
        if device is None:
            x, y = trainer.strategy.batch_to_device(batch)
        else:
            x, y = move_data_to_device(batch, device)
        measure = getattr(pl_module, "step_flops", None)  # a module may count extra work
        step_flop = (
            measure(x, y) if measure else train_step_flops(pl_module, x, y, pl_module.loss_fn)
        )
        self._train_flop_per_sample = step_flop / len(y)
        world = trainer.world_size
        self._step_cost = {"data_samples": float(len(y) * world), "compute_flop": step_flop * world}
        if self._started and self._count_params is not None:
            self._params_effective = self._count_params(pl_module)
            self._ledger.book("params", self._params_effective)

    def _charge_sidecar(self, trainer: L.Trainer) -> None:
        """After a hard kill the checkpoint is older than the spending: charge the larger."""
        ckpt_path = getattr(trainer, "ckpt_path", None)
        if not ckpt_path:
            return
        state = read_sidecar(Path(ckpt_path).resolve().parent.parent / LEDGER_FILE)
        if state is None:
            return
        raised = self._ledger.charge_at_least(state)
        if raised:
            rank_zero_info(
                f"resume: {LEDGER_FILE} records more spending than the checkpoint "
                f"({', '.join(raised)}); charging the larger"
            )

    def _start_energy_meter(self) -> None:
        if self._meter is None:
            return
        try:
            if self._meter_started is not None:
                self._meter_started.result(timeout=METER_START_TIMEOUT_S)
            else:
                self._meter.start()
        except FutureTimeout:
            log.warning("energy: the meter did not start within %.0f s", METER_START_TIMEOUT_S)
        # Joules read before the first step (set-up, data) are not training energy.
        self._energy_baseline_j = self._meter.read_j()
        self._machine_baseline_j = self._meter.read_machine_j()

    def _configured_steps(self, trainer: L.Trainer) -> int:
        if trainer.max_steps is not None and trainer.max_steps >= 0:
            return int(trainer.max_steps)
        epochs = trainer.max_epochs
        if epochs is None or epochs < 0:
            return -1
        return int(epochs * trainer.num_training_batches)

    # ---- every step: book, forecast, decide ---------------------------------------------------
    @override
    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._end_evaluation()

    @override
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self._started:
            return
        if not _finite(pl_module):  # never validate (or checkpoint) diverged weights
            pl_module.diverged_at = trainer.global_step
            self._stop(trainer, DIVERGED, None, None)
        if self._eval_started is None:
            self._eval_started = (self._clock(), self._read_energy_j())

    @override
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._eval_started is not None and self._val_ended is None:
            self._val_ended = (self._clock(), self._read_energy_j())

    def _end_evaluation(self) -> None:
        """A validation and the checkpoint saves after it are paid for once training resumes
        (or ends): their cost, measured locally, joins the next agreed booking."""
        if self._eval_started is None:
            return
        now_s, now_j = self._clock(), self._read_energy_j()
        windows = [(self._eval_started, self._evaluated_local)]
        if self._val_ended is not None:
            windows.append((self._val_ended, self._saved_local))
        self._eval_started = self._val_ended = None
        for (start_s, start_j), total in windows:
            total["time_s"] += now_s - start_s
            if start_j is not None and now_j is not None:
                total["energy_j"] += max(now_j - start_j, 0.0)

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
        self._local["data_samples"] += samples
        self._local["compute_flop"] += samples * (self._train_flop_per_sample or 0.0)
        request = self._local_request(pl_module)
        step = trainer.global_step
        since_warmup = step - self._segment_start_step - self.spec.warmup_steps
        replanning = since_warmup >= 0 and since_warmup % self._replan_every == 0
        agreed_request = self._book(trainer, request, machine=replanning)
        if replanning:
            self._forecast.refit()
            self._replan(trainer)
            if self._clock() - self._sidecar_written_s >= SIDECAR_EVERY_S:
                self._write_sidecar(trainer, background=True)
            if self.spec.plan == "refuse" and self._plan is not None and not self._plan.fits:
                assert self._plan.tightest is not None
                self._stop(trainer, REFUSED, self._plan.tightest, self._plan.shortfall())
        self._decide(trainer, agreed_request)
        if step % max(trainer.log_every_n_steps, 1) == 0:
            self._log(trainer, step)

    def _local_request(self, pl_module: L.LightningModule) -> int:
        """This rank's own reason to stop (signal, divergence), as an agreement code."""
        if getattr(pl_module, "diverged_at", None) is not None:
            return DIVERGED * _KIND_STEP
        if self._signals.received is not None:
            return INTERRUPTED * _KIND_STEP + self._signals.received
        return 0

    def _read_machine_j(self, trainer: L.Trainer) -> float:
        """The machine's joules since the first step, read by each node's local rank 0 (0 on
        other ranks: ranks sum it, one figure per machine); NaN where unknown."""
        if trainer.local_rank != 0:
            return 0.0
        if self._meter is None or self._machine_baseline_j is None:
            return math.nan
        reading = self._meter.read_machine_j()
        return math.nan if reading is None else reading - self._machine_baseline_j

    def _read_energy_j(self) -> float | None:
        if self._meter is None:
            return None
        reading = self._meter.read_j()
        if reading is None or self._energy_baseline_j is None:
            return None
        return reading - self._energy_baseline_j

    def _book(self, trainer: L.Trainer, request: int = 0, machine: bool = False) -> int:
        """Book this segment's agreed totals; returns the agreed stop request. `machine`: read
        the machine's figure too (a few more system calls: at re-plans and at the end)."""
        assert self._agreement is not None
        if self._meter is not None:  # the run's own processes: every rank meters its own
            energy_j = nan_if_none(self._read_energy_j())
            evaluated_j = self._evaluated_local["energy_j"]
            saved_j = self._saved_local["energy_j"]
        else:  # energy.scope=machine: metered once per node, by its local rank 0
            energy_j = evaluated_j = saved_j = 0.0
        if machine:
            self._machine_j = self._read_machine_j(trainer)
        sums, maxes = self._agreement.combine(
            [
                self._local["data_samples"],
                self._local["compute_flop"],
                energy_j,
                evaluated_j,
                saved_j,
                self._machine_j,
            ],
            [
                self._clock() - self._start_s,
                self._evaluated_local["time_s"],
                self._saved_local["time_s"],
                float(request),
            ],
        )
        samples, flop, energy, evaluated_energy, saved_energy, machine_energy = sums
        time_s, evaluated_time_s, saved_time_s, agreed_request = maxes
        self._ledger.book("data_samples", samples)
        self._ledger.book("compute_flop", flop)
        self._ledger.book("time_s", time_s)
        if self._books_energy:
            energy_known = none_if_nan(energy)
            self._ledger.book("energy_j", energy_known)
            if self._carbon_g_per_kwh is not None:
                carbon = (
                    None if energy_known is None else carbon_g(energy_known, self._carbon_g_per_kwh)
                )
                self._ledger.book("carbon_g", carbon)
            self._ledger.book("machine_energy_j", none_if_nan(machine_energy))
        if self._memory is not None:
            self._ledger.book("memory_bytes", float(self._memory.read_bytes()))
        segment = self._ledger.segment
        self._booked_step = trainer.global_step
        self._forecast.observe_step(
            trainer.global_step,
            {"time_s": segment["time_s"], "energy_j": segment["energy_j"]},
            {"time_s": evaluated_time_s, "energy_j": none_if_nan(evaluated_energy)},
            {"time_s": saved_time_s, "energy_j": none_if_nan(saved_energy)},
        )
        return int(agreed_request)

    # ---- forecasts and plans ------------------------------------------------------------------
    def _per_step(self, key: str) -> float | None:
        """Forecast cost of one more training step, all ranks together."""
        if key in self._step_cost:
            return self._step_cost[key]
        if key == "carbon_g":
            energy = self._forecast.per_step("energy_j")
            return self._to_carbon(energy)
        return self._forecast.per_step(key)

    def _evaluation_cost(self, key: str) -> float:
        """A validation with its checkpoint saves: measured, or before the first one an
        estimate of one step per validation batch (forward only costs less: a safe side)."""
        if key in self._step_cost:
            return 0.0  # validation spends no training samples or FLOPs
        if key == "carbon_g":
            return self._to_carbon(self._evaluation_cost("energy_j")) or 0.0
        measured = self._forecast.evaluation(key)
        if measured is not None:
            return measured
        trainer = self._trainer
        if trainer is None or not self._validates(trainer):
            return 0.0
        val_batches = sum(trainer.num_val_batches) if trainer.num_val_batches else 1
        return (self._per_step(key) or 0.0) * max(val_batches, 1)

    def _checkpoint_cost(self, key: str) -> float:
        """The final checkpoint: the largest recently measured save, at least one step."""
        step = self._per_step(key) or 0.0
        if key == "carbon_g":
            saved = self._to_carbon(self._forecast.checkpoint("energy_j"))
        else:
            saved = self._forecast.checkpoint(key)
        return max(step, saved or 0.0)

    def _closing_reserve(self, key: str) -> float:
        """What a stop still spends: the closing validation and the final checkpoint."""
        if key in self._step_cost:
            return 0.0
        return self._evaluation_cost(key) + self._checkpoint_cost(key)

    def _to_carbon(self, energy_j: float | None) -> float | None:
        if energy_j is None or self._carbon_g_per_kwh is None:
            return None
        return carbon_g(energy_j, self._carbon_g_per_kwh)

    def _validates(self, trainer: L.Trainer) -> bool:
        # Lightning works this out anew at every access (hook lookups): once per fit is enough.
        if self._validation_enabled is None:
            self._validation_enabled = bool(trainer.enable_validation)
        return self._validation_enabled

    def _validation_due(self, trainer: L.Trainer, steps_ahead: int, stopping: bool) -> bool:
        """Whether Lightning validates after the step `steps_ahead` from now (0: this one),
        continuing or stopping there (a stop validates in every validation epoch)."""
        if not self._validates(trainer):
            return False
        loop = trainer.fit_loop.epoch_loop
        last_batch = loop.batch_progress.is_last_batch
        epoch = trainer.current_epoch + (1 if steps_ahead and last_batch else 0)
        every = trainer.check_val_every_n_epoch
        if every is not None and (epoch + 1) % every != 0:
            return False
        if stopping:
            return True
        if steps_ahead:
            return False  # only asked for this step when continuing
        if every is None:
            return (loop.total_batch_idx + 1) % trainer.val_check_batch == 0
        return last_batch or (loop.batch_idx + 1) % trainer.val_check_batch == 0

    def _cost_to_continue(self, trainer: L.Trainer) -> dict[str, float]:
        """Per budget key: the next step, any validation due before it, and what a stop after
        it spends (its validation and the final checkpoint)."""
        costs: dict[str, float] = {}
        due_now = self._validation_due(trainer, 0, stopping=False)
        due_at_stop = self._validation_due(trainer, 1, stopping=True)
        for key in self.spec.enforced():
            step = self._per_step(key)
            if step is None:
                continue  # memory, params: checked as they stand
            if key in self._step_cost:
                costs[key] = step
                continue
            evaluation = self._evaluation_cost(key)
            costs[key] = step + self._checkpoint_cost(key) + evaluation * (due_now + due_at_stop)
        return costs

    def _replan(self, trainer: L.Trainer) -> None:
        """The horizon each budget allows, decided on rank 0 and agreed by every rank."""
        if self.spec.plan == "off":
            return
        if self._configured is None:  # the trainer's horizon, before any budget shortened it
            self._configured = self._configured_steps(trainer)
        per_step, reserve = {}, {}
        interval = self._steps_between_validations(trainer)
        for key in self.spec.enforced():
            step = self._per_step(key)
            if step is None:
                continue
            if key in FORECAST and interval:
                step += self._evaluation_cost(key) / interval  # validations on the way
            per_step[key] = step
            reserve[key] = self._closing_reserve(key)
        allowed = steps_allowed(
            self.effective_limits(), self._ledger.totals(), per_step, trainer.global_step, reserve
        )
        plan = make_plan(self._configured, allowed)
        assert self._agreement is not None
        self._plan = self._agreement.from_rank_zero(plan)
        # Only exact budgets move the trainer's horizon: a forecast one is held by the stop
        # rule at every step, so a forecast that errs low never ends a run early.
        if self.spec.plan == "fit" and self.spec.on_exceed != "warn":
            exact = {k: v for k, v in self._plan.allowed_steps.items() if k in ("compute", "data")}
            horizon = make_plan(self._configured, exact).max_steps
            trainer.fit_loop.epoch_loop.max_steps = horizon

    def _steps_between_validations(self, trainer: L.Trainer) -> int | None:
        if not self._validates(trainer) or not trainer.num_training_batches:
            return None
        every = trainer.check_val_every_n_epoch
        if every is None:
            return int(trainer.val_check_batch)
        batches = trainer.num_training_batches
        return int(batches * every) if math.isfinite(batches) else None

    # ---- decisions -------------------------------------------------------------------------------
    def _decide(self, trainer: L.Trainer, local_request: int) -> None:
        """One decision per step, from totals every rank agreed on."""
        if local_request >= DIVERGED * _KIND_STEP:
            self._stop(trainer, DIVERGED, None, None)
            return
        if local_request >= INTERRUPTED * _KIND_STEP:
            self._signal = local_request - INTERRUPTED * _KIND_STEP
            self._stop(trainer, INTERRUPTED, None, None)
            return
        limits = self._limits if self._limits is not None else self.effective_limits()
        if not limits:
            return  # nothing enforced: nothing to decide
        spent = self._ledger.totals()
        lost = self._lost_budget(spent)
        if lost is not None:
            self._stop(trainer, UNENFORCEABLE, lost, None)
            return
        key = first_to_run_out(limits, spent, self._cost_to_continue(trainer))
        if key is not None:
            self._stop(trainer, BUDGET, CONFIG_KEY[key], None)

    def _lost_budget(self, spent: dict[str, float | None]) -> str | None:
        """An enforced energy or carbon budget whose meter no longer answers."""
        for key in ("energy_j", "carbon_g"):
            if key in self.spec.enforced() and spent.get(key) is None:
                return CONFIG_KEY[key]
        return None

    def _stop(self, trainer: L.Trainer, kind: int, key: str | None, detail: str | None) -> None:
        step = trainer.global_step
        if kind == BUDGET and self.spec.on_exceed == "warn":
            if key not in self._warned:
                self._warned.add(key)  # type: ignore[arg-type]
                rank_zero_warn(f"budget.{key} exhausted at step {step} (on_exceed=warn): going on")
            return
        if self._stopped_by is None and self._status is Status.COMPLETED:
            self._stopped_by = key
            if kind == DIVERGED:
                self._status = Status.DIVERGED
                self._message = f"non-finite loss or gradient at step {step}: training stopped"
            elif kind == INTERRUPTED:
                self._status = Status.INTERRUPTED
                self._message = f"{signal_name(self._signal or 0)} received; stopped at step {step}"
            elif kind == UNENFORCEABLE:
                self._status = Status.UNENFORCEABLE
                method = getattr(self._meter, "method", "no meter")
                self._message = (
                    f"budget.{key} cannot be enforced: the energy meter stopped answering "
                    f"({method}) at step {step}"
                )
            elif kind == REFUSED:
                self._status = Status.REFUSED
                self._message = detail
            else:
                self._status = Status.BUDGET_EXHAUSTED
                self._message = detail or f"budget.{key} spent at step {step}"
            rank_zero_info(f"{self._status}: {self._message}")
        if kind == DIVERGED:
            raise Diverged(self._message)
        trainer.should_stop = True

    # ---- end: name the stop, keep a checkpoint --------------------------------------------------
    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._end_evaluation()
        if self._count_params is not None:  # sparsity may have changed it during training
            self._params_effective = self._count_params(pl_module)
            self._ledger.book("params", self._params_effective)
        if self._agreement is not None:
            self._book(trainer, machine=True)  # the closing validation spends too
        self._close_status(trainer)
        trained = trainer.global_step > self._segment_start_step
        if self._status is not Status.REFUSED or trained:
            self.save_last(trainer)
            if self._agreement is not None:
                self._book(trainer, machine=True)  # the final checkpoint too
        self._write_sidecar(trainer)

    def _close_status(self, trainer: L.Trainer) -> None:
        if self._status is not Status.COMPLETED or self._stopped_by is not None:
            return
        spent = self._ledger.totals()
        crossed = [k for k, lim in self.spec.enforced().items() if (spent.get(k) or 0.0) > lim]
        if self.spec.on_exceed == "warn" and crossed:
            self._stopped_by, self._status = CONFIG_KEY[crossed[0]], Status.BUDGET_EXHAUSTED
            self._message = f"budget.{self._stopped_by} exceeded (on_exceed=warn)"
            return
        plan = self._plan
        if plan is not None and plan.binding is not None and trainer.global_step >= plan.max_steps:
            self._stopped_by, self._status = plan.binding, Status.BUDGET_EXHAUSTED
            self._message = f"budget.{plan.binding} reached its planned horizon"

    @override
    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        if self._status is Status.COMPLETED:
            self._status = Status.INTERRUPTED
            self._message = f"{type(exception).__name__} at step {trainer.global_step}"
        # Ranks may be anywhere when an error strikes: no collective (a gather, a checkpoint's
        # barrier) unless the stop was agreed (divergence) or there is only one rank.
        agreed = isinstance(exception, Diverged) or trainer.world_size == 1
        try:
            if agreed and self._agreement is not None and not isinstance(exception, Diverged):
                self._book(trainer, machine=True)
            trained = trainer.global_step > self._segment_start_step
            finite = _finite(pl_module)
            if trainer.world_size > 1 and agreed:  # a rank that skipped the update may differ
                finite = trainer.strategy.reduce_boolean_decision(finite, all=True)
            if agreed and trained and finite:
                self.save_last(trainer)  # a resumable stop; never diverged or untrained weights
        except Exception as err:  # never mask the exception that stopped the run
            log.error("could not save a checkpoint after %s: %s", type(exception).__name__, err)
        try:
            self._write_sidecar(trainer)
        except WriteFailed as err:  # nor with a ledger that could not be written
            log.error("could not write the ledger after %s: %s", type(exception).__name__, err)

    def save_last(self, trainer: L.Trainer) -> None:
        ckpt = trainer.checkpoint_callback
        dirpath = getattr(ckpt, "dirpath", None) or Path(trainer.default_root_dir) / "checkpoints"
        trainer.save_checkpoint(Path(dirpath) / "last.ckpt")

    def _write_sidecar(self, trainer: L.Trainer, background: bool = False) -> None:
        """`ledger.json` beside the run: during training on a writer thread (a file write
        costs about a small model's step), at the end on this one, after any pending write."""
        if self._ledger_path is None or not trainer.is_global_zero or not self._started:
            return
        state, step, path = self._ledger.state_dict(), trainer.global_step, self._ledger_path
        self._sidecar_written_s = self._clock()
        if self._pending_write is not None:
            pending, self._pending_write = self._pending_write, None
            # In order: never an older ledger over a newer one. A write fault on the writer
            # thread is raised here, on the training thread: the run ends write_failed.
            pending.result()
        if background:
            if self._writer is None:
                self._writer = ThreadPoolExecutor(1, thread_name_prefix="frugal-ledger")
            self._pending_write = self._writer.submit(_write_ledger, path, state, step)
        else:
            _write_ledger(path, state, step)

    # ---- what the run shows --------------------------------------------------------------------
    def _log(self, trainer: L.Trainer, step: int) -> None:
        if not trainer.loggers:
            return
        metrics: dict[str, float] = {}
        spent = self._ledger.totals()
        for key, limit in self.spec.enforced().items():
            if spent.get(key) is not None:
                metrics[f"budget/{CONFIG_KEY[key]}_used"] = spent[key]  # type: ignore[assignment]
                metrics[f"budget/{CONFIG_KEY[key]}_frac"] = spent[key] / limit  # type: ignore[operator]
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)


def _write_ledger(path: Path, state: dict[str, Any], step: int) -> None:
    """A write fault (disk full, permissions: `frugal.write_faults`) is raised as WriteFailed
    naming the path; any other OSError costs a warning, not the run."""
    try:
        with writing(path):
            write_json_atomic(path, {**state, "step": step})
    except WriteFailed:
        raise
    except OSError as err:
        log.warning("could not write %s: %s", path, err)


def _finite(module: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())
