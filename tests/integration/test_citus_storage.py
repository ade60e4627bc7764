"""The product's storage on the Citus cluster of `.ci/citus` (SPEC §16).

The migrations distribute every org-keyed table by `org_id`, co-located, and make the global
tables reference tables; partitions created later are distributed too; org-scoped reads are
routed to one shard while cross-org reads fan out; one ingest batch spanning workers commits
or rolls back as a whole, with its stream offset.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from analytics_adapters.sql import SqlStorage, migrate_to_head
from analytics_adapters.sql import citus as citus_layout
from analytics_adapters.sql.migrate import upgrade
from analytics_adapters.sql.schema import metadata
from analytics_adapters.system import RandomIds, SystemClock
from analytics_core.ports import UnitOfWork
from analytics_core.usecases.ingest import RawMessage, StreamCheckpoint, ingest_batch
from tests.contract.citus_backends import TEST_SHARD_COUNT, fresh_citus_database
from tests.contract.sql_backends import storage_at
from tests.integration.sql_support import T0

pytestmark = pytest.mark.citus
MODEL = uuid.uuid4()


@pytest.fixture(scope="module")
def storage() -> Iterator[SqlStorage]:
    """This module's own migrated Citus database."""
    with fresh_citus_database() as url, storage_at(url) as storage:
        yield storage


def _scalar(storage: SqlStorage, sql: str, **params: object) -> object:
    with storage.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def _rows(storage: SqlStorage, sql: str, **params: object) -> list[sa.Row[object]]:
    with storage.engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params))


def _worker_of(storage: SqlStorage, org: uuid.UUID) -> int:
    return int(str(_scalar(
        storage, "SELECT nodeport FROM citus_shards WHERE table_name = 'usage_events'::regclass"
        " AND shardid = get_shard_id_for_distribution_column('usage_events', :org)", org=org)))


def orgs_on_two_workers(storage: SqlStorage) -> tuple[uuid.UUID, uuid.UUID]:
    """Two org ids whose shards sit on different workers."""
    first = uuid.uuid4()
    home = _worker_of(storage, first)
    for _ in range(200):
        other = uuid.uuid4()
        if _worker_of(storage, other) != home:
            return first, other
    pytest.fail("no org id hashed to a shard on another worker in 200 tries")


def test_every_org_keyed_table_is_distributed_by_org_and_co_located(
    storage: SqlStorage,
) -> None:
    """Every table with an org_id column is hash distributed by it in one co-location group
    (with its partitions); every other table but Alembic's is a reference table."""
    org_keyed = {t.name for t in metadata.tables.values() if "org_id" in t.c} - set(
        citus_layout.REFERENCE)
    layout = {r.name: r for r in _rows(storage, """
        SELECT c.relname AS name, p.partmethod AS method, p.colocationid AS colocation,
               column_to_column_name(p.logicalrelid, p.partkey) AS column
        FROM pg_dist_partition p JOIN pg_class c ON c.oid = p.logicalrelid""")}
    distributed = {n for n, r in layout.items() if r.method == "h"}
    partitions = {n for n in distributed if n.startswith("usage_events_p")}
    assert distributed - partitions == org_keyed == set(citus_layout.DISTRIBUTED)
    assert partitions  # the migrations created some days ahead
    assert {r.column for n, r in layout.items() if r.method == "h"} == {"org_id"}
    assert len({r.colocation for r in layout.values() if r.method == "h"}) == 1
    reference = {n for n, r in layout.items() if r.method == "n"}
    assert reference == set(citus_layout.REFERENCE)
    assert reference | org_keyed == set(metadata.tables)


def test_shards_of_every_distributed_table_are_on_both_workers(storage: SqlStorage) -> None:
    """Each distributed table has the test shard count, spread over both workers."""
    rows = _rows(storage, """
        SELECT table_name::text AS name, count(*) AS shards, count(DISTINCT nodeport) AS nodes
        FROM citus_shards WHERE citus_table_type = 'distributed' GROUP BY 1""")
    assert rows
    assert {(r.shards, r.nodes) for r in rows} == {(TEST_SHARD_COUNT, 2)}


def test_keys_of_the_sequence_numbered_tables_include_the_org(storage: SqlStorage) -> None:
    """audit_log, dead_letters and dedupe_conflicts are keyed (org_id, seq) on Citus."""
    for table in citus_layout.WIDENED_KEYS:
        key = _scalar(storage, "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                      "WHERE conrelid = CAST(:t AS regclass) AND contype = 'p'", t=table)
        assert key == "PRIMARY KEY (org_id, seq)"


def test_a_partition_created_later_is_distributed_and_co_located(storage: SqlStorage) -> None:
    """The partition function used at ingest creates distributed day partitions."""
    day = date(2031, 1, 1) + timedelta(days=uuid.uuid4().int % 3000)
    assert storage.ensure_partitions(day, days_ahead=0, days_behind=0) == 1
    name = f"usage_events_p{day:%Y%m%d}"
    assert _scalar(storage, "SELECT count(*) FROM citus_shards WHERE table_name = "
                   "CAST(:t AS regclass)", t=name) == TEST_SHARD_COUNT
    assert _scalar(storage, "SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = "
                   "CAST(:t AS regclass)", t=name) == _scalar(
        storage, "SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = "
        "'usage_events'::regclass")


def _plan(storage: SqlStorage, sql: str, **params: object) -> str:
    with storage.engine.connect() as conn:
        return "\n".join(str(r[0]) for r in conn.execute(sa.text(f"EXPLAIN {sql}"), params))


def test_an_org_scoped_read_is_routed_to_one_shard_and_a_fleet_read_fans_out(
    storage: SqlStorage,
) -> None:
    """EXPLAIN: one org's rollups read one shard; the active orgs of a window read all."""
    one = _plan(storage, "SELECT * FROM rollups_1h WHERE org_id = :org AND bucket_start >= :s",
                org=uuid.uuid4(), s=T0)
    assert "Task Count: 1" in one
    every = _plan(storage, "SELECT DISTINCT org_id FROM rollups_15m WHERE bucket_start >= :s",
                  s=T0)
    assert f"Task Count: {TEST_SHARD_COUNT}" in every


def _message(org: uuid.UUID, at: datetime, offset: int | None = None) -> RawMessage:
    """One valid event of `org` at `at`, as the producers send it."""
    return RawMessage({
        "eventId": str(uuid.uuid4()), "orgId": str(org), "modelId": str(MODEL),
        "occurredAt": at.isoformat(), "status": "success", "latencyMs": 120,
        "inputTokens": 10, "outputTokens": 5, "costEstimateCents": 1.25, "clientId": "web",
    }, offset)


class Boom(Exception):
    """The failure injected after the offset is written."""


def test_an_ingest_batch_over_two_workers_commits_with_its_offset_or_not_at_all(
    storage: SqlStorage,
) -> None:
    """A batch whose events live on both workers stores events, rollups and the stream offset
    together; a batch that fails before commit leaves none of them."""
    a, b = orgs_on_two_workers(storage)
    now = datetime.now(UTC).replace(microsecond=0)
    storage.ensure_partitions(now.date())
    messages = [_message(a, now - timedelta(minutes=5), 0),
                _message(b, now - timedelta(minutes=4), 1)]
    stream = f"s-{uuid.uuid4().hex[:8]}"

    def broken_factory() -> UnitOfWork:
        """Units whose offset save writes, then fails: everything before it is in flight."""
        unit = storage.unit_of_work()
        original = unit.offsets.save

        def save(consumer: str, stream: str, offset: int) -> None:
            original(consumer, stream, offset)
            raise Boom

        unit.offsets.save = save  # type: ignore[method-assign]
        return unit

    with pytest.raises(Boom):
        ingest_batch(messages, source="stream", uow_factory=broken_factory, clock=SystemClock(),
                     ids=RandomIds(), checkpoint=StreamCheckpoint("c", stream, 1, None))
    with storage.unit_of_work() as uow:
        assert uow.offsets.get("c", stream) is None
    assert _scalar(storage, "SELECT count(*) FROM usage_events WHERE org_id IN (:a, :b)",
                   a=a, b=b) == 0
    assert _scalar(storage, "SELECT count(*) FROM rollups_15m WHERE org_id IN (:a, :b)",
                   a=a, b=b) == 0

    result = ingest_batch(messages, source="stream", uow_factory=storage.unit_of_work,
                          clock=SystemClock(), ids=RandomIds(),
                          checkpoint=StreamCheckpoint("c", stream, 1, None))
    assert result.accepted == 2
    with storage.unit_of_work() as uow:
        assert uow.offsets.get("c", stream) == 1
    for org in (a, b):
        assert _scalar(storage, "SELECT count(*) FROM usage_events WHERE org_id = :o",
                       o=org) == 1
        assert _scalar(storage, "SELECT sum(invocations) FROM rollups_15m WHERE org_id = :o",
                       o=org) == 1


def test_an_upgrade_from_0015_distributes_tables_that_already_hold_rows() -> None:
    """Migrating an existing database (rows, an org-less dead letter) onto the cluster keeps
    every row and stores the org-less letter under the nil UUID."""
    with fresh_citus_database(migrate=False) as url, storage_at(url) as storage:
        upgrade(url, "0015")
        org = uuid.uuid4()
        with storage.engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO dead_letters (dead_letter_id, org_id, received_at, source, raw,"
                " reason) VALUES (:a, NULL, now(), 'http', 'x', 'bad'),"
                " (:b, :org, now(), 'http', 'y', 'bad')"),
                {"a": uuid.uuid4(), "b": uuid.uuid4(), "org": org})
            conn.execute(sa.text(
                "INSERT INTO audit_log (audit_id, org_id, at, actor, action, resource, outcome,"
                " reason, cross_org) VALUES (:id, :org, now(), 'k', 'read', 'usage', 'allowed',"
                " '', false)"), {"id": uuid.uuid4(), "org": org})
        assert migrate_to_head(url)
        assert sorted(str(r.org_id) for r in _rows(
            storage, "SELECT org_id FROM dead_letters")) == sorted(
            [str(uuid.UUID(int=0)), str(org)])
        assert _scalar(storage, "SELECT count(*) FROM audit_log WHERE org_id = :o", o=org) == 1
        assert _scalar(storage, "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = "
                       "'dead_letters'::regclass") == 1
        with storage.unit_of_work() as uow:
            letters = uow.dead_letters.recent(None)
        assert {letter.org_id for letter in letters} == {None, org}
