"""The budget callback's parts that read the run, without a Trainer: the books of a segment
(`frugal.callbacks.booking`), the energy window (`frugal.callbacks.energy_window`) and the
validation schedule (`frugal.callbacks.schedule`). One rank: the agreement across ranks is
tested by tests/test_ddp.py."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path

import pytest
from fakes.meters import FakeClock, FakeEnergyMeter
from torch import nn

from frugal.budget.costs import CostModel
from frugal.budget.decision import NO_REQUEST, StopKind, StopRequest
from frugal.budget.ledger import LEDGER_FILE, Ledger
from frugal.callbacks.agreement import RankAgreement
from frugal.callbacks.booking import Books
from frugal.callbacks.energy_window import EnergyWindow
from frugal.callbacks.schedule import Schedule

ONE_RANK = RankAgreement(None, world_size=1)  # one rank: no collective, no strategy
MODEL = nn.Linear(3, 2)  # 8 parameters


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def opened(meter: FakeEnergyMeter | None, clock: FakeClock, local_rank: int = 0, **kw) -> Books:
    books = Books(EnergyWindow(meter), CostModel(**kw), count, clock)
    assert books.begin(ONE_RANK, local_rank, step=0, module=MODEL) == 8
    return books


def test_a_booking_holds_the_segment_s_samples_flops_time_and_energy():
    clock, meter = FakeClock(), FakeEnergyMeter()
    meter.start()
    meter.spend(7.0)  # set-up: not training energy
    clock.s = 5.0  # nor training time
    books = opened(meter, clock, carbon_g=lambda joules: joules / 100)
    books.add_batch(10, flop_per_sample=100.0)
    books.add_batch(10, flop_per_sample=100.0)
    clock.s = 6.5
    meter.spend(2.0)
    request = StopRequest(StopKind.INTERRUPTED, signal.SIGTERM)
    assert books.book(2, request) == request  # one rank: its own request is the agreed one
    spent = books.ledger.totals()
    assert spent["data_samples"] == 20.0
    assert spent["compute_flop"] == 2_000.0
    assert spent["time_s"] == 1.5
    assert spent["energy_j"] == 2.0
    assert spent["carbon_g"] == 0.02
    assert spent["params"] == 8
    assert spent["machine_energy_j"] is None  # read at re-plans only
    meter.spend(1.0)
    assert books.book(3, machine=True) == NO_REQUEST
    assert books.ledger.totals()["machine_energy_j"] == 3.0
    assert books.booked_step == 3


def test_a_rank_without_a_meter_books_energy_only_when_another_rank_reads_its_node():
    clock = FakeClock()
    node_reader = opened(None, clock, local_rank=0)  # local rank 0 with no meter: unknown
    node_reader.book(1, machine=True)
    assert node_reader.ledger.totals()["energy_j"] is None
    other = opened(None, clock, local_rank=1)  # adds 0 to the sum its local rank 0 reads
    other.book(1, machine=True)
    assert other.ledger.totals()["energy_j"] == 0.0
    assert other.ledger.totals()["machine_energy_j"] == 0.0


def test_a_dead_meter_leaves_the_energy_unknown_not_zero():
    clock, meter = FakeClock(), FakeEnergyMeter()
    books = opened(meter, clock)
    meter.spend(4.0)
    books.book(1)
    assert books.ledger.totals()["energy_j"] == 4.0
    meter.answering = False
    books.book(2, machine=True)
    assert books.ledger.totals()["energy_j"] is None
    assert books.ledger.totals()["machine_energy_j"] is None


def test_validations_and_the_saves_after_them_are_measured_apart_for_the_forecast():
    clock, meter = FakeClock(), FakeEnergyMeter()
    costs = CostModel()
    books = Books(EnergyWindow(meter), costs, None, clock)
    books.begin(ONE_RANK, 0, step=0, module=MODEL)

    def work(seconds: float, joules: float) -> None:
        clock.s += seconds
        meter.spend(joules)

    for step in range(1, 4):  # 1 s and 1 J a step
        work(1.0, 1.0)
        books.book(step)
    books.evaluations.begin()
    work(4.0, 8.0)  # the validation
    books.evaluations.validated()
    work(2.0, 3.0)  # the checkpoint saves after it
    books.evaluations.end()  # at the next training step
    assert books.evaluations.evaluated == {"time_s": 6.0, "energy_j": 11.0}
    assert books.evaluations.saved == {"time_s": 2.0, "energy_j": 3.0}
    work(1.0, 1.0)
    books.book(4)
    costs.forecast.refit()
    assert costs.evaluation("energy_j", val_batches=None) == 11.0
    assert costs.checkpoint("time_s") == 2.0
    assert costs.per_step("time_s") == pytest.approx(1.0)  # validations are not steps


def test_resuming_charges_a_ledger_json_that_recorded_more_than_the_checkpoint(tmp_path: Path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    checkpointed, after_kill = Ledger(), Ledger()
    checkpointed.book("time_s", 10.0)
    after_kill.book("time_s", 12.5)
    (run / LEDGER_FILE).write_text(json.dumps({**after_kill.state_dict(), "step": 9}))
    books = Books(EnergyWindow(None), CostModel(), None, FakeClock())
    books.restore(checkpointed.state_dict())
    assert books.spent()["time_s"] == 10.0  # resumed, nothing trained: what was carried
    books.charge_sidecar(str(run / "checkpoints" / "last.ckpt"))
    assert books.spent()["time_s"] == 12.5
    books.charge_sidecar(None)  # a fresh run: nothing to charge
    assert books.spent()["time_s"] == 12.5


def test_the_energy_window_starts_the_meter_and_agrees_on_estimated():
    meter = FakeEnergyMeter(measured=False)
    window = EnergyWindow(meter)
    assert window.estimated  # the meter's own say, before training
    assert window.run_j() == 0.0
    window.start(from_rank_zero=lambda value: False)  # rank 0's meter decides for every rank
    assert meter.running and not window.estimated
    meter.spend(2.5)
    assert window.run_j() == 2.5
    assert window.machine_j(local_rank=0) == 2.5
    assert window.machine_j(local_rank=1) == 0.0  # one figure per machine, from local rank 0
    assert math.isnan(EnergyWindow(None).machine_j(local_rank=0))
    assert EnergyWindow(None).run_j() is None


def schedule(**kw) -> Schedule:
    fields = dict(
        val_batches=3,
        every_n_epochs=1,
        val_check_batch=10,
        training_batches=10,
        epoch=0,
        batch_idx=0,
        total_batch_idx=0,
        last_batch=False,
    )
    return Schedule(**{**fields, **kw})


def test_validations_due_at_the_end_of_each_validation_epoch_and_at_a_stop():
    mid = schedule(batch_idx=4, total_batch_idx=4)
    assert not mid.due(0, stopping=False)
    assert mid.due(1, stopping=True)  # a stop validates in a validation epoch
    assert mid.validations_to_continue() == 1
    last = schedule(batch_idx=9, total_batch_idx=9, last_batch=True)
    assert last.due(0, stopping=False)
    assert last.validations_to_continue() == 2
    every_2 = schedule(every_n_epochs=2, batch_idx=9, total_batch_idx=9, last_batch=True)
    assert not every_2.due(0, stopping=False)  # epoch 0 of 2: no validation
    assert every_2.due(1, stopping=True)  # the next step is in epoch 1: a stop there validates
    assert mid.interval() == 10
    assert every_2.interval() == 20


def test_validations_every_n_steps_and_runs_that_never_validate():
    steps = schedule(every_n_epochs=None, val_check_batch=5, total_batch_idx=14, batch_idx=4)
    assert steps.due(0, stopping=False)
    assert steps.interval() == 5
    never = schedule(val_batches=None)
    assert not never.due(0, stopping=False) and not never.due(1, stopping=True)
    assert never.interval() is None
    assert schedule(training_batches=math.inf).interval() is None
