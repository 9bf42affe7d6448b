"""The one protocol every energy meter follows.

`read_j()` returns cumulative joules since `start()`, or None when unknown (never 0 for
"unknown"). It must be cheap and must not block a training step: a backend whose read is slow
polls in a background thread and `read_j()` returns the latest sample.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class EnergyMeter(Protocol):
    method: str  # provenance of the figure: "rapl", "nvml", "codecarbon:cpu_load", ...
    measured: bool  # True: read from hardware counters; False: an estimate

    def start(self) -> None: ...

    def read_j(self) -> float | None: ...

    def stop(self) -> None: ...
