"""Budget enforcement: plan before the first step, book spending every step, stop cleanly.

Shaped after Lightning's `Timer` callback: the ledger is the callback's `state_dict`, so a
checkpoint carries what was spent and `ckpt_path=...` continues the same budget; a resumed run
that is already out of budget stops before its first step. Each decision is agreed across
ranks, so all ranks stop on the same step.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.distributed as dist

from frugal.budget.ledger import Ledger
from frugal.budget.plan import BUDGET_KEY, Plan, describe_use, make_plan, steps_allowed
from frugal.budget.spec import AMOUNT_KEYS, BudgetSpec
from frugal.meters.base import EnergyMeter
from frugal.meters.carbon import carbon_g
from frugal.meters.flops import train_step_flops
from frugal.meters.memory import PeakMemoryMeter

log = logging.getLogger(__name__)

FORECAST = ("time_s", "energy_j", "carbon_g")  # per-step cost known only once measured
# Order of keys in the stop code agreed across ranks (0 = keep going).
STOP_KEYS = tuple(spent_key for spent_key, _ in AMOUNT_KEYS.values())


def _now() -> float:
    return time.perf_counter()  # looked up at call time, so tests can patch the clock


class BudgetCallback(L.Callback):
    def __init__(
        self,
        spec: BudgetSpec,
        count_params: Callable[[L.LightningModule], int] | None = None,
        energy_meter: EnergyMeter | None = None,
        carbon_g_per_kwh: float | None = None,
        clock: Callable[[], float] | None = None,
        replan_every_n_steps: int = 10,
        forecast_window_steps: int = 200,
    ):
        super().__init__()
        if replan_every_n_steps < 1:
            raise ValueError(f"replan_every_n_steps={replan_every_n_steps}: expected >= 1")
        self.spec = spec
        self.count_params = count_params  # effective parameters, counted once masks exist
        self.params_effective: int | None = None
        self.energy_meter = energy_meter
        # Set when the caller started the meter in the background (codecarbon's start-up probe
        # takes ~2 s); the callback waits for it and counts joules from the first step only.
        self.energy_meter_started: Future | None = None
        self._energy_baseline_j = 0.0
        self.carbon_g_per_kwh = carbon_g_per_kwh
        self.clock = clock or _now
        self.replan_every_n_steps = replan_every_n_steps
        self.ledger = Ledger()
        self.plan: Plan | None = None
        self.cost_per_step: dict[str, float | None] = dict.fromkeys(STOP_KEYS)
        self.status = "completed"
        self.stopped_by: str | None = None  # budget key, e.g. "energy"
        self.message: str | None = None
        self.train_flop_per_sample: float | None = None
        self._window: deque[tuple[int, dict[str, float | None]]] = deque(
            maxlen=max(forecast_window_steps // replan_every_n_steps, 2)
        )
        self._start_s = 0.0
        self._warned: set[str] = set()
        self._memory: PeakMemoryMeter | None = None
        self._local = {"data_samples": 0.0, "compute_flop": 0.0}
        self._segment_start_step = 0
        self._configured: int | None = None
        self._stage: str | None = None

    # ---- what the limits are, once estimates are discounted -------------------------------
    @property
    def energy_estimated(self) -> bool:
        return self.energy_meter is not None and not self.energy_meter.measured

    def effective_limits(self) -> dict[str, float]:
        """Enforced limits; energy and carbon stop `estimate_margin` short when estimated."""
        limits = self.spec.enforced()
        if self.energy_estimated:
            for key in ("energy_j", "carbon_g"):
                if key in limits:
                    limits[key] *= 1.0 - self.spec.estimate_margin
        return limits

    # ---- checkpointing ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"ledger": self.ledger.state_dict()}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._stage = stage

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Only a resumed fit continues the books; testing a checkpoint must not rewind them.
        if self._stage == "fit":
            self.ledger.load_state_dict(state_dict["ledger"])

    # ---- start: measure one step, plan, check a resumed run ---------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        world = trainer.world_size
        x, y = trainer.strategy.batch_to_device(next(iter(trainer.train_dataloader)))
        step_flop = train_step_flops(pl_module, x, y, pl_module.loss_fn)
        self.train_flop_per_sample = step_flop / len(y)
        self.cost_per_step["data_samples"] = float(len(y) * world)
        self.cost_per_step["compute_flop"] = float(step_flop * world)
        self._memory = PeakMemoryMeter(pl_module.device)
        self._memory.start()

        measurable = ["data_samples", "compute_flop", "time_s"]
        if self.energy_meter is not None:
            measurable.append("energy_j")
            if self.carbon_g_per_kwh is not None:
                measurable.append("carbon_g")
            self._start_energy_meter()
        self.ledger.start_segment(tuple(measurable))
        if self.count_params is not None:  # after setup: sparsity callbacks have added masks
            self.params_effective = self.count_params(pl_module)
        self.ledger.book("params", self.params_effective)
        self._local = {"data_samples": 0.0, "compute_flop": 0.0}
        self._segment_start_step = trainer.global_step
        self._start_s = self.clock()
        if self.energy_estimated and ({"energy_j", "carbon_g"} & set(self.spec.enforced())):
            log.warning(
                "energy is estimated (%s), not read from counters: enforcing %.0f %% below the "
                "energy/carbon limits (budget.estimate_margin=%s)",
                self.energy_meter.method,
                100 * self.spec.estimate_margin,
                self.spec.estimate_margin,
            )

        limit, params = self.spec.params, self.params_effective
        if limit is not None and params is not None and params > limit:
            detail = f"the model has {params} effective parameters, budget.params is {int(limit)}"
            self._exhausted(trainer, "params", refused=True, detail=detail)
            return
        self._replan(trainer)
        if self.plan is not None:
            log.info(self.plan.describe())
            if self.spec.plan == "refuse" and not self.plan.fits:
                assert self.plan.tightest is not None
                self._exhausted(
                    trainer, self.plan.tightest, refused=True, detail=self.plan.shortfall()
                )
                return
        key = self._over_budget()
        if key is not None:  # e.g. a resumed run whose budget is already spent
            self._exhausted(trainer, BUDGET_KEY[key], detail="budget already spent at start")

    def _start_energy_meter(self) -> None:
        assert self.energy_meter is not None
        if self.energy_meter_started is not None:
            self.energy_meter_started.result()  # re-raises a failed start
        else:
            self.energy_meter.start()
        # Joules read before the first step (set-up, data) are not training energy.
        self._energy_baseline_j = self.energy_meter.read_j() or 0.0

    def _configured_steps(self, trainer: L.Trainer) -> int:
        if trainer.max_steps is not None and trainer.max_steps >= 0:
            return int(trainer.max_steps)
        epochs = trainer.max_epochs
        if epochs is None or epochs < 0:
            return -1
        return int(epochs * trainer.num_training_batches)

    def _replan(self, trainer: L.Trainer) -> None:
        if self.spec.plan == "off":
            return
        if self._configured is None:  # the trainer's horizon, before any budget shortened it
            self._configured = self._configured_steps(trainer)
        allowed = steps_allowed(
            self.effective_limits(), self.ledger.totals(), self.cost_per_step, trainer.global_step
        )
        self.plan = make_plan(self._configured, allowed)
        if self.spec.plan == "fit" and self.spec.on_exceed != "warn":
            trainer.fit_loop.epoch_loop.max_steps = self.plan.max_steps

    # ---- every step: book, forecast, decide -------------------------------------------------
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
        self._local["compute_flop"] += samples * (self.train_flop_per_sample or 0.0)
        self._book(trainer)
        step = trainer.global_step
        since_warmup = step - self._segment_start_step - self.spec.warmup_steps
        refused = False
        if since_warmup >= 0 and since_warmup % self.replan_every_n_steps == 0:
            self._forecast(step)
            self._replan(trainer)
            # Under `refuse`, a forecast that the configured run will not fit stops it now,
            # rather than overspending later.
            refused = self.spec.plan == "refuse" and self.plan is not None and not self.plan.fits
        key = self._over_budget()
        if refused and self.plan is not None and self.plan.tightest is not None:
            key = AMOUNT_KEYS[self.plan.tightest][0]
        self._decide(trainer, key, refused=refused and key is not None)
        if (step % max(trainer.log_every_n_steps, 1)) == 0:
            self._log(trainer, step)

    def _book(self, trainer: L.Trainer) -> None:
        energy_j = self.energy_meter.read_j() if self.energy_meter is not None else None
        if energy_j is not None:
            energy_j -= self._energy_baseline_j
        if trainer.local_rank != 0:
            energy_j = 0.0  # energy is metered once per node, by its local rank 0
        values = [
            self._local["data_samples"],
            self._local["compute_flop"],
            float("nan") if energy_j is None else energy_j,
        ]
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            summed = torch.tensor(values, dtype=torch.float64)
            dist.all_reduce(summed)  # NaN from any node keeps the sum unknown
            values = summed.tolist()
        self.ledger.book("data_samples", values[0])
        self.ledger.book("compute_flop", values[1])
        self.ledger.book("time_s", self.clock() - self._start_s)
        if self.energy_meter is not None:
            energy = None if values[2] != values[2] else values[2]
            self.ledger.book("energy_j", energy)
            if self.carbon_g_per_kwh is not None:
                carbon = None if energy is None else carbon_g(energy, self.carbon_g_per_kwh)
                self.ledger.book("carbon_g", carbon)
        if self._memory is not None:
            self.ledger.book("memory_bytes", float(self._memory.read_bytes()))

    def _forecast(self, step: int) -> None:
        """Per-step time/energy/carbon over a recent window that starts after warm-up."""
        now = {key: self.ledger.segment[key] for key in FORECAST}
        self._window.append((step, now))
        first_step, first = self._window[0]
        if step == first_step:
            return
        for key in FORECAST:
            a, b = first[key], now[key]
            known = a is not None and b is not None
            self.cost_per_step[key] = (b - a) / (step - first_step) if known else None

    def _over_budget(self) -> str | None:
        """The first key whose limit the next step would cross (or that is crossed)."""
        spent = self.ledger.totals()
        for key, limit in self.effective_limits().items():
            used = spent.get(key)
            if used is None:
                continue
            next_cost = self.cost_per_step.get(key) or 0.0
            if used >= limit or (key in self.cost_per_step and used + next_cost > limit):
                return key
        return None

    def _decide(self, trainer: L.Trainer, key: str | None, refused: bool = False) -> None:
        """Agree across ranks: any rank out of budget stops all, on this same step."""
        n_keys = len(STOP_KEYS)
        code = 0 if key is None else STOP_KEYS.index(key) + 1 + (n_keys if refused else 0)
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            agreed = torch.tensor([code], dtype=torch.int64)
            dist.all_reduce(agreed, op=dist.ReduceOp.MAX)
            code = int(agreed.item())
        if code:
            key = BUDGET_KEY[STOP_KEYS[(code - 1) % n_keys]]
            detail = self.plan.shortfall() if code > n_keys and self.plan is not None else None
            self._exhausted(trainer, key, refused=code > n_keys, detail=detail)

    def _exhausted(
        self, trainer: L.Trainer, key: str, refused: bool = False, detail: str | None = None
    ) -> None:
        if self.spec.on_exceed == "warn" and not refused:
            if key not in self._warned:
                self._warned.add(key)
                log.warning("budget.%s exceeded (on_exceed=warn): training continues", key)
            return
        if self.stopped_by is None:
            self.stopped_by = key
            self.status = "refused" if refused else "budget_exhausted"
            self.message = detail or f"budget.{key} spent at step {trainer.global_step}"
            log.info("%s: %s", self.status, self.message)
        trainer.should_stop = True

    # ---- end: name the stop, keep a checkpoint ------------------------------------------------
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Book once more after the meter's last read: a validation after the last step spends
        # energy and time too.
        if self.energy_meter is not None:
            self.energy_meter.stop()
        if self._memory is not None:
            self._book(trainer)
        plan = self.plan
        if (
            self.stopped_by is None
            and plan is not None
            and plan.binding is not None
            and trainer.global_step >= plan.max_steps
        ):
            self.stopped_by, self.status = plan.binding, "budget_exhausted"
            self.message = f"budget.{plan.binding} reached its planned horizon"
        if getattr(pl_module, "diverged", False) and self.stopped_by is None:
            self.status = "diverged"
        if self.stopped_by is not None and self.status != "refused":
            self.save_last(trainer)

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self.status = "interrupted"
        self.message = f"{type(exception).__name__} at step {trainer.global_step}"
        try:
            self.save_last(trainer)  # a clean, resumable stop (SIGTERM, Ctrl-C, errors)
        except Exception as err:  # never mask the exception that stopped the run
            log.error("could not save a checkpoint after %s: %s", type(exception).__name__, err)
        if self.energy_meter is not None:
            self.energy_meter.stop()

    def save_last(self, trainer: L.Trainer) -> None:
        ckpt = trainer.checkpoint_callback
        dirpath = getattr(ckpt, "dirpath", None) or Path(trainer.default_root_dir) / "checkpoints"
        trainer.save_checkpoint(Path(dirpath) / "last.ckpt")

    # ---- what the run shows ------------------------------------------------------------------
    def _log(self, trainer: L.Trainer, step: int) -> None:
        if not trainer.loggers:
            return
        metrics: dict[str, float] = {}
        spent = self.ledger.totals()
        for key, limit in self.spec.enforced().items():
            if spent.get(key) is not None:
                metrics[f"budget/{BUDGET_KEY[key]}_used"] = spent[key]
                metrics[f"budget/{BUDGET_KEY[key]}_frac"] = spent[key] / limit
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    def progress(self) -> dict[str, str]:
        """Each enforced budget's use, for the progress bar (`energy 1.2/2 kJ est.`)."""
        spent = self.ledger.totals()
        estimated = ("energy_j", "carbon_g") if self.energy_estimated else ()
        return {
            BUDGET_KEY[key]: describe_use(key, spent.get(key), limit, key in estimated)
            for key, limit in self.spec.enforced().items()
        }
