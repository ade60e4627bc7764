"""PostgreSQL fast path for rollups and freshness markers: COPY, then ordered upserts.

Rollups: the deltas go into `analytics_stage_rollups`, then one INSERT ... SELECT ... ORDER BY
key ON CONFLICT DO UPDATE per table (15-minute base, hour and day tiers) adds every counter and
merges the latency sketch with `analytics_sketch_add` (migration 0002) in the same statement.
The row lock taken by ON CONFLICT makes the read-merge-write atomic, and locking rows in key
order (tables always in the same order) keeps concurrent ingests deadlock-free.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from psycopg.types.json import Jsonb

from analytics_adapters.sql.base import ActiveUnit
from analytics_adapters.sql.convert import ROLLUP_COLUMNS, sketch_lists
from analytics_adapters.sql.pg_stage import Stage, copy_rows
from analytics_adapters.sql.schema import EXTRA_COUNTER_COLUMNS, ROLLUPS, RollupFamily
from analytics_adapters.sql.sqlite_rollups import floor_day, floor_hour
from analytics_core.freshness import FreshnessMarker
from analytics_core.rollups import Rollup, RollupStats

_EMPTY_JSON = Jsonb({})

# The additive counters of a rollup row, in `ROLLUP_COLUMNS` order around the sketch columns.
_SUMMED = (
    "invocations", "success", "errors", "timeouts", "throttled", "input_tokens",
    "output_tokens", "cost_units", "latency_sum",
)
_SUMMED_LATE = ("lat_zeros",)
_DETAILS = EXTRA_COUNTER_COLUMNS
ADDED_COLUMNS = (*_SUMMED, *_SUMMED_LATE, *_DETAILS)
"""The columns a merge adds (the others: min, max, sketch and error-code merges)."""

_ROLLUPS = Stage("analytics_stage_rollups", """
CREATE TEMP TABLE IF NOT EXISTS analytics_stage_rollups (
  org_id uuid, bucket_start timestamptz, model_id uuid, client_id text, @counters,
  latency_min int8, latency_max int8, lat_zeros int8, lat_bins int4[], lat_counts int8[],
  error_codes jsonb, @details
) ON COMMIT DELETE ROWS""".replace(
    "@counters", ", ".join(f"{c} int8" for c in _SUMMED)
).replace("@details", ", ".join(f"{c} int8" for c in _DETAILS)), [
    "uuid", "timestamptz", "uuid", "text", *["int8"] * len(_SUMMED), "int8", "int8", "int8",
    "int4[]", "int8[]", "jsonb", *["int8"] * len(_DETAILS),
])

_COLUMNS = ", ".join(ROLLUP_COLUMNS)

# Deltas that share their statistics (the attribution rows of an event alone in them: one per
# dimension) are staged once with all their groups, and expanded into the stage above inside
# PostgreSQL: a third to a fifth of the rows to send and parse.
_SHARED = Stage(
    "analytics_stage_shared",
    _ROLLUPS.create.replace("analytics_stage_rollups", "analytics_stage_shared").replace(
        "client_id text", "client_ids text[]"),
    [*_ROLLUPS.types[:3], "text[]", *_ROLLUPS.types[4:]])
_EXPAND_SHARED = """
INSERT INTO analytics_stage_rollups
SELECT org_id, bucket_start, model_id, unnest(client_ids), @rest
FROM analytics_stage_shared""".replace("@rest", ", ".join(ROLLUP_COLUMNS[4:]))
_SHARED_AT_MOST = 0.75  # staged rows / deltas: below this, the deltas go in shared

_MERGE = """
ON CONFLICT (org_id, bucket_start, model_id, client_id) DO UPDATE SET
  @sums,
  latency_min = LEAST(r.latency_min, excluded.latency_min),
  latency_max = GREATEST(r.latency_max, excluded.latency_max),
  (lat_bins, lat_counts) = (
    SELECT (m.s).bins, (m.s).counts FROM (
      SELECT analytics_sketch_add(r.lat_bins, r.lat_counts, excluded.lat_bins,
                                  excluded.lat_counts) AS s
      OFFSET 0) AS m
  ),
  error_codes = CASE WHEN excluded.error_codes = '{}'::jsonb THEN r.error_codes
                     ELSE analytics_merge_error_codes(r.error_codes, excluded.error_codes) END
""".replace("@sums", ",\n  ".join(
    f"{c} = r.{c} + excluded.{c}" for c in ADDED_COLUMNS
))



def merge_clause(conflict: str) -> str:
    """The ON CONFLICT ... DO UPDATE that adds a delta to a stored rollup row, for another
    table's conflict target (`ON CONFLICT (...)`)."""
    return _MERGE.replace("ON CONFLICT (org_id, bucket_start, model_id, client_id)", conflict)


_UPSERT_BASE = """
INSERT INTO @base AS r (@columns)
SELECT * FROM analytics_stage_rollups
ORDER BY org_id, bucket_start, model_id, client_id
@merge""".replace("@columns", _COLUMNS).replace("@merge", _MERGE)

# Tier deltas are derived from the staged 15-minute deltas inside PostgreSQL. When no two staged
# deltas share a tier key (the usual case for a live stream: a batch spans seconds, so it
# rarely holds two 15-minute buckets of one hour), each delta is upserted as it is with its
# bucket start truncated, without the window and the grouping (~8 ms per 10,000 events).
# Otherwise a tier key with a single delta takes it as it is and only keys with several go
# through the sketch and error-code aggregates.
_UPSERT_TIER_DISTINCT = """
INSERT INTO @table AS r (@columns)
SELECT org_id, date_trunc('@unit', bucket_start, 'UTC') AS tier_start, model_id, client_id,
       @rest
FROM analytics_stage_rollups
ORDER BY org_id, tier_start, model_id, client_id
@merge""".replace("@columns", _COLUMNS).replace("@merge", _MERGE).replace(
    "@rest", ", ".join(ROLLUP_COLUMNS[4:]))

_UPSERT_TIER = """
INSERT INTO @table AS r (@columns)
SELECT org_id, tier_start, model_id, client_id, @summed, latency_min,
       latency_max, lat_zeros,
       CASE WHEN deltas = 1 THEN one_bins ELSE (merged).bins END,
       CASE WHEN deltas = 1 THEN one_counts ELSE (merged).counts END,
       CASE WHEN deltas = 1 THEN one_codes ELSE codes END, @details
FROM (
  SELECT org_id, tier_start, model_id, client_id, count(*) AS deltas, @sums,
         min(latency_min) AS latency_min,
         max(latency_max) AS latency_max, sum(lat_zeros)::int8 AS lat_zeros,
         min(lat_bins) AS one_bins, min(lat_counts) AS one_counts,
         (array_agg(error_codes))[1] AS one_codes,
         analytics_sketch_agg(lat_bins, lat_counts) FILTER (WHERE shared) AS merged,
         analytics_error_codes_agg(error_codes) FILTER (WHERE shared) AS codes
  FROM (
    SELECT s.*, date_trunc('@unit', s.bucket_start, 'UTC') AS tier_start,
           count(*) OVER (PARTITION BY s.org_id, date_trunc('@unit', s.bucket_start, 'UTC'),
                                       s.model_id, s.client_id) > 1 AS shared
    FROM analytics_stage_rollups s
  ) AS d
  GROUP BY org_id, tier_start, model_id, client_id
) AS g
ORDER BY org_id, tier_start, model_id, client_id
@merge""".replace("@columns", _COLUMNS).replace("@merge", _MERGE).replace(
    "@summed", ", ".join(_SUMMED)).replace("@details", ", ".join(_DETAILS)).replace(
    "@sums", ", ".join(f"sum({c})::int8 AS {c}" for c in (*_SUMMED, *_DETAILS)))


def _tier(table: str, unit: str) -> tuple[str, str]:
    """(upsert when the tier keys are distinct, upsert otherwise) of one tier table."""
    def fill(sql: str) -> str:
        return sql.replace("@table", table).replace("@unit", unit)
    return fill(_UPSERT_TIER_DISTINCT), fill(_UPSERT_TIER)


Tiers = tuple[tuple[Callable[[datetime], datetime], str, str], ...]


@functools.cache
def _statements(family: RollupFamily) -> tuple[str, Tiers]:
    """The base upsert and the tier upserts of a family of rollup tables."""
    return _UPSERT_BASE.replace("@base", family.base.name), (
        (floor_hour, *_tier(family.hour.name, "hour")),
        (floor_day, *_tier(family.day.name, "day")),
    )

_MARKERS = Stage("analytics_stage_markers", """
CREATE TEMP TABLE IF NOT EXISTS analytics_stage_markers (
  org_id uuid, model_id uuid, last_event_at timestamptz, last_rollup_at timestamptz
) ON COMMIT DELETE ROWS""", ["uuid", "uuid", "timestamptz", "timestamptz"])

_UPSERT_MARKERS = """
INSERT INTO freshness_markers AS f (org_id, model_id, last_event_at, last_rollup_at)
SELECT * FROM analytics_stage_markers ORDER BY org_id, model_id
ON CONFLICT (org_id, model_id) DO UPDATE SET
  last_event_at = GREATEST(f.last_event_at, excluded.last_event_at),
  last_rollup_at = GREATEST(f.last_rollup_at, excluded.last_rollup_at)"""


def _stats_part(s: RollupStats) -> tuple[Any, ...]:
    bins, counts = sketch_lists(s.sketch)
    return (s.invocations, s.success, s.errors, s.timeouts, s.throttled, s.input_tokens,
            s.output_tokens, s.cost.units, s.latency_sum, s.latency_min, s.latency_max,
            s.sketch.zero_count, bins, counts,
            Jsonb(dict(s.error_codes)) if s.error_codes else _EMPTY_JSON, *s.extra_counters())


def _shared(rollups: Sequence[Rollup]) -> dict[tuple[Any, ...], tuple[RollupStats, list[str]]]:
    """The deltas grouped by (org, bucket, model, stats object): the groups of each."""
    shared: dict[tuple[Any, ...], tuple[RollupStats, list[str]]] = {}
    for r in rollups:
        k = r.key
        shared.setdefault((id(r.stats), k.org_id, k.bucket_start, k.model_id),
                          (r.stats, []))[1].append(k.client_id)
    return shared


def _stage(unit: ActiveUnit, conn: sa.Connection, rollups: Sequence[Rollup]) -> None:
    """Fill the rollups stage with the deltas: row by row, or (when many share their stats)
    through the shared stage."""
    shared = _shared(rollups)
    if len(shared) > _SHARED_AT_MOST * len(rollups):
        copy_rows(unit, conn, _ROLLUPS, (
            (r.key.org_id, r.key.bucket_start, r.key.model_id, r.key.client_id,
             *_stats_part(r.stats)) for r in rollups))
        return
    copy_rows(unit, conn, _ROLLUPS, ())
    copy_rows(unit, conn, _SHARED, (
        (org, bucket, model, groups, *_stats_part(stats))
        for (_, org, bucket, model), (stats, groups) in shared.items()))
    conn.exec_driver_sql(_EXPAND_SHARED)


def distinct_tier_keys(
    rollups: Sequence[Rollup], floor: Callable[[datetime], datetime]
) -> bool:
    """Whether no two deltas (whose own keys are distinct) share a key once floored to a tier."""
    tiers = {start: floor(start) for start in {r.key.bucket_start for r in rollups}}
    if len(set(tiers.values())) == len(tiers):
        return True  # no two bucket starts share a tier start, so keys stay distinct
    keys = {(k.org_id, tiers[k.bucket_start], k.model_id, k.client_id)
            for k in (r.key for r in rollups)}
    return len(keys) == len(rollups)


def upsert_rollups(unit: ActiveUnit, conn: sa.Connection, rollups: Sequence[Rollup],
                   family: RollupFamily = ROLLUPS) -> None:
    """Add rollup deltas (keys must be distinct) in one set-based upsert per table of the
    family (the model/client rollups, or the attribution rollups)."""
    base, tiers = _statements(family)
    _stage(unit, conn, rollups)
    conn.exec_driver_sql(base)
    for floor, distinct, aggregated in tiers:
        conn.exec_driver_sql(distinct if distinct_tier_keys(rollups, floor) else aggregated)


def touch_markers(
    unit: ActiveUnit, conn: sa.Connection, markers: Sequence[FreshnessMarker]
) -> None:
    """Move freshness markers forward (keys must be distinct) in one set-based upsert."""
    copy_rows(unit, conn, _MARKERS, (
        (m.org_id, m.model_id, m.last_event_at, m.last_rollup_at) for m in markers
    ))
    conn.exec_driver_sql(_UPSERT_MARKERS)
