"""ExportJobStore contract: idempotency keys, cursor pages, compare-and-set saves, claims, expiry.

Claims and expiry look at every org's jobs; a store shared by a test session holds other tests'
jobs too, so these tests assert about their own jobs within whatever the store returns.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from analytics_core.errors import Conflict
from analytics_core.exports import ExportGranularity, ExportJob, ExportKind, ExportStatus
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.usecases.exports import get_export, list_exports
from tests.contract.factories import (
    BASE,
    BUCKET,
    drain_claims,
    finished_job,
    ids_of,
    make_job,
    make_request,
    new_id,
)

LEASE = timedelta(minutes=10)
NOW = BASE + timedelta(days=1)


def add(uow_factory: UnitOfWorkFactory, *jobs: ExportJob) -> None:
    """Add jobs in one committed unit of work."""
    with uow_factory() as uow:
        for job in jobs:
            uow.exports.add(job)
        uow.commit()


def get(uow_factory: UnitOfWorkFactory, job: ExportJob) -> ExportJob | None:
    """The stored version of `job`."""
    with uow_factory() as uow:
        return uow.exports.get(job.org_id, job.job_id)


def save(uow_factory: UnitOfWorkFactory, job: ExportJob) -> bool:
    """exports.save in its own committed unit of work."""
    with uow_factory() as uow:
        saved = uow.exports.save(job)
        uow.commit()
    return saved


def test_added_job_round_trips_every_field(uow_factory: UnitOfWorkFactory) -> None:
    """Every field of a finished job with all options set survives storage exactly."""
    request = make_request(
        kind=ExportKind.EVENTS, granularity=ExportGranularity.HOURLY, tz="Asia/Kolkata",
        models=(new_id(), new_id()), start=BUCKET + timedelta(microseconds=1),
    )
    pending = make_job(request=request, idempotency_key="key-ü-1", scheduled=True,
                       initiated_by="apikey:ak_1", created_at=BASE + timedelta(microseconds=3))
    job = finished_job(pending, succeeded=True, expires_at=datetime(9000, 1, 1, tzinfo=UTC))
    fresh = make_job()
    add(uow_factory, job, fresh)
    assert get(uow_factory, job) == job
    assert get(uow_factory, fresh) == fresh


def test_failed_job_round_trips_its_error(uow_factory: UnitOfWorkFactory) -> None:
    """A failed job keeps its user-safe error and completion time."""
    job = finished_job(make_job(), succeeded=False, expires_at=datetime(9000, 1, 1, tzinfo=UTC))
    add(uow_factory, job)
    assert get(uow_factory, job) == job


def test_get_of_an_unknown_job_is_none(uow_factory: UnitOfWorkFactory) -> None:
    """An unknown job id gives None."""
    with uow_factory() as uow:
        assert uow.exports.get(new_id(), new_id()) is None


def test_get_of_another_orgs_job_is_none(uow_factory: UnitOfWorkFactory) -> None:
    """A job is invisible through any other org."""
    job = make_job()
    add(uow_factory, job)
    with uow_factory() as uow:
        assert uow.exports.get(new_id(), job.job_id) is None


def test_reused_idempotency_key_in_one_org_raises_conflict(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """A second job with an org's used key raises Conflict and is not stored."""
    first = make_job(idempotency_key="k1")
    second = make_job(org_id=first.org_id, idempotency_key="k1")
    add(uow_factory, first)
    with uow_factory() as uow, pytest.raises(Conflict):
        uow.exports.add(second)
    assert get(uow_factory, second) is None
    with uow_factory() as uow:
        assert uow.exports.find_by_idempotency_key(first.org_id, "k1") == first


def test_reused_key_in_one_unit_of_work_raises_conflict(uow_factory: UnitOfWorkFactory) -> None:
    """The key check also covers jobs added earlier in the same unit of work."""
    first = make_job(idempotency_key="k1")
    with uow_factory() as uow:
        uow.exports.add(first)
        with pytest.raises(Conflict):
            uow.exports.add(make_job(org_id=first.org_id, idempotency_key="k1"))


def test_one_idempotency_key_may_be_used_by_two_orgs(uow_factory: UnitOfWorkFactory) -> None:
    """Idempotency keys are scoped to an org."""
    a, b = make_job(idempotency_key="same"), make_job(idempotency_key="same")
    add(uow_factory, a, b)
    with uow_factory() as uow:
        assert uow.exports.find_by_idempotency_key(a.org_id, "same") == a
        assert uow.exports.find_by_idempotency_key(b.org_id, "same") == b


def test_jobs_without_idempotency_key_never_conflict(uow_factory: UnitOfWorkFactory) -> None:
    """Many jobs of one org without a key are all stored."""
    org = new_id()
    jobs = [make_job(org_id=org) for _ in range(3)]
    add(uow_factory, *jobs)
    assert [get(uow_factory, j) for j in jobs] == jobs


def test_find_by_idempotency_key_misses_give_none(uow_factory: UnitOfWorkFactory) -> None:
    """An unused key, or another org's key, finds nothing."""
    job = make_job(idempotency_key="k")
    add(uow_factory, job)
    with uow_factory() as uow:
        assert uow.exports.find_by_idempotency_key(job.org_id, "other") is None
        assert uow.exports.find_by_idempotency_key(new_id(), "k") is None


def test_find_by_idempotency_key_returns_the_current_version(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """After a save, the key finds the job as last saved."""
    job = make_job(idempotency_key="k")
    add(uow_factory, job)
    claimed = job.claim("w", NOW, LEASE)
    assert save(uow_factory, claimed)
    with uow_factory() as uow:
        assert uow.exports.find_by_idempotency_key(job.org_id, "k") == claimed


def seven_jobs(org: uuid.UUID) -> list[ExportJob]:
    """Jobs of one org, several sharing a created_at, in random insertion order."""
    offsets = [0, 1, 1, 1, 2, 3, 3]
    jobs = [make_job(org_id=org, created_at=BASE + timedelta(seconds=s)) for s in offsets]
    random.shuffle(jobs)
    return jobs


def newest_first(jobs: list[ExportJob]) -> list[ExportJob]:
    """Expected page order."""
    return sorted(jobs, key=lambda j: (j.created_at, j.job_id), reverse=True)


def test_page_lists_newest_first_by_created_at_then_job_id(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """Jobs come newest first; ties on created_at are broken by job_id, descending."""
    org = new_id()
    jobs = seven_jobs(org)
    add(uow_factory, *jobs, make_job())
    with uow_factory() as uow:
        assert uow.exports.page(org) == newest_first(jobs)


def test_page_honours_limit(uow_factory: UnitOfWorkFactory) -> None:
    """At most `limit` jobs, the newest ones."""
    org = new_id()
    jobs = seven_jobs(org)
    add(uow_factory, *jobs)
    with uow_factory() as uow:
        assert uow.exports.page(org, limit=3) == newest_first(jobs)[:3]


def test_page_before_cursor_is_exclusive_and_walks_every_job(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """Following (created_at, job_id) cursors visits every job once, in order, no gaps."""
    org = new_id()
    jobs = seven_jobs(org)
    add(uow_factory, *jobs)
    seen: list[ExportJob] = []
    before: tuple[datetime, uuid.UUID] | None = None
    with uow_factory() as uow:
        for _ in range(len(jobs) + 1):  # bounded: a non-exclusive cursor would loop forever
            page = uow.exports.page(org, limit=2, before=before)
            if not page:
                break
            seen.extend(page)
            before = (page[-1].created_at, page[-1].job_id)
    assert seen == newest_first(jobs)


def test_page_filters_by_status(uow_factory: UnitOfWorkFactory) -> None:
    """A status filter keeps only jobs in that status."""
    org = new_id()
    pending = [make_job(org_id=org, created_at=BASE + timedelta(seconds=s)) for s in (1, 2)]
    running = make_job(org_id=org).claim("w", NOW, LEASE)
    add(uow_factory, *pending, running)
    with uow_factory() as uow:
        assert uow.exports.page(org, status=ExportStatus.PENDING) == pending[::-1]
        assert uow.exports.page(org, status=ExportStatus.RUNNING) == [running]
        assert uow.exports.page(org, status=ExportStatus.FAILED) == []


def test_save_persists_the_next_version(uow_factory: UnitOfWorkFactory) -> None:
    """A job whose version is the stored version + 1 is saved."""
    job = make_job()
    add(uow_factory, job)
    claimed = job.claim("w", NOW, LEASE)
    assert save(uow_factory, claimed)
    assert get(uow_factory, job) == claimed


def test_save_refuses_a_stale_version(uow_factory: UnitOfWorkFactory) -> None:
    """Two changes from one version: the first saved wins, the second returns False."""
    running = make_job().claim("w", NOW, LEASE)
    add(uow_factory, running)
    far = datetime(9000, 1, 1, tzinfo=UTC)
    success = running.succeed(NOW, row_count=1, checksum="c" * 64, object_key="k", expires_at=far)
    late_failure = running.fail(NOW, "timeout", far)
    assert save(uow_factory, success)
    assert not save(uow_factory, late_failure)
    assert get(uow_factory, running) == success


def test_save_refuses_a_skipped_version(uow_factory: UnitOfWorkFactory) -> None:
    """A job two versions ahead of the stored one is not saved."""
    job = make_job()
    add(uow_factory, job)
    assert not save(uow_factory, job.claim("w", NOW, LEASE).renew(NOW, LEASE))
    assert get(uow_factory, job) == job


def test_save_of_an_unknown_job_is_false(uow_factory: UnitOfWorkFactory) -> None:
    """Saving a job that was never added returns False and stores nothing."""
    job = make_job().claim("w", NOW, LEASE)
    assert not save(uow_factory, job)
    assert get(uow_factory, job) is None


def test_claim_next_claims_oldest_claimable_job_first(uow_factory: UnitOfWorkFactory) -> None:
    """Claims come oldest first, each job running, leased to the worker, attempt counted."""
    org = new_id()
    jobs = [make_job(org_id=org, created_at=BASE - timedelta(hours=h)) for h in (2, 3, 1)]
    add(uow_factory, *jobs)
    mine = {j.job_id for j in jobs}
    claimed = [j for j in drain_claims(uow_factory, "w1", NOW, LEASE) if j.job_id in mine]
    assert ids_of(claimed) == ids_of(sorted(jobs, key=lambda j: j.created_at))
    for job in claimed:
        assert job.status is ExportStatus.RUNNING
        assert (job.lease_owner, job.lease_expires_at) == ("w1", NOW + LEASE)
        assert (job.attempts, job.version) == (1, 2)


def test_claim_is_persisted(uow_factory: UnitOfWorkFactory) -> None:
    """The job returned by claim_next is the stored version."""
    job = make_job()
    add(uow_factory, job)
    (claimed,) = [j for j in drain_claims(uow_factory, "w1", NOW, LEASE) if j.job_id == job.job_id]
    assert claimed == job.claim("w1", NOW, LEASE)
    assert get(uow_factory, job) == claimed


def test_claimed_job_is_not_claimed_again_while_leased(uow_factory: UnitOfWorkFactory) -> None:
    """Once drained, nothing is claimable at the same instant."""
    add(uow_factory, make_job())
    drain_claims(uow_factory, "w1", NOW, LEASE)
    with uow_factory() as uow:
        assert uow.exports.claim_next("w2", NOW, LEASE) is None


def test_claim_next_waits_until_a_retry_is_due(uow_factory: UnitOfWorkFactory) -> None:
    """A pending job with next_attempt_at is claimable from that instant on, not before."""
    later = make_job(next_attempt_at=NOW + timedelta(microseconds=1))
    due = make_job(next_attempt_at=NOW)
    add(uow_factory, later, due)
    claimed = ids_of(drain_claims(uow_factory, "w1", NOW, LEASE))
    assert due.job_id in claimed
    assert later.job_id not in claimed
    assert later.job_id in ids_of(drain_claims(uow_factory, "w1", NOW + timedelta(seconds=1)))


def test_claim_next_reclaims_a_job_whose_lease_expired(uow_factory: UnitOfWorkFactory) -> None:
    """A running job is skipped while leased and reclaimed from its lease expiry on."""
    leased = make_job().claim("w1", NOW, LEASE)
    add(uow_factory, leased)
    assert leased.job_id not in ids_of(drain_claims(uow_factory, "w2", NOW + LEASE / 2))
    reclaimed = drain_claims(uow_factory, "w2", NOW + LEASE, LEASE)
    (mine,) = [j for j in reclaimed if j.job_id == leased.job_id]
    assert mine == leased.claim("w2", NOW + LEASE, LEASE)
    assert mine.attempts == 2


def test_claim_next_never_claims_finished_jobs(uow_factory: UnitOfWorkFactory) -> None:
    """Succeeded, failed and expired jobs are not claimable."""
    far = datetime(9000, 1, 1, tzinfo=UTC)
    done = [finished_job(make_job(), succeeded=s, expires_at=far) for s in (True, False)]
    expired = finished_job(make_job(), succeeded=True, expires_at=far).expire()
    add(uow_factory, *done, expired)
    claimed = set(ids_of(drain_claims(uow_factory, "w1", NOW, LEASE)))
    assert claimed.isdisjoint(ids_of([*done, expired]))


def test_expirable_lists_finished_jobs_past_expiry_oldest_first(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """Succeeded or failed jobs with expires_at <= now come oldest first; others never."""
    at = NOW + timedelta(days=90)

    def finished(seconds: int, *, succeeded: bool) -> ExportJob:
        job = make_job(created_at=BASE + timedelta(seconds=seconds))
        return finished_job(job, succeeded=succeeded, expires_at=at + timedelta(seconds=seconds))

    due = [finished(-2, succeeded=True), finished(-1, succeeded=False),
           finished(0, succeeded=True)]
    not_yet = finished_job(make_job(), succeeded=True, expires_at=at + timedelta(microseconds=1))
    expired = finished(-3, succeeded=True).expire()
    unfinished = [make_job(), make_job().claim("w", NOW, LEASE)]
    add(uow_factory, *due, not_yet, expired, *unfinished)
    with uow_factory() as uow:
        listed = uow.exports.expirable(at, limit=100_000)
    mine = set(ids_of([*due, not_yet, expired, *unfinished]))
    assert [j for j in listed if j.job_id in mine] == due
    retire(uow_factory, due)


def test_expirable_honours_limit(uow_factory: UnitOfWorkFactory) -> None:
    """At most `limit` jobs, the oldest ones."""
    epoch = datetime(1971, 1, 1, tzinfo=UTC)
    jobs = [
        finished_job(make_job(created_at=epoch + timedelta(seconds=s)), succeeded=True,
                     expires_at=epoch + timedelta(days=1, seconds=s))
        for s in (3, 1, 2)
    ]
    add(uow_factory, *jobs)
    with uow_factory() as uow:
        listed = uow.exports.expirable(NOW, limit=2)
    assert listed == sorted(jobs, key=lambda j: j.created_at)[:2]
    retire(uow_factory, jobs)


def retire(uow_factory: UnitOfWorkFactory, jobs: list[ExportJob]) -> None:
    """Expire finished jobs so a store shared by the session does not list them again."""
    for job in jobs:
        assert save(uow_factory, job.expire())


def test_a_job_whose_zone_tzdata_no_longer_knows_reads_as_failed(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """A job stored under a zone the running tzdata does not know (here one that never
    existed) still reads, listed and alone, as failed with a clear error; the row is intact."""
    job = make_job(request=make_request(tz="Mars/Base"))
    add(uow_factory, job)
    stored = get(uow_factory, job)
    assert stored is not None
    assert stored.request.tz == "Mars/Base"
    read = get_export(job.org_id, job.job_id, uow_factory=uow_factory)
    [listed] = list_exports(job.org_id, uow_factory=uow_factory).jobs
    for seen in (read, listed):
        assert seen.status is ExportStatus.FAILED
        assert seen.error is not None
        assert "'Mars/Base' is not known" in seen.error
    assert get(uow_factory, job) == stored  # reading changed nothing


def test_closes_and_their_adjustments_are_found(uow_factory: UnitOfWorkFactory) -> None:
    """closes() lists succeeded, unexpired usage closes (not adjustments, not expired, not
    plain exports); adjustments() lists a close's adjustment jobs by number; the new fields
    round-trip."""
    org = new_id()
    later = BASE + timedelta(days=90)
    close = finished_job(make_job(request=make_request(org_id=org, close=True)),
                         succeeded=True, expires_at=later)
    close = attrs.evolve(close, filed_digest="d" * 64)
    plain = finished_job(make_job(org_id=org), succeeded=True, expires_at=later)
    gone = finished_job(make_job(request=make_request(org_id=org, close=True)),
                        succeeded=True, expires_at=BASE)
    second = make_job(request=close.request, adjusts=close.job_id, adjustment=2,
                      idempotency_key=f"adjust:{close.job_id}:2")
    first = make_job(request=close.request, adjusts=close.job_id, adjustment=1,
                     idempotency_key=f"adjust:{close.job_id}:1")
    add(uow_factory, close, plain, gone, second, first)
    with uow_factory() as uow:
        closes = [j for j in uow.exports.closes(BASE + timedelta(days=1)) if j.org_id == org]
        steps = uow.exports.adjustments(org, close.job_id)
        assert uow.exports.adjustments(new_id(), close.job_id) == []
    assert closes == [close]
    assert steps == [first, second]
    assert closes[0].filed_digest == "d" * 64
    assert closes[0].close
