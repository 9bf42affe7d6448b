"""The ledger: what a run has spent, in SI units, across restarts.

Spending is booked per process *segment* (since this process started training) on top of
what earlier segments spent, which a checkpoint carries (`state_dict`). Cumulative keys add up
across segments; `memory_bytes` is a peak and `params` a property of the model, so they are
not summed. None means unknown and stays unknown: it is never turned into 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from frugal.budget.spec import SPENT_KEYS

CUMULATIVE = ("energy_j", "carbon_g", "compute_flop", "data_samples", "time_s")
STATE_VERSION = 1


@dataclass
class Ledger:
    carried: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(SPENT_KEYS))
    segment: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(SPENT_KEYS))
    segments: int = 1  # how many process segments this run has had (1 + restarts)

    def book(self, key: str, amount: float | None) -> None:
        """Set this segment's cumulative `amount` of `key` (peak for memory, value for params)."""
        if key not in self.segment:
            raise KeyError(f"unknown ledger key {key!r}")
        self.segment[key] = amount

    def start_segment(self, measurable: tuple[str, ...]) -> None:
        """Open this segment's books at 0 for every key a meter will measure."""
        for key in measurable:
            if key in CUMULATIVE:
                self.segment[key] = 0.0

    def spent(self, key: str) -> float | None:
        now, before = self.segment[key], self.carried[key]
        if key in CUMULATIVE:
            # A segment that cannot measure a key leaves the run's total unknown.
            return None if now is None else now + (before or 0.0)
        if key == "memory_bytes":
            known = [v for v in (now, before) if v is not None]
            return max(known) if known else None
        return now if now is not None else before

    def totals(self) -> dict[str, float | None]:
        return {key: self.spent(key) for key in SPENT_KEYS}

    def state_dict(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "spent": self.totals(), "segments": self.segments}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"checkpoint ledger version {state.get('version')} is not supported")
        self.carried = {key: state["spent"].get(key) for key in SPENT_KEYS}
        self.segment = dict.fromkeys(SPENT_KEYS)
        self.segments = int(state.get("segments", 1)) + 1
