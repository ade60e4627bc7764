"""Budgets and fired alerts (SPEC §13).

`alerts` is keyed by the alert's identity (org, budget, period start, kind, threshold): the
insert that fires an alert is ON CONFLICT DO NOTHING, so a threshold fires once per budget and
period whatever number of evaluators try.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from analytics_adapters.sql.types import UtcDateTime, json_type

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budgets",
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("budget_id", sa.Uuid, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("scope_type", sa.Text, nullable=False),
        sa.Column("scope_key", sa.Text, nullable=True),
        sa.Column("scope_value", sa.Text, nullable=True),
        sa.Column("measure", sa.Text, nullable=False),
        sa.Column("period", sa.Text, nullable=False),
        sa.Column("tz", sa.Text, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("thresholds", json_type(), nullable=False),
        sa.Column("forecast", sa.Boolean, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("org_id", "budget_id", name="pk_budgets"),
    )
    op.create_table(
        "alerts",
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("budget_id", sa.Uuid, nullable=False),
        sa.Column("period_start", UtcDateTime, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("threshold", sa.Integer, nullable=False),
        sa.Column("budget_name", sa.Text, nullable=False),
        sa.Column("measure", sa.Text, nullable=False),
        sa.Column("alert_id", sa.Uuid, nullable=False),
        sa.Column("period_end", UtcDateTime, nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("forecast_value", sa.BigInteger, nullable=True),
        sa.Column("fired_at", UtcDateTime, nullable=False),
        sa.Column("late", sa.Boolean, nullable=False),
        sa.Column("complete_through", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("org_id", "budget_id", "period_start", "kind", "threshold",
                                name="pk_alerts"),
        sa.UniqueConstraint("alert_id", name="uq_alerts_alert_id"),
    )
    op.create_index("ix_alerts_org_id_fired_at_alert_id", "alerts",
                    ["org_id", "fired_at", "alert_id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_org_id_fired_at_alert_id", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("budgets")
