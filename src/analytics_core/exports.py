"""Export jobs (SPEC §5, §7): request validation and the guarded status state machine."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from enum import StrEnum

import attrs

from analytics_core.errors import FieldError, InvalidTransition, ValidationFailed
from analytics_core.timegrid import served_window_errors, zone_error

MAX_USAGE_RANGE = timedelta(days=31)
MAX_EVENTS_RANGE = timedelta(days=7)
MAX_MODELS = 100


class ExportStatus(StrEnum):
    """Lifecycle of an export job."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"


class ExportKind(StrEnum):
    """`usage` exports rollups; `events` exports raw events for incident sharing; `focus`
    exports FinOps FOCUS 1.2 cost rows (analytics_core.focus)."""

    USAGE = "usage"
    EVENTS = "events"
    FOCUS = "focus"


class ExportGranularity(StrEnum):
    """Grain of a usage export."""

    HOURLY = "hourly"
    DAILY = "daily"
    MONTHLY = "monthly"


@attrs.frozen
class ExportRequest:
    """A validated request to export one org's data."""

    org_id: uuid.UUID
    start: datetime
    end: datetime
    granularity: ExportGranularity = ExportGranularity.DAILY
    tz: str = "UTC"
    models: tuple[uuid.UUID, ...] = ()
    kind: ExportKind = ExportKind.USAGE
    # A close: a period filed for finance (the scheduled monthly files are closes). Late events
    # and repricing that change its numbers later get adjustment files (docs/exports.md).
    close: bool = False

    def __attrs_post_init__(self) -> None:
        errors = served_window_errors(self.start, self.end, "timeRange.start", "timeRange.end")
        if self.end <= self.start:
            errors.append(FieldError("timeRange.end", "must be after timeRange.start"))
        limit = MAX_EVENTS_RANGE if self.kind is ExportKind.EVENTS else MAX_USAGE_RANGE
        if self.end - self.start > limit:
            reason = f"must span at most {limit.days} days for {self.kind} exports"
            errors.append(FieldError("timeRange", reason))
        if self.close and self.kind is not ExportKind.USAGE:
            errors.append(FieldError("close", "only usage exports can be closes"))
        if len(self.models) > MAX_MODELS:
            errors.append(FieldError("models", f"must list at most {MAX_MODELS} models"))
        if errors:
            raise ValidationFailed(errors, "invalid export request")


_ALLOWED: dict[ExportStatus, frozenset[ExportStatus]] = {
    ExportStatus.PENDING: frozenset({ExportStatus.RUNNING, ExportStatus.FAILED}),
    ExportStatus.RUNNING: frozenset(
        {ExportStatus.RUNNING, ExportStatus.PENDING, ExportStatus.SUCCEEDED, ExportStatus.FAILED}
    ),
    ExportStatus.SUCCEEDED: frozenset({ExportStatus.EXPIRED}),
    ExportStatus.FAILED: frozenset({ExportStatus.EXPIRED}),
    ExportStatus.EXPIRED: frozenset(),
}


@attrs.frozen
class ExportJob:
    """An export job. Every transition returns a new job with `version` + 1.

    Stores persist a job only when the stored version is `version - 1` (compare-and-set), which
    is what keeps a late failure from overwriting a success.
    """

    job_id: uuid.UUID
    request: ExportRequest
    created_at: datetime
    initiated_by: str
    status: ExportStatus = ExportStatus.PENDING
    version: int = 1
    attempts: int = 0
    idempotency_key: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    next_attempt_at: datetime | None = None
    completed_at: datetime | None = None
    row_count: int | None = None
    checksum: str | None = None
    object_key: str | None = None
    error: str | None = None
    expires_at: datetime | None = None
    scheduled: bool = False
    adjusts: uuid.UUID | None = None  # an adjustment job: the close it adjusts
    adjustment: int | None = None  # and its number (1, 2, ...)
    # Digest of the period's numbers as filed once this job succeeded (original + adjustments)
    filed_digest: str | None = None

    @property
    def org_id(self) -> uuid.UUID:
        """The org the job belongs to."""
        return self.request.org_id

    @property
    def close(self) -> bool:
        """Whether the job files a closed period (its request's `close`)."""
        return self.request.close

    def _to(self, status: ExportStatus, **changes: object) -> ExportJob:
        if status not in _ALLOWED[self.status]:
            raise InvalidTransition(f"export job cannot go from {self.status} to {status}")
        return attrs.evolve(self, status=status, version=self.version + 1, **changes)  # type: ignore[arg-type]

    def claim(self, worker: str, now: datetime, lease: timedelta) -> ExportJob:
        """Start (or, after an expired lease, restart) an attempt held by `worker`."""
        if self.status is ExportStatus.RUNNING and (
            self.lease_expires_at is not None and self.lease_expires_at > now
        ):
            raise InvalidTransition("export job is leased by another worker")
        return self._to(
            ExportStatus.RUNNING, attempts=self.attempts + 1, lease_owner=worker,
            lease_expires_at=now + lease, next_attempt_at=None,
        )

    def renew(self, now: datetime, lease: timedelta) -> ExportJob:
        """Extend the current lease; only a running job holds one."""
        if self.status is not ExportStatus.RUNNING:
            raise InvalidTransition(f"export job is {self.status}, it holds no lease to renew")
        return self._to(ExportStatus.RUNNING, lease_expires_at=now + lease)

    def succeed(
        self, now: datetime, *, row_count: int, checksum: str, object_key: str,
        expires_at: datetime, filed_digest: str | None = None,
    ) -> ExportJob:
        """Record a finished export."""
        return self._to(
            ExportStatus.SUCCEEDED, completed_at=now, row_count=row_count, checksum=checksum,
            object_key=object_key, expires_at=expires_at, lease_owner=None,
            lease_expires_at=None, error=None, filed_digest=filed_digest,
        )

    def retry_later(self, at: datetime, error: str) -> ExportJob:
        """Give the job back after a transient failure, to be retried no sooner than `at`."""
        return self._to(
            ExportStatus.PENDING, next_attempt_at=at, lease_owner=None, lease_expires_at=None,
            error=error,
        )

    def fail(self, now: datetime, error: str, expires_at: datetime) -> ExportJob:
        """Final failure with a user-safe message."""
        return self._to(
            ExportStatus.FAILED, completed_at=now, error=error, lease_owner=None,
            lease_expires_at=None, expires_at=expires_at,
        )

    def expire(self) -> ExportJob:
        """Retention elapsed: objects are gone."""
        return self._to(ExportStatus.EXPIRED)

    def is_claimable(self, now: datetime) -> bool:
        """Pending and due, or running with an expired lease."""
        if self.status is ExportStatus.PENDING:
            return self.next_attempt_at is None or self.next_attempt_at <= now
        if self.status is ExportStatus.RUNNING:
            return self.lease_expires_at is not None and self.lease_expires_at <= now
        return False


def object_key(org_id: uuid.UUID, name: str) -> str:
    """Object key `analytics/exports/{org_id}/{name}` (SPEC §7)."""
    return f"analytics/exports/{org_id}/{name}"


def unknown_zone_error(job: ExportJob) -> str | None:
    """A user-safe error when the running tz database no longer knows the job's zone (a job
    stored under an older tzdata, or written by hand), else None."""
    if zone_error(job.request.tz) is None:
        return None
    return (f"The export's time zone {job.request.tz!r} is not known to this server's time "
            "zone database; create the export again with a current IANA zone name.")


def as_read(job: ExportJob) -> ExportJob:
    """A stored job as readers see it: one that can never run because its zone is unknown
    reads as failed with a clear error (SPEC §11); the stored job is not changed."""
    error = unknown_zone_error(job)
    if error is None or job.status in (ExportStatus.SUCCEEDED, ExportStatus.EXPIRED):
        return job
    return attrs.evolve(job, status=ExportStatus.FAILED, error=error)
