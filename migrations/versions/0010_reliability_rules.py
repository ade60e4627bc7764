"""Reliability rules and their transitions (SPEC §13).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from analytics_adapters.sql.types import UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reliability_rules",
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("rule_id", sa.Uuid, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("scope_type", sa.Text, nullable=False),
        sa.Column("scope_value", sa.Text, nullable=True),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("error_class", sa.Text, nullable=False),
        sa.Column("window_minutes", sa.Integer, nullable=False),
        sa.Column("threshold", sa.BigInteger, nullable=False),
        sa.Column("resolve_threshold", sa.BigInteger, nullable=False),
        sa.Column("min_volume", sa.BigInteger, nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("updated_at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("org_id", "rule_id", name="pk_reliability_rules"),
    )
    op.create_table(
        "rule_transitions",
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("rule_id", sa.Uuid, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("transition_id", sa.Uuid, nullable=False),
        sa.Column("rule_name", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("metric", sa.Text, nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("threshold", sa.BigInteger, nullable=False),
        sa.Column("volume", sa.BigInteger, nullable=False),
        sa.Column("window_start", UtcDateTime, nullable=False),
        sa.Column("window_end", UtcDateTime, nullable=False),
        sa.Column("at", UtcDateTime, nullable=False),
        sa.PrimaryKeyConstraint("org_id", "rule_id", "number", name="pk_rule_transitions"),
        sa.UniqueConstraint("transition_id", name="uq_rule_transitions_transition_id"),
    )
    op.create_index("ix_rule_transitions_org_id_at_transition_id", "rule_transitions",
                    ["org_id", "at", "transition_id"])


def downgrade() -> None:
    op.drop_index("ix_rule_transitions_org_id_at_transition_id", table_name="rule_transitions")
    op.drop_table("rule_transitions")
    op.drop_table("reliability_rules")
