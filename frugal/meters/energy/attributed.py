"""`AttributedMeter`: the energy of the run's own processes, read on the training thread.

What a run is charged (DESIGN.md, "What energy means"), part by part:
- CPU with a counter (RAPL packages + DRAM): each window's counter delta × the run's share of
  the machine's busy CPU time in that window (`CpuShare`: the run's CPU seconds, usage.py,
  against `/proc/stat`). Between window ends a read extrapolates at the last window's share.
- GPU with a counter (NVML total energy): the device delta × the run's share of its
  utilisation (`nvml.ProcessShare`; 1 when no other process uses the device).
- CPU with no counter: the stated model (power.py) — the run's CPU seconds × watts per busy
  thread + its resident memory × watts per GB × wall time.
All × `pue`. The machine's own figure over the same window (the counters' totals, or the model
over the machine's busy CPU time and used memory) is read beside it (`read_machine_j`), never
instead of it — unless `scope="machine"`, where it is the figure enforced.

Every read is a few system calls: no sampling thread, so `poll_interval_s` is None and a budget
stops within one step's energy. A counter that fails mid-run hands its part over to the model
(joules already counted are kept); with nothing left to read, `read_j()` is None for good.
What `read_j()` returns never decreases.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from frugal.meters.energy.backend import Backend
from frugal.meters.energy.power import MODEL_UNCERTAINTY, PowerModel
from frugal.meters.energy.usage import RunUsage, machine_busy_s

log = logging.getLogger(__name__)

GB = 1e9
WINDOW_S = 0.5  # a share is computed over at least this long (/proc/stat counts in 10 ms ticks)
SHARE_UNCERTAINTY = 0.05  # the share's own: tick resolution of /proc/stat over a window
RSS_EVERY_S = 0.25  # resident memory changes slowly: re-read it this often


class Share(Protocol):
    name: str  # "cpu-share", "gpu-share"

    def start(self) -> None: ...

    def __call__(self) -> float: ...  # the run's share since the last call, in [0, 1]


class CpuShare:
    """The run's share of the machine's busy CPU time since the previous call."""

    name = "cpu-share"

    def __init__(self, usage: RunUsage, proc_root: str | Path = "/proc") -> None:
        self._usage = usage
        self._proc_root = proc_root
        self._last: tuple[float, float] = (0.0, 0.0)

    def start(self) -> None:
        self._last = (self._usage.cpu_s() or 0.0, machine_busy_s(self._proc_root))

    def __call__(self) -> float:
        run_s, busy_s = self._usage.cpu_s(), machine_busy_s(self._proc_root)
        if run_s is None:
            raise OSError("the run's CPU time cannot be read")
        run_delta_s, busy_delta_s = run_s - self._last[0], busy_s - self._last[1]
        self._last = (run_s, busy_s)
        if busy_delta_s <= 0:  # ticks not yet counted: the run worked, so it had it all
            return 1.0 if run_delta_s > 0 else 0.0
        return min(max(run_delta_s / busy_delta_s, 0.0), 1.0)


class Part(Protocol):
    method: str  # how the run's share is obtained
    machine_method: str  # how the machine's figure is
    measured: bool
    uncertainty: float  # of the run's figure
    machine_uncertainty: float  # of the machine's

    def start(self) -> None: ...

    def read(self, machine: bool) -> tuple[float, float | None]: ...  # (run J, machine J)

    def describe(self) -> dict[str, Any]: ...


class SharedCounter:
    """A hardware counter, of which the run is charged its share window by window."""

    measured = True

    def __init__(
        self,
        backend: Backend,
        share: Share,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.share = share
        self.method = f"{backend.method}×{share.name}"
        self.machine_method = backend.method
        self.uncertainty = backend.uncertainty + SHARE_UNCERTAINTY
        self.machine_uncertainty = backend.uncertainty
        self._window_s = window_s
        self._clock = clock
        self._window_start = (0.0, 0.0, 0.0)  # (time s, counter J, attributed J) at its start
        self._last_share = 1.0  # before the first window ends: an upper bound
        self.shares: list[float] = []

    def start(self) -> None:
        self.backend.start()
        self.share.start()
        self._window_start = (self._clock(), 0.0, 0.0)

    def read(self, machine: bool) -> tuple[float, float | None]:
        counter_j = self.backend.sample_j()
        if counter_j is None:
            raise OSError(f"{self.backend.method}: no reading")
        now_s = self._clock()
        began_s, start_counter_j, start_attributed_j = self._window_start
        delta_j = max(counter_j - start_counter_j, 0.0)
        if now_s - began_s < self._window_s:
            return start_attributed_j + delta_j * self._last_share, counter_j
        self._last_share = self.share()
        self.shares.append(self._last_share)
        attributed_j = start_attributed_j + delta_j * self._last_share
        self._window_start = (now_s, counter_j, attributed_j)
        return attributed_j, counter_j

    def describe(self) -> dict[str, Any]:
        entries = self.backend.describe()
        mean = sum(self.shares) / len(self.shares) if self.shares else None
        return {"method": self.method, "sources": entries, "mean_share": mean}


class ModelPart:
    """No counter: the run's CPU seconds and resident memory through the power model."""

    measured = False
    uncertainty = machine_uncertainty = MODEL_UNCERTAINTY
    machine_method = "model:machine-cpu+ram"

    def __init__(
        self,
        usage: RunUsage,
        power: Callable[[], PowerModel],
        proc_root: str | Path = "/proc",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.method = "model:cpu-time+rss"
        self._usage = usage
        self._power_of = power
        self._power: PowerModel | None = None
        self._proc_root = proc_root
        self._clock = clock
        self._start = (0.0, 0.0, 0.0)  # (time s, run CPU s, machine busy s)
        self._rss = (0.0, 0.0)  # (read at s, GB)
        self._ram_j = 0.0  # the run's memory, integrated over wall time
        self._ram_at_s = 0.0
        self._machine_ram = (0.0, 0.0, 0.0)  # (read at s, GB used, J integrated)

    def start(self) -> None:
        self._power = self._power_of()  # a database lookup: off the training thread
        now_s = self._clock()
        cpu_s = self._usage.cpu_s()
        if cpu_s is None:
            raise OSError("the run's CPU time cannot be read")
        self._start = (now_s, cpu_s, machine_busy_s(self._proc_root))
        self._rss = (now_s, (self._usage.rss_bytes() or 0) / GB)
        self._ram_j, self._ram_at_s = 0.0, now_s
        self._machine_ram = (now_s, _used_memory_gb(), 0.0)

    def read(self, machine: bool) -> tuple[float, float | None]:
        assert self._power is not None, "start() first"
        now_s = self._clock()
        cpu_s = self._usage.cpu_s()
        if cpu_s is None:
            raise OSError("the run's CPU time cannot be read")
        self._ram_j += self._rss[1] * self._power.ram_watts_per_gb * (now_s - self._ram_at_s)
        self._ram_at_s = now_s
        if now_s - self._rss[0] >= RSS_EVERY_S:
            self._rss = (now_s, (self._usage.rss_bytes() or 0) / GB)
        run_j = (cpu_s - self._start[1]) * self._power.cpu_watts_per_core + self._ram_j
        return run_j, self._machine_j(now_s) if machine else None

    def _machine_j(self, now_s: float) -> float:
        assert self._power is not None
        read_at_s, used_gb, ram_j = self._machine_ram
        ram_j += used_gb * self._power.ram_watts_per_gb * (now_s - read_at_s)
        self._machine_ram = (now_s, _used_memory_gb(), ram_j)
        busy_s = machine_busy_s(self._proc_root) - self._start[2]
        return busy_s * self._power.cpu_watts_per_core + ram_j

    def describe(self) -> dict[str, Any]:
        power = self._power.describe() if self._power is not None else {}
        return {"method": self.method, **power}


def _used_memory_gb() -> float:
    """The machine's memory in use (total less available), GB."""
    import psutil

    return float(psutil.virtual_memory().used) / GB


class AttributedMeter:
    """An `EnergyMeter` (meters/base.py) of the run's own energy; see the module's docstring."""

    poll_interval_s = None  # read on the spot: a per-step counter

    def __init__(
        self,
        parts: list[Part],
        fallback: Callable[[], Part] | None = None,
        scope: str = "run",
        pue: float = 1.0,
        notes: list[str] | None = None,
    ) -> None:
        if not parts:
            raise ValueError("an attributed meter needs at least one part")
        self._parts = parts
        self._fallback = fallback  # the model, for a counter that fails mid-run
        self.scope = scope
        self.pue = pue
        self.notes = list(notes or [])
        self._offsets_j = [0.0] * len(parts)  # joules a failed part counted before its hand-over
        self._last_part_j = [0.0] * len(parts)  # each part's last reading
        self._reported = (0.0, 0.0)  # never decreasing: (run J, machine J)
        self._lost = False
        self._final: tuple[float, float | None] | None = None  # the reading at stop()
        self.switches: list[str] = []

    @property
    def method(self) -> str:
        """How the enforced figure is obtained, e.g. "rapl×cpu-share", "model:cpu-time+rss"."""
        if self._lost:
            return "unavailable"
        machine = self.scope == "machine"
        return "+".join(part.machine_method if machine else part.method for part in self._parts)

    @property
    def measured(self) -> bool:
        return all(part.measured for part in self._parts)

    @property
    def uncertainty(self) -> float | None:
        machine = self.scope == "machine"
        return max(p.machine_uncertainty if machine else p.uncertainty for p in self._parts)

    @property
    def lost(self) -> bool:
        return self._lost

    def start(self) -> None:
        for index, part in enumerate(self._parts):
            try:
                part.start()
            except Exception as err:  # any fault: the model takes over
                self._hand_over(index, err)

    def read_j(self) -> float | None:
        """Joules since `start()`: the run's own (scope "run") or the machine's."""
        machine = self.scope == "machine"
        totals = self._final or self._read(machine)
        if totals is None:
            return None
        return totals[1] if machine else totals[0]

    def read_machine_j(self) -> float | None:
        """The machine's joules over the same window, where a figure exists."""
        totals = self._final or self._read(machine=True)
        return None if totals is None else totals[1]

    def stop(self) -> None:
        """A last reading, then the counters released; reads return that reading after."""
        if self._final is None and not self._lost:
            self._final = self._read(machine=True) or (self._reported[0], None)
        for part in self._parts:
            stop = getattr(getattr(part, "backend", None), "stop", None)
            if stop is not None:
                try:
                    stop()
                except Exception:  # stopping must not fail a finished run
                    log.warning("energy: stopping %s failed", part.method, exc_info=True)

    def describe(self) -> dict[str, Any]:
        """For result.json `energy` (the keys FallbackMeter's describe() has, and more)."""
        found: dict[str, Any] = {
            "method": self.method,
            "measured": self.measured,
            "uncertainty": self.uncertainty,
            "precision": "unavailable" if self._lost else "per-step counter",
            "poll_interval_s": None,
            "scope": self.scope,
            "pue": self.pue,
            "backends": [part.describe() for part in self._parts],
            "switches": self.switches,
        }
        if self.notes:
            found["note"] = "; ".join(self.notes)
        return found

    def _read(self, machine: bool) -> tuple[float, float | None] | None:
        if self._lost:
            return None
        run_j, machine_j = 0.0, 0.0 if machine else None
        for index in range(len(self._parts)):
            try:
                part_run_j, part_machine_j = self._parts[index].read(machine)
            except Exception as err:  # a fault in any reader: hand over
                if not self._hand_over(index, err):
                    return None
                part_run_j, part_machine_j = self._parts[index].read(machine)
            self._last_part_j[index] = part_run_j
            run_j += self._offsets_j[index] + part_run_j
            if machine_j is not None:
                machine_j = None if part_machine_j is None else machine_j + part_machine_j
        before_run_j, before_machine_j = self._reported
        run_j = max(run_j * self.pue, before_run_j)
        if machine_j is None:
            self._reported = (run_j, before_machine_j)
            return run_j, None
        machine_j = max(machine_j * self.pue, before_machine_j)
        self._reported = (run_j, machine_j)
        return run_j, machine_j

    def _hand_over(self, index: int, err: Exception) -> bool:
        """Part `index` failed: the model goes on counting from what it had counted. False
        when nothing is left to read."""
        failed = self._parts[index]
        replacement = None
        if self._fallback is not None and not isinstance(failed, ModelPart):
            replacement = self._fallback()
            try:
                replacement.start()
            except Exception:  # the model cannot read either
                replacement = None
        if replacement is None:
            log.warning("energy: %s failed (%s); energy is unknown from here", failed.method, err)
            self._lost = True
            return False
        self._offsets_j[index] += self._last_part_j[index]
        self._last_part_j[index] = 0.0
        self._parts[index] = replacement
        note = f"{failed.method} failed ({err}); {replacement.method} from here"
        log.warning("energy: %s", note)
        self.switches.append(note)
        return True
