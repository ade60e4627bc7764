"""Rollups: additive upserts that merge the latency sketch inside the statement; tiered reads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa

from analytics_adapters.sql import citus, pg_rollups, sqlite_rollups, zone_days
from analytics_adapters.sql.base import SqlRepository
from analytics_adapters.sql.convert import ROLLUP_COLUMNS, rollup_from_values
from analytics_adapters.sql.errors import translated
from analytics_adapters.sql.rollup_query import (
    GROUPS,
    Cell,
    merge_in_postgres,
    prefix_end,
    table_for,
)
from analytics_adapters.sql.schema import ROLLUPS, RollupFamily, rollups_15m
from analytics_core.rollups import (
    Rollup,
    RollupKey,
    RollupStats,
    aggregate_rollups,
    merge_stats,
)

# Loose index scan: walk distinct org ids through the primary key instead of reading every
# rollup of the window.
_ACTIVE_ORGS = sa.text("""
WITH RECURSIVE orgs(org_id) AS (
  SELECT (SELECT r.org_id FROM rollups_15m r ORDER BY r.org_id LIMIT 1)
  UNION ALL
  SELECT (SELECT r.org_id FROM rollups_15m r WHERE r.org_id > orgs.org_id
          ORDER BY r.org_id LIMIT 1)
  FROM orgs WHERE orgs.org_id IS NOT NULL
)
SELECT o.org_id FROM orgs o
WHERE o.org_id IS NOT NULL AND EXISTS (
  SELECT 1 FROM rollups_15m r
  WHERE r.org_id = o.org_id AND r.bucket_start >= :start AND r.bucket_start < :end
)
ORDER BY o.org_id""").columns(org_id=sa.Uuid)

# Citus plans a recursive CTE only when it filters on the distribution column; there each
# worker reads its shards' window in parallel instead.
_ACTIVE_ORGS_DISTRIBUTED = sa.text("""
SELECT DISTINCT r.org_id FROM rollups_15m r
WHERE r.bucket_start >= :start AND r.bucket_start < :end
ORDER BY r.org_id""").columns(org_id=sa.Uuid)


def coalesced(rollups: Sequence[Rollup]) -> list[Rollup]:
    """One delta per key: an upsert statement may touch a row only once.

    Lock order is the SQL statement's ORDER BY (PostgreSQL); SQLite writers hold the database
    lock, so no sort is needed here.
    """
    by_key: dict[RollupKey, list[RollupStats]] = {}
    for r in rollups:
        by_key.setdefault(r.key, []).append(r.stats)
    if len(by_key) == len(rollups):
        return list(rollups)
    return [
        Rollup(key, stats[0] if len(stats) == 1 else merge_stats(stats))
        for key, stats in by_key.items()
    ]


def rollup_rows(
    conn: sa.Connection, table: sa.Table, org_id: uuid.UUID, start: datetime, end: datetime,
    *, model_ids: Sequence[uuid.UUID], client_ids: Sequence[str], client_prefix: str = "",
) -> list[Rollup]:
    """Rows of one org's rollup table in [start, end), filtered, by (bucket, model, client)."""
    t = table.c
    stmt = sa.select(*(t[c] for c in ROLLUP_COLUMNS)).where(
        t.org_id == org_id, t.bucket_start >= start, t.bucket_start < end
    )
    if model_ids:
        stmt = stmt.where(t.model_id.in_(list(model_ids)))
    if client_ids:
        stmt = stmt.where(t.client_id.in_(list(client_ids)))
    if client_prefix:
        stmt = stmt.where(t.client_id >= client_prefix,
                          t.client_id < prefix_end(client_prefix))
    stmt = stmt.order_by(t.bucket_start, t.model_id, t.client_id)
    return [rollup_from_values(row) for row in conn.execute(stmt)]


def orgs_with_rollups(conn: sa.Connection, start: datetime, end: datetime) -> list[uuid.UUID]:
    """Orgs having a rollup with start <= bucket_start < end, sorted (two index probes each)."""
    query = _ACTIVE_ORGS_DISTRIBUTED if citus.on_citus(conn) else _ACTIVE_ORGS
    bound = query.bindparams(
        sa.bindparam("start", start, type_=rollups_15m.c.bucket_start.type),
        sa.bindparam("end", end, type_=rollups_15m.c.bucket_start.type),
    )
    return list(conn.execute(bound).scalars())


def add_deltas(repository: SqlRepository, rollups: Sequence[Rollup],
               family: RollupFamily) -> None:
    """Merge deltas into a family's stored rollups (creating missing ones), every tier."""
    deltas = coalesced(rollups)
    if not deltas:
        return
    conn = repository._write()
    if repository._postgres:
        pg_rollups.upsert_rollups(repository._unit, conn, deltas, family)
        zone_days.follow(conn, deltas, family)
    else:
        sqlite_rollups.add_rollups(conn, deltas, family)


class SqlRollupStore(SqlRepository):
    """Rollups keyed (org, bucket, model, client); concurrent adders never lose an update."""

    @translated
    def add(self, rollups: Sequence[Rollup]) -> None:
        """Merge deltas into stored rollups (creating missing ones) in key order."""
        add_deltas(self, rollups, ROLLUPS)

    @translated
    def query(
        self, org_id: uuid.UUID, start: datetime, end: datetime,
        model_ids: Sequence[uuid.UUID] = (), client_ids: Sequence[str] = (),
    ) -> list[Rollup]:
        """Rollups of one org with start <= bucket_start < end, by (bucket, model, client)."""
        return rollup_rows(self._read(), rollups_15m, org_id, start, end,
                           model_ids=model_ids, client_ids=client_ids)

    @translated
    def aggregate(
        self, org_id: uuid.UUID, boundaries: Sequence[datetime], *, group_by: str = "model",
        model_ids: Sequence[uuid.UUID] = (), client_ids: Sequence[str] = (),
        latency: bool = True,
    ) -> list[Cell]:
        """Stats merged per (period, group), ordered by (period start, group).

        Period i holds the rollups with boundaries[i] <= bucket_start < boundaries[i + 1]
        (boundaries ascending, on 15-minute edges). `group_by` is "model" (group = model id
        as text), "client" (client id) or "none" (None). Cells without data are omitted.
        With `latency=False` sketches and error codes are left empty (usage needs neither).
        """
        if group_by not in GROUPS:
            raise ValueError(f"group_by must be one of {GROUPS}")
        if len(boundaries) < 2:
            return []
        conn = self._read()
        if self._postgres:
            return merge_in_postgres(conn, ROLLUPS, org_id, boundaries, group_by=group_by,
                                     model_ids=model_ids, client_ids=client_ids,
                                     latency=latency,
                                     zoned=zone_days.try_zone_spans(conn, org_id, boundaries))
        rows = rollup_rows(conn, table_for(boundaries), org_id, boundaries[0], boundaries[-1],
                           model_ids=model_ids, client_ids=client_ids)
        return aggregate_rollups(rows, boundaries, group_by, latency)

    @translated
    def active_orgs(self, start: datetime, end: datetime) -> list[uuid.UUID]:
        """Orgs having at least one rollup with start <= bucket_start < end, sorted."""
        return orgs_with_rollups(self._read(), start, end)
