"""Closes and adjustment files of export jobs (SPEC §15, issue 17).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default and nullable columns: no rewrite of existing rows (PostgreSQL 11+).
    with op.batch_alter_table("export_jobs") as batch:
        batch.add_column(sa.Column("close", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column("adjusts", sa.Uuid, nullable=True))
        batch.add_column(sa.Column("adjustment", sa.Integer, nullable=True))
        batch.add_column(sa.Column("filed_digest", sa.Text, nullable=True))
    op.create_index("ix_export_jobs_adjusts", "export_jobs", ["org_id", "adjusts", "adjustment"])
    # Scheduled monthly files were closes all along.
    op.execute("UPDATE export_jobs SET close = TRUE WHERE scheduled")


def downgrade() -> None:
    op.drop_index("ix_export_jobs_adjusts", table_name="export_jobs")
    with op.batch_alter_table("export_jobs") as batch:
        batch.drop_column("filed_digest")
        batch.drop_column("adjustment")
        batch.drop_column("adjusts")
        batch.drop_column("close")
