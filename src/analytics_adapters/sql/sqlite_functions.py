"""SQL functions registered on every SQLite connection so upserts merge sketches in one statement.

PostgreSQL has the same functions in plpgsql (created by the migrations); SQLite serialises
writers, so a single upsert statement calling these is atomic there too.
"""

from __future__ import annotations

import json
import sqlite3
from functools import lru_cache

from analytics_adapters.sql.types import decode_int_list, encode_int_list
from analytics_core.rollups import merge_error_codes

MERGE_BINS = "analytics_merge_sketch_bins"
MERGE_COUNTS = "analytics_merge_sketch_counts"
MERGE_ERROR_CODES = "analytics_merge_error_codes"


@lru_cache(maxsize=64)
def _merge(
    a_bins: str | None, a_counts: str | None, b_bins: str | None, b_counts: str | None
) -> tuple[str, str]:
    merged: dict[int, int] = {}
    for bins, counts in ((a_bins, a_counts), (b_bins, b_counts)):
        for index, count in zip(
            decode_int_list(bins) or [], decode_int_list(counts) or [], strict=True
        ):
            merged[index] = merged.get(index, 0) + count
    keys = sorted(merged)
    return encode_int_list(keys) or "", encode_int_list([merged[k] for k in keys]) or ""


def merge_bins(a_bins: str | None, a_counts: str | None, b_bins: str | None,
               b_counts: str | None) -> str:
    """Bin indexes of the merge of two sketches."""
    return _merge(a_bins, a_counts, b_bins, b_counts)[0]


def merge_counts(a_bins: str | None, a_counts: str | None, b_bins: str | None,
                 b_counts: str | None) -> str:
    """Counts (parallel to `merge_bins`) of the merge of two sketches."""
    return _merge(a_bins, a_counts, b_bins, b_counts)[1]


_NO_CODES = (None, "", "{}")


def merge_codes(a: str | None, b: str | None) -> str:
    """Error-code counts added, capped exactly as the core caps them. Two rows without codes
    (most rows: their calls all succeeded) merge without parsing."""
    if a in _NO_CODES and b in _NO_CODES:
        return "{}"
    left = json.loads(a) if a else {}
    right = json.loads(b) if b else {}
    return json.dumps(merge_error_codes(left, right), sort_keys=True)


def register_functions(conn: sqlite3.Connection) -> None:
    """Make the merge functions callable from SQL on this connection."""
    conn.create_function(MERGE_BINS, 4, merge_bins, deterministic=True)
    conn.create_function(MERGE_COUNTS, 4, merge_counts, deterministic=True)
    conn.create_function(MERGE_ERROR_CODES, 2, merge_codes, deterministic=True)
