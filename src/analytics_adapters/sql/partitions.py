"""Daily partitions of `usage_events` on PostgreSQL: create ahead, on demand, and drop old ones.

Creation goes through the `analytics_ensure_event_partitions(date[])` function installed by the
migrations. It creates a plain table and ATTACHes it, which needs only a SHARE UPDATE EXCLUSIVE
lock on the parent (CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE), so concurrent
ingest and queries keep running; a transaction-scoped advisory lock serialises creators.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from analytics_adapters.sql import citus

PARENT = "usage_events"
PREFIX = "usage_events_p"
_NAME = re.compile(r"^usage_events_p(\d{8})$")
DEFAULT_DAYS_AHEAD = 7


def partition_name(day: date) -> str:
    """Name of the partition holding one UTC day."""
    return f"{PREFIX}{day:%Y%m%d}"


def day_of(name: str) -> date | None:
    """The UTC day of a partition name, or None for a name outside the convention."""
    match = _NAME.match(name)
    if match is None:
        return None
    return datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC).date()


def ensure_event_partitions(conn: sa.Connection, days: Iterable[date]) -> int:
    """Create the missing partitions for `days` in the caller's transaction; return how many."""
    wanted = sorted(set(days))
    if not wanted:
        return 0
    created = conn.execute(
        sa.text("SELECT analytics_ensure_event_partitions(CAST(:days AS date[]))"),
        {"days": wanted},
    ).scalar_one()
    return int(created)


def ensure_days_ahead(conn: sa.Connection, today: date, days_ahead: int = DEFAULT_DAYS_AHEAD,
                      days_behind: int = 1) -> int:
    """Create partitions from `days_behind` days before `today` to `days_ahead` days after."""
    days = [today + timedelta(days=n) for n in range(-days_behind, days_ahead + 1)]
    return ensure_event_partitions(conn, days)


def _partition_rows(conn: sa.Connection) -> list[tuple[str, bool]]:
    rows = conn.execute(sa.text(
        "SELECT c.relname, i.inhdetachpending FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent "
        "JOIN pg_namespace n ON n.oid = p.relnamespace "
        "WHERE p.relname = :parent AND n.nspname = current_schema()"
    ), {"parent": PARENT})
    return [(str(name), bool(pending)) for name, pending in rows]


def event_partitions(conn: sa.Connection) -> list[tuple[str, date]]:
    """Daily partitions of `usage_events` as (name, day), oldest first."""
    found = [(name, day) for name, _ in _partition_rows(conn)
             if (day := day_of(name)) is not None]
    return sorted(found, key=lambda item: item[1])


def drop_partitions_before(engine: sa.Engine, cutoff: date) -> list[str]:
    """Detach (concurrently) and drop every partition whose whole day is before `cutoff`.

    Runs outside any transaction: DETACH ... CONCURRENTLY does not block ingest or readers,
    and dropping a detached table touches no other table. A detach interrupted earlier (left
    "pending") is finished with FINALIZE. Returns the dropped names.

    Citus does not support DETACH ... CONCURRENTLY: there each old partition is dropped in one
    short transaction (DROP TABLE of a partition locks the parent only for the drop itself;
    ingest into other days waits for it, it is not refused).
    """
    with engine.connect() as conn:
        old = [(name, pending) for name, pending in _partition_rows(conn)
               if (day := day_of(name)) is not None and day < cutoff]
        distributed = citus.on_citus(conn)
        conn.rollback()
    dropped: list[str] = []
    auto = engine.execution_options(isolation_level="AUTOCOMMIT")
    for name, pending in sorted(old):
        quoted = engine.dialect.identifier_preparer.quote(name)
        how = "FINALIZE" if pending else "CONCURRENTLY"
        with auto.connect() as conn:
            if not distributed:
                conn.exec_driver_sql(f"ALTER TABLE {PARENT} DETACH PARTITION {quoted} {how}")
            conn.exec_driver_sql(f"DROP TABLE {quoted}")
        dropped.append(name)
    return dropped
