"""Citus (SPEC §16): which tables are distributed by `org_id`, which are reference tables, and
the one step that distributes them.

The PostgreSQL adapter runs on a Citus coordinator unchanged. Every org-keyed table is hash
distributed by `org_id` and co-located with `usage_events`, so the shards of one org's events,
rollups, attribution, audit, budgets, exports and the rest sit on the same worker and every
org-scoped statement is routed to one shard; a statement that touches many orgs (an ingest
batch, the fleet view) fans out, and a transaction that writes to several workers commits with
Citus's two-phase commit. The small global tables (the model registry, API keys, dashboard
sessions, global prices and restatements, stream offsets) are reference tables: a copy on every
node, written in the same transaction as the rest.

`distribute` is called by migration 0016 when the database has the citus extension, and is
idempotent. A later migration that creates a table calls `distribute_table` for it.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable

import sqlalchemy as sa

DISTRIBUTION_COLUMN = "org_id"

# The co-location anchor first: every other distributed table is co-located with it.
DISTRIBUTED: tuple[str, ...] = (
    "usage_events", "event_keys",
    "rollups_15m", "rollups_1h", "rollups_1d", "rollups_zone_1d", "zone_day_progress",
    "attribution_15m", "attribution_1h", "attribution_1d", "attribution_zone_1d",
    "attribution_values",
    "freshness_markers", "history_revisions", "client_names",
    "dead_letters", "dedupe_conflicts", "audit_log",
    "export_jobs", "org_settings", "reconciliations", "reconciliation_lines",
    "restatement_deltas",
    "budgets", "alerts", "webhook_endpoints", "webhook_deliveries", "webhook_attempts",
    "reliability_rules", "rule_transitions",
)

REFERENCE: tuple[str, ...] = (
    "model_names", "model_labels", "api_keys", "ui_sessions", "price_versions", "restatements",
    "stream_offsets", "rollup_zones",
)

# Tables whose surrogate `seq` is their whole primary key on PostgreSQL and SQLite (SQLite
# numbers rows only through an INTEGER PRIMARY KEY). Citus needs every unique key to contain
# the distribution column, so on Citus their key becomes (org_id, seq); `seq` still comes from
# one sequence, so it stays unique on its own.
WIDENED_KEYS: tuple[str, ...] = ("audit_log", "dead_letters", "dedupe_conflicts")


def has_citus(conn: sa.Connection) -> bool:
    """Whether the database has the citus extension (False on SQLite)."""
    if conn.dialect.name != "postgresql":
        return False
    return bool(conn.execute(sa.text(
        "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")).scalar_one())


_ON_CITUS: weakref.WeakKeyDictionary[sa.Engine, bool] = weakref.WeakKeyDictionary()


def on_citus(conn: sa.Connection) -> bool:
    """`has_citus`, asked once per engine (the few statements Citus plans differently use it)."""
    engine = conn.engine
    known = _ON_CITUS.get(engine)
    if known is None:
        known = _ON_CITUS[engine] = has_citus(conn)
    return known


def distributed_tables(conn: sa.Connection) -> dict[str, str]:
    """Each Citus table of the current schema (partitions included) with its method:
    `h` hash distributed, `n` reference."""
    rows = conn.execute(sa.text(
        "SELECT c.relname, p.partmethod FROM pg_dist_partition p "
        "JOIN pg_class c ON c.oid = p.logicalrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema()"))
    return {str(name): str(method) for name, method in rows}


def _widen_primary_key(conn: sa.Connection, table: str) -> None:
    key = conn.execute(sa.text(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c "
        "WHERE c.conrelid = CAST(:t AS regclass) AND c.contype = 'p'"), {"t": table}).scalar()
    if key == "PRIMARY KEY (seq)":
        conn.exec_driver_sql(
            f"ALTER TABLE {table} DROP CONSTRAINT pk_{table}, "
            f"ADD CONSTRAINT pk_{table} PRIMARY KEY ({DISTRIBUTION_COLUMN}, seq)")


def distribute_table(conn: sa.Connection, table: str, *, reference: bool = False) -> bool:
    """Distribute one table (co-located with `usage_events`) or make it a reference table;
    False when it already is a Citus table."""
    if table in distributed_tables(conn):
        return False
    if reference:
        conn.execute(sa.text("SELECT create_reference_table(:t)"), {"t": table})
        return True
    if table in WIDENED_KEYS:
        _widen_primary_key(conn, table)
    anchor = DISTRIBUTED[0]
    conn.execute(sa.text(
        "SELECT create_distributed_table(:t, :column, colocate_with => :with)"),
        {"t": table, "column": DISTRIBUTION_COLUMN,
         "with": "none" if table == anchor else anchor})
    return True


def distribute(conn: sa.Connection, tables: Iterable[str] | None = None) -> list[str]:
    """Distribute every org-keyed table and make the global ones reference tables (only those
    not yet done; `tables` limits it); return the tables changed. Tables that do not exist yet
    are skipped: the migration that creates one distributes it. The shard count is the
    database's `citus.shard_count` setting (Citus's default is 32)."""
    wanted = set(DISTRIBUTED + REFERENCE) if tables is None else set(tables)
    wanted = {t for t in wanted if conn.execute(
        sa.text("SELECT to_regclass(:t) IS NOT NULL"), {"t": t}).scalar()}
    done = []
    for table in DISTRIBUTED:
        if table in wanted and distribute_table(conn, table):
            done.append(table)
    for table in REFERENCE:
        if table in wanted and distribute_table(conn, table, reference=True):
            done.append(table)
    return done
