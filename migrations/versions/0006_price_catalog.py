"""The price catalog (SPEC §12): price versions, the version that priced each event, catalog
cost per price category and priced invocations on every rollup tier, restatements.

The added event and rollup columns are nullable or have a constant default: metadata only,
no stored row is rewritten; events stored before read as unpriced.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from analytics_adapters.sql.types import UtcDateTime, big_id, json_type

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ROLLUPS = ("rollups_15m", "rollups_1h", "rollups_1d")
_COUNTERS = (
    "catalog_input_units", "catalog_cache_read_units", "catalog_cache_write_units",
    "catalog_audio_input_units", "catalog_output_units", "catalog_reasoning_units",
    "catalog_audio_output_units", "priced_invocations",
)


def upgrade() -> None:
    op.add_column("usage_events", sa.Column("price_version_id", sa.Uuid, nullable=True))
    for table in _ROLLUPS:
        for column in _COUNTERS:
            op.add_column(table, sa.Column(column, sa.BigInteger, nullable=False,
                                           server_default="0"))
    op.create_table(
        "price_versions",
        sa.Column("seq", big_id(), nullable=False, autoincrement=True),
        sa.Column("version_id", sa.Uuid, nullable=False),
        sa.Column("model_id", sa.Uuid, nullable=False),
        sa.Column("org_id", sa.Uuid, nullable=True),
        sa.Column("effective_from", UtcDateTime, nullable=False),
        sa.Column("prices", json_type(), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("supersedes", sa.Uuid, nullable=True),
        sa.Column("note", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_price_versions"),
        sa.UniqueConstraint("version_id", name="uq_price_versions_version_id"),
    )
    op.create_table(
        "restatements",
        sa.Column("restatement_id", sa.Uuid, nullable=False),
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
        sa.PrimaryKeyConstraint("restatement_id", name="pk_restatements"),
    )
    op.create_index("ix_restatements_created_at", "restatements", ["created_at"])
    op.create_table(
        "restatement_deltas",
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("restatement_id", sa.Uuid, nullable=False),
        sa.Column("model_id", sa.Uuid, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("before_units", sa.BigInteger, nullable=False),
        sa.Column("after_units", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("org_id", "restatement_id", "model_id", "day",
                                name="pk_restatement_deltas"),
    )


def downgrade() -> None:
    op.drop_table("restatement_deltas")
    op.drop_index("ix_restatements_created_at", table_name="restatements")
    op.drop_table("restatements")
    op.drop_table("price_versions")
    for table in _ROLLUPS:
        with op.batch_alter_table(table) as batch:
            for column in _COUNTERS:
                batch.drop_column(column)
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_column("price_version_id")
