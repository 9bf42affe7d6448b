import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from frugal.core.units import (
    CARBON,
    COMPUTE,
    COUNT,
    ENERGY,
    MEMORY,
    SAMPLES,
    TIME,
    UnitError,
    format_amount,
    format_use,
    parse_amount,
    percent,
)


@pytest.mark.parametrize(
    ("text", "dim", "expected"),
    [
        (500, ENERGY, 500.0),
        ("500", ENERGY, 500.0),
        ("500J", ENERGY, 500.0),
        ("2kJ", ENERGY, 2000.0),
        ("0.2Wh", ENERGY, 720.0),
        ("0.5 Wh", ENERGY, 1800.0),
        ("1.5kWh", ENERGY, 5.4e6),
        ("2g", CARBON, 2.0),
        ("0.5kg", CARBON, 500.0),
        ("1e12", COMPUTE, 1e12),
        (2e9, COMPUTE, 2e9),
        ("3GFLOP", COMPUTE, 3e9),
        ("2.5TFLOP", COMPUTE, 2.5e12),
        ("1PFLOP", COMPUTE, 1e15),
        ("20000", SAMPLES, 20000.0),
        ("20k", SAMPLES, 20000.0),
        ("1M", SAMPLES, 1e6),
        ("90", TIME, 90.0),
        ("90s", TIME, 90.0),
        ("2min", TIME, 120.0),
        ("1.5h", TIME, 5400.0),
        ("512MiB", MEMORY, 512 * 2**20),
        ("2GB", MEMORY, 2e9),
        ("50k", COUNT, 50000.0),
        ("1.2M", COUNT, 1.2e6),
    ],
)
def test_parses_documented_forms(text, dim, expected):
    assert parse_amount(text, dim) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "dim", "fragment"),
    [
        ("5GB", ENERGY, "'GB' is a unit of memory"),
        ("3GFLOP", TIME, "'GFLOP' is a unit of compute"),
        ("-5J", ENERGY, "must be positive"),
        (-5, ENERGY, "must be positive"),
        (0, COMPUTE, "must be positive"),
        ("0kJ", ENERGY, "must be positive"),
        ("5 parsecs", TIME, "unknown unit 'parsecs'"),
        ("lots", SAMPLES, "not a number"),
        ("nan", ENERGY, "not a number"),
        ("1e999", ENERGY, "finite"),
        (True, ENERGY, "expected an amount of energy"),
    ],
)
def test_rejects_bad_amounts_with_the_accepted_form(text, dim, fragment):
    with pytest.raises(UnitError) as err:
        parse_amount(text, dim)
    assert fragment in str(err.value)
    assert dim.examples in str(err.value)
    assert "\n" not in str(err.value)


@given(st.floats(min_value=1e-3, max_value=1e15, allow_nan=False, allow_infinity=False))
def test_every_energy_unit_scales_exactly(value):
    for unit, factor in ENERGY.units.items():
        if not unit:
            continue
        text = f"{value!r}{unit}"
        assert parse_amount(text, ENERGY) == pytest.approx(value * factor, rel=1e-12)


@given(
    st.sampled_from([ENERGY, CARBON, COMPUTE, SAMPLES, TIME, MEMORY, COUNT]),
    st.floats(min_value=1e-6, max_value=1e18, allow_nan=False, allow_infinity=False),
)
def test_bare_numbers_are_si_base_units(dim, value):
    assert parse_amount(value, dim) == value
    assert parse_amount(repr(value), dim) == pytest.approx(value, rel=1e-12)


@given(st.floats(max_value=0, allow_nan=False, allow_infinity=False))
def test_non_positive_numbers_never_parse(value):
    with pytest.raises(UnitError):
        parse_amount(value, ENERGY)


def test_formatting_never_writes_unknown_as_zero():
    assert format_amount(None, "J") == "unknown"
    assert format_amount(1234.5, "J") == "1.23 kJ"
    assert format_amount(2**29, "B") == "512 MiB"
    assert format_use(500.0, 2000.0, "J") == "0.5/2 kJ"
    assert format_use(None, 2e9, "FLOP") == "?/2 GFLOP"
    assert math.isclose(parse_amount(format_amount(3e9, "FLOP").replace(" ", ""), COMPUTE), 3e9)


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (812.4, "J", "812 J"),
        (999.6, "J", "1 kJ"),  # rounded first: never "1e+03 J"
        (4285, "J", "4.28 kJ"),  # rounded as written, not as 4.285 is stored
        (2.5e12, "FLOP", "2.5 TFLOP"),
        (5210, "", "5.21k"),
        (5210, "count", "5.21k"),
        (6e5, "samples", "600k samples"),
        (1023.6, "B", "1 KiB"),
        (34.1, "s", "34.1 s"),
        (150, "s", "2.5 min"),
        (7300, "s", "2.03 h"),
        (None, "J", "unknown"),
        (0.5, "J", "0.5 J"),
    ],
)
def test_one_formatter_keeps_units_and_unknown(value: float | None, unit: str, text: str) -> None:
    assert format_amount(value, unit) == text


def test_one_percent_style():
    assert percent(0.953) == "95.3%" and percent(1.0) == "100.0%" and percent(None) == "unknown"
