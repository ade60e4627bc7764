"""Driver errors become core errors: StoreUnavailable, Conflict, SchemaNotMigrated."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from analytics_adapters.sql import SqlStorage
from analytics_adapters.sql.errors import translate
from analytics_adapters.sql.schema import api_keys
from analytics_core.errors import Conflict, StoreUnavailable
from tests.contract.sql_backends import require_postgres, storage_at
from tests.integration.sql_support import database_url, fresh_storage

CLOSED_PORT_URL = "postgresql://postgres@127.0.0.1:9/analytics"


@pytest.fixture
def pg() -> Iterator[SqlStorage]:
    """A fresh migrated PostgreSQL database."""
    with fresh_storage("postgres") as storage:
        yield storage


def test_unreachable_postgres_raises_store_unavailable() -> None:
    """Nothing listening on the port: the first statement raises StoreUnavailable."""
    with storage_at(CLOSED_PORT_URL) as storage:
        with pytest.raises(StoreUnavailable), storage.unit_of_work() as uow:
            uow.offsets.get("c", "s")
        with pytest.raises(StoreUnavailable):
            storage.check()


@pytest.mark.postgres
def test_a_killed_connection_raises_store_unavailable_and_the_pool_recovers(
    pg: SqlStorage,
) -> None:
    """The server ending a session mid-transaction is StoreUnavailable; the next unit works."""
    with pg.unit_of_work() as uow:
        uow.offsets.save("c", "s", 1)
        pid = uow.connection(write=False).exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with pg.engine.connect() as other:
            other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(StoreUnavailable):
            uow.offsets.save("c", "s", 2)
    with pg.unit_of_work() as uow:
        assert uow.offsets.get("c", "s") is None


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_unique_violation_from_the_driver_translates_to_conflict(kind: str) -> None:
    """A plain duplicate INSERT's IntegrityError maps to Conflict."""
    if kind == "postgres":
        require_postgres()
    row = {"key_id": f"k-{uuid.uuid4()}", "org_id": None, "roles": [], "secret_hash": "h",
           "created_at": datetime.now(UTC), "name": "", "revoked": False}
    with fresh_storage(kind) as storage, storage.engine.connect() as conn:
        conn.execute(api_keys.insert(), row)
        with pytest.raises(sa.exc.IntegrityError) as caught:
            conn.execute(api_keys.insert(), row)
    assert isinstance(translate(caught.value), Conflict)


def test_sqlite_write_lock_held_past_the_busy_timeout_raises_store_unavailable() -> None:
    """Another writer holding the database longer than the busy timeout: StoreUnavailable."""
    with database_url("sqlite") as url:
        path = str(url).removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as blocker:
            blocker.execute("BEGIN IMMEDIATE")
            storage = SqlStorage.from_url(url, sqlite_busy_timeout_ms=50)
            try:
                with pytest.raises(StoreUnavailable), storage.unit_of_work() as uow:
                    uow.offsets.save("c", "s", 1)
            finally:
                storage.close()
            blocker.execute("ROLLBACK")


def test_translate_leaves_non_database_errors_alone() -> None:
    """Errors that are not from the database are not translated."""
    assert translate(ValueError("x")) is None


@pytest.mark.parametrize("message", [
    "failure on connection marked as essential: 127.0.0.1:5442",
    "connection to the remote node postgres@127.0.0.1:5442 failed with the following error: "
    "Connection refused",
])
def test_a_citus_worker_node_that_cannot_be_reached_is_store_unavailable(message: str) -> None:
    """What a Citus coordinator raises (XX000) when a worker is down is an outage to retry,
    not a generic database error."""
    import psycopg.errors  # noqa: PLC0415

    translated = translate(sa.exc.InternalError("SELECT 1", {}, psycopg.errors.InternalError_(
        message)))
    assert isinstance(translated, StoreUnavailable)
    assert "node unavailable" in str(translated)


def test_another_internal_error_stays_a_database_error() -> None:
    """An XX000 that is not about reaching a node is not mistaken for an outage."""
    import psycopg.errors  # noqa: PLC0415

    translated = translate(sa.exc.InternalError("SELECT 1", {}, psycopg.errors.InternalError_(
        "cache lookup failed for relation 1234")))
    assert translated is not None
    assert not isinstance(translated, StoreUnavailable)
