"""SQL adapters on SQLAlchemy Core: PostgreSQL (psycopg 3) and SQLite.

Public API: `SqlStorage.from_url(url)` (units of work, readiness, partition upkeep),
`migrate_to_head(url)` / `downgrade(url)` / `check_schema_current(engine)`, and
`purge(engine, now, ...)` for retention, and `AdvisoryLockOwnership` (stream partition
ownership through PostgreSQL advisory locks).
"""

from __future__ import annotations

from analytics_adapters.sql.advisory_locks import AdvisoryLockOwnership
from analytics_adapters.sql.engine import create_sql_engine
from analytics_adapters.sql.migrate import (
    check_schema_current,
    current_revision,
    downgrade,
    head_revision,
    migrate_to_head,
)
from analytics_adapters.sql.uow import SqlStorage, SqlUnitOfWork

__all__ = [
    "AdvisoryLockOwnership",
    "SqlStorage",
    "SqlUnitOfWork",
    "check_schema_current",
    "create_sql_engine",
    "current_revision",
    "downgrade",
    "head_revision",
    "migrate_to_head",
]
