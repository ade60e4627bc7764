"""Dedupe conflict records get an optional stable id (`conflict_id`, unique when set).

A conflicting duplicate read from a stream is identified by stream and offset (like its dead
letter), so a message read twice — redelivery, replay, or two consumers on one partition —
stores one conflict record, not two. Records without an id (HTTP) are unchanged.

Revision ID: 0003
Revises: 0002
Create Date: 2025-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEX = "ux_dedupe_conflicts_conflict_id"


def upgrade() -> None:
    with op.batch_alter_table("dedupe_conflicts") as batch:
        batch.add_column(sa.Column("conflict_id", sa.Uuid, nullable=True))
    op.create_index(INDEX, "dedupe_conflicts", ["conflict_id"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="dedupe_conflicts")
    with op.batch_alter_table("dedupe_conflicts") as batch:
        batch.drop_column("conflict_id")
