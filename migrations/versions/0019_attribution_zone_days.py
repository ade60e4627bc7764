"""Zone day tiers for attribution: `attribution_zone_1d` holds, for each zone listed in
`rollup_zones`, the attribution rollups summed per whole local day (docs/storage.md, "Zone day
tiers"), so that reads grouped by actor or tag in America/New_York, Asia/Kolkata or
Asia/Kathmandu read one row per local day as the usage and reliability reads do. Built and
kept exact together with `rollups_zone_1d`, under the same progress: this migration clears
`zone_day_progress`, so that both tiers of every listed zone are built again (the export
worker does it by itself; `analytics rollups build` does it at once). Until then reads sum
hours and 15-minute buckets, with the same results. Created on SQLite too (empty there), as
0018 did; on Citus distributed by org_id.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from analytics_adapters.sql import citus
from analytics_adapters.sql.types import IntList, UtcDateTime, c_text, json_type

revision = "0019"
down_revision = "0018"
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
        "attribution_zone_1d",
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
                                name="pk_attribution_zone_1d"),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":  # as the other rollup tables (0001, 0018)
        op.execute(
            "ALTER TABLE attribution_zone_1d SET (fillfactor = 90, toast_tuple_target = 8160)")
    if citus.has_citus(bind):
        citus.distribute(bind, ["attribution_zone_1d"])
    op.execute("DELETE FROM zone_day_progress")  # both tiers are built again, together


def downgrade() -> None:
    op.drop_table("attribution_zone_1d")
    op.execute("DELETE FROM zone_day_progress")  # the rollups' tier alone is built again
