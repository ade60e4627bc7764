"""Exact money: parsing, half-even rounding to 0.0001 cent, rendering and whole-cent rounding."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import attrs
import pytest
from core_strategies import cents
from hypothesis import given
from hypothesis import strategies as st

from analytics_core.money import UNITS_PER_CENT, Cents


def test_parse_int_counts_whole_cents() -> None:
    """An int is a number of whole cents."""
    assert Cents.parse(12).units == 120_000


def test_parse_decimal_keeps_four_places_exactly() -> None:
    """A Decimal with four places is stored exactly."""
    assert Cents.parse(Decimal("12.3456")).units == 123_456


def test_parse_decimal_string() -> None:
    """A decimal string parses like the Decimal it spells."""
    assert Cents.parse("0.0001").units == 1


def test_parse_float_uses_its_shortest_repr() -> None:
    """0.1 means exactly one tenth of a cent, not the binary float beneath it."""
    assert Cents.parse(0.1).units == 1_000


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("0.00005", 0),
        ("0.00015", 2),
        ("0.00025", 2),
        ("0.00035", 4),
        ("1.23445", 12_344),
        ("1.23455", 12_346),
        ("0.000049999", 0),
        ("0.000050001", 1),
    ],
)
def test_parse_rounds_half_even_beyond_four_places(text: str, units: int) -> None:
    """Digits beyond 0.0001 cent round half to even."""
    assert Cents.parse(Decimal(text)).units == units


@pytest.mark.parametrize(
    "value",
    [True, False, None, "abc", "", "NaN", "Infinity", float("nan"), float("inf"), [1], "1e30"],
)
def test_parse_rejects_non_numbers_non_finite_and_out_of_range(value: object) -> None:
    """Booleans, non-numbers, NaN, infinities and unrepresentable magnitudes raise ValueError."""
    with pytest.raises(ValueError):
        Cents.parse(value)


@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**12), max_value=10**12))
def test_parse_decimal_matches_exact_half_even_reference(value: Decimal) -> None:
    """Parsing equals rounding the exact rational value * 10_000 half-even (Python's round)."""
    assert Cents.parse(value).units == round(Fraction(value) * UNITS_PER_CENT)


@pytest.mark.parametrize(
    ("units", "text"),
    [
        (0, "0.0000"),
        (1, "0.0001"),
        (123_400, "12.3400"),
        (-1, "-0.0001"),
        (10**16, "1000000000000.0000"),
    ],
)
def test_exact_str_renders_four_places(units: int, text: str) -> None:
    """exact_str always shows exactly four decimal places."""
    assert Cents(units).exact_str() == text


@pytest.mark.parametrize(
    ("units", "whole"),
    [
        (0, 0),
        (4_999, 0),
        (5_000, 0),
        (5_001, 1),
        (15_000, 2),
        (25_000, 2),
        (35_000, 4),
        (-5_000, 0),
    ],
)
def test_rounded_is_half_even_whole_cents(units: int, whole: int) -> None:
    """rounded() gives whole cents, ties to even."""
    assert Cents(units).rounded() == whole


@given(st.integers(min_value=-(10**18), max_value=10**18))
def test_rounded_matches_exact_half_even_reference(units: int) -> None:
    """rounded() equals half-even rounding of the exact rational amount."""
    assert Cents(units).rounded() == round(Fraction(units, UNITS_PER_CENT))


@given(st.integers(min_value=-(10**20), max_value=10**20))
def test_exact_str_then_parse_round_trips(units: int) -> None:
    """Cents -> exact_str -> parse gives back the same amount."""
    amount = Cents(units)
    assert Cents.parse(amount.exact_str()) == amount


@given(cents)
def test_asdict_and_evolve_round_trip(amount: Cents) -> None:
    """The value object rebuilds from its fields unchanged."""
    assert Cents(**attrs.asdict(amount)) == amount
    assert attrs.evolve(amount) == amount


@given(cents, cents)
def test_addition_and_subtraction_are_exact(a: Cents, b: Cents) -> None:
    """Sums and differences are integer arithmetic on units."""
    assert (a + b).units == a.units + b.units
    assert (a + b) - b == a


def test_amounts_order_by_value() -> None:
    """Cents compare by amount."""
    assert Cents.zero() < Cents(1) < Cents.parse(1)


def test_units_must_be_an_int() -> None:
    """A float can never sneak in as units."""
    with pytest.raises(TypeError):
        Cents(1.5)  # type: ignore[arg-type]
