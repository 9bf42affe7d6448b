"""The books of one process segment: what this rank read — samples, FLOPs, its processes'
joules, its validations and the checkpoint saves after them, peak memory, parameters — booked
into the `Ledger` as totals every rank agreed on.

Every rank meters its own processes' energy and the ranks sum it (energy.scope=machine: local
rank 0 meters its node, the other ranks add 0); the machine's figure (`machine_energy_j`) is
read at re-plans by each node's local rank 0 and summed over nodes. Time is the slowest rank's.
One all-gather per booking (`RankAgreement`), which also agrees on the stop requests.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch.utilities import rank_zero_info

from frugal.budget.costs import CostModel
from frugal.budget.decision import NO_REQUEST, StopRequest
from frugal.budget.ledger import LEDGER_FILE, Ledger, read_sidecar
from frugal.callbacks.agreement import RankAgreement, nan_if_none, none_if_nan
from frugal.callbacks.energy_window import EnergyWindow
from frugal.callbacks.protocols import BudgetedModule
from frugal.meters.memory import PeakMemoryMeter

Reading = tuple[float, float | None]  # (clock seconds, run joules) at a moment


class Evaluations:
    """Validations and the checkpoint saves after them (from the budget's on_validation_end,
    which runs before ModelCheckpoint's, to the next step), measured locally: what a closing
    validation and a final checkpoint cost. Paid once training resumes (or ends)."""

    def __init__(self, read: Callable[[], Reading]) -> None:
        self.evaluated = {"time_s": 0.0, "energy_j": 0.0}
        self.saved = {"time_s": 0.0, "energy_j": 0.0}
        self._read = read
        self._started: Reading | None = None
        self._validated: Reading | None = None

    def begin(self) -> None:
        if self._started is None:
            self._started = self._read()

    def validated(self) -> None:
        if self._started is not None and self._validated is None:
            self._validated = self._read()

    def end(self) -> None:
        if self._started is None:
            return
        now_s, now_j = self._read()
        windows = [(self._started, self.evaluated)]
        if self._validated is not None:
            windows.append((self._validated, self.saved))
        self._started = self._validated = None
        for (start_s, start_j), total in windows:
            total["time_s"] += now_s - start_s
            if start_j is not None and now_j is not None:
                total["energy_j"] += max(now_j - start_j, 0.0)


class Books:
    def __init__(
        self,
        energy: EnergyWindow,
        costs: CostModel,
        count_params: Callable[[Any], int] | None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.ledger = Ledger()
        self.energy = energy
        self.clock = clock or time.perf_counter
        self.evaluations = Evaluations(lambda: (self.clock(), self.energy.run_j()))
        self.agreement: RankAgreement | None = None  # from the start of training
        self.started = False  # this segment's books are open
        self.restored = False  # a checkpoint's ledger was loaded: a resumed fit
        self.segment_start_step = 0
        self.booked_step = 0  # the global step of the last booking
        self._forecast = costs.forecast  # fed every booking
        self._carbon_g = costs.carbon_g
        self._count_params = count_params  # effective parameters, counted once masks exist
        self._local = {"data_samples": 0.0, "compute_flop": 0.0}
        self._machine_j = math.nan  # the machine's joules, refreshed at re-plans
        self._memory: PeakMemoryMeter | None = None
        self._start_s = 0.0
        self._local_rank = 0

    def restore(self, state: dict[str, Any]) -> None:
        self.ledger.load_state_dict(state)
        self.restored = True

    def charge_sidecar(self, ckpt_path: str | None) -> None:
        """After a hard kill the checkpoint is older than the spending: charge the larger."""
        if not ckpt_path:
            return
        state = read_sidecar(Path(ckpt_path).resolve().parent.parent / LEDGER_FILE)
        raised = self.ledger.charge_at_least(state) if state is not None else []
        if raised:
            rank_zero_info(
                f"resume: {LEDGER_FILE} records more spending than the checkpoint "
                f"({', '.join(raised)}); charging the larger"
            )

    def open(self, trainer: L.Trainer, module: L.LightningModule) -> int | None:
        """Open this segment's books at the start of training; returns the parameter count."""
        agreement = RankAgreement(trainer.strategy, trainer.world_size)
        memory = PeakMemoryMeter(module.device)
        memory.start()
        self.charge_sidecar(trainer.ckpt_path)
        return self.begin(agreement, trainer.local_rank, trainer.global_step, module, memory)

    def begin(
        self,
        agreement: RankAgreement,
        local_rank: int,
        step: int,
        module: torch.nn.Module,
        memory: PeakMemoryMeter | None = None,
    ) -> int | None:
        """`open`'s work once the trainer is read: start the meter, open the segment at
        `step`; returns the parameter count."""
        self.agreement, self._local_rank, self._memory = agreement, local_rank, memory
        measurable = ["data_samples", "compute_flop", "time_s"]
        if self._books_energy:
            measurable.extend(("energy_j", "machine_energy_j"))
            if self._carbon_g is not None:
                measurable.append("carbon_g")
        self.energy.start(agreement.from_rank_zero)
        self.ledger.start_segment(tuple(measurable))
        params = self.count_params(module)  # after setup: sparsity callbacks have added masks
        self._local = {"data_samples": 0.0, "compute_flop": 0.0}
        self.segment_start_step = step
        self._start_s = self.clock()
        self.started = True
        return params

    @property
    def _books_energy(self) -> bool:
        """Whether this rank books energy: it meters its own, or it is not its node's local
        rank 0 (whose meter, when only it has one, reads the node for the agreed sum)."""
        return self.energy.meter is not None or self._local_rank != 0

    def count_params(self, module: torch.nn.Module) -> int | None:
        params = self._count_params(module) if self._count_params is not None else None
        self.ledger.book("params", params)
        return params

    def add_batch(self, samples: float, flop_per_sample: float | None) -> None:
        self._local["data_samples"] += samples
        self._local["compute_flop"] += samples * (flop_per_sample or 0.0)

    def spent(self) -> dict[str, float | None]:
        """The run's spending so far. A resumed fit that trained nothing (Lightning skips the fit
        loop of a run already at its max_steps) opened no segment: what the checkpoint and
        `ledger.json` recorded, not unknown."""
        if self.restored and not self.started:
            return dict(self.ledger.carried)
        return self.ledger.totals()

    def book(
        self, step: int, request: StopRequest = NO_REQUEST, machine: bool = False
    ) -> StopRequest:
        """Book this segment's agreed totals; returns the agreed stop request. `machine`: read
        the machine's figure too (a few more system calls: at re-plans and at the end)."""
        assert self.agreement is not None
        evaluated, saved = self.evaluations.evaluated, self.evaluations.saved
        if self.energy.meter is not None:  # the run's own processes: every rank its own
            energy = [nan_if_none(self.energy.run_j()), evaluated["energy_j"], saved["energy_j"]]
        else:  # energy.scope=machine: metered once per node, by its local rank 0
            energy = [0.0, 0.0, 0.0]
        if machine:
            self._machine_j = self.energy.machine_j(self._local_rank)
        sums, maxes = self.agreement.combine(
            [self._local["data_samples"], self._local["compute_flop"], *energy, self._machine_j],
            [
                self.clock() - self._start_s,
                evaluated["time_s"],
                saved["time_s"],
                *request.codes(),
            ],
        )
        samples, flop, energy_j, evaluated_j, saved_j, machine_j = sums
        time_s, evaluated_s, saved_s = maxes[:3]
        self._book_agreed(samples, flop, time_s, energy_j, machine_j)
        self.booked_step = step
        segment = self.ledger.segment
        self._forecast.observe_step(
            step,
            {"time_s": segment["time_s"], "energy_j": segment["energy_j"]},
            {"time_s": evaluated_s, "energy_j": none_if_nan(evaluated_j)},
            {"time_s": saved_s, "energy_j": none_if_nan(saved_j)},
        )
        return StopRequest.from_codes(maxes[3:])

    def settle(self, step: int) -> None:
        """Book what was spent since the last booking (a closing validation, a checkpoint),
        the machine's figure too; nothing before training started."""
        if self.agreement is not None:
            self.book(step, machine=True)

    def _book_agreed(
        self, samples: float, flop: float, time_s: float, energy_j: float, machine_j: float
    ) -> None:
        """Book the totals every rank agreed on (NaN: unknown)."""
        self.ledger.book("data_samples", samples)
        self.ledger.book("compute_flop", flop)
        self.ledger.book("time_s", time_s)
        if self._books_energy:
            known_j = none_if_nan(energy_j)
            self.ledger.book("energy_j", known_j)
            if self._carbon_g is not None:
                self.ledger.book("carbon_g", None if known_j is None else self._carbon_g(known_j))
            self.ledger.book("machine_energy_j", none_if_nan(machine_j))
        if self._memory is not None:
            self.ledger.book("memory_bytes", float(self._memory.read_bytes()))


def measure_step(
    trainer: L.Trainer, module: BudgetedModule, device: torch.device | None = None
) -> tuple[int, float]:
    """(samples, FLOPs) of one training step on this rank, on a batch drawn without moving the
    data order. `device`: where to put the batch, when not the strategy's (after fit)."""
    with torch.random.fork_rng(devices=[]):
        batch = next(iter(trainer.train_dataloader))
    if device is None:
        x, y = trainer.strategy.batch_to_device(batch)
    else:
        x, y = move_data_to_device(batch, device)
    return len(y), module.step_flops(x, y)
