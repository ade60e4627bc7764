"""15-minute rollups: additive upserts that merge the latency sketch inside the statement."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from analytics_adapters.sql import pg_ingest
from analytics_adapters.sql.base import SqlRepository
from analytics_adapters.sql.convert import ROLLUP_COLUMNS, rollup_from_values, rollup_row
from analytics_adapters.sql.errors import translated
from analytics_adapters.sql.schema import rollups_15m
from analytics_adapters.sql.sqlite_functions import MERGE_BINS, MERGE_COUNTS, MERGE_ERROR_CODES
from analytics_core.rollups import Rollup, RollupKey, RollupStats, merge_stats

_ADDITIVE = (
    "invocations", "success", "errors", "timeouts", "throttled", "input_tokens",
    "output_tokens", "cost_units", "latency_sum", "lat_zeros",
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


def _coalesced(rollups: Sequence[Rollup]) -> list[Rollup]:
    """One delta per key (an upsert may touch a row once), sorted by key for lock order."""
    by_key: dict[RollupKey, list[RollupStats]] = {}
    for r in rollups:
        by_key.setdefault(r.key, []).append(r.stats)
    return [
        Rollup(key, stats[0] if len(stats) == 1 else merge_stats(stats))
        for key, stats in sorted(by_key.items())
    ]


def _sqlite_upsert() -> sa.Insert:
    stmt = sqlite_insert(rollups_15m)
    t, ex = rollups_15m.c, stmt.excluded
    changes: dict[str, sa.ColumnElement[object]] = {c: t[c] + ex[c] for c in _ADDITIVE}
    # SQLite's two-argument min/max return NULL when either side is NULL.
    changes["latency_min"] = sa.func.min(
        sa.func.coalesce(t.latency_min, ex.latency_min),
        sa.func.coalesce(ex.latency_min, t.latency_min),
    )
    changes["latency_max"] = sa.func.max(
        sa.func.coalesce(t.latency_max, ex.latency_max),
        sa.func.coalesce(ex.latency_max, t.latency_max),
    )
    sketch = (t.lat_bins, t.lat_counts, ex.lat_bins, ex.lat_counts)
    changes["lat_bins"] = getattr(sa.func, MERGE_BINS)(*sketch)
    changes["lat_counts"] = getattr(sa.func, MERGE_COUNTS)(*sketch)
    changes["error_codes"] = getattr(sa.func, MERGE_ERROR_CODES)(t.error_codes, ex.error_codes)
    return stmt.on_conflict_do_update(
        index_elements=["org_id", "bucket_start", "model_id", "client_id"], set_=changes
    )


_SQLITE_UPSERT = _sqlite_upsert()


def orgs_with_rollups(conn: sa.Connection, start: datetime, end: datetime) -> list[uuid.UUID]:
    """Orgs having a rollup with start <= bucket_start < end, sorted (two index probes each)."""
    bound = _ACTIVE_ORGS.bindparams(
        sa.bindparam("start", start, type_=rollups_15m.c.bucket_start.type),
        sa.bindparam("end", end, type_=rollups_15m.c.bucket_start.type),
    )
    return list(conn.execute(bound).scalars())


class SqlRollupStore(SqlRepository):
    """Rollups keyed (org, bucket, model, client); concurrent adders never lose an update."""

    @translated
    def add(self, rollups: Sequence[Rollup]) -> None:
        """Merge deltas into stored rollups (creating missing ones) in key order."""
        deltas = _coalesced(rollups)
        if not deltas:
            return
        conn = self._write()
        if self._postgres:
            pg_ingest.upsert_rollups(self._unit, conn, deltas)
        else:
            conn.execute(_SQLITE_UPSERT, [rollup_row(r) for r in deltas])

    @translated
    def query(
        self, org_id: uuid.UUID, start: datetime, end: datetime,
        model_ids: Sequence[uuid.UUID] = (), client_ids: Sequence[str] = (),
    ) -> list[Rollup]:
        """Rollups of one org with start <= bucket_start < end, by (bucket, model, client)."""
        t = rollups_15m.c
        stmt = sa.select(*(t[c] for c in ROLLUP_COLUMNS)).where(
            t.org_id == org_id, t.bucket_start >= start, t.bucket_start < end
        )
        if model_ids:
            stmt = stmt.where(t.model_id.in_(list(model_ids)))
        if client_ids:
            stmt = stmt.where(t.client_id.in_(list(client_ids)))
        stmt = stmt.order_by(t.bucket_start, t.model_id, t.client_id)
        return [rollup_from_values(row) for row in self._read().execute(stmt)]

    @translated
    def active_orgs(self, start: datetime, end: datetime) -> list[uuid.UUID]:
        """Orgs having at least one rollup with start <= bucket_start < end, sorted."""
        return orgs_with_rollups(self._read(), start, end)
