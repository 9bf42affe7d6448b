"""Text that came from a run (names, overrides, paths, error reasons), made safe to show: one
line, visible characters, bounded length. Markdown escaping is in ``table.md``.

Also the words and units of a budget key (``energy_j`` → "energy", J), for the sections that
name a key they read from a file (size search, sweep envelope)."""

from __future__ import annotations

import unicodedata

from frugal.budget.spec import AMOUNT_KEYS
from frugal.report.units import seconds, si

_INVISIBLE = {"Cc", "Cf"}  # control and format characters: newlines, zero-width, bidi overrides
_KEY_WORDS = {
    field: (dimension.name, dimension.si_unit) for field, dimension in AMOUNT_KEYS.values()
}


def visible(text: str) -> str:
    """Control and format characters as escapes (a newline as ``\\n``); the rest unchanged."""
    return "".join(
        ch.encode("unicode_escape").decode() if unicodedata.category(ch) in _INVISIBLE else ch
        for ch in text
    )


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, the cut marked with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def key_name(key: str) -> str:
    """``energy_j`` → ``energy``; a key that is not a budget key stays as it is."""
    return _KEY_WORDS.get(key, (key, ""))[0]


def key_unit(key: str) -> str:
    """The SI unit of a budget key's amounts: ``J``, ``samples``; ``""`` for a count."""
    unit = _KEY_WORDS.get(key, (key, ""))[1]
    return "" if unit == "count" else unit


def key_amount(key: str, value: float | None, digits: int = 3) -> str:
    """An amount of budget key ``key`` in SI prefixes: ``2.5 kJ``, ``20k samples``, ``90 s``."""
    unit = key_unit(key)
    if unit == "s":
        return seconds(value)
    if unit == "samples":
        return si(value, "", digits) + ("" if value is None else " samples")
    return si(value, unit, digits)
