"""Daily raw-event partitions on PostgreSQL and retention purge on both engines."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from analytics_adapters.sql import SqlStorage
from analytics_adapters.sql.partitions import event_partitions, partition_name
from analytics_adapters.sql.purge import months_before, purge
from analytics_core.access import Outcome
from analytics_core.events import UsageEvent
from analytics_core.exports import ExportJob
from analytics_core.records import AuditEntry, DeadLetter
from analytics_core.rollups import build_rollups
from tests.contract.factories import make_job
from tests.integration.sql_support import T0, event, events_over, fresh_storage

NOW = T0
FORBID_DELETE = """
CREATE FUNCTION forbid_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'DELETE on raw events'; END $$;
CREATE TRIGGER forbid_delete BEFORE DELETE ON usage_events
  FOR EACH ROW EXECUTE FUNCTION forbid_delete();
"""


@pytest.fixture
def pg() -> Iterator[SqlStorage]:
    """A fresh migrated PostgreSQL database."""
    with fresh_storage("postgres") as storage:
        yield storage


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                        pytest.param("citus", marks=pytest.mark.citus)])
def storage(request: pytest.FixtureRequest) -> Iterator[SqlStorage]:
    """A fresh migrated database of each kind."""
    with fresh_storage(request.param) as s:
        yield s


def days_of(storage: SqlStorage) -> set[date]:
    """Days that have a raw-event partition."""
    with storage.engine.connect() as conn:
        return {day for _, day in event_partitions(conn)}


def ingest(storage: SqlStorage, events: list[UsageEvent]) -> None:
    """Store events and their rollups in one committed unit of work."""
    with storage.unit_of_work() as uow:
        inserted = uow.events.add_new(events)
        uow.rollups.add(build_rollups(inserted))
        uow.commit()


@pytest.mark.postgres
def test_ensure_partitions_creates_the_days_ahead(pg: SqlStorage) -> None:
    """ensure_partitions makes one partition per day from the day before to N days ahead."""
    today = date(2031, 1, 30)
    created = pg.ensure_partitions(today, days_ahead=3)
    expected = {today + timedelta(days=n) for n in range(-1, 4)}
    assert created == 5
    assert expected <= days_of(pg)
    assert pg.ensure_partitions(today, days_ahead=3) == 0


@pytest.mark.postgres
def test_a_late_event_creates_its_partition_inside_the_ingest_transaction(pg: SqlStorage) -> None:
    """A backfilled day gets its partition on demand; a rollback takes it away again."""
    late = event(uuid.uuid4(), NOW - timedelta(days=200))
    with pg.unit_of_work() as uow:
        assert uow.events.add_new([late]) == [late]
    assert late.occurred_at.date() not in days_of(pg)
    ingest(pg, [late])
    assert late.occurred_at.date() in days_of(pg)
    with pg.unit_of_work() as uow:
        assert list(uow.events.scan(late.org_id, NOW - timedelta(days=201), NOW)) == [late]


@pytest.mark.postgres
def test_concurrent_ingests_into_one_new_day_all_succeed(pg: SqlStorage) -> None:
    """Several transactions needing the same missing partition serialise, none fails."""
    org = uuid.uuid4()
    day = NOW + timedelta(days=300)
    batches = [events_over(org, day, 5, timedelta(minutes=1)) for _ in range(6)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(batches))

    def run(batch: list[UsageEvent]) -> None:
        try:
            barrier.wait()
            ingest(pg, batch)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with pg.unit_of_work() as uow:
        stored = list(uow.events.scan(org, day, day + timedelta(days=1)))
    assert len(stored) == 30


@pytest.mark.postgres
def test_purge_drops_old_partitions_without_deleting_raw_rows(pg: SqlStorage) -> None:
    """Raw days past retention disappear by DROP; a DELETE trigger on the raw table never fires."""
    org = uuid.uuid4()
    old = events_over(org, NOW - timedelta(days=402), 3, timedelta(hours=2))
    recent = events_over(org, NOW - timedelta(days=10), 3)
    ingest(pg, old + recent)
    with pg.engine.begin() as conn:
        conn.exec_driver_sql(FORBID_DELETE)
    with pytest.raises(sa.exc.DBAPIError, match="DELETE on raw events"), pg.engine.begin() as c:
        c.execute(sa.text("DELETE FROM usage_events WHERE org_id = :org"), {"org": org})
    report = purge(pg.engine, NOW, raw_retention=timedelta(days=400))
    assert partition_name(old[0].occurred_at.date()) in report.dropped_partitions
    assert all(day >= (NOW - timedelta(days=400)).date() for day in days_of(pg))
    assert report.event_keys == 3
    with pg.unit_of_work() as uow:
        kept = list(uow.events.scan(org, NOW - timedelta(days=500), NOW))
        assert kept == recent
        assert uow.events.fingerprints([e.key for e in old]) == {}


@pytest.mark.postgres
def test_purge_creates_the_partitions_ahead_of_now(pg: SqlStorage) -> None:
    """After a purge at NOW the next week of partitions exists."""
    purge(pg.engine, NOW)
    assert {NOW.date() + timedelta(days=n) for n in range(8)} <= days_of(pg)


def test_purge_removes_old_raw_events_on_either_engine(storage: SqlStorage) -> None:
    """Events older than the raw retention are gone, newer ones stay."""
    org = uuid.uuid4()
    old = events_over(org, NOW - timedelta(days=30), 2)
    recent = events_over(org, NOW - timedelta(days=2), 2)
    ingest(storage, old + recent)
    purge(storage.engine, NOW, raw_retention=timedelta(days=20))
    with storage.unit_of_work() as uow:
        assert list(uow.events.scan(org, NOW - timedelta(days=60), NOW)) == recent


def test_purge_deletes_rollups_older_than_the_kept_months(storage: SqlStorage) -> None:
    """Rollups before the first of the month 13 months back are deleted, later ones kept."""
    org = uuid.uuid4()
    cutoff = months_before(NOW, 13)
    before = event(org, cutoff - timedelta(minutes=15))
    after = event(org, cutoff)
    with storage.unit_of_work() as uow:
        uow.rollups.add(build_rollups([before, after]))
        uow.commit()
    report = purge(storage.engine, NOW, raw_retention=timedelta(days=400), rollup_months=13)
    assert report.rollups == 1
    with storage.unit_of_work() as uow:
        kept = uow.rollups.query(org, cutoff - timedelta(days=1), NOW)
    assert [r.key.bucket_start for r in kept] == [cutoff]
    with storage.unit_of_work() as uow:  # budget values kept between passes are read again
        assert uow.freshness.history_revisions().get(org) == 1


def test_purge_deletes_expired_exports_audit_and_dead_letters_by_policy(
    storage: SqlStorage,
) -> None:
    """Each record kind goes once older than its own retention; recent ones stay."""
    org = uuid.uuid4()
    old_job = expired_job(org, expires_at=NOW - timedelta(days=91))
    new_job = expired_job(org, expires_at=NOW - timedelta(days=89))
    entries = [audit(org, NOW - timedelta(days=d)) for d in (5, 401)]
    letters = [DeadLetter(uuid.uuid4(), NOW - timedelta(days=d), "http", b"{}", "bad", org)
               for d in (5, 401)]
    with storage.unit_of_work() as uow:
        for job in (old_job, new_job):
            uow.exports.add(job)
        for entry in entries:
            uow.audit.record(entry)
        uow.dead_letters.add(letters)
        uow.commit()
    purge(storage.engine, NOW)
    with storage.unit_of_work() as uow:
        assert uow.exports.get(org, old_job.job_id) is None
        assert uow.exports.get(org, new_job.job_id) == new_job
        assert uow.audit.recent(org) == entries[:1]
        assert uow.dead_letters.recent(org) == letters[:1]


def test_purge_keeps_audit_forever_when_its_retention_is_none(storage: SqlStorage) -> None:
    """audit_retention=None is a keep-forever policy."""
    org = uuid.uuid4()
    entry = audit(org, NOW - timedelta(days=4000))
    with storage.unit_of_work() as uow:
        uow.audit.record(entry)
        uow.commit()
    assert purge(storage.engine, NOW, audit_retention=None).audit_entries == 0
    with storage.unit_of_work() as uow:
        assert uow.audit.recent(org) == [entry]


def expired_job(org: uuid.UUID, *, expires_at: datetime) -> ExportJob:
    """An export job of `org` that succeeded long ago and has expired."""
    job = make_job(org_id=org, created_at=NOW - timedelta(days=200))
    claimed = job.claim("w", NOW - timedelta(days=199), timedelta(minutes=5))
    done = claimed.succeed(NOW - timedelta(days=199), row_count=1, checksum="c",
                           object_key="k", expires_at=expires_at)
    return done.expire()


def audit(org: uuid.UUID, at: datetime) -> AuditEntry:
    """An allowed audit entry about `org` at `at`."""
    return AuditEntry(uuid.uuid4(), at, "actor", org, org, "analytics:usage:read",
                      f"orgs/{org}", Outcome.ALLOWED, "role grants action", "req-1")


@pytest.mark.postgres
def test_raw_events_table_is_range_partitioned_on_postgres(pg: SqlStorage) -> None:
    """The raw table is a partitioned table, not a plain one."""
    with pg.engine.connect() as conn:
        kind = conn.execute(sa.text(
            "SELECT relkind FROM pg_class WHERE relname = 'usage_events'")).scalar_one()
    assert kind == "p"
