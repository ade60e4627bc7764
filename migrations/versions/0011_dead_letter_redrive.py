"""Dead letters remember a re-drive: when, by whom, with what outcome (issue 17).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from analytics_adapters.sql.types import UtcDateTime

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns without defaults: adding them rewrites no row on either backend.
    with op.batch_alter_table("dead_letters") as batch:
        batch.add_column(sa.Column("redriven_at", UtcDateTime, nullable=True))
        batch.add_column(sa.Column("redriven_by", sa.Text, nullable=True))
        batch.add_column(sa.Column("redrive_outcome", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch:
        batch.drop_column("redrive_outcome")
        batch.drop_column("redriven_by")
        batch.drop_column("redriven_at")
