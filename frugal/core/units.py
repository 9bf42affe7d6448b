"""Amounts with units: parsed into SI base units (joules, grams, FLOP, samples, seconds, bytes,
parameter counts), and shown with an SI prefix (`2.5 kJ`, `20k samples`, `512 MiB`, `90 s`) by
the one formatter, `format_amount`, that the summary, the logs and the report share; fractions
by `percent` (`95.3%`).

Each budget key has one dimension (`frugal.core.keys`); a unit of another dimension is named in
the error so a user who wrote `budget.energy=5GB` learns what went wrong.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_SI_PREFIX = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
_COUNT_SUFFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "B": 1e9, "T": 1e12}


def _prefixed(bases: tuple[str, ...], prefixes: dict[str, float], scale: float = 1.0) -> dict:
    return {p + b: f * scale for b in bases for p, f in prefixes.items()}


@dataclass(frozen=True)
class Dimension:
    name: str  # what the amount measures, for messages
    si_unit: str
    units: dict[str, float]  # unit spelling -> factor to the SI unit; "" = a bare number
    examples: str


ENERGY = Dimension(
    "energy",
    "J",
    {
        **_prefixed(("J",), {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3}),
        **_prefixed(("Wh",), {"": 1.0, "k": 1e3, "M": 1e6, "m": 1e-3}, scale=3600.0),
        "kwh": 3.6e6,
        "": 1.0,
    },
    "500, 500J, 2kJ, 0.2Wh, 1.5kWh",
)
CARBON = Dimension(
    "carbon",
    "g",
    {
        **{
            u + s: f
            for u, f in {"mg": 1e-3, "g": 1.0, "kg": 1e3, "t": 1e6}.items()
            for s in ("", "CO2", "CO2e", "CO2eq")
        },
        "": 1.0,
    },
    "2g, 0.5kg, 300mg",
)
COMPUTE = Dimension(
    "compute",
    "FLOP",
    {**_prefixed(("FLOP", "FLOPs", "flop", "flops"), _SI_PREFIX), "": 1.0},
    "1e12, 3GFLOP, 2.5TFLOP, 1PFLOP",
)
SAMPLES = Dimension(
    "data",
    "samples",
    {**_COUNT_SUFFIX, **{s + w: f for s, f in _COUNT_SUFFIX.items() for w in ("samples",)}},
    "20000, 20k, 1M",
)
TIME = Dimension(
    "time",
    "s",
    {"": 1.0, "ms": 1e-3, "s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0},
    "90, 90s, 2min, 1.5h",
)
MEMORY = Dimension(
    "memory",
    "B",
    {
        **_prefixed(("B",), {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}),
        **{p + "iB": 1024.0**i for i, p in enumerate(("", "K", "M", "G", "T")) if p},
        "": 1.0,
    },
    "512MiB, 2GB, 1e9",
)
COUNT = Dimension("params", "count", dict(_COUNT_SUFFIX), "50k, 1.2M, 50000")

ALL_DIMENSIONS = (ENERGY, CARBON, COMPUTE, SAMPLES, TIME, MEMORY, COUNT)

_AMOUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+\.)\s*([A-Za-z0-9µ]*)\s*$")


MAX_AMOUNT_CHARS = 100  # of an amount written as text: "1.5e+12 FLOP" needs a dozen


class UnitError(ValueError):
    """An amount that cannot be read in the expected dimension: what is wrong (may be empty) and
    the accepted form, the two halves of the one-line error (`frugal.core.errors.bad`)."""

    def __init__(self, problem: str, expected: str) -> None:
        super().__init__(f"{problem}; expected {expected}" if problem else f"expected {expected}")
        self.problem, self.expected = problem, expected


def parse_amount(value: object, dim: Dimension) -> float:
    """`value` (a number in SI base units or a string with a unit) -> positive float, SI units."""
    expected = f"an amount of {dim.name} such as {dim.examples}"
    if isinstance(value, bool) or value is None:
        raise UnitError("", expected)
    if isinstance(value, int | float):
        number, unit = _float(value, expected), ""
    else:
        text = str(value).strip()
        if text.startswith("-"):
            raise UnitError("must be positive", expected)
        if len(text) > MAX_AMOUNT_CHARS:  # before the pattern: no time spent on a huge string
            raise UnitError(f"{len(text):,} characters long", expected)
        match = _AMOUNT.match(text)
        if match is None:
            raise UnitError("not a number with a unit", expected)
        number, unit = _float(match.group(1), expected), match.group(2)
    if unit not in dim.units:
        other = next((d for d in ALL_DIMENSIONS if d is not dim and unit in d.units), None)
        hint = f"'{unit}' is a unit of {other.name}" if other and unit else f"unknown unit '{unit}'"
        raise UnitError(hint, expected)
    amount = number * dim.units[unit]
    if not math.isfinite(amount) or amount <= 0:
        raise UnitError("must be positive and finite", expected)
    return amount


def _float(number: object, expected: str) -> float:
    """`number` as a float; an integer too large for one (10**400) is not an amount."""
    try:
        return float(number)  # type: ignore[arg-type]
    except OverflowError:
        raise UnitError("too large to be an amount", expected) from None


UNKNOWN = "unknown"  # an amount nobody measured: never shown as 0
COUNT_UNITS = ("samples", "count", "")  # the prefix attaches to the number: 20k samples, 5.21k
_DECIMAL = ("", "k", "M", "G", "T", "P", "E")
_BINARY = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")  # bytes: 512 MiB, as memory is sold


def _scale(amount: float, unit: str, digits: int) -> tuple[float, str]:
    """(divisor, prefix) that shows `amount` under 1000 once rounded to `digits` significant
    digits (999.6 J is `1 kJ`, not `1e+03 J`); binary steps for bytes."""
    base, prefixes = (1024.0, _BINARY) if unit == "B" else (1000.0, _DECIMAL)
    index = 0
    while index < len(prefixes) - 1 and abs(float(f"{amount / base**index:.{digits}g}")) >= 1000:
        index += 1
    return base**index, prefixes[index]


def _with_unit(number: str, prefix: str, unit: str) -> str:
    if unit in COUNT_UNITS:
        return f"{number}{prefix}" + (f" {unit}" if unit == "samples" else "")
    return f"{number} {prefix}{unit}"


def format_amount(amount: float | None, unit: str = "", digits: int = 3) -> str:
    """An amount in SI unit `unit` with an SI prefix and `digits` significant digits: `1.23 kJ`,
    `2 GFLOP`, `20k samples`, `5.21k` (a count: unit "count" or ""), `512 MiB`; seconds as
    `34.1 s`, `2.5 min`, `3.1 h`. None is `unknown`."""
    if amount is None:
        return UNKNOWN
    if unit == "s":
        return _duration(amount, digits)
    if unit != "B":  # rounded first, as shown: 4285 J is 4.28 kJ whatever 4.285 is in binary
        amount = float(f"{amount:.{digits}g}")
    divisor, prefix = _scale(amount, unit, digits)
    return _with_unit(f"{amount / divisor:.{digits}g}", prefix, unit)


def _duration(seconds: float, digits: int) -> str:
    if seconds < 120:
        return f"{seconds:.{digits}g} s"
    if seconds < 7200:
        return f"{seconds / 60:.{digits}g} min"
    return f"{seconds / 3600:.{digits}g} h"


def format_use(used: float | None, limit: float, unit: str) -> str:
    """`1.2/2 kJ`: what is spent against its limit, both in the limit's scale."""
    divisor, prefix = (1.0, "") if unit == "s" else _scale(limit, unit, 3)
    shown = "?" if used is None else f"{used / divisor:.3g}"
    return _with_unit(f"{shown}/{limit / divisor:.3g}", prefix, unit)


def percent(fraction: float | None) -> str:
    """A fraction as the summary, the logs and the report show it: `95.3%`."""
    return UNKNOWN if fraction is None else f"{100 * fraction:.1f}%"
