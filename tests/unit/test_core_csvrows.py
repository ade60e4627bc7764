"""CSV cells are neutralised against spreadsheet formula injection (SPEC §7)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics_core.csvrows import EVENT_COLUMNS, USAGE_COLUMNS, neutralise, text_row
from analytics_core.money import Cents

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


@pytest.mark.parametrize("first", DANGEROUS, ids=repr)
def test_dangerous_first_characters_are_prefixed_with_a_quote(first: str) -> None:
    """A cell starting with = + - @ tab or CR gets a leading single quote."""
    assert neutralise(first + "SUM(A1:A9)") == "'" + first + "SUM(A1:A9)"


@pytest.mark.parametrize(
    "cell", ["", "abc", "12.3400", "'=already", " =spaced", "a=b", "2025-06-01T00:00:00Z", "\n="]
)
def test_other_cells_are_left_alone(cell: str) -> None:
    """Cells not starting with a dangerous character are unchanged."""
    assert neutralise(cell) == cell


@given(st.text())
def test_output_never_starts_with_a_dangerous_character(cell: str) -> None:
    """Whatever the text, the neutralised cell cannot start a formula."""
    assert not neutralise(cell).startswith(DANGEROUS)


@given(st.text())
def test_neutralising_only_ever_adds_one_leading_quote(cell: str) -> None:
    """The original text is kept intact after at most one added quote."""
    out = neutralise(cell)
    assert out in (cell, "'" + cell)
    assert (out != cell) is cell.startswith(DANGEROUS)


def test_text_row_renders_none_as_empty_and_neutralises() -> None:
    """None becomes an empty cell; values use str(); dangerous cells are neutralised."""
    row = text_row([None, 3, Cents(123_400).exact_str(), "=HYPERLINK()", "@evil"])
    assert row == ["", "3", "12.3400", "'=HYPERLINK()", "'@evil"]


def test_usage_columns_follow_the_spec_order() -> None:
    """The usage CSV header is exactly SPEC §7's column list."""
    assert ",".join(USAGE_COLUMNS) == (
        "bucket_start,bucket_end,timezone,org_id,model_id,invocations,success,errors,timeouts,"
        "throttled,input_tokens,output_tokens,cost_estimate_cents"
    )


def test_event_columns_cover_the_event_fields() -> None:
    """The raw-event CSV has one column per exported event field, without duplicates."""
    assert len(set(EVENT_COLUMNS)) == len(EVENT_COLUMNS) == 12
    assert EVENT_COLUMNS[0] == "event_id"
