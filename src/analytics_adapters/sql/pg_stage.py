"""Per-session staging tables on PostgreSQL, filled by binary COPY inside the unit's transaction.

A staging table is a TEMP table created on first use in a session with ON COMMIT DELETE ROWS;
a second use in the same transaction empties it first. Rows go in through psycopg's binary
COPY, which is several times cheaper per row than bound INSERT parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs
import sqlalchemy as sa
from psycopg import Connection as PgConnection

from analytics_adapters.sql.base import ActiveUnit


@attrs.frozen
class Stage:
    """A staging table: name, CREATE TEMP TABLE IF NOT EXISTS statement, column types."""

    name: str
    create: str
    types: list[str]

    @property
    def copy(self) -> str:
        """The COPY statement filling every column in order."""
        return f"COPY {self.name} FROM STDIN (FORMAT BINARY)"


def driver(conn: sa.Connection) -> PgConnection[tuple[Any, ...]]:
    """The psycopg connection under a SQLAlchemy connection."""
    raw = conn.connection.driver_connection
    assert isinstance(raw, PgConnection)
    return raw


def copy_rows(
    unit: ActiveUnit, conn: sa.Connection, stage: Stage, rows: Iterable[tuple[Any, ...]]
) -> None:
    """Make `stage` exist and hold exactly `rows` in this transaction."""
    if unit.scratch(stage.name):
        conn.exec_driver_sql(f"TRUNCATE {stage.name}")
    else:
        conn.exec_driver_sql(stage.create)
    with driver(conn).cursor() as cur, cur.copy(stage.copy) as copy:
        copy.set_types(stage.types)
        for row in rows:
            copy.write_row(row)


def fetch_all(conn: sa.Connection, sql: str) -> list[tuple[Any, ...]]:
    """Run a statement on the driver cursor (binary results) and return every row."""
    with driver(conn).cursor(binary=True) as cur:
        cur.execute(sql)
        return cur.fetchall()
