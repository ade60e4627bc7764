"""Token categories (SPEC §12): five counters on raw events and on every rollup tier.

Each column is BIGINT NOT NULL DEFAULT 0. A constant default is metadata only on PostgreSQL
(11+) and SQLite: no stored row is rewritten, and every event stored before this revision
reads as zero in every category.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TABLES = ("usage_events", "rollups_15m", "rollups_1h", "rollups_1d")
_COLUMNS = (
    "cache_read_tokens", "cache_write_tokens", "audio_input_tokens", "reasoning_tokens",
    "audio_output_tokens",
)


def upgrade() -> None:
    for table in _TABLES:
        for column in _COLUMNS:
            op.add_column(table, sa.Column(column, sa.BigInteger, nullable=False,
                                           server_default="0"))


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            for column in _COLUMNS:
                batch.drop_column(column)
