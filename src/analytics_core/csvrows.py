"""CSV rows of finance exports (SPEC §7) with spreadsheet formula-injection neutralising."""

from __future__ import annotations

from collections.abc import Sequence

USAGE_COLUMNS: tuple[str, ...] = (
    "bucket_start", "bucket_end", "timezone", "org_id", "model_id", "invocations", "success",
    "errors", "timeouts", "throttled", "input_tokens", "output_tokens", "cost_estimate_cents",
)

EVENT_COLUMNS: tuple[str, ...] = (
    "event_id", "org_id", "model_id", "occurred_at", "status", "latency_ms", "input_tokens",
    "output_tokens", "cost_estimate_cents", "actor_id", "client_id", "error_code",
)

_DANGEROUS_FIRST = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: str) -> str:
    """Prefix a cell that a spreadsheet would read as a formula with a single quote."""
    if cell.startswith(_DANGEROUS_FIRST):
        return "'" + cell
    return cell


def text_row(values: Sequence[object]) -> list[str]:
    """Render a row: None as empty, everything else via str, then neutralised."""
    return [neutralise("" if v is None else str(v)) for v in values]
