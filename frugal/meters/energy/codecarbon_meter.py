"""codecarbon's `OfflineEmissionsTracker` as a backend: an estimate where no counter is readable.

How the cumulative energy is read without private attributes: an output handler (codecarbon's
public `BaseOutput` contract) receives the tracker's running totals. With `api_call_interval=1`
codecarbon's own scheduler thread pushes them (`live_out`) after every measurement, every
`measure_power_secs`; `stop()` pushes the final ones (`out`). `sample_j()` returns the latest
push: no I/O on the caller's thread.

A tracker that never pushes (a second instance locked out by codecarbon's lock file, or an
error swallowed by codecarbon's `@suppress(Exception)` on `start()`) is refused at start, and a
tracker whose constructor raises raises from `start()`: either way the meter moves on to the next
backend. One that stops pushing mid-run keeps its push time (`sampled_at_s`), and the meter
declares it frozen: never a silent 0.

The CPU power mode (cpu_load, constant TDP, rapl, ...) is read from the tracker's hardware
description, a private `_conf` entry: codecarbon has no public accessor for it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from frugal.meters.energy.backend import J_PER_KWH, BackendAbsent, BackendUnavailable

# Relative uncertainty of the estimate. codecarbon's methodology page states no accuracy
# figure; what it models: with no CPU counter, power from the CPU's TDP and load (or "50% of the
# TDP" in constant mode), RAM at 5 W per DIMM guessed from the RAM size. ±30 % is our reading of
# such models, ±10 % when its CPU figure comes from hardware counters and only RAM is modelled.
_ESTIMATE_UNCERTAINTY = 0.3
_COUNTER_UNCERTAINTY = 0.1
_COUNTER_CPU_MODES = ("intel_rapl", "windows_emi", "intel_power_gadget")

try:
    from codecarbon.output_methods.base_output import BaseOutput
except ImportError:  # codecarbon missing: the backend reports itself absent
    BaseOutput = object  # type: ignore[assignment,misc]


class _EnergyCapture(BaseOutput):  # type: ignore[misc,valid-type]
    """Keeps the latest cumulative energy codecarbon hands its output handlers."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.energy_j: float | None = None
        self.power_w: float | None = None
        self.pushed_at_s = 0.0
        self.pushes = 0
        self._lock = threading.Lock()

    def _take(self, total: Any) -> None:
        power_w = _total_power_w(total)
        with self._lock:
            self.energy_j = float(total.energy_consumed) * J_PER_KWH  # kWh, includes PUE
            self.power_w = power_w
            self.pushed_at_s = self._clock()
            self.pushes += 1

    def latest(self) -> tuple[float | None, float | None, float | None]:
        """(cumulative joules, clock time of the push, power), read together; Nones before."""
        with self._lock:
            pushed_at_s = self.pushed_at_s if self.pushes else None
            return self.energy_j, pushed_at_s, self.power_w

    def out(self, total: Any, delta: Any) -> None:
        self._take(total)

    def live_out(self, total: Any, delta: Any) -> None:
        self._take(total)


class CodecarbonBackend:
    measured = False  # TDP or load model for the CPU, and RAM power is always modelled
    cheap_read = True  # returns the latest push; codecarbon's thread does the work

    def __init__(
        self,
        country_iso_code: str,
        measure_power_secs: float,
        tracking_mode: str = "process",
        gpu_ids: list[int] | None = None,
        tracker_class: Callable[..., Any] | None = None,  # default: OfflineEmissionsTracker
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if tracker_class is None:
            try:
                from codecarbon import OfflineEmissionsTracker as tracker_class
            except ImportError as err:
                raise BackendAbsent("codecarbon: not installed (pip install codecarbon)") from err
        self._tracker_class = tracker_class
        self._clock = clock
        self._country_iso_code = country_iso_code
        self._measure_power_secs = measure_power_secs
        self._tracking_mode = tracking_mode
        self._gpu_ids = gpu_ids or None  # None: codecarbon finds GPUs itself
        self._capture = _EnergyCapture(clock)
        self._tracker: Any = None
        self.cpu_mode = "unknown"
        self.method = "codecarbon"
        self.poll_interval_s: float | None = measure_power_secs  # one push per measurement
        self.sampled_at_s: float | None = None
        self.power_w: float | None = None

    @property
    def uncertainty(self) -> float:
        counted = self.cpu_mode in _COUNTER_CPU_MODES
        return _COUNTER_UNCERTAINTY if counted else _ESTIMATE_UNCERTAINTY

    def start(self) -> None:
        # codecarbon logs its "multiple instances allowed" warning before applying log_level.
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        # A constructor that raises raises from here, so the meter moves on to the next backend.
        self._tracker = self._tracker_class(
            country_iso_code=self._country_iso_code,
            measure_power_secs=self._measure_power_secs,
            tracking_mode=self._tracking_mode,
            gpu_ids=self._gpu_ids,
            allow_multiple_runs=True,
            save_to_file=False,
            log_level="error",
            output_handlers=[self._capture],
            api_call_interval=1,  # push totals after every measurement
        )
        self._tracker.start()  # measures once and pushes, unless it silently did nothing
        if self._capture.energy_j is None:
            self._tracker.stop()
            raise BackendUnavailable(
                "codecarbon: the tracker produced no reading after start() (another instance "
                "holding its lock, or an error it swallowed)"
            )
        self.cpu_mode = cpu_mode_of(self._tracker)
        self.method = f"codecarbon:{self.cpu_mode}"

    def sample_j(self) -> float | None:
        energy_j, self.sampled_at_s, self.power_w = self._capture.latest()
        return energy_j

    def stop(self) -> float | None:
        if self._tracker is None:
            return None
        pushes = self._capture.pushes
        tracker, self._tracker = self._tracker, None
        tracker.stop()  # measures the last stretch and pushes the final totals
        if self._capture.pushes == pushes:
            return None
        return self.sample_j()

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "name": "codecarbon",
                "cpu_mode": self.cpu_mode,
                "tracking_mode": self._tracking_mode,
                "ram": "modelled",
                "country_iso_code": self._country_iso_code,
            }
        ]


def _total_power_w(total: Any) -> float | None:
    """CPU + GPU + RAM power in a push (W, codecarbon's mean over its measurements so far, PUE
    included like the energy); None if a release lacks these `EmissionsData` fields."""
    try:
        power_w = sum(float(getattr(total, f"{part}_power")) for part in ("cpu", "gpu", "ram"))
    except (AttributeError, TypeError, ValueError):
        return None
    return power_w if math.isfinite(power_w) and power_w >= 0 else None


def cpu_mode_of(tracker: Any) -> str:
    """codecarbon's CPU power mode, e.g. "cpu_load", "constant" (TDP), "intel_rapl"."""
    # Descriptions look like "CPU(Cpu Load)", "CPU(Intel Rapl)", "CPU(Xeon E5 > 85W)".
    conf = getattr(tracker, "_conf", None)  # private: tolerate its absence in other releases
    hardware = conf.get("hardware", []) if isinstance(conf, dict) else []
    for description in hardware:
        if description.startswith("CPU(") and description.endswith(")"):
            inner = description[4:-1]
            return "constant" if ">" in inner else "_".join(inner.lower().split())
        if "CPU" in description:  # AppleSiliconChip, Raspberry
            return description.split("(")[0].split()[0].lower()
    return "unknown"
