"""A cumulative energy count, answered for any moment from the samples taken so far.

A polled source is a staircase: codecarbon pushes a total every `measure_power_secs`, NVML power
is integrated at each poll, and between two samples the figure stands still while energy is
spent. `Trend` keeps the last sample and the power of the interval before it and answers for a
later moment: last joules + that power × time since (DESIGN.md: "readings are current"). The next
sample reconciles; the meter keeps what it returns monotone (an over-count between samples is
kept until the energy catches up, never an under-count below the last sample).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Trend:
    """Immutable: a reader on another thread sees one whole sample, never half of an update."""

    start_s: float  # when the count was 0 J (the source's start)
    last_s: float  # time of the latest sample
    last_j: float  # cumulative joules at last_s
    power_w: float | None = None  # over the interval ending at last_s; None: no interval yet

    @classmethod
    def started_at(cls, time_s: float) -> Trend:
        # The start is a sample too (0 J), so the first real sample already gives a power: the
        # first interval's average. Before it, power is unknown and `at` returns the last figure.
        return cls(start_s=time_s, last_s=time_s, last_j=0.0)

    def then(self, time_s: float, energy_j: float, source_power_w: float | None = None) -> Trend:
        """With a newer sample (`energy_j` >= `last_j`: the caller rejects a count going back).

        `source_power_w`: the source's own power figure, used only while no interval gives one
        (codecarbon's first push, at or before its start, opens no interval)."""
        if time_s <= self.last_s:  # the same push read again, or a clock tie: no new interval
            power_w = self.power_w if self.power_w is not None else source_power_w
            return replace(self, last_j=max(self.last_j, energy_j), power_w=power_w)
        power_w = (energy_j - self.last_j) / (time_s - self.last_s)
        return Trend(self.start_s, time_s, energy_j, power_w)

    def at(self, now_s: float) -> float:
        """Joules at `now_s`: the last sample plus the last interval's power since."""
        if self.power_w is None or now_s <= self.last_s:
            return self.last_j
        return self.last_j + self.power_w * (now_s - self.last_s)

    def at_mean_power(self, now_s: float) -> float:
        """Joules at `now_s` at the mean power since the start: steadier than the last
        interval's when samples come close together (a counter read at every step)."""
        elapsed_s = self.last_s - self.start_s
        if elapsed_s <= 0 or now_s <= self.last_s:
            return self.last_j
        return self.last_j + self.last_j / elapsed_s * (now_s - self.last_s)
