"""Zone day tiers: rollups summed per local day of named zones, so that reads by day in a zone
that is not a whole number of days from UTC (America/New_York, Asia/Kolkata, Asia/Kathmandu)
read one row per local day instead of hours and 15-minute buckets (docs/storage.md, "Zone day
tiers"). `rollup_zones` lists the zones, `zone_day_progress` how far each org's days are built,
`rollups_zone_1d` holds the rows. Created on SQLite too (empty there: the embedded store reads
the hour tier and the base), so that every backend has one schema. On Citus the two org-keyed
tables are distributed by org_id and `rollup_zones` is a reference table.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from analytics_adapters.sql import citus
from analytics_adapters.sql.types import IntList, UtcDateTime, c_text, json_type

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_COUNTERS = (
    "invocations", "success", "errors", "timeouts", "throttled", "input_tokens",
    "output_tokens", "cost_units", "latency_sum",
)
_EXTRA = (
    "cache_read_tokens", "cache_write_tokens", "audio_input_tokens", "reasoning_tokens",
    "audio_output_tokens", "catalog_input_units", "catalog_cache_read_units",
    "catalog_cache_write_units", "catalog_audio_input_units", "catalog_output_units",
    "catalog_reasoning_units", "catalog_audio_output_units", "priced_invocations",
)


def upgrade() -> None:
    op.create_table(
        "rollups_zone_1d",
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("zone", c_text(), nullable=False),
        sa.Column("bucket_start", UtcDateTime, nullable=False),
        sa.Column("model_id", sa.Uuid, nullable=False),
        sa.Column("client_id", c_text(), nullable=False),
        *(sa.Column(c, sa.BigInteger, nullable=False) for c in _COUNTERS),
        sa.Column("latency_min", sa.BigInteger, nullable=True),
        sa.Column("latency_max", sa.BigInteger, nullable=True),
        sa.Column("lat_zeros", sa.BigInteger, nullable=False),
        sa.Column("lat_bins", IntList(), nullable=False),
        sa.Column("lat_counts", IntList(big=True), nullable=False),
        sa.Column("error_codes", json_type(), nullable=False),
        *(sa.Column(c, sa.BigInteger, nullable=False, server_default="0") for c in _EXTRA),
        sa.PrimaryKeyConstraint("org_id", "zone", "bucket_start", "model_id", "client_id",
                                name="pk_rollups_zone_1d"),
    )
    op.create_table(
        "rollup_zones",
        sa.Column("zone", c_text(), nullable=False),
        sa.Column("added_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("zone", name="pk_rollup_zones"),
    )
    op.create_table(
        "zone_day_progress",
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("zone", c_text(), nullable=False),
        sa.Column("built_through", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("org_id", "zone", name="pk_zone_day_progress"),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # as the rollup tables (0001)
        op.execute("ALTER TABLE rollups_zone_1d SET (fillfactor = 90, toast_tuple_target = 8160)")
    if citus.has_citus(bind):
        citus.distribute(bind, ["rollups_zone_1d", "zone_day_progress", "rollup_zones"])


def downgrade() -> None:
    op.drop_table("zone_day_progress")
    op.drop_table("rollup_zones")
    op.drop_table("rollups_zone_1d")
