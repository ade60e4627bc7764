"""Conversion between domain values and table rows (the storage edge of the model)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from analytics_adapters.sql.schema import EXTRA_COUNTER_COLUMNS, TOKEN_DETAIL_COLUMNS
from analytics_core.events import NO_TOKEN_DETAILS, Status, TokenDetails, UsageEvent
from analytics_core.exports import (
    ExportGranularity,
    ExportJob,
    ExportKind,
    ExportRequest,
    ExportStatus,
)
from analytics_core.money import Cents
from analytics_core.records import AuditEntry
from analytics_core.rollups import Rollup, RollupKey, RollupStats, extra_fields
from analytics_core.sketch import LatencySketch

STATUS_CODES: dict[Status, int] = {
    Status.SUCCESS: 0, Status.ERROR: 1, Status.TIMEOUT: 2, Status.THROTTLED: 3,
}
STATUS_BY_CODE: dict[int, Status] = {code: status for status, code in STATUS_CODES.items()}

EVENT_COLUMNS = (
    "org_id", "occurred_at", "event_id", "model_id", "status", "latency_ms", "input_tokens",
    "output_tokens", "cost_units", "actor_id", "client_id", "error_code", "metadata",
    *TOKEN_DETAIL_COLUMNS,
)

ROLLUP_COLUMNS = (
    "org_id", "bucket_start", "model_id", "client_id", "invocations", "success", "errors",
    "timeouts", "throttled", "input_tokens", "output_tokens", "cost_units", "latency_sum",
    "latency_min", "latency_max", "lat_zeros", "lat_bins", "lat_counts", "error_codes",
    *EXTRA_COUNTER_COLUMNS,
)


AUDIT_COLUMNS = (
    "audit_id", "org_id", "at", "actor", "actor_org", "action", "resource", "outcome",
    "reason", "request_id", "cross_org",
)
"""The columns an audit entry writes (`seq` is the table's own)."""


def audit_values(e: AuditEntry) -> tuple[Any, ...]:
    """An audit entry as a tuple in `AUDIT_COLUMNS` order."""
    return (e.audit_id, e.org_id, e.at, e.actor, e.actor_org, e.action, e.resource,
            e.outcome.value, e.reason, e.request_id, e.cross_org)


def event_values(e: UsageEvent) -> tuple[Any, ...]:
    """An event as a tuple in `EVENT_COLUMNS` order (metadata None when empty)."""
    return (
        e.org_id, e.occurred_at, e.event_id, e.model_id, STATUS_CODES[e.status], e.latency_ms,
        e.input_tokens, e.output_tokens, e.cost.units, e.actor_id, e.client_id, e.error_code,
        dict(e.metadata) if e.metadata else None, *e.token_details.as_tuple(),
    )


def event_row(e: UsageEvent) -> dict[str, Any]:
    """An event as a row mapping."""
    return dict(zip(EVENT_COLUMNS, event_values(e), strict=True))


def event_from_row(row: Any) -> UsageEvent:
    """Rebuild an event from a row with `EVENT_COLUMNS` attributes."""
    return UsageEvent(
        event_id=row.event_id, org_id=row.org_id, model_id=row.model_id,
        occurred_at=row.occurred_at, status=STATUS_BY_CODE[row.status],
        latency_ms=row.latency_ms, input_tokens=row.input_tokens,
        output_tokens=row.output_tokens, cost=Cents(row.cost_units), actor_id=row.actor_id,
        client_id=row.client_id, error_code=row.error_code, metadata=row.metadata or {},
        token_details=_details(row.cache_read_tokens, row.cache_write_tokens,
                               row.audio_input_tokens, row.reasoning_tokens,
                               row.audio_output_tokens),
    )


def _details(*counts: int) -> TokenDetails:
    return TokenDetails(*map(int, counts)) if any(counts) else NO_TOKEN_DETAILS


def sketch_lists(sketch: LatencySketch) -> tuple[list[int], list[int]]:
    """Parallel (bin index, count) lists of a sketch (in no particular order)."""
    return list(sketch.bins), list(sketch.bins.values())


def rollup_values(r: Rollup) -> tuple[Any, ...]:
    """A rollup as a tuple in `ROLLUP_COLUMNS` order."""
    k, s = r.key, r.stats
    bins, counts = sketch_lists(s.sketch)
    return (
        k.org_id, k.bucket_start, k.model_id, k.client_id, s.invocations, s.success, s.errors,
        s.timeouts, s.throttled, s.input_tokens, s.output_tokens, s.cost.units, s.latency_sum,
        s.latency_min, s.latency_max, s.sketch.zero_count, bins, counts, dict(s.error_codes),
        *s.extra_counters(),
    )


def rollup_row(r: Rollup) -> dict[str, Any]:
    """A rollup as a row mapping."""
    return dict(zip(ROLLUP_COLUMNS, rollup_values(r), strict=True))


def rollup_from_values(v: tuple[Any, ...] | Any) -> Rollup:
    """Rebuild a rollup from values in `ROLLUP_COLUMNS` order.

    Counters are read through int(): SQLite turns an integer sum past the int64 range into a
    REAL, which an older release could store; it must read back as an integer, never a float.
    """
    n = [int(x) for x in v[4:13]]
    return Rollup(
        RollupKey(v[0], v[2], v[3], v[1]),
        RollupStats(
            invocations=n[0], success=n[1], errors=n[2], timeouts=n[3], throttled=n[4],
            input_tokens=n[5], output_tokens=n[6], cost=Cents(n[7]), latency_sum=n[8],
            latency_min=v[13], latency_max=v[14],
            sketch=LatencySketch(v[15], dict(zip(v[16], v[17], strict=True))),
            error_codes=v[18] or {}, **extra_fields(v[19:]),
        ),
    )


def job_row(job: ExportJob) -> dict[str, Any]:
    """An export job as a row mapping."""
    r = job.request
    return {
        "org_id": r.org_id, "job_id": job.job_id, "status": job.status.value,
        "version": job.version, "kind": r.kind.value, "granularity": r.granularity.value,
        "tz": r.tz, "range_start": r.start, "range_end": r.end,
        "models": [str(m) for m in r.models], "created_at": job.created_at,
        "initiated_by": job.initiated_by, "attempts": job.attempts,
        "idempotency_key": job.idempotency_key, "lease_owner": job.lease_owner,
        "lease_expires_at": job.lease_expires_at, "next_attempt_at": job.next_attempt_at,
        "completed_at": job.completed_at, "row_count": job.row_count,
        "checksum": job.checksum, "object_key": job.object_key, "error": job.error,
        "expires_at": job.expires_at, "scheduled": job.scheduled, "close": job.close,
        "adjusts": job.adjusts, "adjustment": job.adjustment,
        "filed_digest": job.filed_digest,
    }


def job_from_row(row: Mapping[Any, Any]) -> ExportJob:
    """Rebuild an export job from a row mapping."""
    request = ExportRequest(
        org_id=row["org_id"], start=row["range_start"], end=row["range_end"],
        granularity=ExportGranularity(row["granularity"]), tz=row["tz"],
        models=tuple(uuid.UUID(m) for m in row["models"]), kind=ExportKind(row["kind"]),
        close=row["close"],
    )
    return ExportJob(
        job_id=row["job_id"], request=request, created_at=row["created_at"],
        initiated_by=row["initiated_by"], status=ExportStatus(row["status"]),
        version=row["version"], attempts=row["attempts"],
        idempotency_key=row["idempotency_key"], lease_owner=row["lease_owner"],
        lease_expires_at=row["lease_expires_at"], next_attempt_at=row["next_attempt_at"],
        completed_at=row["completed_at"], row_count=row["row_count"],
        checksum=row["checksum"], object_key=row["object_key"], error=row["error"],
        expires_at=row["expires_at"], scheduled=row["scheduled"],
        adjusts=row["adjusts"], adjustment=row["adjustment"], filed_digest=row["filed_digest"],
    )
