"""SQLite rollup writes: per-table upserts merging sketches with the registered SQL functions.

SQLite serialises writers (the unit of work holds the write lock), so a plain upsert whose SET
clause merges the stored and the new sketch is atomic. Hour and day tier deltas are merged in
Python with the core's `merge_stats` and upserted the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from analytics_adapters.sql.bulk import Columns
from analytics_adapters.sql.convert import ROLLUP_COLUMNS, rollup_values
from analytics_adapters.sql.schema import EXTRA_COUNTER_COLUMNS, ROLLUPS, RollupFamily
from analytics_adapters.sql.sqlite_functions import MERGE_BINS, MERGE_COUNTS, MERGE_ERROR_CODES
from analytics_core.rollups import Rollup, RollupKey, RollupStats, merge_stats

ADDITIVE = (
    "invocations", "success", "errors", "timeouts", "throttled", "input_tokens",
    "output_tokens", "cost_units", "latency_sum", "lat_zeros", *EXTRA_COUNTER_COLUMNS,
)


def floor_hour(when: datetime) -> datetime:
    """Start of the UTC hour holding `when`."""
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def floor_day(when: datetime) -> datetime:
    """Start of the UTC day holding `when`."""
    return floor_hour(when).replace(hour=0)


def coarsen(rollups: Sequence[Rollup], floor: Callable[[datetime], datetime]) -> list[Rollup]:
    """Deltas for a coarser tier: bucket starts floored, stats of equal keys merged."""
    by_key: dict[RollupKey, list[RollupStats]] = {}
    for r in rollups:
        k = r.key
        key = RollupKey(k.org_id, k.model_id, k.client_id, floor(k.bucket_start))
        by_key.setdefault(key, []).append(r.stats)
    return [Rollup(key, stats[0] if len(stats) == 1 else merge_stats(stats))
            for key, stats in by_key.items()]


def _upsert(table: sa.Table) -> sa.Insert:
    stmt = sqlite_insert(table)
    t, ex = table.c, stmt.excluded
    changes: dict[str, sa.ColumnElement[object]] = {c: t[c] + ex[c] for c in ADDITIVE}
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


@functools.cache
def _tiers(family: RollupFamily) -> tuple[tuple[sa.Insert, Callable[[datetime], datetime] | None],
                                          ...]:
    return (
        (_upsert(family.base), None),
        (_upsert(family.hour), floor_hour),
        (_upsert(family.day), floor_day),
    )


def add_rollups(conn: sa.Connection, deltas: Sequence[Rollup],
                family: RollupFamily = ROLLUPS) -> None:
    """Upsert distinct-key deltas into the family's base table and both tiers.

    A tier where no two deltas share a key once floored (a live batch: seconds of events
    rarely hold two 15-minute buckets of one hour and group) takes the base rows as they
    are, converted once, with only the bucket starts floored."""
    base: Columns | None = None
    for stmt, floor in _tiers(family):
        if floor is None:
            base = _columns(conn, stmt, deltas)
            base.execute(stmt)
            continue
        rows = coarsen(deltas, floor)
        if base is not None and len(rows) == len(deltas):
            base.set("bucket_start", [floor(r.key.bucket_start) for r in deltas])
            base.execute(stmt)
        else:
            _columns(conn, stmt, rows).execute(stmt)


def _columns(conn: sa.Connection, stmt: sa.Insert, rows: Sequence[Rollup]) -> Columns:
    table = stmt.table
    assert isinstance(table, sa.Table)
    return Columns(conn, table, ROLLUP_COLUMNS, [rollup_values(r) for r in rows])
