"""SQL backends for the storage contract suite, plus database helpers for integration tests.

Each test session creates its own databases: on PostgreSQL a randomly named database created
through the `postgres` maintenance database, migrated, and dropped at the end; on SQLite a
migrated file under a temporary data directory. Tests isolate themselves by random ids;
nothing is truncated and no shared database is touched.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from analytics_adapters.sql import SqlStorage, migrate_to_head
from analytics_adapters.sql.engine import normalize_url
from analytics_core.ports import UnitOfWorkFactory
from tests.conftest import POSTGRES_URL, port_open, require_service

DB_PREFIX = "analytics_test_"


def postgres_server_url() -> URL:
    """URL of the maintenance database (`postgres`) on the test server."""
    return normalize_url(POSTGRES_URL)


def postgres_available() -> bool:
    """Whether the test PostgreSQL server accepts TCP connections."""
    url = postgres_server_url()
    return port_open(url.host or "127.0.0.1", url.port or 5432)


def require_postgres() -> URL:
    """Skip (fail under CI=true) when PostgreSQL is absent; else the server URL."""
    require_service("PostgreSQL", postgres_available())
    return postgres_server_url()


@contextlib.contextmanager
def admin_connection(url: URL) -> Iterator[sa.Connection]:
    """An autocommit connection to `url` (CREATE / DROP DATABASE cannot run in a
    transaction), closed with its engine on exit."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def create_database(server: URL, name: str, template: str | None = None) -> URL:
    """CREATE DATABASE `name` (optionally from a template); return its URL."""
    with admin_connection(server) as conn:
        clause = f" TEMPLATE {template}" if template else ""
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"{clause}')
    return server.set(database=name)


def drop_database(server: URL, name: str) -> None:
    """DROP DATABASE `name`, disconnecting anyone still attached."""
    with admin_connection(server) as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def fresh_postgres_database(*, migrate: bool = True, template: str | None = None) -> Iterator[URL]:
    """A new randomly named database (migrated unless told otherwise), dropped on exit."""
    server = require_postgres()
    name = f"{DB_PREFIX}{uuid.uuid4().hex[:12]}"
    url = create_database(server, name, template)
    try:
        if migrate and template is None:
            migrate_to_head(url)
        yield url
    finally:
        drop_database(server, name)


@contextlib.contextmanager
def storage_at(url: URL | str) -> Iterator[SqlStorage]:
    """A `SqlStorage` closed on exit."""
    storage = SqlStorage.from_url(url)
    try:
        yield storage
    finally:
        storage.close()


@pytest.fixture(scope="session")
def postgres_storage() -> Iterator[SqlStorage]:
    """This session's own freshly created and migrated PostgreSQL database."""
    with fresh_postgres_database() as url, storage_at(url) as storage:
        yield storage


@pytest.fixture
def postgres_uow_factory(postgres_storage: SqlStorage) -> UnitOfWorkFactory:
    """Units of work on the session's PostgreSQL database (tests isolate by random ids)."""
    require_postgres()
    return postgres_storage.unit_of_work


@pytest.fixture(scope="session")
def sqlite_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlStorage]:
    """This session's own migrated SQLite file under a temporary data directory."""
    path = tmp_path_factory.mktemp("data") / "analytics.db"
    url = f"sqlite:///{path}"
    migrate_to_head(url)
    with storage_at(url) as storage:
        yield storage


@pytest.fixture
def sqlite_uow_factory(sqlite_storage: SqlStorage) -> UnitOfWorkFactory:
    """Units of work on the session's SQLite database (tests isolate by random ids)."""
    return sqlite_storage.unit_of_work
