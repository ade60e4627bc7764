"""The names registry: model display names and aliases (platform-wide), client names per org.

`model_labels` holds one row per label (display name or alias, compared by
`analytics_core.registry.label_key`) so that no two models share one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from analytics_adapters.sql.types import json_type

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_names",
        sa.Column("model_id", sa.Uuid, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("family", sa.Text, nullable=False),
        sa.Column("aliases", json_type(), nullable=False),
        sa.PrimaryKeyConstraint("model_id", name="pk_model_names"),
    )
    op.create_table(
        "model_labels",
        sa.Column("label_key", sa.Text, nullable=False),
        sa.Column("model_id", sa.Uuid, nullable=False),
        sa.PrimaryKeyConstraint("label_key", name="pk_model_labels"),
    )
    op.create_index("ix_model_labels_model_id", "model_labels", ["model_id"])
    op.create_table(
        "client_names",
        sa.Column("org_id", sa.Uuid, nullable=False),
        sa.Column("client_id", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("org_id", "client_id", name="pk_client_names"),
    )


def downgrade() -> None:
    op.drop_table("client_names")
    op.drop_index("ix_model_labels_model_id", table_name="model_labels")
    op.drop_table("model_labels")
    op.drop_table("model_names")
