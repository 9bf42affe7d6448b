"""Real training runs whose energy meter fails, freezes or hangs: the real `FallbackMeter` over
fake backends (this machine has no counters). No run reports 0 J for unknown energy, no
enforced energy budget is silently dropped, nothing hangs."""

from __future__ import annotations

import threading
import time

import lightning as L
import pytest
from fakes.backends import (
    Clock,
    CounterBackend,
    HangingBackend,
    PowerTrace,
    RaisingBackend,
    StaircaseBackend,
)

from frugal.meters.energy import FallbackMeter


class Seconds(L.Callback):
    """Moves the backends' clock: each training step takes `seconds` at the trace's power."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock, self.seconds = clock, seconds

    def on_train_batch_end(self, *args) -> None:
        self.clock.advance(self.seconds)


def meter(backends, clock: Clock, **kwargs) -> FallbackMeter:
    return FallbackMeter(backends, sample_every_s=0.05, clock=clock, **kwargs)


def test_a_meter_that_cannot_start_makes_an_energy_budget_unenforceable(run_train):
    clock = Clock()
    trace = PowerTrace(clock, power_w=10.0)
    result, _ = run_train(
        "budget.energy=20J",
        "trainer.max_steps=50",
        energy_meter=meter([RaisingBackend(trace, samples_before=None)], clock),
    )
    assert result["status"] == "unenforceable" and result["stopped_by"] == "energy"
    assert result["steps"] == 0 and "budget.energy cannot be enforced" in result["message"]
    assert result["spent"]["energy_j"] is None  # unknown, never 0


def test_a_meter_that_dies_mid_run_hands_over_or_stops_the_run(run_train):
    clock = Clock()
    trace = PowerTrace(clock, power_w=10.0)
    dying = RaisingBackend(trace, samples_before=5, method="dies")
    result, _ = run_train(
        "budget.energy=100J",
        "trainer.max_steps=30",
        energy_meter=meter([dying], clock),
        callbacks=[Seconds(clock, 0.1)],
    )
    assert result["status"] == "unenforceable" and 0 < result["steps"] < 30
    assert result["spent"]["energy_j"] is None
    assert result["energy"]["method"] == "unavailable"


def test_a_frozen_polled_meter_is_switched_for_the_next_backend(run_train):
    clock = Clock()
    trace = PowerTrace(clock, power_w=10.0)
    frozen = StaircaseBackend(trace, period_s=0.5, freeze_after_s=1.0)
    backup = CounterBackend(trace, method="backup")
    result, _ = run_train(
        "budget.energy=100J",
        "trainer.max_steps=200",
        energy_meter=meter([frozen, backup], clock, stale_after_s=1.0),
        callbacks=[Seconds(clock, 0.1)],  # 1 J a step
    )
    assert result["status"] == "budget_exhausted" and result["stopped_by"] == "energy"
    assert 0 < result["spent"]["energy_j"] <= 100
    switches = result["energy"]["switches"]
    assert switches and switches[0]["to"] == "backup"


@pytest.mark.parametrize("hang_in", ["start", "sample"])
def test_a_hanging_meter_never_hangs_the_run(run_train, hang_in):
    clock = Clock()
    trace = PowerTrace(clock, power_w=10.0)
    release = threading.Event()
    hanging = HangingBackend(trace, hang_in=hang_in, release=release)
    backup = CounterBackend(trace, method="backup")
    started = time.monotonic()
    try:
        result, _ = run_train(
            "budget.energy=30J",
            "trainer.max_steps=200",
            # bounded waits of 1 s (start, stop: 30 s and 5 s by default) keep the test short
            energy_meter=meter(
                [hanging, backup], clock, start_timeout_s=1.0, stop_timeout_s=1.0, stale_after_s=0.5
            ),
            callbacks=[Seconds(clock, 0.1)],
        )
    finally:
        release.set()
    assert time.monotonic() - started < 60
    assert result["status"] in ("budget_exhausted", "unenforceable"), result["message"]
    if result["status"] == "budget_exhausted":  # the backup took over in time
        assert 0 < result["spent"]["energy_j"] <= 30 and result["energy"]["switches"]
    else:  # the hang left the energy unknown: stopped, never reported as 0 J
        assert result["spent"]["energy_j"] is None and "cannot be enforced" in result["message"]
