"""Rollups merged per (period, group) for usage and reliability series.

The caller gives period boundaries (computed in the core, exact in any zone). On PostgreSQL
each UTC day of the window is read from the day tier when no boundary falls inside it, each
remaining hour from the hour tier when none falls inside that, and only what is left from the
15-minute base (`read_plan`): a month in Asia/Kathmandu reads ~30 day rows per group and two
partial days, not ~2,900 base rows. PostgreSQL sums counters, sketches and error codes in SQL
per tier and returns one small row per (period, group, bin); the tiers' cells are merged with
the core's `merge_stats`. SQLite (embedded scale) reads the coarsest table aligned with every
boundary and merges the rows in Python.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from analytics_adapters.sql.pg_stage import driver
from analytics_adapters.sql.schema import EXTRA_COUNTER_COLUMNS, ROLLUPS, RollupFamily
from analytics_core.money import Cents
from analytics_core.rollups import (
    GROUP_BY_VALUES,
    AggregateCell,
    RollupStats,
    extra_fields,
    merge_error_codes,
    merge_stats,
)
from analytics_core.sketch import LatencySketch

Cell = AggregateCell
GROUPS = GROUP_BY_VALUES
_DAY, _HOUR = 86400, 3600
_GROUP_SQL = {"model": "model_id", "client": "client_id", "none": "NULL::text"}
# Hash aggregation of a month of wide sketches needs more than the default 4 MB to stay in
# memory; SET LOCAL scopes it to the reading transaction.
_WORK_MEM = "SET LOCAL work_mem = '64MB'"


def table_for(boundaries: Sequence[datetime], family: RollupFamily = ROLLUPS) -> sa.Table:
    """The family's coarsest table whose buckets never straddle a boundary."""
    seconds = [int(b.timestamp()) for b in boundaries]
    if all(s % _DAY == 0 for s in seconds):
        return family.day
    if all(s % _HOUR == 0 for s in seconds):
        return family.hour
    return family.base


_BASE = 900


def read_plan(boundaries: Sequence[datetime], family: RollupFamily = ROLLUPS
              ) -> list[tuple[sa.Table, int, list[tuple[datetime, datetime]]]]:
    """What to read from each table of the family to cover [boundaries[0], boundaries[-1]):
    (table, bucket seconds, ranges of bucket starts [lo, hi)), contiguous ranges merged. A
    day (hour) bucket is read from its tier when no boundary falls strictly inside it, so
    every bucket read lies in one period."""
    edges = sorted(int(b.timestamp()) for b in boundaries)
    first, last = edges[0], edges[-1]

    def clean(start: int, size: int) -> bool:
        i = bisect.bisect_right(edges, start)
        return start + size <= last and (i == len(edges) or edges[i] >= start + size)

    ranges: dict[int, list[list[int]]] = {_DAY: [], _HOUR: [], _BASE: []}
    t = first
    while t < last:
        size = next(s for s in (_DAY, _HOUR, _BASE) if (t % s == 0 and clean(t, s))
                    or s == _BASE)
        runs = ranges[size]
        if runs and runs[-1][1] == t:
            runs[-1][1] = t + size
        else:
            runs.append([t, t + size])
        t += size
    tables = {_DAY: family.day, _HOUR: family.hour, _BASE: family.base}
    return [(tables[size], size, [(_utc(lo), _utc(hi)) for lo, hi in runs])
            for size, runs in ranges.items() if runs]


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def prefix_end(prefix: str) -> str:
    """The least text above every text starting with `prefix` (C collation: code points)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _where(table: str, model_ids: Sequence[uuid.UUID], client_ids: Sequence[str],
           client_prefix: str, *, runs: int = 1) -> str:
    clauses = ["org_id = %(org)s", "bucket_start >= %(lo)s", "bucket_start < %(hi)s"]
    if runs > 1:  # several runs of buckets: an index range scan each (a BitmapOr)
        clauses.append("(" + " OR ".join(
            f"bucket_start >= %(lo{i})s AND bucket_start < %(hi{i})s" for i in range(runs))
            + ")")
    if model_ids:
        clauses.append("model_id = ANY(%(models)s)")
    if client_ids:
        clauses.append("client_id = ANY(%(clients)s)")
    if client_prefix:
        clauses.append("client_id >= %(key_lo)s AND client_id < %(key_hi)s")
    return f"FROM {table} WHERE " + " AND ".join(clauses)


def _pg_sql(table: str, group_by: str, model_ids: Sequence[uuid.UUID],  # noqa: PLR0917
            client_ids: Sequence[str], client_prefix: str = "", runs: int = 1
            ) -> tuple[str, str, str]:
    period = "width_bucket(bucket_start, %(bounds)s::timestamptz[])"
    group = _GROUP_SQL[group_by]
    source = _where(table, model_ids, client_ids, client_prefix, runs=runs)
    # sum(bigint) is numeric: exact past the int64 range (a window of many full days), read
    # back as int below. A cast to int8 here would turn such a window into an error.
    counters = (
        f"SELECT {period}, {group}, sum(invocations), sum(success), "
        "sum(errors), sum(timeouts), sum(throttled), "
        "sum(input_tokens), sum(output_tokens), sum(cost_units), "
        "sum(latency_sum), min(latency_min), max(latency_max), sum(lat_zeros), "
        f"{', '.join(f'sum({c})' for c in EXTRA_COUNTER_COLUMNS)} "
        f"{source} GROUP BY 1, 2"
    )
    # unnest in the select list (ProjectSet) streams; in FROM it would materialise per row.
    bins = (
        "SELECT p, g, array_agg(b), array_agg(c) FROM ("  # noqa: S608  fixed identifiers
        "SELECT p, g, b, sum(c)::int8 AS c FROM ("
        f"SELECT {period} AS p, {group} AS g, unnest(lat_bins) AS b, unnest(lat_counts) AS c "
        f"{source}) AS y GROUP BY 1, 2, 3) AS x GROUP BY 1, 2"
    )
    codes = (
        f"SELECT {period}, {group}, e.key, sum(e.value::int8)::int8 "
        f"{source.replace(' WHERE ', ', jsonb_each_text(error_codes) AS e WHERE ', 1)} "
        "AND error_codes <> '{}'::jsonb GROUP BY 1, 2, 3"
    )
    return counters, bins, codes


def merge_in_postgres(
    conn: sa.Connection, family: RollupFamily, org_id: uuid.UUID,
    boundaries: Sequence[datetime], *, group_by: str, model_ids: Sequence[uuid.UUID],
    client_ids: Sequence[str], latency: bool, client_prefix: str = "",
) -> list[Cell]:
    """Sum counters (and, with `latency`, sketch bins and error codes) per cell in SQL, each
    tier of the `read_plan` on its own, then merge the tiers' cells; a `client_prefix` keeps
    the rows whose client_id starts with it."""
    parts: dict[tuple[int, str | None], list[RollupStats]] = {}
    for table, _, ranges in read_plan(boundaries, family):
        sqls = _pg_sql(table.name, group_by, model_ids, client_ids, client_prefix, len(ranges))
        params: dict[str, Any] = {
            "org": org_id, "lo": ranges[0][0], "hi": ranges[-1][1],
            **{f"lo{i}": lo for i, (lo, _) in enumerate(ranges)},
            **{f"hi{i}": hi for i, (_, hi) in enumerate(ranges)},
            "bounds": list(boundaries), "models": list(model_ids),
            "clients": list(client_ids), "key_lo": client_prefix,
            "key_hi": prefix_end(client_prefix) if client_prefix else "",
        }
        for key, stats in _cells(conn, sqls, params, latency):
            parts.setdefault(key, []).append(stats)
    cells = [(boundaries[p - 1], None if g is None else str(g),
              stats[0] if len(stats) == 1 else merge_stats(stats))
             for (p, g), stats in parts.items()]
    cells.sort(key=lambda c: (c[0], c[1] or ""))
    return cells


def _cells(conn: sa.Connection, sqls: tuple[str, str, str], params: dict[str, Any],
           latency: bool) -> list[tuple[tuple[int, str | None], RollupStats]]:
    """(period index, group) and stats of one tier's read."""
    counters_sql, bins_sql, codes_sql = sqls
    bins: dict[tuple[int, str | None], dict[int, int]] = {}
    codes: dict[tuple[int, str | None], dict[str, int]] = {}
    with driver(conn).cursor(binary=True) as cur:
        counters = cur.execute(counters_sql, params).fetchall()
        if latency:
            cur.execute(_WORK_MEM)
            for p, g, indexes, counts in cur.execute(bins_sql, params):
                bins[(p, g)] = dict(zip(indexes, counts, strict=True))
            for p, g, code, n in cur.execute(codes_sql, params):
                codes.setdefault((p, g), {})[code] = n
    out = []
    for p, g, *sums in counters:
        row = [p, g, *(None if v is None else int(v) for v in sums)]
        out.append(((p, g), RollupStats(
            invocations=row[2], success=row[3], errors=row[4], timeouts=row[5],
            throttled=row[6], input_tokens=row[7], output_tokens=row[8], cost=Cents(row[9]),
            latency_sum=row[10], latency_min=row[11], latency_max=row[12],
            sketch=LatencySketch(row[13], bins.get((p, g), {})) if latency else LatencySketch(),
            error_codes=merge_error_codes({}, codes.get((p, g), {})),
            **extra_fields(row[14:]),
        )))
    return out
