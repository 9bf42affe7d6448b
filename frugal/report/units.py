"""Human-readable amounts for the report: SI prefixes, units kept, unknown stays "unknown"."""

from __future__ import annotations

UNKNOWN = "unknown"
_PREFIXES = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def si(value: float | None, unit: str = "", digits: int = 3) -> str:
    """``si(2500, "J") == "2.5 kJ"``; ``si(None, "J") == "unknown"``."""
    if value is None:
        return UNKNOWN
    value = float(f"{value:.{digits}g}")  # round first: 999.6 J is "1 kJ", not "1e+03 J"
    scale, prefix = next(((s, p) for s, p in _PREFIXES if abs(value) >= s), (1.0, ""))
    number = f"{value / scale:.{digits}g}"
    return f"{number} {prefix}{unit}".rstrip() if unit else f"{number}{prefix}"


def seconds(value: float | None) -> str:
    if value is None:
        return UNKNOWN
    if value < 120:
        return f"{value:.3g} s"
    if value < 7200:
        return f"{value / 60:.3g} min"
    return f"{value / 3600:.3g} h"


def percent(fraction: float | None) -> str:
    return UNKNOWN if fraction is None else f"{100 * fraction:.1f}%"


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
