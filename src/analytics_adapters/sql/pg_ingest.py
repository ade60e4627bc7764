"""PostgreSQL fast paths: binary COPY into per-session staging tables, then set-based SQL.

Events: COPY into `analytics_stage_events`, create missing day partitions, then one statement
inserts the keys into `event_keys` with ON CONFLICT DO NOTHING RETURNING and the raw rows of
exactly the returned keys into `usage_events`. Rollups: COPY the deltas into
`analytics_stage_rollups`, then one INSERT ... SELECT ... ORDER BY key ON CONFLICT DO UPDATE
that adds every counter and merges the latency sketch in the same statement; rows are locked
in key order, so concurrent ingests cannot deadlock on each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from psycopg import Connection as PgConnection
from psycopg.types.json import Jsonb

from analytics_adapters.sql.base import ActiveUnit
from analytics_adapters.sql.convert import STATUS_CODES, sketch_lists
from analytics_adapters.sql.partitions import ensure_event_partitions
from analytics_core.events import UsageEvent
from analytics_core.rollups import Rollup

STAGE_EVENTS = "analytics_stage_events"
STAGE_ROLLUPS = "analytics_stage_rollups"

_EVENT_TYPES = [
    "uuid", "timestamptz", "uuid", "uuid", "int2", "int8", "int8", "int8", "int8", "uuid",
    "text", "text", "jsonb", "bytea",
]
_CREATE_STAGE_EVENTS = """
CREATE TEMP TABLE IF NOT EXISTS analytics_stage_events (
  org_id uuid, occurred_at timestamptz, event_id uuid, model_id uuid, status int2,
  latency_ms int8, input_tokens int8, output_tokens int8, cost_units int8, actor_id uuid,
  client_id text, error_code text, metadata jsonb, fingerprint bytea
) ON COMMIT DELETE ROWS"""

# Keys are inserted in key order (concurrent ingests lock them in the same order); the raw
# rows of exactly the keys that were new follow in the same statement.
_INSERT_NEW = """
WITH k AS (
  INSERT INTO event_keys (org_id, event_id, occurred_at, fingerprint)
  SELECT org_id, event_id, occurred_at, fingerprint FROM analytics_stage_events
  ORDER BY org_id, event_id
  ON CONFLICT DO NOTHING
  RETURNING org_id, event_id
), e AS (
  INSERT INTO usage_events (
    org_id, occurred_at, event_id, model_id, status, latency_ms, input_tokens,
    output_tokens, cost_units, actor_id, client_id, error_code, metadata)
  SELECT s.org_id, s.occurred_at, s.event_id, s.model_id, s.status, s.latency_ms,
         s.input_tokens, s.output_tokens, s.cost_units, s.actor_id, s.client_id,
         s.error_code, s.metadata
  FROM analytics_stage_events s JOIN k USING (org_id, event_id)
)
SELECT org_id, event_id FROM k"""

_ROLLUP_TYPES = [
    "uuid", "timestamptz", "uuid", "text", "int8", "int8", "int8", "int8", "int8", "int8",
    "int8", "int8", "int8", "int8", "int8", "int8", "int4[]", "int8[]", "jsonb",
]
_CREATE_STAGE_ROLLUPS = """
CREATE TEMP TABLE IF NOT EXISTS analytics_stage_rollups (
  org_id uuid, bucket_start timestamptz, model_id uuid, client_id text, invocations int8,
  success int8, errors int8, timeouts int8, throttled int8, input_tokens int8,
  output_tokens int8, cost_units int8, latency_sum int8, latency_min int8, latency_max int8,
  lat_zeros int8, lat_bins int4[], lat_counts int8[], error_codes jsonb
) ON COMMIT DELETE ROWS"""

_UPSERT_ROLLUPS = """
INSERT INTO rollups_15m AS r (
  org_id, bucket_start, model_id, client_id, invocations, success, errors, timeouts,
  throttled, input_tokens, output_tokens, cost_units, latency_sum, latency_min, latency_max,
  lat_zeros, lat_bins, lat_counts, error_codes)
SELECT * FROM analytics_stage_rollups
ORDER BY org_id, bucket_start, model_id, client_id
ON CONFLICT (org_id, bucket_start, model_id, client_id) DO UPDATE SET
  invocations = r.invocations + excluded.invocations,
  success = r.success + excluded.success,
  errors = r.errors + excluded.errors,
  timeouts = r.timeouts + excluded.timeouts,
  throttled = r.throttled + excluded.throttled,
  input_tokens = r.input_tokens + excluded.input_tokens,
  output_tokens = r.output_tokens + excluded.output_tokens,
  cost_units = r.cost_units + excluded.cost_units,
  latency_sum = r.latency_sum + excluded.latency_sum,
  latency_min = LEAST(r.latency_min, excluded.latency_min),
  latency_max = GREATEST(r.latency_max, excluded.latency_max),
  lat_zeros = r.lat_zeros + excluded.lat_zeros,
  (lat_bins, lat_counts) = (
    SELECT m.bins, m.counts FROM analytics_merge_sketch(
      r.lat_bins, r.lat_counts, excluded.lat_bins, excluded.lat_counts) AS m
  ),
  error_codes = CASE WHEN excluded.error_codes = '{}'::jsonb THEN r.error_codes
                     ELSE analytics_merge_error_codes(r.error_codes, excluded.error_codes) END"""

_COPY_EVENTS = "COPY analytics_stage_events FROM STDIN (FORMAT BINARY)"
_COPY_ROLLUPS = "COPY analytics_stage_rollups FROM STDIN (FORMAT BINARY)"


def _driver(conn: sa.Connection) -> PgConnection[tuple[Any, ...]]:
    raw = conn.connection.driver_connection
    assert isinstance(raw, PgConnection)
    return raw


def _stage(unit: ActiveUnit, conn: sa.Connection, table: str, create: str) -> None:
    """Make the staging table exist and be empty in this transaction."""
    used = unit.scratch(table)
    conn.exec_driver_sql(f"TRUNCATE {table}" if used else create)


def insert_new_events(
    unit: ActiveUnit, conn: sa.Connection, events: Sequence[UsageEvent]
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """Store the events whose key is new (keys must be distinct); return the inserted keys."""
    _stage(unit, conn, STAGE_EVENTS, _CREATE_STAGE_EVENTS)
    raw = _driver(conn)
    codes = STATUS_CODES
    with raw.cursor() as cur, cur.copy(_COPY_EVENTS) as copy:
        copy.set_types(_EVENT_TYPES)
        for e in events:
            copy.write_row((
                e.org_id, e.occurred_at, e.event_id, e.model_id, codes[e.status],
                e.latency_ms, e.input_tokens, e.output_tokens, e.cost.units, e.actor_id,
                e.client_id, e.error_code, Jsonb(dict(e.metadata)) if e.metadata else None,
                bytes.fromhex(e.fingerprint()),
            ))
    ensure_event_partitions(conn, {e.occurred_at.date() for e in events})
    with raw.cursor() as cur:
        cur.execute(_INSERT_NEW)
        return {(row[0], row[1]) for row in cur.fetchall()}


def upsert_rollups(unit: ActiveUnit, conn: sa.Connection, rollups: Sequence[Rollup]) -> None:
    """Add rollup deltas (keys must be distinct) in one set-based upsert."""
    _stage(unit, conn, STAGE_ROLLUPS, _CREATE_STAGE_ROLLUPS)
    raw = _driver(conn)
    with raw.cursor() as cur:
        with cur.copy(_COPY_ROLLUPS) as copy:
            copy.set_types(_ROLLUP_TYPES)
            for r in rollups:
                k, s = r.key, r.stats
                bins, counts = sketch_lists(s.sketch)
                copy.write_row((
                    k.org_id, k.bucket_start, k.model_id, k.client_id, s.invocations,
                    s.success, s.errors, s.timeouts, s.throttled, s.input_tokens,
                    s.output_tokens, s.cost.units, s.latency_sum, s.latency_min,
                    s.latency_max, s.sketch.zero_count, bins, counts, Jsonb(dict(s.error_codes)),
                ))
        cur.execute(_UPSERT_ROLLUPS)
