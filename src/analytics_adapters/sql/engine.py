"""Engine construction: pooled psycopg 3 for PostgreSQL, WAL-mode SQLite with merge functions."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

from analytics_adapters.sql.sqlite_functions import register_functions

SQLITE_BUSY_TIMEOUT_MS = 30_000
BEGIN_MODE_KEY = "analytics_sqlite_begin"


def normalize_url(url: str | URL) -> URL:
    """Accept `postgresql://` / `postgres://` and use psycopg 3; keep SQLite URLs as they are."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def create_sql_engine(
    url: str | URL, *, pool_size: int = 5, max_overflow: int = 10, pool_timeout: float = 10.0,
    connect_timeout: int = 5, statement_timeout_ms: int | None = None,
    sqlite_busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS, echo: bool = False,
) -> Engine:
    """An engine for a PostgreSQL or SQLite URL. Nothing connects until first use.

    PostgreSQL sessions run in UTC; SQLite files get WAL mode, a busy timeout and the sketch
    merge functions, and transactions are begun by the unit of work (see `BEGIN_MODE_KEY`).
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, sqlite_busy_timeout_ms, echo)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"unsupported database URL scheme {parsed.drivername!r}")
    # JIT compilation costs more than it saves on these short, index-driven statements.
    options = "-c timezone=UTC -c jit=off"
    if statement_timeout_ms is not None:
        options += f" -c statement_timeout={int(statement_timeout_ms)}"
    connect_args: dict[str, Any] = {
        "connect_timeout": connect_timeout,
        "options": options,
        "application_name": "inference-analytics",
    }
    return sa.create_engine(
        parsed, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout,
        pool_pre_ping=True, pool_recycle=1800, connect_args=connect_args, echo=echo,
    )


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    database = url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return Path(database)


def _private_file(path: Path) -> None:
    """Create the database file (and its directory) private to this user before SQLite opens
    it: SQLite gives its -wal, -shm and -journal files the database file's permissions."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _sqlite_engine(url: URL, busy_timeout_ms: int, echo: bool) -> Engine:
    path = sqlite_path(url)
    if path is None:
        raise ValueError("SQLite storage needs a file path (sqlite:////data/analytics.db)")
    _private_file(path)
    engine = sa.create_engine(
        url, connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        pool_pre_ping=False, echo=echo,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        # The driver must not open transactions on its own: the unit of work does.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
        register_functions(dbapi_conn)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(conn.info.pop(BEGIN_MODE_KEY, "BEGIN"))

    return engine
