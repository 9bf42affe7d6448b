"""A fake energy meter with a known cost, for budget tests (this machine has no counters)."""

from __future__ import annotations


class FakeEnergyMeter:
    """`joules_per_read` joules per read while running; the budget callback reads once per
    training step, and once more after `stop()` (which adds nothing: the meter has stopped)."""

    method = "fake"

    def __init__(self, joules_per_read: float, measured: bool = True):
        self.joules_per_read = joules_per_read
        self.measured = measured
        self.reads = 0
        self.running = False

    def start(self) -> None:
        self.reads = 0
        self.running = True

    def read_j(self) -> float:
        self.reads += self.running
        return self.reads * self.joules_per_read

    def stop(self) -> None:
        self.running = False
