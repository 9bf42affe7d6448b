"""Text that came from a run (names, overrides, paths, error reasons), made safe to show: one
line, visible characters, bounded length (`visible`, `clip`: from the record's schema, which
names bad values the same way). Markdown escaping is in ``markdown.md``.

Also the words and units of a budget key (``energy_j`` → "energy", J), for the sections that
name a key they read from a file (size search, sweep envelope)."""

from __future__ import annotations

import math

from frugal.core.checked import clip, visible
from frugal.core.keys import CONFIG_KEY, UNIT
from frugal.core.units import format_amount


def key_name(key: str) -> str:
    """``energy_j`` → ``energy``; a key that is not a budget key stays as it is."""
    return CONFIG_KEY.get(key, key)


def key_unit(key: str) -> str:
    """The SI unit of a budget key's amounts: ``J``, ``samples``; ``""`` for a count."""
    unit = UNIT.get(key, "")
    return "" if unit == "count" else unit


def key_amount(key: str, value: float | None, digits: int = 3) -> str:
    """An amount of budget key ``key`` in SI prefixes: ``2.5 kJ``, ``20k samples``, ``90 s``."""
    return format_amount(value, UNIT.get(key, ""), digits)


def plus_minus(relative: float) -> str:
    """A relative uncertainty: ``±30%``, ``±0.5%``."""
    return f"±{100 * relative:.0f}%" if relative >= 0.01 else f"±{100 * relative:.1g}%"


def descending(value: float | None) -> float:
    """Sort key: larger first, unknown last."""
    return math.inf if value is None else -value


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


__all__ = [
    "clip",
    "descending",
    "key_amount",
    "key_name",
    "key_unit",
    "plural",
    "plus_minus",
    "visible",
]
