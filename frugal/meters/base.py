"""The one protocol every energy meter follows.

`read_j()` returns cumulative joules since `start()` for the moment of the call, or None when
unknown (never 0 for "unknown"). It must be cheap and must not block a training step: a source
that is slow to read or only moves every few seconds is polled in the background, and its last
sample extrapolated to the call. What it returns never decreases.

How far the figure can be trusted, for the budget's precision contract (DESIGN.md):
`poll_interval_s` is None for a per-call counter (spent ≤ limit), else the polling period
(spent ≤ limit + one interval's energy); `uncertainty` is the figure's relative uncertainty.
Both may change mid-run when a meter falls back to another source: read them when deciding.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class EnergyMeter(Protocol):
    @property
    def method(self) -> str: ...  # provenance: "rapl", "nvml", "codecarbon:cpu_load", ...

    @property
    def measured(self) -> bool: ...  # True: read from hardware counters; False: an estimate

    @property
    def poll_interval_s(self) -> float | None: ...  # None: a per-call counter

    @property
    def uncertainty(self) -> float | None: ...  # relative, e.g. 0.05; None: unknown

    @property
    def lost(self) -> bool: ...  # had a reading, has no source left: read_j() is None for good

    def start(self) -> None: ...

    def read_j(self) -> float | None: ...

    # The whole machine's joules since start() (RAPL's, NVML's, codecarbon's, or the power
    # model over the machine's busy CPU time), where a figure exists: shown beside read_j(),
    # which is the run's own unless energy.scope=machine. None: unknown.
    def read_machine_j(self) -> float | None: ...

    def stop(self) -> None: ...
