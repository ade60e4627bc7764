"""History revisions: per org, a count of the transactions that changed data of a past UTC day
(late events, restatements), so the budget evaluator can keep past days' values between passes
and read them again only when they changed (SPEC §13). Distributed by org_id on Citus.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from analytics_adapters.sql import citus

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "history_revisions",
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("revision", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("org_id", name="pk_history_revisions"),
    )
    bind = op.get_bind()
    if citus.has_citus(bind):
        citus.distribute(bind, ["history_revisions"])


def downgrade() -> None:
    op.drop_table("history_revisions")
