"""What one energy source looks like inside the meter, and how two sources are summed.

A `Backend` is not an `EnergyMeter`: its `sample_j()` may be slow, may raise, may return None,
and any of its calls may hang. `FallbackMeter` (fallback.py) turns an ordered list of backends
into one cheap, current, fault-tolerant `EnergyMeter`.
"""

from __future__ import annotations

from typing import Any, Protocol

J_PER_KWH = 3.6e6


class BackendUnavailable(RuntimeError):
    """A backend cannot be used here; the message is one line saying why and what to do."""


class BackendAbsent(BackendUnavailable):
    """The hardware or library is simply not there (an expected, quiet case)."""


class Backend(Protocol):
    method: str  # provenance, as in result.json: "rapl", "nvml", "codecarbon:cpu_load"
    measured: bool  # hardware counters (True) or a model's estimate (False)
    cheap_read: bool  # True: sample_j() may run on the training thread (a few µs, never blocks)
    # None: sample_j() is current at the call (a counter); else the figure only moves every
    # poll_interval_s seconds, whatever the caller does (codecarbon's pushes).
    poll_interval_s: float | None
    # When the figure the last sample_j() returned was true, on the meter's clock; None: at the
    # call. A source that pushes on its own thread knows better than the caller.
    sampled_at_s: float | None
    uncertainty: float  # relative uncertainty of the figure, e.g. 0.05 or 0.3
    # The source's own power figure at its last sample (W), if it reports one: the meter uses
    # it until two samples give a power of their own (codecarbon's first push).
    power_w: float | None

    def start(self) -> None: ...

    def sample_j(self) -> float | None: ...  # cumulative joules since start()

    def stop(self) -> float | None: ...  # final cumulative joules, then release resources

    def describe(self) -> list[dict[str, Any]]: ...  # what measured what, one dict per source


class SumBackend:
    """CPU and GPU counters read side by side (e.g. RAPL + NVML): joules add up."""

    sampled_at_s = None  # the parts are counters, read at the call
    power_w = None

    def __init__(self, parts: list[Backend]) -> None:
        self.parts = parts
        self.method = "+".join(p.method for p in parts)
        self.measured = all(p.measured for p in parts)
        self.cheap_read = all(p.cheap_read for p in parts)
        periods_s = [p.poll_interval_s for p in parts if p.poll_interval_s is not None]
        self.poll_interval_s = max(periods_s) if periods_s else None
        self.uncertainty = max(p.uncertainty for p in parts)  # relative: the worst part bounds it

    def start(self) -> None:
        started: list[Backend] = []
        try:
            for part in self.parts:
                part.start()
                started.append(part)
        except BaseException:
            for part in started:
                part.stop()
            raise

    def sample_j(self) -> float | None:
        total_j = 0.0
        for part in self.parts:
            energy_j = part.sample_j()
            if energy_j is None:  # one unknown part makes the sum unknown
                return None
            total_j += energy_j
        return total_j

    def stop(self) -> float | None:
        finals_j = [part.stop() for part in self.parts]  # stop every part, even after a None
        return None if None in finals_j else sum(finals_j)  # type: ignore[arg-type]

    def describe(self) -> list[dict[str, Any]]:
        return [entry for part in self.parts for entry in part.describe()]


def combine(parts: list[Backend]) -> Backend:
    return parts[0] if len(parts) == 1 else SumBackend(parts)
