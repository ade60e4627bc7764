"""Builders of valid test data (random ids for isolation) and small concurrency helpers."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import attrs

from analytics_core.access import Outcome
from analytics_core.events import Status, TokenDetails, UsageEvent
from analytics_core.exports import ExportGranularity, ExportJob, ExportKind, ExportRequest
from analytics_core.freshness import FreshnessMarker
from analytics_core.money import Cents
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.records import ApiKeyRecord, AuditEntry, DeadLetter, DedupeConflict
from analytics_core.rollups import Rollup, RollupKey, stats_of
from analytics_core.timegrid import floor_bucket

T = TypeVar("T")

# Microseconds on purpose: every backend must keep instants exactly.
BASE = datetime(2024, 5, 6, 12, 0, 7, 123456, tzinfo=UTC)
BUCKET = floor_bucket(BASE)


def new_id() -> uuid.UUID:
    """A random UUID (orgs, models, events, jobs)."""
    return uuid.uuid4()


def make_event(**overrides: Any) -> UsageEvent:
    """A valid success event of a fresh org at BASE; any field can be overridden."""
    fields: dict[str, Any] = {
        "event_id": new_id(), "org_id": new_id(), "model_id": new_id(), "occurred_at": BASE,
        "status": Status.SUCCESS, "latency_ms": 120, "input_tokens": 300, "output_tokens": 45,
        "cost": Cents.parse("1.2345"), "actor_id": None, "client_id": "client-a",
        "error_code": None, "metadata": {"region": "eu-west-1"},
    }
    fields.update(overrides)
    return UsageEvent(**fields)


def make_events(n: int, **overrides: Any) -> list[UsageEvent]:
    """`n` events sharing `overrides`, one second apart from `occurred_at` (default BASE)."""
    start = overrides.pop("occurred_at", BASE)
    return [make_event(occurred_at=start + timedelta(seconds=i), **overrides) for i in range(n)]


def varied_events(
    org_id: uuid.UUID, model_id: uuid.UUID, n: int = 12, *, occurred_at: datetime = BASE,
    client_id: str | None = "client-a",
) -> list[UsageEvent]:
    """Events of every status, spread latencies (zero too), error codes, fractional costs and
    token categories (none on the first)."""
    statuses = list(Status)
    return [
        make_event(
            org_id=org_id, model_id=model_id, occurred_at=occurred_at, status=statuses[i % 4],
            latency_ms=[0, 3, 87, 1200, 45_000][i % 5], input_tokens=100 + i, output_tokens=7 * i,
            cost=Cents(12_345 + 7 * i), error_code=None if i % 4 == 0 else f"E{i % 3}",
            client_id=client_id, token_details=TokenDetails(
                cache_read=(i % 3) * 10, cache_write=(i % 2) * 5, audio_input=int(i % 5 == 1),
                reasoning=2 * i, audio_output=i % 2,
            ),
        )
        for i in range(n)
    ]


def make_rollup(
    org_id: uuid.UUID, model_id: uuid.UUID | None = None, client_id: str = "client-a",
    bucket_start: datetime = BUCKET, n: int = 12,
) -> Rollup:
    """A rollup delta whose stats are those of `n` varied events."""
    model = model_id or new_id()
    events = varied_events(org_id, model, n, occurred_at=bucket_start, client_id=client_id)
    return Rollup(RollupKey(org_id, model, client_id, bucket_start), stats_of(events))


def make_dead_letter(**overrides: Any) -> DeadLetter:
    """A dead letter of a fresh org with raw bytes that are not valid UTF-8."""
    fields: dict[str, Any] = {
        "dead_letter_id": new_id(), "received_at": BASE, "source": "stream:analytics.usage.v1",
        "raw": b'{"eventId": 1}\x00\xff\xfe', "reason": "eventId: must be a UUID string",
        "org_id": new_id(), "offset": 42,
    }
    fields.update(overrides)
    return DeadLetter(**fields)


def make_conflict(**overrides: Any) -> DedupeConflict:
    """A dedupe conflict of a fresh org."""
    fields: dict[str, Any] = {
        "org_id": new_id(), "event_id": new_id(), "detected_at": BASE, "source": "http",
        "first_fingerprint": "a" * 64, "new_fingerprint": "b" * 64, "raw": b'{"eventId":"x"}',
    }
    fields.update(overrides)
    return DedupeConflict(**fields)


def make_marker(**overrides: Any) -> FreshnessMarker:
    """A freshness marker of a fresh org and model."""
    fields: dict[str, Any] = {
        "org_id": new_id(), "model_id": new_id(), "last_event_at": BASE,
        "last_rollup_at": BASE + timedelta(seconds=2),
    }
    fields.update(overrides)
    return FreshnessMarker(**fields)


def make_request(**overrides: Any) -> ExportRequest:
    """A valid daily usage export request of a fresh org over one day."""
    fields: dict[str, Any] = {
        "org_id": new_id(), "start": BUCKET, "end": BUCKET + timedelta(days=1),
        "granularity": ExportGranularity.DAILY, "tz": "UTC", "models": (),
        "kind": ExportKind.USAGE,
    }
    fields.update(overrides)
    return ExportRequest(**fields)


def make_job(**overrides: Any) -> ExportJob:
    """A pending export job created at BASE; `org_id=` sets the request's org."""
    org_id = overrides.pop("org_id", None)
    request = overrides.pop("request", None) or make_request(
        **({"org_id": org_id} if org_id else {})
    )
    fields: dict[str, Any] = {
        "job_id": new_id(), "request": request, "created_at": BASE, "initiated_by": "user:alice",
    }
    fields.update(overrides)
    return ExportJob(**fields)


def finished_job(job: ExportJob, *, succeeded: bool, expires_at: datetime) -> ExportJob:
    """`job` claimed and then succeeded or failed (version + 2), expiring at `expires_at`."""
    running = job.claim("w", job.created_at, timedelta(minutes=5))
    if succeeded:
        return running.succeed(
            job.created_at, row_count=3, checksum="c" * 64,
            object_key=f"analytics/exports/{job.org_id}/{job.job_id}.csv", expires_at=expires_at,
        )
    return running.fail(job.created_at, "boom", expires_at)


def make_audit_entry(**overrides: Any) -> AuditEntry:
    """An allowed decision on a fresh org."""
    fields: dict[str, Any] = {
        "audit_id": new_id(), "at": BASE, "actor": "user:alice", "actor_org": None,
        "org_id": new_id(), "action": "analytics:usage:read", "resource": "usage",
        "outcome": Outcome.ALLOWED, "reason": "role grants action", "request_id": "req-1",
        "cross_org": False,
    }
    fields.update(overrides)
    return AuditEntry(**fields)


def make_api_key(**overrides: Any) -> ApiKeyRecord:
    """An API key record with a random key id."""
    fields: dict[str, Any] = {
        "key_id": f"ak_{new_id().hex[:16]}", "org_id": new_id(),
        "roles": frozenset({"analytics:usage:read", "analytics:exports:create"}),
        "secret_hash": "d" * 64, "created_at": BASE, "name": "ci key", "revoked": False,
    }
    fields.update(overrides)
    return ApiKeyRecord(**fields)


def evolve(value: T, **changes: Any) -> T:
    """`attrs.evolve` with a short name."""
    return attrs.evolve(value, **changes)  # type: ignore[misc]


def run_concurrently(work: Callable[[int], T], threads: int) -> list[T]:
    """Run `work(i)` in `threads` threads released together; re-raise the first failure."""
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as e:  # re-raised in the test thread below
            errors.append(e)

    pool = [threading.Thread(target=target, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return results


def drain_claims(
    uow_factory: UnitOfWorkFactory, worker: str, now: datetime,
    lease: timedelta = timedelta(hours=1), limit: int = 100_000,
) -> list[ExportJob]:
    """Claim (one unit of work per claim) until nothing is claimable at `now`.

    Stores shared by a test session may hold other tests' jobs; tests assert about their own.
    """
    claimed: list[ExportJob] = []
    for _ in range(limit):
        with uow_factory() as uow:
            job = uow.exports.claim_next(worker, now, lease)
            uow.commit()
        if job is None:
            return claimed
        claimed.append(job)
    raise AssertionError(f"claim_next still returned jobs after {limit} claims")


def ids_of(jobs: Sequence[ExportJob]) -> list[uuid.UUID]:
    """Job ids in order."""
    return [j.job_id for j in jobs]
