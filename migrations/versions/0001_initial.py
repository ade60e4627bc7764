"""Initial schema: raw events (daily partitions on PostgreSQL), dedupe keys, 15-minute rollups,
dead letters, conflicts, freshness, offsets, export jobs, audit log, API keys.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from analytics_adapters.sql.types import IntList, UtcDateTime, big_id, c_text, json_type

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_OPEN = "status IN ('pending', 'running')"
_FINISHED = "status IN ('succeeded', 'failed')"

# Merge two sparse sketches given as parallel (bin, count) arrays. Small deltas (the common
# case: a few new bins into a stored bucket) are folded in place with array_position, which
# runs in C; large ones go through one hash aggregation.
MERGE_SKETCH = """
CREATE FUNCTION analytics_merge_sketch(
  a_bins int4[], a_counts int8[], b_bins int4[], b_counts int8[],
  OUT bins int4[], OUT counts int8[]
) LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  j int;
  p int;
  n int := coalesce(cardinality(b_bins), 0);
BEGIN
  bins := coalesce(a_bins, '{}');
  counts := coalesce(a_counts, '{}');
  IF n = 0 THEN
    RETURN;
  END IF;
  IF n > 32 THEN
    SELECT coalesce(array_agg(i ORDER BY i), '{}'), coalesce(array_agg(c ORDER BY i), '{}')
      INTO bins, counts
      FROM (SELECT i, sum(c)::int8 AS c
              FROM (SELECT * FROM unnest(bins, counts)
                    UNION ALL SELECT * FROM unnest(b_bins, b_counts)) AS x(i, c)
             GROUP BY i) AS y;
    RETURN;
  END IF;
  FOR j IN 1 .. n LOOP
    p := array_position(bins, b_bins[j]);
    IF p IS NULL THEN
      bins := bins || b_bins[j];
      counts := counts || b_counts[j];
    ELSE
      counts[p] := counts[p] + b_counts[j];
    END IF;
  END LOOP;
END $$"""

# Same result as analytics_core.rollups.merge_error_codes: add, then past 64 codes keep the 63
# most frequent (ties by code point) and fold the rest into "(other)".
MERGE_ERROR_CODES = """
CREATE FUNCTION analytics_merge_error_codes(a jsonb, b jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  WITH summed AS (
    SELECT k, sum(v)::int8 AS n FROM (
      SELECT key, value::int8 FROM jsonb_each_text(coalesce(a, '{}'))
      UNION ALL SELECT key, value::int8 FROM jsonb_each_text(coalesce(b, '{}'))
    ) AS x(k, v) GROUP BY k
  ), ranked AS (
    SELECT k, n, row_number() OVER (ORDER BY n DESC, k COLLATE "C") AS rank FROM summed
  )
  SELECT CASE
    WHEN (SELECT count(*) FROM summed) <= 64
      THEN (SELECT coalesce(jsonb_object_agg(k, n), '{}'::jsonb) FROM summed)
    ELSE (SELECT jsonb_object_agg(k, n) FROM (
            SELECT k, n FROM ranked WHERE rank < 64 AND k <> '(other)'
            UNION ALL
            SELECT '(other)', sum(n)::int8 FROM ranked WHERE rank >= 64 OR k = '(other)'
          ) AS kept)
  END
$$"""

# Create missing daily partitions of usage_events. A plain table is created and ATTACHed
# (SHARE UPDATE EXCLUSIVE on the parent, so inserts and reads go on); one advisory lock taken
# before the first creation serialises creators, and the re-check after it sees their commits.
ENSURE_PARTITIONS = """
CREATE FUNCTION analytics_ensure_event_partitions(days date[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  d date;
  part text;
  created integer := 0;
  locked boolean := false;
BEGIN
  FOR d IN SELECT DISTINCT x FROM unnest(days) AS x WHERE x IS NOT NULL ORDER BY 1 LOOP
    part := 'usage_events_p' || to_char(d, 'YYYYMMDD');
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
      CONTINUE;
    END IF;
    IF NOT locked THEN
      PERFORM pg_advisory_xact_lock(hashtext('analytics_ensure_event_partitions'));
      locked := true;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relname = part AND n.nspname = current_schema()) THEN
      CONTINUE;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE usage_events INCLUDING DEFAULTS INCLUDING STORAGE)',
                   part);
    EXECUTE format('ALTER TABLE usage_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                   part, to_char(d, 'YYYY-MM-DD') || ' 00:00:00+00',
                   to_char(d + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
    created := created + 1;
  END LOOP;
  RETURN created;
END $$"""

PARTITIONS_AROUND_TODAY = """
SELECT analytics_ensure_event_partitions(ARRAY(
  SELECT generate_series((now() AT TIME ZONE 'UTC')::date - 1,
                         (now() AT TIME ZONE 'UTC')::date + 7, interval '1 day')::date))"""

# Aggregates folding many sketches / error-code maps (used to derive the hour and day tiers
# from a batch of 15-minute deltas).
AGGREGATES = (
    "CREATE TYPE analytics_sketch AS (bins int4[], counts int8[])",
    """CREATE FUNCTION analytics_sketch_acc(s analytics_sketch, b int4[], c int8[])
RETURNS analytics_sketch LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ROW(m.bins, m.counts)::analytics_sketch
  FROM analytics_merge_sketch(s.bins, s.counts, b, c) AS m
$$""",
    """CREATE AGGREGATE analytics_sketch_agg(int4[], int8[]) (
  SFUNC = analytics_sketch_acc, STYPE = analytics_sketch, INITCOND = '("{}","{}")'
)""",
    """CREATE AGGREGATE analytics_error_codes_agg(jsonb) (
  SFUNC = analytics_merge_error_codes, STYPE = jsonb, INITCOND = '{}'
)""",
)

# Dropped in this order by the downgrade.
OBJECTS = (
    ("AGGREGATE", "analytics_error_codes_agg(jsonb)"),
    ("AGGREGATE", "analytics_sketch_agg(int4[], int8[])"),
    ("FUNCTION", "analytics_sketch_acc(analytics_sketch, int4[], int8[])"),
    ("TYPE", "analytics_sketch"),
    ("FUNCTION", "analytics_ensure_event_partitions(date[])"),
    ("FUNCTION", "analytics_merge_error_codes(jsonb, jsonb)"),
    ("FUNCTION", "analytics_merge_sketch(int4[], int8[], int4[], int8[])"),
)


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _events() -> None:
    op.create_table(
        "usage_events",
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("occurred_at", UtcDateTime, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("model_id", sa.Uuid, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("latency_ms", sa.BigInteger, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_units", sa.BigInteger, nullable=False),
        sa.Column("actor_id", sa.Uuid, nullable=True),
        sa.Column("client_id", sa.Text, nullable=True),
        sa.Column("error_code", sa.Text, nullable=True),
        sa.Column("metadata", json_type(), nullable=True),
        sa.PrimaryKeyConstraint("org_id", "occurred_at", "event_id", name="pk_usage_events"),
        postgresql_partition_by="RANGE (occurred_at)",
    )
    op.create_table(
        "event_keys",
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("occurred_at", UtcDateTime, nullable=False),
        sa.Column("fingerprint", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("org_id", "event_id", name="pk_event_keys"),
    )
    op.create_index("ix_event_keys_occurred_at", "event_keys", ["occurred_at"],
                    postgresql_using="brin")


def _rollups() -> None:
    for name in ("rollups_15m", "rollups_1h", "rollups_1d"):
        counters = [
            sa.Column(column, sa.BigInteger, nullable=False)
            for column in ("invocations", "success", "errors", "timeouts", "throttled",
                           "input_tokens", "output_tokens", "cost_units", "latency_sum")
        ]
        op.create_table(
            name,
            sa.Column("org_id", sa.Uuid, nullable=False),
            sa.Column("bucket_start", UtcDateTime, nullable=False),
            sa.Column("model_id", sa.Uuid, nullable=False),
            sa.Column("client_id", c_text(), nullable=False),
            *counters,
            sa.Column("latency_min", sa.BigInteger, nullable=True),
            sa.Column("latency_max", sa.BigInteger, nullable=True),
            sa.Column("lat_zeros", sa.BigInteger, nullable=False),
            sa.Column("lat_bins", IntList(), nullable=False),
            sa.Column("lat_counts", IntList(big=True), nullable=False),
            sa.Column("error_codes", json_type(), nullable=False),
            sa.PrimaryKeyConstraint(
                "org_id", "bucket_start", "model_id", "client_id", name=f"pk_{name}"
            ),
        )


def _ingest_records() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("seq", big_id(), primary_key=True, autoincrement=True),
        sa.Column("dead_letter_id", sa.Uuid, nullable=False),
        sa.Column("org_id", sa.Uuid, nullable=True),
        sa.Column("received_at", UtcDateTime, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("stream_offset", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_dead_letters"),
        sa.UniqueConstraint("dead_letter_id", name="uq_dead_letters_dead_letter_id"),
    )
    op.create_index("ix_dead_letters_org_id_received_at_seq", "dead_letters",
                    ["org_id", "received_at", "seq"])
    op.create_index("ix_dead_letters_received_at_seq", "dead_letters", ["received_at", "seq"])
    op.create_table(
        "dedupe_conflicts",
        sa.Column("seq", big_id(), primary_key=True, autoincrement=True),
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("detected_at", UtcDateTime, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("first_fingerprint", sa.Text, nullable=False),
        sa.Column("new_fingerprint", sa.Text, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_dedupe_conflicts"),
    )
    op.create_index("ix_dedupe_conflicts_org_id_detected_at_seq", "dedupe_conflicts",
                    ["org_id", "detected_at", "seq"])
    op.create_table(
        "freshness_markers",
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("model_id", sa.Uuid, nullable=False),
        sa.Column("last_event_at", UtcDateTime, nullable=True),
        sa.Column("last_rollup_at", UtcDateTime, nullable=True),
        sa.PrimaryKeyConstraint("org_id", "model_id", name="pk_freshness_markers"),
    )
    op.create_table(
        "stream_offsets",
        sa.Column("consumer", sa.Text, nullable=False),
        sa.Column("stream", sa.Text, nullable=False),
        sa.Column("last_offset", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("consumer", "stream", name="pk_stream_offsets"),
    )


def _exports() -> None:
    op.create_table(
        "export_jobs",
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("job_id", sa.Uuid, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("granularity", sa.Text, nullable=False),
        sa.Column("tz", sa.Text, nullable=False),
        sa.Column("range_start", UtcDateTime, nullable=False),
        sa.Column("range_end", UtcDateTime, nullable=False),
        sa.Column("models", json_type(), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("initiated_by", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("idempotency_key", sa.Text, nullable=True),
        sa.Column("lease_owner", sa.Text, nullable=True),
        sa.Column("lease_expires_at", UtcDateTime, nullable=True),
        sa.Column("next_attempt_at", UtcDateTime, nullable=True),
        sa.Column("completed_at", UtcDateTime, nullable=True),
        sa.Column("row_count", sa.BigInteger, nullable=True),
        sa.Column("checksum", sa.Text, nullable=True),
        sa.Column("object_key", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("expires_at", UtcDateTime, nullable=True),
        sa.Column("scheduled", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("org_id", "job_id", name="pk_export_jobs"),
        sa.UniqueConstraint("org_id", "idempotency_key",
                            name="uq_export_jobs_org_id_idempotency_key"),
    )
    op.create_index("ix_export_jobs_org_id_created_at_job_id", "export_jobs",
                    ["org_id", "created_at", "job_id"])
    op.create_index("ix_export_jobs_claimable", "export_jobs", ["created_at", "job_id"],
                    postgresql_where=sa.text(_OPEN), sqlite_where=sa.text(_OPEN))
    op.create_index("ix_export_jobs_expirable", "export_jobs", ["expires_at", "job_id"],
                    postgresql_where=sa.text(_FINISHED), sqlite_where=sa.text(_FINISHED))


def _access() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", big_id(), primary_key=True, autoincrement=True),
        sa.Column("audit_id", sa.Uuid, nullable=False),
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("actor_org", sa.Uuid, nullable=True),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("request_id", sa.Text, nullable=True),
        sa.Column("cross_org", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_org_id_at_seq", "audit_log", ["org_id", "at", "seq"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("org_id", sa.Uuid, nullable=True),
        sa.Column("roles", json_type(), nullable=False),
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("revoked", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
    )


def upgrade() -> None:
    _events()
    _rollups()
    _ingest_records()
    _exports()
    _access()
    if _postgres():
        for name in ("rollups_15m", "rollups_1h", "rollups_1d"):
            # Rows of the current buckets are updated many times: leave room for HOT
            # updates, and keep sketches up to ~8 kB inline and uncompressed so an update
            # or a read never goes through TOAST compression.
            op.execute(f"ALTER TABLE {name} SET (fillfactor = 90, toast_tuple_target = 8160)")
        op.execute(MERGE_SKETCH)
        op.execute(MERGE_ERROR_CODES)
        for statement in AGGREGATES:
            op.execute(statement)
        op.execute(ENSURE_PARTITIONS)
        op.execute(PARTITIONS_AROUND_TODAY)


def downgrade() -> None:
    for table in ("api_keys", "audit_log", "export_jobs", "stream_offsets",
                  "freshness_markers", "dedupe_conflicts", "dead_letters", "rollups_1d",
                  "rollups_1h", "rollups_15m", "event_keys", "usage_events"):
        op.drop_table(table)
    if _postgres():
        for kind, name in OBJECTS:
            op.execute(f"DROP {kind} IF EXISTS {name}")
