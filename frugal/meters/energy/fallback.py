"""`FallbackMeter`: one cheap, current, fault-tolerant `EnergyMeter` over a list of backends.

Readings
- `read_j()` answers for the moment of the call and never waits on a backend. A per-call counter
  (RAPL, NVML's energy counter: `cheap_read` and no polling period) is read on the spot. A polled
  source (codecarbon's pushes, or a backend too slow for the training thread, sampled by the
  background poller every `sample_every_s`) is extrapolated from its last sample with the last
  interval's power (`extrapolate.Trend`), and reconciled at the next sample.
- What `read_j()` returns never decreases: an over-count between two samples is kept until the
  energy catches up. So the figure is within the limit for a counter, and within one polling
  interval's energy for a polled source (DESIGN.md); `poll_interval_s` says which applies.

Faults
- A backend that raises, returns None or goes backwards, freezes (a polled source with no new
  sample for `stale_after_s`, default max(5 periods, 5 s)) or hangs (`start()`, a poller's
  `sample_j()` or `stop()` not returning within its timeout: the call's thread is abandoned)
  hands over to the next backend. Joules already counted are kept, and the hand-over's gap is
  bridged at the failed source's power (an over-count rather than an under-count); every switch
  is logged and recorded in `describe()["switches"]`.
- With no backend left, `read_j()` returns None (unknown) forever after, never 0: `method` is
  "unavailable" and `lost` is True.
- `start()` returns within `start_timeout_s` per backend tried, `stop()` within `stop_timeout_s`,
  whatever the backends do. A cheap backend's `sample_j()` runs on the caller's thread and must
  not block (a sysfs read, the latest push, an NVML counter).

Threads: `_lock` is held for a few statements at a time, never across a backend call; each
source has its own `sampling` lock, so a hung sample holds up no one but itself.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any, TypeGuard

from frugal.meters.energy.backend import Backend
from frugal.meters.energy.bounded import Hung, call_bounded
from frugal.meters.energy.extrapolate import Trend
from frugal.meters.energy.poller import Poller

log = logging.getLogger(__name__)

UNAVAILABLE = "unavailable"
STALE_PERIODS = 5  # polling periods without a new sample before a source counts as frozen
STALE_MIN_S = 5.0  # a busy interpreter can delay a source's timer thread by a second or two


class _Source:
    """The backend counting now, and what is known of its count."""

    def __init__(
        self,
        backend: Backend,
        offset_j: float,
        trend: Trend,
        polled_every_s: float | None,
        stale_after_s: float,
    ) -> None:
        self.backend = backend
        self.offset_j = offset_j  # joules counted before it (earlier backends, hand-over gaps)
        self.trend = trend  # its own count; replaced whole, so readers never see half an update
        self.polled_every_s = polled_every_s  # None: read on the spot, a counter
        self.stale_after_s = stale_after_s
        self.sampling = threading.Lock()  # one sample_j() at a time
        self.fault: str | None = None  # set by whoever sees it; the poller switches

    def energy_j(self, now_s: float) -> float | None:
        """The meter's cumulative joules at `now_s`, as far as this source can tell; None
        when it has failed before any power was known (what it spent since is unknown)."""
        if self.polled_every_s is not None:
            known = self.trend.power_w is not None
            bridged = self.trend.at(now_s)
        elif self.fault is not None:
            # A failed counter, until the next backend runs: bridged at its mean power (the last
            # interval of a counter read at every step is too short to give a steady power).
            known = self.trend.last_s > self.trend.start_s
            bridged = self.trend.at_mean_power(now_s)
        else:
            return self.offset_j + self.trend.last_j
        if self.fault is not None and not known and now_s > self.trend.last_s:
            return None  # never the last figure held as if nothing had been spent since
        return self.offset_j + bridged

    def staleness(self, now_s: float) -> str | None:
        """Why a polled source counts as frozen at `now_s`, or None."""
        if self.polled_every_s is None or now_s - self.trend.last_s <= self.stale_after_s:
            return None
        return (
            f"no new sample for {now_s - self.trend.last_s:.1f} s "
            f"(polled every {self.polled_every_s:g} s)"
        )


class FallbackMeter:
    def __init__(
        self,
        backends: list[Backend],
        sample_every_s: float,
        notes: list[str] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        start_timeout_s: float = 30.0,  # per backend: codecarbon probes the hardware for ~2 s
        stop_timeout_s: float = 5.0,
        stale_after_s: float | None = None,  # None: max(5 polling periods, 5 s)
        machine_figure: bool = False,  # its figure is the whole machine's (read_machine_j)
    ) -> None:
        self._machine_figure = machine_figure
        self._pending = list(backends)  # not started yet, in order of preference
        self._used: list[Backend] = []  # every backend that counted, in order
        self._released: list[Backend] = []  # stopped already (stop() is called once)
        self._source: _Source | None = None
        self._switches: list[dict[str, Any]] = []
        self._notes = list(notes or [])
        self._clock = clock  # energy timing (injectable); timeouts are real seconds
        self._sample_every_s = sample_every_s
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._stale_after_s = stale_after_s
        self._lock = threading.Lock()
        self._floor_j = 0.0  # the largest figure returned: readings never go down
        self._final_j: float | None = None
        self._lost = False
        self._started = self._stopping = self._stopped = False
        self._poller = Poller(self._poll, sample_every_s, name="frugal-energy-poller")

    # -- the EnergyMeter protocol --

    @property
    def method(self) -> str:
        source = self._source
        return source.backend.method if source is not None else UNAVAILABLE

    @property
    def measured(self) -> bool:
        # An estimate anywhere in the run makes the total an estimate.
        return self._source is not None and all(b.measured for b in self._used)

    @property
    def poll_interval_s(self) -> float | None:
        """None: a per-call counter (spent ≤ limit); else the polling period of the source
        (spent ≤ limit + one interval's energy). May change when a backend hands over."""
        source = self._source
        if source is not None:
            return source.polled_every_s
        if not self._started and self._pending:  # what start() will most likely give
            return self._polled_every_s(self._pending[0])
        return None

    @property
    def uncertainty(self) -> float | None:
        """Relative uncertainty of the figure (the worst backend that counted); None: unknown."""
        if self._source is not None:
            return max(b.uncertainty for b in self._used)
        if not self._started and self._pending:
            return self._pending[0].uncertainty
        return None

    @property
    def lost(self) -> bool:
        """True once the meter had a reading and no backend is left: read_j() is None."""
        return self._lost

    def start(self) -> None:
        if self._started:
            raise RuntimeError("energy meter: start() called twice")
        self._started = True
        self._start_next(reason=None, from_method=None, previous=None)
        if not self._stopping:
            self._poller.start()

    def read_machine_j(self) -> float | None:
        """Its figure, when that is the whole machine's (codecarbon tracking the machine);
        else unknown."""
        return self.read_j() if self._machine_figure else None

    def read_j(self) -> float | None:
        if self._stopped:
            return self._final_j
        source = self._source
        if source is None:
            return None  # not started, or no backend left: unknown, never 0
        if (
            source.backend.cheap_read
            and source.fault is None
            and not self._stopping  # stop() owns the backend now
            and source.sampling.acquire(blocking=False)  # busy: the poller is sampling it
        ):
            try:
                self._sample(source)
            finally:
                source.sampling.release()
        now_s = self._clock()
        self._check_fresh(source, now_s)
        if source.fault is not None:
            self._poller.wake()  # a switch may be slow: leave it to the poller
        energy_j = source.energy_j(now_s)
        return None if energy_j is None else self._raise_floor(energy_j)

    def stop(self) -> None:
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        if not self._started:
            self._stopped = True
            return
        deadline_s = time.monotonic() + self._stop_timeout_s
        self._poller.stop(timeout_s=self._stop_timeout_s)
        source = self._source  # None: no backend left, the figure stays unknown
        if source is not None:
            cheap = source.fault is None and source.backend.cheap_read
            if cheap and source.sampling.acquire(timeout=_left_s(deadline_s)):
                try:
                    self._sample(source)
                finally:
                    source.sampling.release()
            self._take_final(source, self._release(source.backend, _left_s(deadline_s)))
            # Mid-switch, `source` is the failed one, bridged to now; the poller stops
            # whatever it was starting.
            final_j = source.energy_j(self._clock())
            self._final_j = None if final_j is None else self._raise_floor(final_j)
        self._stopped = True

    def describe(self) -> dict[str, Any]:
        with self._lock:
            used = list(self._used)
            switches = [dict(s) for s in self._switches]
        source = self._source
        poll_s = self.poll_interval_s
        if source is None:
            precision = UNAVAILABLE
        else:
            precision = "per-step counter" if poll_s is None else f"polled every {poll_s:g} s"
        info: dict[str, Any] = {
            "method": self.method,
            "measured": self.measured,
            "uncertainty": self.uncertainty,
            "precision": precision,
            "poll_interval_s": poll_s,
            "backends": [entry for b in used for entry in b.describe()],
            "switches": switches,
        }
        notes = list(self._notes)
        if source is None:
            notes.append("no energy backend could be read: energy is unknown")
        if notes:
            info["note"] = "; ".join(notes)
        return info

    # -- sampling --

    def _sample(self, source: _Source) -> None:
        """One sample_j() of `source`; the caller holds `source.sampling`."""
        began_s = self._clock()
        try:
            energy_j = source.backend.sample_j()
        except Exception as err:
            source.fault = f"read raised {_one_line(err)}"
            return
        if not _is_good(energy_j, source.trend):
            source.fault = f"read returned {energy_j!r}"
            return
        backend = source.backend
        # A source that pushes stamps its own figure; others are stamped before the call: the
        # figure was no smaller then, so extrapolating from that moment can only over-count.
        at_s = began_s if backend.sampled_at_s is None else backend.sampled_at_s
        source.trend = source.trend.then(at_s, energy_j, backend.power_w)

    def _take_final(self, source: _Source, energy_j: float | None) -> None:
        """The reading `stop()` returned, when it is good (None: keep the last sample)."""
        if source.fault is None and _is_good(energy_j, source.trend):
            at_s = source.backend.sampled_at_s
            source.trend = source.trend.then(self._clock() if at_s is None else at_s, energy_j)

    def _check_fresh(self, source: _Source, now_s: float) -> None:
        stale = source.staleness(now_s)
        if stale is not None and source.fault is None:
            source.fault = stale

    def _poll(self) -> None:
        """The poller's tick: sample (bounded), detect a freeze, switch on a fault."""
        source = self._source
        if source is None or self._stopping:
            return
        if source.fault is None:
            self._sample_bounded(source)
        self._check_fresh(source, self._clock())
        fault = source.fault
        if fault is not None and not self._stopping:
            self._switch(source, fault)

    def _sample_bounded(self, source: _Source) -> None:
        def sample() -> None:
            with source.sampling:
                self._sample(source)

        try:
            call_bounded(sample, source.stale_after_s, "sample_j()")
        except Hung as err:  # the thread stays behind, holding only this source's lock
            source.fault = str(err)

    def _raise_floor(self, energy_j: float) -> float:
        with self._lock:
            self._floor_j = max(self._floor_j, energy_j)
            return self._floor_j

    # -- hand-over --

    def _switch(self, source: _Source, fault: str) -> None:
        self._release(source.backend, self._stop_timeout_s)
        reason = f"{source.backend.method}: {fault}"
        self._start_next(reason, from_method=source.backend.method, previous=source)

    def _start_next(
        self, reason: str | None, from_method: str | None, previous: _Source | None
    ) -> None:
        """Start the next backend that starts; meanwhile `previous` (failed) still answers."""
        while self._pending and not self._stopping:
            candidate = self._pending.pop(0)
            try:
                call_bounded(
                    candidate.start,
                    self._start_timeout_s,
                    f"{candidate.method} start()",
                    on_late=candidate.stop,  # started after all: stop it, it is not counted
                )
            except Exception as err:
                self._record(from_method, candidate.method, reason, previous)
                reason, from_method = f"{candidate.method}: {_one_line(err)}", candidate.method
                continue
            self._record(from_method, candidate.method, reason, previous)
            # Counted from when start() returned: a counter reads its baseline last thing in
            # start(), and codecarbon's first push comes from inside it (a push at or before
            # this moment leaves the power unknown until the next push: the last figure holds).
            self._install(candidate, self._clock(), previous)
            return
        if self._stopping:
            return
        self._record(from_method, UNAVAILABLE, reason, previous)
        with self._lock:
            self._source = None
            self._lost = previous is not None

    def _install(self, candidate: Backend, started_s: float, previous: _Source | None) -> None:
        polled_every_s = self._polled_every_s(candidate)
        stale_after_s = self._stale_after_s
        if stale_after_s is None:
            period_s = polled_every_s if polled_every_s is not None else self._sample_every_s
            stale_after_s = max(STALE_PERIODS * period_s, STALE_MIN_S)
        with self._lock:
            stopping = self._stopping
            if not stopping:
                offset_j = 0.0
                if previous is not None:  # the gap since the failure, at the failed power
                    # (a gap of unknown power is counted from the last figure: noted in
                    # the switch record)
                    offset_j = max(self._floor_j, previous.energy_j(started_s) or 0.0)
                trend = Trend.started_at(started_s)
                self._source = _Source(candidate, offset_j, trend, polled_every_s, stale_after_s)
                self._used.append(candidate)
        if stopping:  # stop() came while it started: nothing will read it
            self._release(candidate, self._stop_timeout_s)

    def _polled_every_s(self, backend: Backend) -> float | None:
        if backend.cheap_read:
            return backend.poll_interval_s
        # read by the poller only: a sample every sample_every_s at best
        return max(self._sample_every_s, backend.poll_interval_s or 0.0)

    def _release(self, backend: Backend, timeout_s: float) -> float | None:
        """Stop `backend` once, waiting at most `timeout_s`; its final reading, or None."""
        with self._lock:
            if any(b is backend for b in self._released):
                return None
            self._released.append(backend)
        try:
            return call_bounded(backend.stop, timeout_s, f"{backend.method} stop()")
        except Exception as err:
            log.warning("energy: %s failed to stop: %s", backend.method, _one_line(err))
            return None

    def _record(
        self, from_method: str | None, to_method: str, reason: str | None, previous: _Source | None
    ) -> None:
        if reason is None:  # the first backend started cleanly: not a switch
            return
        at_j = None if previous is None else previous.energy_j(self._clock())
        at_j = self._floor_j if at_j is None else self._raise_floor(at_j)
        with self._lock:
            self._switches.append(
                {"from": from_method, "to": to_method, "reason": reason, "at_j": at_j}
            )
        log.warning(
            "energy: %s -> %s at %.1f J (%s)", from_method or "start", to_method, at_j, reason
        )


def _is_good(energy_j: float | None, trend: Trend) -> TypeGuard[float]:
    # A cumulative count that goes backwards is a reset counter or a lost device.
    return energy_j is not None and math.isfinite(energy_j) and energy_j >= trend.last_j


def _left_s(deadline_s: float) -> float:
    return max(deadline_s - time.monotonic(), 0.0)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
