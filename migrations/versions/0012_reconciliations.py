"""Kept invoice reconciliations and their lines (SPEC §15, issue 17).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from analytics_adapters.sql.types import UtcDateTime, json_type

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconciliations",
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
    )
    op.create_index("ix_reconciliations_org_created", "reconciliations",
                    ["org_id", "created_at", "reconciliation_id"])
    op.create_table(
        "reconciliation_lines",
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


def downgrade() -> None:
    op.drop_table("reconciliation_lines")
    op.drop_index("ix_reconciliations_org_created", table_name="reconciliations")
    op.drop_table("reconciliations")
