"""The SQL functions SQLite's rollup upserts call: their results equal the core's merges."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from analytics_adapters.sql.sqlite_functions import merge_codes
from analytics_core.rollups import MAX_ERROR_CODES_PER_ROLLUP, merge_error_codes

_codes = st.dictionaries(st.text(min_size=1, max_size=4), st.integers(1, 50),
                         max_size=MAX_ERROR_CODES_PER_ROLLUP)
_stored = st.one_of(st.none(), st.just(""), _codes.map(json.dumps))


@given(_stored, _stored)
def test_merged_codes_equal_the_cores_merge(a: str | None, b: str | None) -> None:
    """Any two stored values (NULL, empty, JSON maps) merge to the core's capped sum, in the
    canonical form (sorted keys), including the shortcut for two empty maps."""
    expected = merge_error_codes(json.loads(a) if a else {}, json.loads(b) if b else {})
    assert merge_codes(a, b) == json.dumps(expected, sort_keys=True)


def test_two_rows_without_codes_merge_to_an_empty_map() -> None:
    assert merge_codes("{}", None) == merge_codes(None, "") == merge_codes("{}", "{}") == "{}"
