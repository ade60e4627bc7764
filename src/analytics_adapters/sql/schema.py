"""SQLAlchemy Core table metadata: every table keyed org first (SPEC §10).

This is the schema the adapters query; `migrations/` creates it (and a test checks the two
agree). PostgreSQL-only physical details (daily partitions of `usage_events`, the sketch merge
functions, fillfactor) live in the migrations and `partitions.py`.
"""

from __future__ import annotations

import attrs
import sqlalchemy as sa

from analytics_adapters.sql.types import IntList, UtcDateTime, big_id, c_text, json_type
from analytics_core.events import TOKEN_DETAIL_NAMES
from analytics_core.rollups import EXTRA_COUNTER_NAMES

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

TOKEN_DETAIL_COLUMNS = TOKEN_DETAIL_NAMES
"""Token categories (SPEC §12, migration 0005), in `TokenDetails.as_tuple` order: zero for
rows written before they existed (a constant default: adding them rewrote nothing)."""


def counter_columns(names: tuple[str, ...]) -> list[sa.Column[int]]:
    """Fresh BIGINT NOT NULL DEFAULT 0 columns (a Column belongs to one table)."""
    return [sa.Column(name, sa.BigInteger, nullable=False, server_default="0")
            for name in names]


EXTRA_COUNTER_COLUMNS = EXTRA_COUNTER_NAMES
"""Rollup counters added after the first release (token categories: migration 0005; catalog
cost per price category and priced invocations: 0006), all BIGINT NOT NULL DEFAULT 0."""



# Raw accepted events. On PostgreSQL: range-partitioned by day on occurred_at, one partition
# per UTC day named usage_events_pYYYYMMDD. Uniqueness of (org_id, event_id) across
# partitions is held by `event_keys`, not by this table.
usage_events = sa.Table(
    "usage_events",
    metadata,
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
    *counter_columns(TOKEN_DETAIL_COLUMNS),
    # The price version that priced the event (migration 0006); NULL when none covered it.
    sa.Column("price_version_id", sa.Uuid, nullable=True),
    sa.PrimaryKeyConstraint("org_id", "occurred_at", "event_id"),
    postgresql_partition_by="RANGE (occurred_at)",
)

# The dedupe index: one row per accepted (org_id, event_id) for the whole raw retention.
event_keys = sa.Table(
    "event_keys",
    metadata,
    sa.Column("org_id", sa.Uuid, nullable=False),
    sa.Column("event_id", sa.Uuid, nullable=False),
    sa.Column("occurred_at", UtcDateTime, nullable=False),
    sa.Column("fingerprint", sa.LargeBinary, nullable=False),
    sa.PrimaryKeyConstraint("org_id", "event_id"),
    # Retention trims keys by age; BRIN stays tiny and cheap to maintain on PostgreSQL.
    sa.Index("ix_event_keys_occurred_at", "occurred_at", postgresql_using="brin"),
)



def _rollup_table(name: str, *, zoned: bool = False) -> sa.Table:
    """A rollup table: one row per (org, bucket, model, client) with additive statistics
    (`zoned`: per (org, zone, bucket, model, client)).

    The latency sketch is three columns: the zero count and two parallel lists (bin index,
    count) with distinct bin indexes in no particular order.
    """
    zone = [sa.Column("zone", c_text(), nullable=False)] if zoned else []
    return sa.Table(
        name,
        metadata,
        sa.Column("org_id", sa.Uuid, nullable=False),
        *zone,
        sa.Column("bucket_start", UtcDateTime, nullable=False),
        sa.Column("model_id", sa.Uuid, nullable=False),
        sa.Column("client_id", c_text(), nullable=False),
        sa.Column("invocations", sa.BigInteger, nullable=False),
        sa.Column("success", sa.BigInteger, nullable=False),
        sa.Column("errors", sa.BigInteger, nullable=False),
        sa.Column("timeouts", sa.BigInteger, nullable=False),
        sa.Column("throttled", sa.BigInteger, nullable=False),
        sa.Column("input_tokens", sa.BigInteger, nullable=False),
        sa.Column("output_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_units", sa.BigInteger, nullable=False),
        sa.Column("latency_sum", sa.BigInteger, nullable=False),
        sa.Column("latency_min", sa.BigInteger, nullable=True),
        sa.Column("latency_max", sa.BigInteger, nullable=True),
        sa.Column("lat_zeros", sa.BigInteger, nullable=False),
        sa.Column("lat_bins", IntList(), nullable=False),
        sa.Column("lat_counts", IntList(big=True), nullable=False),
        sa.Column("error_codes", json_type(), nullable=False),
        *counter_columns(EXTRA_COUNTER_COLUMNS),
        sa.PrimaryKeyConstraint("org_id", *(["zone"] if zoned else []), "bucket_start",
                                "model_id", "client_id"),
    )


# The base grain (SPEC §3): 15-minute UTC buckets.
rollups_15m = _rollup_table("rollups_15m")
# Exact merges of the base buckets into whole UTC hours and days, maintained in the same
# transaction as the base rows. Queries whose periods align with them read far fewer rows.
rollups_1h = _rollup_table("rollups_1h")
rollups_1d = _rollup_table("rollups_1d")
ROLLUP_TABLES = (rollups_15m, rollups_1h, rollups_1d)

# Day tiers in named zones (migration 0018; PostgreSQL and Citus, docs/storage.md "Zone day
# tiers"): one row per (org, zone, local day, model, client), `bucket_start` the instant the
# local day starts; built for whole local days by `analytics rollups build` and kept exact by
# every later write to those days.
rollups_zone_1d = _rollup_table("rollups_zone_1d", zoned=True)
rollup_zones = sa.Table(
    "rollup_zones",
    metadata,
    sa.Column("zone", c_text(), nullable=False),
    sa.Column("added_at", UtcDateTime, nullable=False),
    sa.PrimaryKeyConstraint("zone"),
)
"""The zones that have a day tier (`analytics rollups zones add`)."""
zone_day_progress = sa.Table(
    "zone_day_progress",
    metadata,
    sa.Column("org_id", sa.Uuid, nullable=False),
    sa.Column("zone", c_text(), nullable=False),
    sa.Column("built_through", UtcDateTime, nullable=False),
    sa.PrimaryKeyConstraint("org_id", "zone"),
)
"""Per org and zone, the local midnight before which every local day's row is built."""


@attrs.frozen
class RollupFamily:
    """A base table of 15-minute rollups with its hour and day tiers, and its day tier in
    named zones (PostgreSQL and Citus)."""

    base: sa.Table
    hour: sa.Table
    day: sa.Table
    zone: sa.Table

    @property
    def tables(self) -> tuple[sa.Table, sa.Table, sa.Table]:
        """(base, hour, day)."""
        return (self.base, self.hour, self.day)


ROLLUPS = RollupFamily(rollups_15m, rollups_1h, rollups_1d, rollups_zone_1d)
# Attribution rollups (SPEC §12, migration 0007): the same shape, `client_id` holding the
# group key (dimension, U+001F, value; analytics_core.attribution).
# Their zone day tier (migration 0019) is built and kept with the rollups' (same progress).
ATTRIBUTION = RollupFamily(_rollup_table("attribution_15m"), _rollup_table("attribution_1h"),
                           _rollup_table("attribution_1d"),
                           _rollup_table("attribution_zone_1d", zoned=True))
ATTRIBUTION_TABLES = ATTRIBUTION.tables

# Values admitted per (org, UTC day, dimension) under the cardinality cap.
attribution_values = sa.Table(
    "attribution_values",
    metadata,
    sa.Column("org_id", sa.Uuid, nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("dimension", sa.Text, nullable=False),
    sa.Column("value", c_text(), nullable=False),
    sa.PrimaryKeyConstraint("org_id", "day", "dimension", "value"),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("seq", big_id(), primary_key=True, autoincrement=True),
    sa.Column("dead_letter_id", sa.Uuid, nullable=False),
    # The nil UUID when the org could not be read (migration 0016; Citus distributes by it).
    sa.Column("org_id", sa.Uuid, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("stream_offset", sa.BigInteger, nullable=True),
    # A re-drive that stored the event (migration 0011).
    sa.Column("redriven_at", UtcDateTime, nullable=True),
    sa.Column("redriven_by", sa.Text, nullable=True),
    sa.Column("redrive_outcome", sa.Text, nullable=True),
    sa.Index(None, "org_id", "received_at", "seq"),
    sa.UniqueConstraint("org_id", "dead_letter_id"),
    sa.Index(None, "received_at", "seq"),
)

dedupe_conflicts = sa.Table(
    "dedupe_conflicts",
    metadata,
    sa.Column("seq", big_id(), primary_key=True, autoincrement=True),
    sa.Column("org_id", sa.Uuid, nullable=False),
    sa.Column("event_id", sa.Uuid, nullable=False),
    sa.Column("detected_at", UtcDateTime, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("first_fingerprint", sa.Text, nullable=False),
    sa.Column("new_fingerprint", sa.Text, nullable=False),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    # Stable id of a conflict read from a stream (migration 0003); NULL for HTTP ones.
    sa.Column("conflict_id", sa.Uuid, nullable=True),
    sa.Index(None, "org_id", "detected_at", "seq"),
    sa.Index("ux_dedupe_conflicts_org_id_conflict_id", "org_id", "conflict_id", unique=True),
)

freshness_markers = sa.Table(
    "freshness_markers",
    metadata,
    sa.Column("org_id", sa.Uuid, nullable=False),
    sa.Column("model_id", sa.Uuid, nullable=False),
    sa.Column("last_event_at", UtcDateTime, nullable=True),
    sa.Column("last_rollup_at", UtcDateTime, nullable=True),
    sa.PrimaryKeyConstraint("org_id", "model_id"),
)

history_revisions = sa.Table(
    "history_revisions",
    metadata,
    sa.Column("org_id", sa.Uuid, nullable=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("org_id"),
)
"""Per org, how many transactions changed data of a UTC day before the writer's current one
(late events, restatements): the budget evaluator keeps past days' values until this moves."""

stream_offsets = sa.Table(
    "stream_offsets",
    metadata,
    sa.Column("consumer", sa.Text, nullable=False),
    sa.Column("stream", sa.Text, nullable=False),
    sa.Column("last_offset", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("consumer", "stream"),
)

_OPEN = "status IN ('pending', 'running')"
_FINISHED = "status IN ('succeeded', 'failed')"

export_jobs = sa.Table(
    "export_jobs",
    metadata,
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
    # Closes and their adjustments (migration 0014).
    sa.Column("close", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("adjusts", sa.Uuid, nullable=True),
    sa.Column("adjustment", sa.Integer, nullable=True),
    sa.Column("filed_digest", sa.Text, nullable=True),
    sa.PrimaryKeyConstraint("org_id", "job_id"),
    sa.UniqueConstraint("org_id", "idempotency_key"),
    sa.Index(None, "org_id", "created_at", "job_id"),
    sa.Index("ix_export_jobs_adjusts", "org_id", "adjusts", "adjustment"),
    sa.Index(
        "ix_export_jobs_claimable", "created_at", "job_id",
        postgresql_where=sa.text(_OPEN), sqlite_where=sa.text(_OPEN),
    ),
    sa.Index(
        "ix_export_jobs_expirable", "expires_at", "job_id",
        postgresql_where=sa.text(_FINISHED), sqlite_where=sa.text(_FINISHED),
    ),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
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
    sa.Index(None, "org_id", "at", "seq"),
    sa.Index(None, "at"),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.Text, primary_key=True),
    sa.Column("org_id", sa.Uuid, nullable=True),
    sa.Column("roles", json_type(), nullable=False),
    sa.Column("secret_hash", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False),
)

# The model registry (platform-wide, so not keyed by org): one row per named model, and one
# row per label (the display name and each alias, by `label_key`) so that no two models share
# a label and a name resolves with one index lookup.
model_names = sa.Table(
    "model_names",
    metadata,
    sa.Column("model_id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("family", sa.Text, nullable=False),
    sa.Column("aliases", json_type(), nullable=False),
)

model_labels = sa.Table(
    "model_labels",
    metadata,
    sa.Column("label_key", sa.Text, primary_key=True),
    sa.Column("model_id", sa.Uuid, nullable=False),
    sa.Index(None, "model_id"),
)

# Per-org display names of client ids.
client_names = sa.Table(
    "client_names",
    metadata,
    sa.Column("org_id", sa.Uuid, primary_key=True),
    sa.Column("client_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
)

# The price catalog (SPEC §12): append-only versions, global (org_id NULL) or one org's
# override; `prices` maps a category to micro-dollars per million tokens. Small and read whole
# (the ingest caches it by `seq`, the revision).
price_versions = sa.Table(
    "price_versions",
    metadata,
    sa.Column("seq", big_id(), primary_key=True, autoincrement=True),
    sa.Column("version_id", sa.Uuid, nullable=False, unique=True),
    sa.Column("model_id", sa.Uuid, nullable=False),
    sa.Column("org_id", sa.Uuid, nullable=True),
    sa.Column("effective_from", UtcDateTime, nullable=False),
    sa.Column("prices", json_type(), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("supersedes", sa.Uuid, nullable=True),
    sa.Column("note", sa.Text, nullable=False),
)

# Restatements: one row per repricing job (its record and cursor), and its deltas per org,
# model and UTC day, keyed org first.
restatements = sa.Table(
    "restatements",
    metadata,
    sa.Column("restatement_id", sa.Uuid, primary_key=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("version_id", sa.Uuid, nullable=False),
    sa.Column("supersedes", sa.Uuid, nullable=True),
    sa.Column("model_id", sa.Uuid, nullable=False),
    sa.Column("org_id", sa.Uuid, nullable=True),
    sa.Column("window_start", UtcDateTime, nullable=False),
    sa.Column("window_end", UtcDateTime, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("cursor_org", sa.Uuid, nullable=True),
    sa.Column("cursor_at", UtcDateTime, nullable=True),
    sa.Column("cursor_event", sa.Uuid, nullable=True),
    sa.Column("events_repriced", sa.BigInteger, nullable=False),
    sa.Column("completed_at", UtcDateTime, nullable=True),
    sa.Index(None, "created_at"),
)

restatement_deltas = sa.Table(
    "restatement_deltas",
    metadata,
    sa.Column("org_id", sa.Uuid, nullable=False),
    sa.Column("restatement_id", sa.Uuid, nullable=False),
    sa.Column("model_id", sa.Uuid, nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("events", sa.BigInteger, nullable=False),
    sa.Column("before_units", sa.BigInteger, nullable=False),
    sa.Column("after_units", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("org_id", "restatement_id", "model_id", "day"),
)

# Budgets (SPEC §13), keyed org first. The scope is its type, key and value, so new scope
# types need no migration; `amount` is in the measure's integer unit.
budgets = sa.Table(
    "budgets",
    metadata,
    sa.Column("org_id", sa.Uuid, primary_key=True),
    sa.Column("budget_id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("scope_type", sa.Text, nullable=False),
    sa.Column("scope_key", sa.Text, nullable=True),
    sa.Column("scope_value", sa.Text, nullable=True),
    sa.Column("measure", sa.Text, nullable=False),
    sa.Column("period", sa.Text, nullable=False),
    sa.Column("tz", sa.Text, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("thresholds", json_type(), nullable=False),
    sa.Column("forecast", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

# Fired alerts: the primary key is the alert's identity, so a threshold fires once per budget
# and period whoever inserts it; newest first per org through the (org, fired_at) index.
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("org_id", sa.Uuid, primary_key=True),
    sa.Column("budget_id", sa.Uuid, primary_key=True),
    sa.Column("period_start", UtcDateTime, primary_key=True),
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("threshold", sa.Integer, primary_key=True),
    sa.Column("budget_name", sa.Text, nullable=False),
    sa.Column("measure", sa.Text, nullable=False),
    sa.Column("alert_id", sa.Uuid, nullable=False),
    sa.Column("period_end", UtcDateTime, nullable=False),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("forecast_value", sa.BigInteger, nullable=True),
    sa.Column("fired_at", UtcDateTime, nullable=False),
    sa.Column("late", sa.Boolean, nullable=False),
    sa.Column("complete_through", UtcDateTime, nullable=False),
    sa.Index(None, "org_id", "fired_at", "alert_id"),
    sa.UniqueConstraint("org_id", "alert_id"),
)

# Webhook endpoints (the signing secrets are stored: they sign every delivery), the delivery
# outbox and the log of attempts, keyed org first.
webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("org_id", sa.Uuid, primary_key=True),
    sa.Column("endpoint_id", sa.Uuid, primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("previous_secret", sa.Text, nullable=True),
    sa.Column("previous_until", UtcDateTime, nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("org_id", sa.Uuid, primary_key=True),
    sa.Column("delivery_id", sa.Uuid, primary_key=True),
    sa.Column("endpoint_id", sa.Uuid, nullable=False),
    sa.Column("alert_id", sa.Uuid, nullable=False),
    sa.Column("event_type", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("deadline", UtcDateTime, nullable=False),
    sa.Column("lease_until", UtcDateTime, nullable=True),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("completed_at", UtcDateTime, nullable=True),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "org_id", "endpoint_id", "created_at", "delivery_id"),
)

webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("org_id", sa.Uuid, primary_key=True),
    sa.Column("delivery_id", sa.Uuid, primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("seconds", sa.Float, nullable=True),
)

# Reliability rules (SPEC §13) and their transitions; a transition's key is (org, rule, number),
# so each transition of a rule is recorded once whoever evaluates it.
reliability_rules = sa.Table(
    "reliability_rules",
    metadata,
    sa.Column("org_id", sa.Uuid, primary_key=True),
    sa.Column("rule_id", sa.Uuid, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("scope_type", sa.Text, nullable=False),
    sa.Column("scope_value", sa.Text, nullable=True),
    sa.Column("metric", sa.Text, nullable=False),
    sa.Column("error_class", sa.Text, nullable=False),
    sa.Column("window_minutes", sa.Integer, nullable=False),
    sa.Column("threshold", sa.BigInteger, nullable=False),
    sa.Column("resolve_threshold", sa.BigInteger, nullable=False),
    sa.Column("min_volume", sa.BigInteger, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

rule_transitions = sa.Table(
    "rule_transitions",
    metadata,
    sa.Column("org_id", sa.Uuid, primary_key=True),
    sa.Column("rule_id", sa.Uuid, primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("transition_id", sa.Uuid, nullable=False),
    sa.Column("rule_name", sa.Text, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("metric", sa.Text, nullable=False),
    sa.Column("value", sa.BigInteger, nullable=False),
    sa.Column("threshold", sa.BigInteger, nullable=False),
    sa.Column("volume", sa.BigInteger, nullable=False),
    sa.Column("window_start", UtcDateTime, nullable=False),
    sa.Column("window_end", UtcDateTime, nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Index(None, "org_id", "at", "transition_id"),
    sa.UniqueConstraint("org_id", "transition_id"),
)

# Kept invoice reconciliations (SPEC §15, migration 0012). Amounts are exact decimal strings of
# 0.0001-cent units: an invoice may sum beyond a 64-bit integer, and nothing adds them in SQL.
reconciliations = sa.Table(
    "reconciliations",
    metadata,
    sa.Column("org_id", sa.Uuid, nullable=False),
    sa.Column("reconciliation_id", sa.Uuid, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("tz", sa.Text, nullable=False),
    sa.Column("basis", sa.Text, nullable=False),
    sa.Column("tolerance_percent", sa.Text, nullable=False),
    sa.Column("mapping", json_type(), nullable=False),
    sa.Column("first_day", sa.Date, nullable=False),
    sa.Column("last_day", sa.Date, nullable=False),
    sa.Column("metered_units", sa.Text, nullable=False),
    sa.Column("invoiced_units", sa.Text, nullable=False),
    sa.Column("line_count", sa.Integer, nullable=False),
    sa.Column("flagged_count", sa.Integer, nullable=False),
    sa.Column("complete_through", UtcDateTime, nullable=False),
    sa.PrimaryKeyConstraint("org_id", "reconciliation_id", name="pk_reconciliations"),
    sa.Index("ix_reconciliations_org_created", "org_id", "created_at", "reconciliation_id"),
)

reconciliation_lines = sa.Table(
    "reconciliation_lines",
    metadata,
    sa.Column("org_id", sa.Uuid, nullable=False),
    sa.Column("reconciliation_id", sa.Uuid, nullable=False),
    sa.Column("line_no", sa.Integer, nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("model_id", sa.Uuid, nullable=True),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("metered_units", sa.Text, nullable=True),
    sa.Column("invoiced_units", sa.Text, nullable=True),
    sa.Column("variance_units", sa.Text, nullable=False),
    sa.Column("variance_percent", sa.Text, nullable=True),
    sa.Column("flagged", sa.Boolean, nullable=False),
    sa.Column("metered_input_tokens", sa.BigInteger, nullable=True),
    sa.Column("metered_output_tokens", sa.BigInteger, nullable=True),
    sa.Column("metered_invocations", sa.BigInteger, nullable=True),
    sa.Column("invoiced_input_tokens", sa.BigInteger, nullable=True),
    sa.Column("invoiced_output_tokens", sa.BigInteger, nullable=True),
    sa.Column("invoice_rows", json_type(), nullable=False),
    sa.PrimaryKeyConstraint("org_id", "reconciliation_id", "line_no",
                            name="pk_reconciliation_lines"),
)

# Each org's own settings (migration 0013): its zone for the scheduled monthly export.
org_settings = sa.Table(
    "org_settings",
    metadata,
    sa.Column("org_id", sa.Uuid, nullable=False),
    sa.Column("tz", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("updated_by", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("org_id", name="pk_org_settings"),
)

# Dashboard sessions (SPEC §14, migration 0015), keyed by the SHA-256 of the session token
# (the token itself is never stored). `roles` is a sorted JSON list, as in `api_keys`.
ui_sessions = sa.Table(
    "ui_sessions",
    metadata,
    sa.Column("session_hash", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("org_id", sa.Uuid, nullable=True),
    sa.Column("roles", json_type(), nullable=False),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("csrf_token", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_seen_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("key_id", sa.Text, nullable=True),
    sa.PrimaryKeyConstraint("session_hash", name="pk_ui_sessions"),
    sa.Index("ix_ui_sessions_expires_at", "expires_at"),
)
