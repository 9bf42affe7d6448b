"""`FallbackMeter`: one cheap `EnergyMeter` over an ordered list of backends.

- `read_j()` never blocks a training step: a cheap backend (a sysfs read) is sampled on the spot
  when the lock is free; otherwise the latest sample taken by the background poller is returned.
- The poller samples every `poll_interval_s`, which also keeps wrap-around counters (RAPL) and
  power integration (NVML without an energy counter) up to date.
- A backend that raises, returns None or goes backwards is dropped for the next one. Joules
  already counted are kept: the total continues from the last good value, and the switch is
  recorded in `describe()["switches"]`. With no backend left, `read_j()` returns None (unknown),
  never 0, and the method becomes "unavailable".
"""

from __future__ import annotations

import logging
import math
import threading
from typing import Any

from frugal.meters.energy.backend import Backend
from frugal.meters.energy.poller import Poller

log = logging.getLogger(__name__)

UNAVAILABLE = "unavailable"


class FallbackMeter:
    def __init__(
        self, backends: list[Backend], poll_interval_s: float, notes: list[str] | None = None
    ) -> None:
        self._pending = list(backends)  # not started yet, in order of preference
        self._used: list[Backend] = []  # every backend that started, in order
        self._current: Backend | None = None
        self._offset_j = 0.0  # joules counted by backends that came before the current one
        self._current_j = 0.0  # the current backend's last good cumulative reading
        self._total_j: float | None = None
        self._fault: str | None = None  # seen by read_j, acted on by the poller
        self._switches: list[dict[str, Any]] = []
        self._notes = list(notes or [])
        self._lock = threading.Lock()  # guards sampling and switching
        self._poller = Poller(self._poll, poll_interval_s, name="frugal-energy-poller")
        self._started = self._stopped = False

    @property
    def method(self) -> str:
        return self._current.method if self._current is not None else UNAVAILABLE

    @property
    def measured(self) -> bool:
        # An estimate anywhere in the run makes the total an estimate.
        return self._current is not None and all(b.measured for b in self._used)

    def start(self) -> None:
        if self._started:
            raise RuntimeError("energy meter: start() called twice")
        self._started = True
        with self._lock:
            self._start_next(reason=None)
            if self._current is not None:
                self._total_j = 0.0
        self._poller.start()

    def read_j(self) -> float | None:
        current = self._current
        if (
            current is not None
            and current.cheap_read
            and not self._stopped
            and self._lock.acquire(blocking=False)  # busy: the poller is sampling or switching
        ):
            try:
                if self._current is current and self._fault is None:
                    self._sample()
            finally:
                self._lock.release()
            if self._fault is not None:
                self._poller.wake()  # a switch may be slow: leave it to the poller
        return self._total_j

    def stop(self) -> None:
        if self._stopped or not self._started:
            self._stopped = True
            return
        self._poller.stop()
        with self._lock:
            self._stopped = True
            current = self._current
            if current is None:
                return
            if self._fault is None:
                self._sample()
            try:
                final_j = current.stop()
            except Exception as err:
                log.warning("energy: %s failed to stop: %s", current.method, _one_line(err))
                final_j = None
            if self._fault is None and self._is_good(final_j):
                self._accept(final_j)  # type: ignore[arg-type]

    def describe(self) -> dict[str, Any]:
        with self._lock:
            info: dict[str, Any] = {
                "method": self.method,
                "measured": self.measured,
                "backends": [entry for b in self._used for entry in b.describe()],
                "switches": [dict(s) for s in self._switches],
            }
            notes = list(self._notes)
            if self._current is None:
                notes.append("no energy backend could be read: energy is unknown")
            if notes:
                info["note"] = "; ".join(notes)
            return info

    # -- internals; callers hold self._lock --

    def _poll(self) -> None:
        with self._lock:
            if self._stopped or self._current is None:
                return
            if self._fault is None:
                self._sample()
            if self._fault is not None:
                self._switch()

    def _sample(self) -> None:
        current = self._current
        assert current is not None
        try:
            energy_j = current.sample_j()
        except Exception as err:
            self._fault = f"read raised {_one_line(err)}"
            return
        if not self._is_good(energy_j):
            self._fault = f"read returned {energy_j!r}"
            return
        self._accept(energy_j)  # type: ignore[arg-type]

    def _is_good(self, energy_j: float | None) -> bool:
        # A cumulative count that goes backwards is a reset counter or a lost device.
        return energy_j is not None and math.isfinite(energy_j) and energy_j >= self._current_j

    def _accept(self, energy_j: float) -> None:
        self._current_j = energy_j
        self._total_j = self._offset_j + energy_j

    def _switch(self) -> None:
        current = self._current
        assert current is not None and self._fault is not None
        reason, self._fault = self._fault, None
        try:
            current.stop()
        except Exception as err:
            log.debug("energy: %s failed to stop: %s", current.method, _one_line(err))
        self._offset_j += self._current_j  # keep what was counted up to the last good reading
        self._current_j = 0.0
        self._start_next(reason=f"{current.method}: {reason}", from_method=current.method)
        self._total_j = self._offset_j if self._current is not None else None

    def _start_next(self, reason: str | None, from_method: str | None = None) -> None:
        self._current = None
        while self._pending:
            candidate = self._pending.pop(0)
            try:
                candidate.start()
            except Exception as err:
                self._record(from_method, candidate.method, reason)
                reason, from_method = f"{candidate.method}: {_one_line(err)}", candidate.method
                continue
            self._record(from_method, candidate.method, reason)
            self._current = candidate
            self._used.append(candidate)
            return
        self._record(from_method, UNAVAILABLE, reason)

    def _record(self, from_method: str | None, to_method: str, reason: str | None) -> None:
        if reason is None:  # the first backend started cleanly: not a switch
            return
        at_j = self._offset_j
        self._switches.append(
            {"from": from_method, "to": to_method, "reason": reason, "at_j": at_j}
        )
        log.warning(
            "energy: %s -> %s at %.1f J (%s)", from_method or "start", to_method, at_j, reason
        )


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
