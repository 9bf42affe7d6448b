"""Energy over the training window: the meter's start-up (bounded), then joules since the first
step — the run's own processes on this rank (`run_j`) and the whole machine (`machine_j`) — as
differences from readings taken when training starts (set-up and data are not training)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from frugal.meters.base import EnergyMeter

log = logging.getLogger(__name__)

METER_START_TIMEOUT_S = 60.0  # the meter bounds its own start; this bounds our wait on it


class EnergyWindow:
    def __init__(self, meter: EnergyMeter | None, started: Future | None = None) -> None:
        self.meter = meter  # None where this rank meters nothing (energy.scope=machine)
        self._started = started  # set when the caller started the meter in the background
        self._baseline_j: float | None = 0.0
        self._machine_baseline_j: float | None = None
        self._estimated: bool | None = None  # agreed across ranks once training starts

    @property
    def estimated(self) -> bool:
        """Whether the energy is an estimate (rank 0's meter decides for every rank)."""
        if self._estimated is not None:
            return self._estimated
        return self.meter is not None and not self.meter.measured

    def start(self, from_rank_zero: Callable[[Any], Any]) -> None:
        """Wait for the meter's start, take the baselines, agree on `estimated`."""
        if self.meter is not None:
            try:
                if self._started is not None:
                    self._started.result(timeout=METER_START_TIMEOUT_S)
                else:
                    self.meter.start()
            except FutureTimeout:
                log.warning("energy: the meter did not start within %.0f s", METER_START_TIMEOUT_S)
            self._baseline_j = self.meter.read_j()
            self._machine_baseline_j = self.meter.read_machine_j()
        # Every input of a decision must be the same on every rank.
        self._estimated = bool(from_rank_zero(self.estimated))

    def run_j(self) -> float | None:
        """This rank's processes' joules since training started; None when unknown."""
        if self.meter is None:
            return None
        reading = self.meter.read_j()
        if reading is None or self._baseline_j is None:
            return None
        return reading - self._baseline_j

    def machine_j(self, local_rank: int) -> float:
        """The machine's joules since training started, read by each node's local rank 0 (0 on
        the other ranks: ranks sum it, one figure per machine); NaN where unknown."""
        if local_rank != 0:
            return 0.0
        if self.meter is None or self._machine_baseline_j is None:
            return math.nan
        reading = self.meter.read_machine_j()
        return math.nan if reading is None else reading - self._machine_baseline_j
