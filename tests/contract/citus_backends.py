"""The Citus cluster of `.ci/citus` as the third SQL backend of the storage contract suite.

A test session creates its own database on the coordinator and both workers (as
`.ci/citus createdb` does), migrates it, which distributes every table (migration 0016), and
drops it at the end. ANALYTICS_TEST_CITUS_URL names another coordinator. Tests that need the
cluster skip when the coordinator does not answer, and fail under CI=true.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from analytics_adapters.sql import SqlStorage, migrate_to_head
from analytics_core.ports import UnitOfWorkFactory
from tests.conftest import port_open, require_service
from tests.contract.sql_backends import (
    DB_PREFIX,
    admin_connection,
    drop_database,
    storage_at,
)

CITUS_URL = make_url(os.environ.get(
    "ANALYTICS_TEST_CITUS_URL", "postgresql+psycopg://postgres@127.0.0.1:5440/postgres"))
# Fewer shards than Citus's default 32: every raw-event day partition is one table per shard,
# and test databases are created and dropped often. Still more than one shard per worker.
TEST_SHARD_COUNT = 4


def citus_available() -> bool:
    """Whether the coordinator accepts TCP connections."""
    return port_open(CITUS_URL.host or "127.0.0.1", CITUS_URL.port or 5440)


def require_citus() -> URL:
    """Skip (fail under CI=true) when the coordinator is absent; else its URL."""
    require_service(
        f"Citus coordinator {CITUS_URL.host}:{CITUS_URL.port} (.ci/citus setup && .ci/citus start)",
        citus_available())
    return CITUS_URL


def worker_urls(server: URL) -> list[URL]:
    """The active workers, as URLs of their `postgres` database."""
    with admin_connection(server) as conn:
        rows = conn.execute(sa.text(
            "SELECT node_name, node_port FROM citus_get_active_worker_nodes() ORDER BY 2"))
        return [server.set(host=host, port=int(port)) for host, port in rows]


def create_citus_database(server: URL, name: str) -> URL:
    """A new database with Citus on the coordinator and every worker, workers registered."""
    workers = worker_urls(server)
    with admin_connection(server) as conn:
        conn.exec_driver_sql("SET citus.enable_create_database_propagation = on")
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    for worker in workers:
        with admin_connection(worker.set(database=name)) as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS citus")
    url = server.set(database=name)
    with admin_connection(url) as conn:
        conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS citus")
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET citus.shard_count = '
                             f"{TEST_SHARD_COUNT}")
        conn.execute(sa.text("SELECT citus_set_coordinator_host(:h, :p)"),
                     {"h": server.host, "p": server.port})
        for worker in workers:
            conn.execute(sa.text("SELECT citus_add_node(:h, :p)"),
                         {"h": worker.host, "p": worker.port})
    return url


def drop_citus_database(server: URL, name: str, attempts: int = 20) -> None:
    """Drop the database on the coordinator, then on every worker, each node on its own.

    Not through Citus's propagation: a worker may still hold a session of the database for a
    moment (Citus's maintenance daemon, a connection the coordinator is closing), and a
    propagated drop then fails the whole statement; a worker's drop is retried instead.
    """
    for url in [server, *worker_urls(server)]:
        for attempt in range(attempts):
            try:
                drop_database(url, name)
                break
            except sa.exc.OperationalError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.25)


@contextlib.contextmanager
def fresh_citus_database(*, migrate: bool = True) -> Iterator[URL]:
    """A new randomly named database on the cluster (migrated unless told otherwise), dropped
    on exit."""
    server = require_citus()
    name = f"{DB_PREFIX}citus_{uuid.uuid4().hex[:12]}"
    url = create_citus_database(server, name)
    try:
        if migrate:
            migrate_to_head(url)
        yield url
    finally:
        drop_citus_database(server, name)


@pytest.fixture(scope="session")
def citus_storage() -> Iterator[SqlStorage]:
    """This session's own Citus database, migrated (so distributed)."""
    with fresh_citus_database() as url, storage_at(url) as storage:
        yield storage


@pytest.fixture
def citus_uow_factory(citus_storage: SqlStorage) -> UnitOfWorkFactory:
    """Units of work on the session's Citus database (tests isolate by random ids)."""
    require_citus()
    return citus_storage.unit_of_work
