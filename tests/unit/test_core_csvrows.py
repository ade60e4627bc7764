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
    "cell", ["", "abc", "12.3400", "'=already", "a=b", "2025-06-01T00:00:00Z", " a=b", "\u202eabc",
             "\uff10", "\uff21\uff1d"]
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
    if cell.startswith(DANGEROUS):
        assert out != cell


# What a spreadsheet may skip or not show before a formula, and the look-alike signs.
HIDDEN_PREFIXES = [" ", "\n", "\u00a0", "\u3000", "\u2028", "\u202e", "\u202d", "\u200b",
                   "\u200d", "\u2060", "\ufeff", "\x00", "\x1b", "\v", "\f"]
FORMULA_SIGNS = ["=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20", "\ufe66",
                 "\ufe62", "\ufe63", "\ufe6b", "\u207c", "\u207a"]


@pytest.mark.parametrize("cell", [" =1+1", "\n=1+1", "\uff1dSUM(A1)", "\u202e=1", "\u200b@x"],
                         ids=repr)
def test_the_issues_examples_are_neutralised(cell: str) -> None:
    """Space, newline, full-width = and U+202E before a formula sign no longer slip through."""
    assert neutralise(cell) == "'" + cell


@given(prefix=st.lists(st.sampled_from(HIDDEN_PREFIXES), max_size=6).map("".join),
       sign=st.sampled_from(FORMULA_SIGNS), rest=st.text(max_size=20))
def test_a_formula_sign_behind_any_hidden_prefix_is_neutralised(
    prefix: str, sign: str, rest: str,
) -> None:
    """Any run of white space, control or format characters, then = + - @ in any width."""
    cell = prefix + sign + rest
    assert neutralise(cell) == "'" + cell


@given(prefix=st.lists(st.sampled_from(HIDDEN_PREFIXES), max_size=6).map("".join),
       rest=st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=20))
def test_ordinary_text_behind_hidden_prefixes_is_left_alone(prefix: str, rest: str) -> None:
    """Letters and digits first (after the hidden run) never get a quote."""
    cell = prefix + rest
    if not cell.startswith(DANGEROUS):
        assert neutralise(cell) == cell


def test_text_row_renders_none_as_empty_and_neutralises() -> None:
    """None becomes an empty cell; values use str(); dangerous cells are neutralised."""
    row = text_row([None, 3, Cents(123_400).exact_str(), "=HYPERLINK()", "@evil"])
    assert row == ["", "3", "12.3400", "'=HYPERLINK()", "'@evil"]


def test_usage_columns_follow_the_spec_order() -> None:
    """The usage CSV header is SPEC §7's column list, in its order, then the model's name,
    then the token categories and the catalog cost (SPEC §12)."""
    assert ",".join(USAGE_COLUMNS) == (
        "bucket_start,bucket_end,timezone,org_id,model_id,invocations,success,errors,timeouts,"
        "throttled,input_tokens,output_tokens,cost_estimate_cents,model_name,cache_read_tokens,"
        "cache_write_tokens,audio_input_tokens,reasoning_tokens,audio_output_tokens,"
        "catalog_cost_cents,unpriced_invocations"
    )


def test_event_columns_cover_the_event_fields() -> None:
    """The raw-event CSV has one column per exported event field, without duplicates, then the
    model's and the client's names, then the token categories, then the metadata."""
    assert len(set(EVENT_COLUMNS)) == len(EVENT_COLUMNS) == 20
    assert EVENT_COLUMNS[0] == "event_id"
    assert EVENT_COLUMNS[12:14] == ("model_name", "client_name")
    assert EVENT_COLUMNS[14:] == ("cache_read_tokens", "cache_write_tokens",
                                  "audio_input_tokens", "reasoning_tokens",
                                  "audio_output_tokens", "metadata")
