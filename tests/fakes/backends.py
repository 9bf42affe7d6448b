"""Energy backends for `FallbackMeter` tests: a load on a clock the test moves by hand, read by a
per-call counter or by a polled staircase; and backends that raise, freeze or hang.

This machine has neither RAPL nor a GPU, and codecarbon only estimates: these stand in for the
sources the meter must handle, with known true joules.
"""

from __future__ import annotations

import math
import threading
from typing import Any

LOST = object()  # ScriptedBackend entry: the backend loses its device or lock and raises


class Clock:
    """Seconds that move only when the test says so."""

    def __init__(self, now_s: float = 100.0) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


class PowerTrace:
    """The true energy of a load whose power the test sets, integrated on the clock."""

    def __init__(self, clock: Clock, power_w: float) -> None:
        self.clock = clock
        self._changes = [(clock(), power_w)]  # (from this time, this power)

    def set_power(self, power_w: float) -> None:
        self._changes.append((self.clock(), power_w))

    def energy_j(self, since_s: float, until_s: float | None = None) -> float:
        until_s = self.clock() if until_s is None else until_s
        total_j = 0.0
        ends = [t for t, _ in self._changes[1:]] + [math.inf]
        for (from_s, power_w), to_s in zip(self._changes, ends, strict=True):
            lo, hi = max(from_s, since_s), min(to_s, until_s)
            total_j += power_w * max(hi - lo, 0.0)
        return total_j


class CounterBackend:
    """A per-call counter (RAPL, NVML energy): the trace's exact joules at every read."""

    measured = True
    poll_interval_s = None
    sampled_at_s = None
    power_w = None
    uncertainty = 0.05

    def __init__(self, trace: PowerTrace, method: str = "counter", cheap_read: bool = True):
        self.trace = trace
        self.method = method
        self.cheap_read = cheap_read
        self.started_at_s: float | None = None
        self.stops = 0

    def start(self) -> None:
        self.started_at_s = self.trace.clock()

    def sample_j(self) -> float | None:
        assert self.started_at_s is not None, "sampled before start()"
        return self.trace.energy_j(self.started_at_s)

    def stop(self) -> float | None:
        self.stops += 1
        return self.sample_j()

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": self.method}]


class StaircaseBackend(CounterBackend):
    """A polled source (codecarbon): publishes the trace's total every `period_s`, stamped with
    the time of publication; after `freeze_after_s` it publishes nothing new."""

    measured = False
    uncertainty = 0.3

    def __init__(
        self,
        trace: PowerTrace,
        period_s: float = 1.0,
        method: str = "staircase",
        freeze_after_s: float = math.inf,
    ) -> None:
        super().__init__(trace, method)
        self.poll_interval_s = period_s  # type: ignore[assignment]
        self.sampled_at_s: float | None = None  # type: ignore[no-redef]
        self.freeze_after_s = freeze_after_s

    def start(self) -> None:
        super().start()
        self.sampled_at_s = self.started_at_s  # pushes 0 J at start, as codecarbon does

    def sample_j(self) -> float | None:
        assert self.started_at_s is not None, "sampled before start()"
        period_s = self.poll_interval_s
        elapsed_s = min(self.trace.clock() - self.started_at_s, self.freeze_after_s)
        self.sampled_at_s = self.started_at_s + math.floor(elapsed_s / period_s) * period_s
        return self.trace.energy_j(self.started_at_s, self.sampled_at_s)

    def stop(self) -> float | None:
        self.stops += 1
        return None  # a frozen or dead source pushes no final figure


class RaisingBackend(CounterBackend):
    """Raises from `start()` (`samples_before` None) or after that many good samples."""

    def __init__(self, trace: PowerTrace, samples_before: int | None, method: str = "raising"):
        super().__init__(trace, method)
        self.samples_before = samples_before

    def start(self) -> None:
        if self.samples_before is None:
            raise RuntimeError(f"{self.method}: cannot start")
        super().start()

    def sample_j(self) -> float | None:
        assert self.samples_before is not None
        if self.samples_before <= 0:
            raise RuntimeError(f"{self.method}: device lost")
        self.samples_before -= 1
        return super().sample_j()


class HangingBackend(CounterBackend):
    """Blocks in `hang_in` ("start", "sample" or "stop") until the test sets `release`; a sample
    hang only on the poller's thread (`cheap_read` False), where the meter must survive it."""

    def __init__(self, trace: PowerTrace, hang_in: str, release: threading.Event):
        super().__init__(trace, f"hangs-in-{hang_in}", cheap_read=hang_in != "sample")
        self.hang_in = hang_in
        self.release = release
        self.entered = threading.Event()  # set once the call that hangs is under way

    def _maybe_hang(self, where: str) -> None:
        if where == self.hang_in:
            self.entered.set()
            self.release.wait()

    def start(self) -> None:
        self._maybe_hang("start")
        super().start()

    def sample_j(self) -> float | None:
        self._maybe_hang("sample")
        return super().sample_j()

    def stop(self) -> float | None:
        self._maybe_hang("stop")
        return super().stop()


class ScriptedBackend:
    """Returns the scripted cumulative readings in turn; repeats the last one when done."""

    poll_interval_s = None
    sampled_at_s = None
    power_w = None

    def __init__(
        self,
        method: str,
        readings: list[Any],
        measured: bool = True,
        cheap_read: bool = True,
        fail_start: bool = False,
        uncertainty: float = 0.05,
    ) -> None:
        self.method, self.measured, self.cheap_read = method, measured, cheap_read
        self.uncertainty = uncertainty
        self._readings = list(readings)
        self._fail_start = fail_start
        self.started = self.stopped = False

    def start(self) -> None:
        if self._fail_start:
            raise RuntimeError(f"{self.method}: nothing to read")
        self.started = True

    def sample_j(self) -> float | None:
        value = self._readings.pop(0) if len(self._readings) > 1 else self._readings[0]
        if value is LOST:
            raise RuntimeError("lock lost")
        return value

    def stop(self) -> float | None:
        self.stopped = True
        return None

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": self.method}]
