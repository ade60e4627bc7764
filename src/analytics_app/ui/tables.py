"""Tables behind every chart: exact values for the table, the chart and the CSV alike."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

import attrs

from analytics_core.csvrows import neutralise
from analytics_core.money import Cents
from analytics_core.timegrid import zone

CENT = Decimal("0.01")
DASH = "\N{EN DASH}"  # no value


@attrs.frozen
class Cell:
    """One value: `exact` as the API writes it (None: no value), `display` rounded."""

    exact: str | None
    display: str

    @property
    def sort_key(self) -> str:
        """What the sortable table sorts by."""
        return "" if self.exact is None else self.exact


@attrs.frozen
class Row:
    """A labelled row; `at` is the period's start for time series (a chart's x value)."""

    label: str
    cells: tuple[Cell, ...]
    at: datetime | None = None
    href: str | None = None

    @property
    def epoch(self) -> int | None:
        """Unix seconds of `at`."""
        return None if self.at is None else int(self.at.timestamp())


@attrs.frozen
class Table:
    """Columns (the first labels the rows), rows, and the unit every value cell is in."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    unit: str = "count"  # usd-cents, percent, ms or count (app.js formats the chart axis)

    def csv(self) -> str:
        """The table as CSV with exact values; labels that a spreadsheet could read as a
        formula are neutralised as in the finance exports (names come from users)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([neutralise(c) for c in self.columns])
        for row in self.rows:
            writer.writerow([neutralise(row.label),
                             *("" if c.exact is None else c.exact for c in row.cells)])
        return out.getvalue()


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def usd_cell(cents_exact: str | None) -> Cell:
    """Exact cents, shown as dollars rounded to the cent."""
    if cents_exact is None:
        return Cell(None, DASH)
    cents = _decimal(cents_exact)
    if cents is None:
        return Cell(cents_exact, cents_exact)
    dollars = (cents / 100).quantize(CENT, rounding=ROUND_HALF_EVEN)
    return Cell(cents_exact, f"${dollars:,}")


def count_cell(value: int | None) -> Cell:
    """An integer with thousands separators."""
    return Cell(None, DASH) if value is None else Cell(str(value), f"{value:,}")


def ratio_cell(value: float | None) -> Cell:
    """A ratio (0.0123) shown as a percentage (1.23 %)."""
    return Cell(None, DASH) if value is None else Cell(repr(value), f"{value * 100:.2f} %")


def ms_cell(value: float | None) -> Cell:
    """Milliseconds as the API rounds them, shown without decimals."""
    return Cell(None, DASH) if value is None else Cell(repr(value), f"{value:,.0f} ms")


def sum_exact(values: Sequence[str]) -> str:
    """The exact sum of exact cents strings, written as the API writes cents."""
    total = Cents.zero()
    for value in values:
        total += Cents.parse(value)
    return total.exact_str()


def amount_display(value: str, unit: str) -> str:
    """A budget amount for display: cents as dollars, other units with separators."""
    if unit == "cents":
        return usd_cell(value).display
    number = _decimal(value)
    return f"{value} {unit}" if number is None else f"{number:,} {unit}"


def local_time(iso: str | None, tz: str) -> str:
    """An ISO instant as `YYYY-MM-DD HH:MM` in the page's zone."""
    if not iso:
        return DASH
    try:
        instant = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    return f"{instant.astimezone(zone(tz)):%Y-%m-%d %H:%M}"
