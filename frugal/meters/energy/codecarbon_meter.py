"""codecarbon's `OfflineEmissionsTracker` as a backend: an estimate where no counter is readable.

How the cumulative energy is read without private attributes: an output handler (codecarbon's
public `BaseOutput` contract) receives the tracker's running totals. With `api_call_interval=1`
codecarbon's own scheduler thread pushes them (`live_out`) after every measurement, every
`measure_power_secs`; `stop()` pushes the final ones (`out`). `sample_j()` returns the latest
push: no I/O on the caller's thread.

A tracker that never pushes (a second instance locked out by codecarbon's lock file, or an
error swallowed by codecarbon's `@suppress(Exception)` on `start()`) is refused at start, and
one that stops pushing mid-run is reported as unknown: never a silent 0.

The CPU power mode (cpu_load, constant TDP, rapl, ...) is read from the tracker's hardware
description, a private `_conf` entry: codecarbon has no public accessor for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from frugal.meters.energy.backend import J_PER_KWH, BackendAbsent, BackendUnavailable

_STALE_PERIODS = 30  # pushes missed before the estimate counts as lost
_STALE_MIN_S = 60.0  # a busy interpreter can delay codecarbon's timer threads by seconds

try:
    from codecarbon.output_methods.base_output import BaseOutput
except ImportError:  # codecarbon missing: the backend reports itself absent
    BaseOutput = object  # type: ignore[assignment,misc]


class _EnergyCapture(BaseOutput):  # type: ignore[misc,valid-type]
    """Keeps the latest cumulative energy codecarbon hands its output handlers."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.energy_j: float | None = None
        self.pushed_at_s = 0.0
        self.pushes = 0
        self._lock = threading.Lock()

    def _take(self, total: Any) -> None:
        with self._lock:
            self.energy_j = float(total.energy_consumed) * J_PER_KWH  # kWh, includes PUE
            self.pushed_at_s = self._clock()
            self.pushes += 1

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
        self._stale_after_s = max(_STALE_PERIODS * measure_power_secs, _STALE_MIN_S)
        self._capture = _EnergyCapture(clock)
        self._tracker: Any = None
        self.cpu_mode = "unknown"
        self.method = "codecarbon"

    def start(self) -> None:
        # codecarbon logs its "multiple instances allowed" warning before applying log_level.
        logging.getLogger("codecarbon").setLevel(logging.ERROR)
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
        if self._clock() - self._capture.pushed_at_s > self._stale_after_s:
            return None  # codecarbon stopped measuring: unknown from here on
        return self._capture.energy_j

    def stop(self) -> float | None:
        if self._tracker is None:
            return None
        pushes = self._capture.pushes
        self._tracker.stop()  # measures the last stretch and pushes the final totals
        self._tracker = None
        return self._capture.energy_j if self._capture.pushes > pushes else None

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
