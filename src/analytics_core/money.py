"""Exact money: integer units of 0.0001 cent, never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

import attrs

UNITS_PER_CENT = 10_000
_QUANTUM = Decimal("0.0001")
_UNITS_PER_CENT = Decimal(UNITS_PER_CENT)


def decimal_units(amount: Decimal) -> int:
    """Units of 0.0001 cent in a Decimal amount of cents, rounded half-even.

    Raises ValueError for NaN and infinities, and for amounts with more digits than the
    current decimal context holds.
    """
    if not amount.is_finite():
        raise ValueError("must be finite")
    try:
        quantized = amount.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
    except InvalidOperation as e:  # more digits than the decimal context holds
        raise ValueError("is out of range") from e
    return int(quantized * _UNITS_PER_CENT)


@attrs.frozen(order=True)
class Cents:
    """An amount of cents held as an integer count of 0.0001 cent."""

    units: int = attrs.field(validator=attrs.validators.instance_of(int))

    @classmethod
    def zero(cls) -> Cents:
        """The zero amount."""
        return cls(0)

    @classmethod
    def parse(cls, value: object) -> Cents:
        """Parse an int, Decimal or decimal string of cents, rounding half-even to 0.0001.

        Floats are accepted through their shortest decimal repr so that library callers
        passing `0.1` get exactly 0.1 cent; the HTTP and stream edges parse JSON numbers
        as Decimal and never produce floats.
        """
        if isinstance(value, bool):
            raise ValueError("must be a number")
        if isinstance(value, int):
            return cls(value * UNITS_PER_CENT)
        if isinstance(value, float):
            value = repr(value)
        if isinstance(value, Decimal | str):
            try:
                dec = Decimal(value)
            except InvalidOperation as e:
                raise ValueError("must be a decimal number") from e
            return cls(decimal_units(dec))
        raise ValueError("must be a number")

    def __add__(self, other: Cents) -> Cents:
        return Cents(self.units + other.units)

    def __sub__(self, other: Cents) -> Cents:
        return Cents(self.units - other.units)

    @property
    def exact(self) -> Decimal:
        """The amount as a Decimal with exactly four places."""
        return (Decimal(self.units) / UNITS_PER_CENT).quantize(_QUANTUM)

    def exact_str(self) -> str:
        """Decimal string with four places, e.g. '12.3400'."""
        return f"{self.exact:.4f}"

    def rounded(self) -> int:
        """Whole cents, rounded half-even."""
        return int(self.exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
