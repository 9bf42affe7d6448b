"""The ledger: what a run has spent, in SI units, across restarts.

Spending is booked per process *segment* (since this process started training) on top of
what earlier segments spent, which a checkpoint carries (`state_dict`) and which the run also
keeps beside itself in `ledger.json` (rewritten atomically at every re-plan), so that a hard kill
loses at most one re-plan interval of spending. Cumulative keys add up across segments;
`memory_bytes` is a peak and `params` a property of the model, so they are not summed.
None means unknown and stays unknown: it is never turned into 0, and a segment that could not
measure a key leaves the run's total of that key unknown.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from frugal.core.keys import ADDITIVE_KEYS, SPENT_KEYS

# Measured and reported, never a budget: the machine's energy over the run's window, beside the
# run's own (`energy_j`, what budgets enforce).
REPORTED_KEYS = ("machine_energy_j",)
LEDGER_KEYS = (*SPENT_KEYS, *REPORTED_KEYS)
CUMULATIVE = (*ADDITIVE_KEYS, *REPORTED_KEYS)
STATE_VERSION = 1
LEDGER_FILE = "ledger.json"
_MAX_SIDECAR_BYTES = 1 << 20  # a ledger is a few hundred bytes; anything larger is not ours


def _fresh_carried() -> dict[str, float | None]:
    # Nothing spent before the first segment: 0 for what adds up, unknown for the rest.
    return {key: (0.0 if key in CUMULATIVE else None) for key in LEDGER_KEYS}


@dataclass
class Ledger:
    carried: dict[str, float | None] = field(default_factory=_fresh_carried)
    segment: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(LEDGER_KEYS))
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
            return None if now is None or before is None else now + before
        if key == "memory_bytes":
            known = [v for v in (now, before) if v is not None]
            return max(known) if known else None
        return now if now is not None else before

    def totals(self) -> dict[str, float | None]:
        return {key: self.spent(key) for key in LEDGER_KEYS}

    def state_dict(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "spent": self.totals(), "segments": self.segments}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"checkpoint ledger version {state.get('version')} is not supported")
        self.carried = {key: _number(state["spent"].get(key)) for key in LEDGER_KEYS}
        self.segment = dict.fromkeys(LEDGER_KEYS)
        self.segments = int(state.get("segments", 1)) + 1

    def charge_at_least(self, state: dict[str, Any]) -> list[str]:
        """Raise the carried spending to `state`'s where it is larger (a sidecar written after
        the checkpoint: steps after the last checkpoint were really spent). Returns the keys
        raised. Called before this segment books anything."""
        raised = []
        for key in CUMULATIVE:
            theirs = _number(state.get("spent", {}).get(key))
            ours = self.carried[key]
            if theirs is not None and ours is not None and theirs > ours:
                self.carried[key] = theirs
                raised.append(key)
        return raised


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """The ledger a run left beside itself, or None when absent or not a ledger (too large,
    not JSON, nested past Python's recursion limit, amounts that are not numbers)."""
    try:
        if not path.is_file() or path.stat().st_size > _MAX_SIDECAR_BYTES:
            return None
        state = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):  # ValueError: also a 5,000-digit number
        return None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        return None
    spent = state.get("spent")
    if not isinstance(spent, dict) or not all(map(_amount_or_none, spent.values())):
        return None
    return state


def _amount_or_none(value: Any) -> bool:
    """What a ledger books: null, or a number a float holds (10**400 is no amount)."""
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
