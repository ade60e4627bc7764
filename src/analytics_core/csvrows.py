"""CSV rows of finance exports (SPEC §7) with spreadsheet formula-injection neutralising."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence

from analytics_core.events import TOKEN_DETAIL_NAMES as TOKEN_DETAIL_COLUMNS

USAGE_COLUMNS: tuple[str, ...] = (
    "bucket_start", "bucket_end", "timezone", "org_id", "model_id", "invocations", "success",
    "errors", "timeouts", "throttled", "input_tokens", "output_tokens", "cost_estimate_cents",
    "model_name", *TOKEN_DETAIL_COLUMNS, "catalog_cost_cents", "unpriced_invocations",
)

EVENT_COLUMNS: tuple[str, ...] = (
    "event_id", "org_id", "model_id", "occurred_at", "status", "latency_ms", "input_tokens",
    "output_tokens", "cost_estimate_cents", "actor_id", "client_id", "error_code", "model_name",
    "client_name", *TOKEN_DETAIL_COLUMNS, "metadata",
)
"""Columns added later come after the ones before them, which keep their positions: the name
columns (the registry's names when the export ran; empty when unnamed), the token categories
(zero for events that reported none), then the event's metadata as compact JSON with sorted
keys (empty when it has none)."""

_DANGEROUS_FIRST = ("=", "+", "-", "@", "\t", "\r")
_FORMULA = frozenset("=+-@")
# Characters a spreadsheet may skip or show as nothing before reading a formula: white space of
# any kind (space, newline, NBSP, ideographic space), control characters, and format
# characters (bidi overrides such as U+202E, zero-width spaces and joiners, the BOM).
_SKIPPED_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})


def _skipped(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch) in _SKIPPED_CATEGORIES


def neutralise(cell: str) -> str:
    """Prefix a cell that a spreadsheet could read as a formula with a single quote: one that
    starts with = + - @ (or a tab or CR), also behind any run of white space, control or
    format characters, and in any compatibility form of those signs (full-width U+FF1D,
    U+FF0B, U+FF0D, U+FF20, small or superscript forms)."""
    if cell.startswith(_DANGEROUS_FIRST):
        return "'" + cell
    first = next((ch for ch in cell if not _skipped(ch)), "")
    if first and (first in _FORMULA or unicodedata.normalize("NFKC", first)[:1] in _FORMULA):
        return "'" + cell
    return cell


_METADATA_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def metadata_json(metadata: Mapping[str, str]) -> str:
    """An event's metadata as one cell: compact JSON, keys sorted, UTF-8 text as written; empty
    when there is none. The cell starts with `{`, so it never reads as a formula."""
    return _METADATA_JSON.encode(dict(metadata)) if metadata else ""


def text_row(values: Sequence[object]) -> list[str]:
    """Render a row: None as empty, everything else via str, then neutralised."""
    return [neutralise("" if v is None else str(v)) for v in values]
