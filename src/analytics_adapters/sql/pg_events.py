"""PostgreSQL fast path for raw events: binary COPY into staging, then one set-based statement.

`insert_new`: COPY the batch into `analytics_stage_events`, create missing day partitions, then
one statement keeps the first occurrence of each key, inserts the keys into `event_keys` in key
order with ON CONFLICT DO NOTHING RETURNING, inserts the raw rows of exactly the returned keys
into `usage_events`, and returns their input positions. Concurrent ingests lock keys in the
same order, and the loser of a race sees the key as already stored.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from psycopg.types.json import Jsonb

from analytics_adapters.sql.base import ActiveUnit
from analytics_adapters.sql.convert import STATUS_CODES
from analytics_adapters.sql.partitions import ensure_event_partitions
from analytics_adapters.sql.pg_stage import Stage, copy_rows, fetch_all
from analytics_core.events import UsageEvent
from analytics_core.ports import EventKey

_EVENTS = Stage("analytics_stage_events", """
CREATE TEMP TABLE IF NOT EXISTS analytics_stage_events (
  ord int4, org_id uuid, occurred_at timestamptz, event_id uuid, model_id uuid, status int2,
  latency_ms int8, input_tokens int8, output_tokens int8, cost_units int8, actor_id uuid,
  client_id text, error_code text, metadata jsonb, fingerprint bytea, cache_read_tokens int8,
  cache_write_tokens int8, audio_input_tokens int8, reasoning_tokens int8,
  audio_output_tokens int8, price_version_id uuid
) ON COMMIT DELETE ROWS""", [
    "int4", "uuid", "timestamptz", "uuid", "uuid", "int2", "int8", "int8", "int8", "int8",
    "uuid", "text", "text", "jsonb", "bytea", "int8", "int8", "int8", "int8", "int8", "uuid",
])

_INSERT_NEW = """
WITH s AS (
  SELECT DISTINCT ON (org_id, event_id) * FROM analytics_stage_events
  ORDER BY org_id, event_id, ord
), k AS (
  INSERT INTO event_keys (org_id, event_id, occurred_at, fingerprint)
  SELECT org_id, event_id, occurred_at, fingerprint FROM s
  ORDER BY org_id, event_id
  ON CONFLICT DO NOTHING
  RETURNING org_id, event_id
), e AS (
  INSERT INTO usage_events (
    org_id, occurred_at, event_id, model_id, status, latency_ms, input_tokens,
    output_tokens, cost_units, actor_id, client_id, error_code, metadata, cache_read_tokens,
    cache_write_tokens, audio_input_tokens, reasoning_tokens, audio_output_tokens,
    price_version_id)
  SELECT s.org_id, s.occurred_at, s.event_id, s.model_id, s.status, s.latency_ms,
         s.input_tokens, s.output_tokens, s.cost_units, s.actor_id, s.client_id,
         s.error_code, s.metadata, s.cache_read_tokens, s.cache_write_tokens,
         s.audio_input_tokens, s.reasoning_tokens, s.audio_output_tokens, s.price_version_id
  FROM s JOIN k USING (org_id, event_id)
)
SELECT s.ord FROM s JOIN k USING (org_id, event_id)"""

_KEYS = Stage("analytics_stage_keys", """
CREATE TEMP TABLE IF NOT EXISTS analytics_stage_keys (
  ord int4, org_id uuid, event_id uuid
) ON COMMIT DELETE ROWS""", ["int4", "uuid", "uuid"])

_LOOKUP = """
SELECT s.ord, k.fingerprint
FROM analytics_stage_keys s JOIN event_keys k USING (org_id, event_id)"""


def insert_new(
    unit: ActiveUnit, conn: sa.Connection, events: Sequence[UsageEvent],
    price_versions: Sequence[uuid.UUID | None] = (),
) -> list[UsageEvent]:
    """Store the events whose key is new (first occurrence wins) with their price versions;
    return those, in order."""
    codes = STATUS_CODES
    versions = price_versions or itertools.repeat(None)
    copy_rows(unit, conn, _EVENTS, (
        (i, e.org_id, e.occurred_at, e.event_id, e.model_id, codes[e.status], e.latency_ms,
         e.input_tokens, e.output_tokens, e.cost.units, e.actor_id, e.client_id,
         e.error_code, Jsonb(dict(e.metadata)) if e.metadata else None,
         bytes.fromhex(e.fingerprint()), *e.token_details.as_tuple(), version)
        for (i, e), version in zip(enumerate(events), versions, strict=False)
    ))
    ensure_event_partitions(conn, {e.occurred_at.date() for e in events})
    positions = sorted(row[0] for row in fetch_all(conn, _INSERT_NEW))
    return [events[i] for i in positions]


def fingerprints(
    unit: ActiveUnit, conn: sa.Connection, keys: Sequence[EventKey]
) -> dict[EventKey, bytes]:
    """Stored fingerprints of the keys found among `keys` (which must be distinct)."""
    copy_rows(unit, conn, _KEYS, ((i, k[0], k[1]) for i, k in enumerate(keys)))
    return {keys[i]: bytes(fp) for i, fp in fetch_all(conn, _LOOKUP)}
