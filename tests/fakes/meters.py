"""Fake energy meters with a known cost, for budget tests (this machine has no counters).

`FakeEnergyMeter` is a per-step counter: joules are spent by the `Work` callback — a fixed
amount per training step and per validation — and read exactly, like RAPL would read them.
"""

from __future__ import annotations

import lightning as L


class FakeEnergyMeter:
    method = "fake"

    def __init__(self, measured: bool = True, poll_interval_s: float | None = None):
        self.measured = measured
        self.poll_interval_s = poll_interval_s  # None: a per-step counter
        self.energy_j = 0.0
        self.running = False
        self.answering = True  # False: the meter has died (read_j is None from then on)

    def start(self) -> None:
        self.running = True

    def spend(self, joules: float) -> None:
        if self.running:
            self.energy_j += joules

    def read_j(self) -> float | None:
        return self.energy_j if self.answering else None

    def read_machine_j(self) -> float | None:
        return self.read_j()  # the fake's machine does nothing else

    def stop(self) -> None:
        self.running = False


class Work(L.Callback):
    """Spends `joules_per_step` on the meter at every training step and `joules_per_validation`
    at every validation, and advances `clock` (if given) by `seconds_per_step` /
    `seconds_per_validation`. Listed before the budget callback, so a step is paid before it
    is booked."""

    def __init__(
        self,
        meter: FakeEnergyMeter | None = None,
        joules_per_step: float = 0.0,
        joules_per_validation: float = 0.0,
        clock: FakeClock | None = None,
        seconds_per_step: float = 0.0,
        seconds_per_validation: float = 0.0,
    ):
        self.meter = meter
        self.joules_per_step = joules_per_step
        self.joules_per_validation = joules_per_validation
        self.clock = clock
        self.seconds_per_step = seconds_per_step
        self.seconds_per_validation = seconds_per_validation

    def on_train_batch_end(self, *args) -> None:
        self._spend(self.joules_per_step, self.seconds_per_step)

    def on_validation_end(self, trainer, *args) -> None:
        if not trainer.sanity_checking:
            self._spend(self.joules_per_validation, self.seconds_per_validation)

    def _spend(self, joules: float, seconds: float) -> None:
        if self.meter is not None:
            self.meter.spend(joules)
        if self.clock is not None:
            self.clock.s += seconds


class FakeClock:
    """A clock the `Work` callback advances: time passes only when work is done."""

    def __init__(self) -> None:
        self.s = 0.0

    def __call__(self) -> float:
        return self.s
