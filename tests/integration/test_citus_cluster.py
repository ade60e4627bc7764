"""The local Citus cluster of `.ci/citus`: two workers, sharding by org and two-phase commit.

`.ci/citus setup && .ci/citus start` runs a coordinator on 127.0.0.1:5440 and workers on 5441
and 5442 (ANALYTICS_TEST_CITUS_URL names another coordinator). These tests create a uniquely
named distributed table in the coordinator's `postgres` database and drop it at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from tests.conftest import port_open, require_service

CITUS_URL = make_url(os.environ.get(
    "ANALYTICS_TEST_CITUS_URL", "postgresql+psycopg://postgres@127.0.0.1:5440/postgres"))
SHARD_COUNT = 4

pytestmark = pytest.mark.citus


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """An engine on the coordinator (skipped, or failed under CI=true, when it is not up)."""
    host, port = CITUS_URL.host or "127.0.0.1", CITUS_URL.port or 5440
    require_service(f"Citus coordinator {host}:{port} (.ci/citus setup && .ci/citus start)",
                    port_open(host, port))
    engine = sa.create_engine(CITUS_URL)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def table(engine: Engine) -> Iterator[str]:
    """A table of this module's own distributed by `org_id`, dropped at the end."""
    name = f"citus_probe_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(sa.text(
            f"CREATE TABLE {name} (org_id uuid NOT NULL, id bigint NOT NULL, note text,"
            " PRIMARY KEY (org_id, id))"))
        conn.execute(sa.text(
            f"SELECT create_distributed_table('{name}', 'org_id', shard_count := {SHARD_COUNT})"))
    try:
        yield name
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))


def worker_of(engine: Engine, table: str, org_id: uuid.UUID) -> int:
    """The port of the worker holding the shard of `org_id`."""
    with engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT s.nodeport FROM citus_shards s WHERE s.table_name = CAST(:t AS regclass)"
            " AND s.shardid = get_shard_id_for_distribution_column(:t, CAST(:org AS uuid))"),
            {"t": table, "org": org_id}).scalar_one())


def orgs_on_two_workers(engine: Engine, table: str) -> tuple[uuid.UUID, uuid.UUID]:
    """Two random org ids whose shards sit on different workers."""
    first = uuid.uuid4()
    home = worker_of(engine, table, first)
    for _ in range(200):
        other = uuid.uuid4()
        if worker_of(engine, table, other) != home:
            return first, other
    pytest.fail("no org id hashed to a shard on another worker in 200 tries")


def notes_of(engine: Engine, table: str, *orgs: uuid.UUID) -> set[str]:
    """The notes stored for `orgs`."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f"SELECT note FROM {table} WHERE org_id = ANY(:orgs)"),
                            {"orgs": list(orgs)})
        return {row.note for row in rows}


def insert(conn: sa.Connection, table: str, org_id: uuid.UUID, note: str) -> None:
    """One row of `org_id`."""
    conn.execute(sa.text(f"INSERT INTO {table} (org_id, id, note) VALUES (:org, 1, :note)"),
                 {"org": org_id, "note": note})


def test_coordinator_sees_two_active_workers(engine: Engine) -> None:
    """The coordinator lists exactly two active workers."""
    with engine.connect() as conn:
        workers = conn.execute(sa.text("SELECT * FROM citus_get_active_worker_nodes()")).all()
    assert len(workers) == 2


def test_distributed_table_places_shards_on_both_workers(engine: Engine, table: str) -> None:
    """A table distributed by org_id has its shards spread over both workers."""
    with engine.connect() as conn:
        placements = conn.execute(sa.text(
            "SELECT s.nodeport, count(*) AS shards FROM citus_shards s"
            " WHERE s.table_name = CAST(:t AS regclass) GROUP BY s.nodeport"),
            {"t": table}).all()
        workers = {row.node_port for row in conn.execute(
            sa.text("SELECT * FROM citus_get_active_worker_nodes()"))}
    assert {row.nodeport for row in placements} == workers
    assert sum(row.shards for row in placements) == SHARD_COUNT


def test_transaction_over_two_workers_commits_both_rows(engine: Engine, table: str) -> None:
    """A committed transaction writing two orgs on different workers leaves both rows."""
    a, b = orgs_on_two_workers(engine, table)
    with engine.begin() as conn:
        insert(conn, table, a, "a")
        insert(conn, table, b, "b")
    assert notes_of(engine, table, a, b) == {"a", "b"}


def test_rolled_back_transaction_over_two_workers_leaves_neither_row(
    engine: Engine, table: str,
) -> None:
    """A rolled-back transaction writing two orgs on different workers leaves no row."""
    a, b = orgs_on_two_workers(engine, table)
    with engine.connect() as conn:
        transaction = conn.begin()
        insert(conn, table, a, "a")
        insert(conn, table, b, "b")
        transaction.rollback()
    assert notes_of(engine, table, a, b) == set()


def test_every_node_allows_prepared_transactions(engine: Engine) -> None:
    """max_prepared_transactions is above zero on the coordinator and on each worker."""
    with engine.connect() as conn:
        coordinator = int(conn.execute(sa.text("SHOW max_prepared_transactions")).scalar_one())
        workers = conn.execute(sa.text(
            "SELECT success, result FROM run_command_on_workers('SHOW max_prepared_transactions')"
        )).all()
    assert coordinator > 0
    assert len(workers) == 2
    assert all(row.success and int(row.result) > 0 for row in workers)
