"""Export requests and the guarded export-job state machine (SPEC §5, §7)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics_core.errors import InvalidTransition, ValidationFailed
from analytics_core.exports import (
    MAX_MODELS,
    ExportGranularity,
    ExportJob,
    ExportKind,
    ExportRequest,
    ExportStatus,
    object_key,
)

ORG = uuid.UUID(int=7)
T0 = datetime(2025, 6, 1, tzinfo=UTC)
LEASE = timedelta(minutes=5)
DAY = timedelta(days=1)


def request(
    span: timedelta = DAY, kind: ExportKind = ExportKind.USAGE, **kw: object
) -> ExportRequest:
    """A request of one org starting at T0."""
    return ExportRequest(ORG, T0, T0 + span, kind=kind, **kw)  # type: ignore[arg-type]


def new_job(**kw: object) -> ExportJob:
    """A pending job created at T0."""
    return ExportJob(uuid.UUID(int=99), request(), T0, "alice", **kw)  # type: ignore[arg-type]


def invalid_fields(make: Callable[[], object]) -> list[str]:
    """Field names reported by a ValidationFailed raised by `make`."""
    with pytest.raises(ValidationFailed) as info:
        make()
    return [e.field for e in info.value.errors]


@pytest.mark.parametrize("span", [timedelta(0), -timedelta(seconds=1)], ids=["equal", "inverted"])
def test_request_end_must_be_after_start(span: timedelta) -> None:
    """end <= start is rejected naming timeRange.end."""
    assert invalid_fields(lambda: request(span)) == ["timeRange.end"]


def test_usage_request_may_span_exactly_31_days() -> None:
    """31 days is the inclusive limit for usage exports."""
    assert request(timedelta(days=31)).end == T0 + timedelta(days=31)


def test_usage_request_longer_than_31_days_is_rejected() -> None:
    """One microsecond past 31 days is rejected naming timeRange."""
    assert invalid_fields(lambda: request(timedelta(days=31, microseconds=1))) == ["timeRange"]


def test_events_request_may_span_exactly_7_days() -> None:
    """7 days is the inclusive limit for raw-event exports."""
    assert request(timedelta(days=7), ExportKind.EVENTS).kind is ExportKind.EVENTS


def test_events_request_longer_than_7_days_is_rejected() -> None:
    """Raw-event exports are limited to 7 days even though usage allows 31."""
    assert invalid_fields(lambda: request(timedelta(days=8), ExportKind.EVENTS)) == ["timeRange"]


def test_too_many_models_are_rejected() -> None:
    """At most MAX_MODELS models may be listed."""
    models = tuple(uuid.UUID(int=i) for i in range(MAX_MODELS + 1))
    assert invalid_fields(lambda: request(models=models)) == ["models"]
    assert len(request(models=models[:MAX_MODELS]).models) == MAX_MODELS


def test_request_errors_are_collected_together() -> None:
    """An inverted range with too many models reports both fields."""
    models = tuple(uuid.UUID(int=i) for i in range(MAX_MODELS + 1))
    assert invalid_fields(lambda: request(-DAY, models=models)) == ["timeRange.end", "models"]


def test_request_defaults_are_daily_utc_usage() -> None:
    """Defaults: daily granularity, UTC, every model, usage rollups."""
    made = request()
    assert (made.granularity, made.tz, made.models, made.kind) == (
        ExportGranularity.DAILY,
        "UTC",
        (),
        ExportKind.USAGE,
    )


def running(job: ExportJob | None = None, at: datetime = T0) -> ExportJob:
    """A job claimed by worker w1 at `at`."""
    return (job or new_job()).claim("w1", at, LEASE)


def succeeded() -> ExportJob:
    """A job that finished successfully."""
    return running().succeed(
        T0, row_count=3, checksum="ab" * 32, object_key="k", expires_at=T0 + 90 * DAY
    )


def failed() -> ExportJob:
    """A job that failed for good."""
    return running().fail(T0, "boom", T0 + 90 * DAY)


STATES: dict[ExportStatus, Callable[[], ExportJob]] = {
    ExportStatus.PENDING: new_job,
    ExportStatus.RUNNING: running,
    ExportStatus.SUCCEEDED: succeeded,
    ExportStatus.FAILED: failed,
    ExportStatus.EXPIRED: lambda: succeeded().expire(),
}

LATER = T0 + timedelta(hours=1)  # every lease taken at T0 has expired by then
OPERATIONS: dict[str, Callable[[ExportJob], ExportJob]] = {
    "claim": lambda j: j.claim("w2", LATER, LEASE),
    "renew": lambda j: j.renew(T0, LEASE),
    "succeed": lambda j: j.succeed(
        LATER, row_count=1, checksum="c", object_key="k", expires_at=LATER + DAY
    ),
    "retry_later": lambda j: j.retry_later(LATER, "transient"),
    "fail": lambda j: j.fail(LATER, "final", LATER + DAY),
    "expire": lambda j: j.expire(),
}

ALLOWED: dict[ExportStatus, dict[str, ExportStatus]] = {
    ExportStatus.PENDING: {"claim": ExportStatus.RUNNING, "fail": ExportStatus.FAILED},
    ExportStatus.RUNNING: {
        "claim": ExportStatus.RUNNING,
        "renew": ExportStatus.RUNNING,
        "succeed": ExportStatus.SUCCEEDED,
        "retry_later": ExportStatus.PENDING,
        "fail": ExportStatus.FAILED,
    },
    ExportStatus.SUCCEEDED: {"expire": ExportStatus.EXPIRED},
    ExportStatus.FAILED: {"expire": ExportStatus.EXPIRED},
    ExportStatus.EXPIRED: {},
}
CASES = [(state, op) for state in ExportStatus for op in OPERATIONS]


@pytest.mark.parametrize(("state", "operation"), CASES, ids=[f"{s}-{o}" for s, o in CASES])
def test_transition_table(state: ExportStatus, operation: str) -> None:
    """Allowed transitions reach their status with version + 1; all others raise."""
    job = STATES[state]()
    assert job.status is state
    target = ALLOWED[state].get(operation)
    if target is None:
        with pytest.raises(InvalidTransition):
            OPERATIONS[operation](job)
        return
    moved = OPERATIONS[operation](job)
    assert (moved.status, moved.version) == (target, job.version + 1)


def test_renew_needs_a_running_job() -> None:
    """Renewing a lease of a job given back to pending is refused, not a silent restart."""
    with pytest.raises(InvalidTransition):
        running().retry_later(LATER, "flaky").renew(LATER, LEASE)


def test_success_can_never_become_a_failure() -> None:
    """A late failure cannot overwrite a success."""
    with pytest.raises(InvalidTransition):
        succeeded().fail(LATER, "late", LATER + DAY)
    with pytest.raises(InvalidTransition):
        succeeded().retry_later(LATER, "late")


@given(st.lists(st.sampled_from(sorted(OPERATIONS)), max_size=25))
def test_any_operation_sequence_keeps_the_invariants(operations: list[str]) -> None:
    """Each accepted step adds exactly 1 to version; once succeeded, never failed or pending."""
    job = new_job()
    ever_succeeded = False
    for name in operations:
        try:
            moved = OPERATIONS[name](job)
        except InvalidTransition:
            continue
        assert moved.version == job.version + 1
        assert moved.status in ALLOWED[job.status].values()
        job = moved
        ever_succeeded = ever_succeeded or job.status is ExportStatus.SUCCEEDED
        if ever_succeeded:
            assert job.status in {ExportStatus.SUCCEEDED, ExportStatus.EXPIRED}


def test_claim_counts_the_attempt_and_takes_a_lease() -> None:
    """Claiming sets the worker, the lease end and adds one attempt."""
    job = running()
    assert (job.status, job.attempts, job.lease_owner, job.lease_expires_at) == (
        ExportStatus.RUNNING,
        1,
        "w1",
        T0 + LEASE,
    )


def test_claim_while_the_lease_is_valid_is_refused() -> None:
    """Another worker cannot take a job whose lease has not expired."""
    job = running()
    with pytest.raises(InvalidTransition):
        job.claim("w2", T0 + LEASE - timedelta(microseconds=1), LEASE)


def test_claim_after_the_lease_expired_restarts_the_attempt() -> None:
    """At lease end the job is reclaimable; the new owner gets a second attempt."""
    job = running().claim("w2", T0 + LEASE, LEASE)
    assert (job.lease_owner, job.attempts, job.version) == ("w2", 2, 3)


def test_retry_later_releases_the_lease_and_schedules_the_next_attempt() -> None:
    """A transient failure returns the job to pending, due at the given time."""
    job = running().retry_later(LATER, "s3 down")
    assert (job.status, job.lease_owner, job.lease_expires_at, job.next_attempt_at, job.error) == (
        ExportStatus.PENDING,
        None,
        None,
        LATER,
        "s3 down",
    )


def test_success_records_the_result_and_clears_errors() -> None:
    """succeed stores rows, checksum, key and expiry, and drops a previous transient error."""
    job = running(running().retry_later(T0, "flaky"), at=T0).succeed(
        LATER, row_count=5, checksum="ff", object_key="obj", expires_at=LATER + DAY
    )
    assert (job.row_count, job.checksum, job.object_key, job.error, job.completed_at) == (
        5,
        "ff",
        "obj",
        None,
        LATER,
    )


@pytest.mark.parametrize(
    ("job", "now", "claimable"),
    [
        (new_job(), T0, True),
        (new_job(next_attempt_at=LATER), LATER - timedelta(microseconds=1), False),
        (new_job(next_attempt_at=LATER), LATER, True),
        (running(), T0 + LEASE - timedelta(microseconds=1), False),
        (running(), T0 + LEASE, True),
        (attrs.evolve(running(), lease_expires_at=None), LATER, False),
        (succeeded(), LATER + 1000 * DAY, False),
        (failed(), LATER + 1000 * DAY, False),
        (succeeded().expire(), LATER + 1000 * DAY, False),
    ],
    ids=[
        "pending-due",
        "pending-not-yet",
        "pending-exactly-due",
        "running-leased",
        "running-lease-ended",
        "running-no-lease",
        "succeeded",
        "failed",
        "expired",
    ],
)
def test_is_claimable(job: ExportJob, now: datetime, claimable: bool) -> None:
    """Pending and due, or running with an expired lease; nothing else."""
    assert job.is_claimable(now) is claimable


def test_job_org_is_the_request_org() -> None:
    """A job belongs to its request's org."""
    assert new_job().org_id == ORG


def test_object_key_follows_the_spec_layout() -> None:
    """Keys are analytics/exports/{org_id}/{name}."""
    assert object_key(ORG, "x.csv") == f"analytics/exports/{ORG}/x.csv"


@given(
    st.sampled_from(list(ExportGranularity)),
    st.sampled_from(list(ExportKind)),
    st.lists(st.uuids(), max_size=5).map(tuple),
    st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=7)),
    st.sampled_from(sorted(OPERATIONS)),
)
def test_request_and_job_round_trip_through_asdict_and_evolve(
    granularity: ExportGranularity,
    kind: ExportKind,
    models: tuple[uuid.UUID, ...],
    span: timedelta,
    operation: str,
) -> None:
    """ExportRequest and ExportJob (in any reachable state) rebuild unchanged."""
    made = request(span, kind, granularity=granularity, models=models)
    assert ExportRequest(**attrs.asdict(made, recurse=False)) == made
    job = running(ExportJob(uuid.uuid4(), made, T0, "bob", idempotency_key="k"))
    with contextlib.suppress(InvalidTransition):
        job = OPERATIONS[operation](job)
    assert ExportJob(**attrs.asdict(job, recurse=False)) == job
    assert attrs.evolve(job) == job
