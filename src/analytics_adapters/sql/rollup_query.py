"""Rollups merged per (period, group) for usage and reliability series.

The caller gives period boundaries (computed in the core, exact in any zone). On PostgreSQL
each UTC day of the window is read from the day tier when no boundary falls inside it, each
remaining hour from the hour tier when none falls inside that, and only what is left from the
15-minute base (`read_plan`), and a local day of a zone that has a zone day tier
(`zone_days`) from that tier once it is built: a month in Asia/Kathmandu reads ~30 zone day
rows per group and the hours and buckets of two partial days, not ~2,900 base rows.
PostgreSQL sums counters, sketches and error codes in SQL over the rows of every tier at once
(three statements per read) and returns one small row per (period, group, bin). SQLite
(embedded scale) reads the coarsest table aligned with every boundary and merges the rows in
Python.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import sqlalchemy as sa

from analytics_adapters.sql.convert import ROLLUP_COLUMNS
from analytics_adapters.sql.pg_stage import driver
from analytics_adapters.sql.schema import (
    ATTRIBUTION,
    EXTRA_COUNTER_COLUMNS,
    ROLLUPS,
    RollupFamily,
)
from analytics_core.money import Cents
from analytics_core.rollups import (
    GROUP_BY_VALUES,
    AggregateCell,
    RollupStats,
    extra_fields,
    merge_error_codes,
)
from analytics_core.sketch import LatencySketch

Cell = AggregateCell
GROUPS = GROUP_BY_VALUES
_DAY, _HOUR = 86400, 3600
_GROUP_SQL = {"model": "model_id", "client": "client_id", "none": "NULL::text"}
# The bins statement's settings, local to the reading transaction. Hash aggregation of a month
# of wide sketches needs more than the default 4 MB of work_mem to stay in memory. And the
# planner guesses 10 rows per unnest, so it may pick a sort-based grouping and parallel workers
# that ship every unnested bin to the leader: for a month of wide sketches (~170,000 bins) that
# is ~130 ms where hashing in one process takes ~25 ms, and which plan wins flipped with
# ANALYZE's sample. So sorting and parallel workers are off for that statement, and put back
# as they were after it (the first columns read them before the change).
_BINS_SETTINGS = (
    "SELECT current_setting('enable_sort'), current_setting('max_parallel_workers_per_gather'),"
    " set_config('work_mem', '64MB', true), set_config('enable_sort', 'off', true),"
    " set_config('max_parallel_workers_per_gather', '0', true)"
)
_RESTORE = ("SELECT set_config('enable_sort', %s, true), "
            "set_config('max_parallel_workers_per_gather', %s, true)")


def table_for(boundaries: Sequence[datetime], family: RollupFamily = ROLLUPS) -> sa.Table:
    """The family's coarsest table whose buckets never straddle a boundary."""
    seconds = [int(b.timestamp()) for b in boundaries]
    if all(s % _DAY == 0 for s in seconds):
        return family.day
    if all(s % _HOUR == 0 for s in seconds):
        return family.hour
    return family.base


_BASE = 900
_ZONE_TABLES = frozenset({ROLLUPS.zone.name, ATTRIBUTION.zone.name})
_ZONED = 0  # the key of the zone day tier's ranges: its days have no one size


@attrs.frozen
class ZoneSpans:
    """Built local days of one zone usable by a read: (start, end) instants, ascending."""

    zone: str
    spans: tuple[tuple[datetime, datetime], ...]


def read_plan(boundaries: Sequence[datetime], family: RollupFamily = ROLLUPS,
              zoned: ZoneSpans | None = None,
              ) -> list[tuple[sa.Table, int, list[tuple[datetime, datetime]]]]:
    """What to read from each table of the family to cover [boundaries[0], boundaries[-1]):
    (table, bucket seconds, ranges of bucket starts [lo, hi)), contiguous ranges merged. A
    day (hour) bucket is read from its tier when no boundary falls strictly inside it, so
    every bucket read lies in one period; so is a built local day of `zoned` (the zone day
    tier, bucket seconds 0), when no UTC day serves."""
    edges = sorted(int(b.timestamp()) for b in boundaries)
    first, last = edges[0], edges[-1]
    local_days = {} if zoned is None else {
        int(a.timestamp()): int(b.timestamp()) for a, b in zoned.spans}

    def clean(start: int, size: int) -> bool:
        i = bisect.bisect_right(edges, start)
        return start + size <= last and (i == len(edges) or edges[i] >= start + size)

    ranges: dict[int, list[list[int]]] = {_DAY: [], _ZONED: [], _HOUR: [], _BASE: []}
    t = first
    while t < last:
        size = next(s for s in (_DAY, _HOUR, _BASE) if (t % s == 0 and clean(t, s))
                    or s == _BASE)
        key, end = size, t + size
        if size != _DAY and t in local_days and clean(t, local_days[t] - t):
            key, end = _ZONED, local_days[t]
        runs = ranges[key]
        if runs and runs[-1][1] == t:
            runs[-1][1] = end
        else:
            runs.append([t, end])
        t = end
    tables = {_DAY: family.day, _ZONED: family.zone, _HOUR: family.hour,
              _BASE: family.base}
    return [(tables[size], size, [(_utc(lo), _utc(hi)) for lo, hi in runs])
            for size, runs in ranges.items() if runs]


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def prefix_end(prefix: str) -> str:
    """The least text above every text starting with `prefix` (C collation: code points)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _where(table: str, ranges: Sequence[tuple[datetime, datetime]], tier: int,
           params: dict[str, Any], filters: str) -> str:
    """FROM and WHERE of one tier's part of a read: the org, the tier's runs of buckets (an
    index range scan each, a BitmapOr when several), the zone for the zone day tier, and the
    shared filters; the runs' bounds go into `params`."""
    clauses = ["org_id = %(org)s"]
    if table in _ZONE_TABLES:
        clauses.append("zone = %(zone)s")
    params[f"lo{tier}"], params[f"hi{tier}"] = ranges[0][0], ranges[-1][1]
    clauses += [f"bucket_start >= %(lo{tier})s", f"bucket_start < %(hi{tier})s"]
    if len(ranges) > 1:
        runs = []
        for i, (lo, hi) in enumerate(ranges):
            params[f"lo{tier}_{i}"], params[f"hi{tier}_{i}"] = lo, hi
            runs.append(f"bucket_start >= %(lo{tier}_{i})s AND bucket_start < %(hi{tier}_{i})s")
        clauses.append("(" + " OR ".join(runs) + ")")
    return f"FROM {table} WHERE " + " AND ".join(clauses) + filters


def _filters(model_ids: Sequence[uuid.UUID], client_ids: Sequence[str],
             client_prefix: str) -> str:
    clauses = []
    if model_ids:
        clauses.append("model_id = ANY(%(models)s)")
    if client_ids:
        clauses.append("client_id = ANY(%(clients)s)")
    if client_prefix:
        clauses.append("client_id >= %(key_lo)s AND client_id < %(key_hi)s")
    return "".join(f" AND {c}" for c in clauses)


_READ_COLUMNS = ", ".join(ROLLUP_COLUMNS[1:])  # every column but the org


def _pg_sql(sources: Sequence[str], group_by: str) -> tuple[str, str, str]:
    """The three statements of a read (counters, sketch bins, error codes per cell) over the
    rows of every tier's part (`sources`: FROM ... WHERE ... of each), one statement each."""
    period = "width_bucket(bucket_start, %(bounds)s::timestamptz[])"
    group = _GROUP_SQL[group_by]
    rows = "(" + " UNION ALL ".join(
        f"SELECT {_READ_COLUMNS} {source}" for source in sources) + ") AS src"
    # sum(bigint) is numeric: exact past the int64 range (a window of many full days), read
    # back as int below. A cast to int8 here would turn such a window into an error.
    counters = (
        f"SELECT {period}, {group}, sum(invocations), sum(success), "  # noqa: S608
        "sum(errors), sum(timeouts), sum(throttled), "
        "sum(input_tokens), sum(output_tokens), sum(cost_units), "
        "sum(latency_sum), min(latency_min), max(latency_max), sum(lat_zeros), "
        f"{', '.join(f'sum({c})' for c in EXTRA_COUNTER_COLUMNS)} "
        f"FROM {rows} GROUP BY 1, 2"
    )
    # unnest in the select list (ProjectSet) streams; in FROM it would materialise per row.
    bins = (
        "SELECT p, g, array_agg(b), array_agg(c) FROM ("  # noqa: S608  fixed identifiers
        "SELECT p, g, b, sum(c)::int8 AS c FROM ("
        f"SELECT {period} AS p, {group} AS g, unnest(lat_bins) AS b, unnest(lat_counts) AS c "
        f"FROM {rows}) AS y GROUP BY 1, 2, 3) AS x GROUP BY 1, 2"
    )
    codes = (
        f"SELECT {period}, {group}, e.key, sum(e.value::int8)::int8 "  # noqa: S608
        f"FROM {rows}, jsonb_each_text(src.error_codes) AS e "
        "WHERE src.error_codes <> '{}'::jsonb GROUP BY 1, 2, 3"
    )
    return counters, bins, codes


def merge_in_postgres(
    conn: sa.Connection, family: RollupFamily, org_id: uuid.UUID,
    boundaries: Sequence[datetime], *, group_by: str, model_ids: Sequence[uuid.UUID],
    client_ids: Sequence[str], latency: bool, client_prefix: str = "",
    zoned: ZoneSpans | None = None,
) -> list[Cell]:
    """Sum counters (and, with `latency`, sketch bins and error codes) per cell in SQL over
    the tiers of the `read_plan` (one statement each for all tiers); a `client_prefix` keeps
    the rows whose client_id starts with it; `zoned` days are read from the zone day tier."""
    params: dict[str, Any] = {
        "org": org_id, "bounds": list(boundaries), "models": list(model_ids),
        "clients": list(client_ids), "key_lo": client_prefix,
        "key_hi": prefix_end(client_prefix) if client_prefix else "",
        "zone": None if zoned is None else zoned.zone,
    }
    filters = _filters(model_ids, client_ids, client_prefix)
    sources = [_where(table.name, ranges, tier, params, filters)
               for tier, (table, _, ranges) in enumerate(read_plan(boundaries, family, zoned))]
    cells = [(boundaries[p - 1], None if g is None else str(g), stats)
             for (p, g), stats in _cells(conn, _pg_sql(sources, group_by), params, latency)]
    cells.sort(key=lambda c: (c[0], c[1] or ""))
    return cells


def _cells(conn: sa.Connection, sqls: tuple[str, str, str], params: dict[str, Any],
           latency: bool) -> list[tuple[tuple[int, str | None], RollupStats]]:
    """(period index, group) and stats of a read."""
    counters_sql, bins_sql, codes_sql = sqls
    bins: dict[tuple[int, str | None], dict[int, int]] = {}
    codes: dict[tuple[int, str | None], dict[str, int]] = {}
    with driver(conn).cursor(binary=True) as cur:
        counters = cur.execute(counters_sql, params).fetchall()
        if latency:
            sort, workers, *_ = cur.execute(_BINS_SETTINGS).fetchone() or ("on", "2")
            for p, g, indexes, counts in cur.execute(bins_sql, params):
                bins[(p, g)] = dict(zip(indexes, counts, strict=True))
            cur.execute(_RESTORE, (sort, workers))
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
