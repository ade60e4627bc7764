"""Attribution (SPEC §12): rollups by actor and by attribution tags, and admitted values.

`attribution_15m`, `attribution_1h` and `attribution_1d` have the shape of the rollup tables
(their `client_id` holds the group key: dimension, U+001F, value); `attribution_values` holds
the values admitted per org, UTC day and dimension under the cardinality cap.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from analytics_adapters.sql.types import IntList, UtcDateTime, c_text, json_type

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TABLES = ("attribution_15m", "attribution_1h", "attribution_1d")
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


def _rollup_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column("org_id", sa.Uuid, nullable=False),
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
        sa.PrimaryKeyConstraint("org_id", "bucket_start", "model_id", "client_id",
                                name=f"pk_{name}"),
    )


def upgrade() -> None:
    for name in _TABLES:
        _rollup_table(name)
        if op.get_bind().dialect.name == "postgresql":  # as the rollup tables (0001)
            op.execute(f"ALTER TABLE {name} SET (fillfactor = 90, toast_tuple_target = 8160)")
    op.create_table(
        "attribution_values",
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("dimension", sa.Text, nullable=False),
        sa.Column("value", c_text(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "day", "dimension", "value",
                                name="pk_attribution_values"),
    )


def downgrade() -> None:
    op.drop_table("attribution_values")
    for name in _TABLES:
        op.drop_table(name)
