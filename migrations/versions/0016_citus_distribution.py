"""Unique keys that include org_id, and, on Citus, the distribution of every table (SPEC §16).

On every backend:
- `alerts.alert_id`, `rule_transitions.transition_id`, `dead_letters.dead_letter_id` and
  `dedupe_conflicts.conflict_id` are unique per org (they are random or derived ids, unique
  anyway); Citus refuses a unique key without the distribution column, and ON CONFLICT targets
  must name an existing unique key.
- A dead letter whose org could not be read is stored under the nil UUID instead of NULL (the
  distribution column cannot be NULL), and `dead_letters.org_id` becomes NOT NULL; the adapter
  reads the nil UUID back as "no org".

When the database has the citus extension: every org-keyed table is distributed by org_id,
co-located with usage_events, and the global tables become reference tables
(`analytics_adapters.sql.citus`).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from analytics_adapters.sql import citus

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

NO_ORG = "00000000-0000-0000-0000-000000000000"

# (table, old unique key name, column): each becomes unique on (org_id, column).
_PER_ORG = (
    ("alerts", "uq_alerts_alert_id", "alert_id"),
    ("rule_transitions", "uq_rule_transitions_transition_id", "transition_id"),
    ("dead_letters", "uq_dead_letters_dead_letter_id", "dead_letter_id"),
)


def upgrade() -> None:
    bind = op.get_bind()
    op.execute(sa.text(f"UPDATE dead_letters SET org_id = '{NO_ORG}' WHERE org_id IS NULL"))
    for table, old, column in _PER_ORG:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(old, type_="unique")
            batch.create_unique_constraint(f"uq_{table}_org_id_{column}", ["org_id", column])
            if table == "dead_letters":
                batch.alter_column("org_id", existing_type=sa.Uuid, nullable=False)
    op.drop_index("ux_dedupe_conflicts_conflict_id", table_name="dedupe_conflicts")
    op.create_index("ux_dedupe_conflicts_org_id_conflict_id", "dedupe_conflicts",
                    ["org_id", "conflict_id"], unique=True)
    if citus.has_citus(bind):
        citus.distribute(bind)


def downgrade() -> None:
    # On Citus little is undone: a distributed table can hold neither a unique key without
    # org_id nor a NULL org_id (undistribute_table would copy every row back to the
    # coordinator; an operator who wants that runs it by hand). Elsewhere the keys go back to
    # what 0015 made.
    if citus.has_citus(op.get_bind()):
        # Only the name 0003's downgrade drops.
        op.execute(sa.text("ALTER INDEX ux_dedupe_conflicts_org_id_conflict_id "
                           "RENAME TO ux_dedupe_conflicts_conflict_id"))
        return
    op.drop_index("ux_dedupe_conflicts_org_id_conflict_id", table_name="dedupe_conflicts")
    op.create_index("ux_dedupe_conflicts_conflict_id", "dedupe_conflicts", ["conflict_id"],
                    unique=True)
    for table, old, column in reversed(_PER_ORG):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"uq_{table}_org_id_{column}", type_="unique")
            batch.create_unique_constraint(old, [column])
            if table == "dead_letters":
                batch.alter_column("org_id", existing_type=sa.Uuid, nullable=True)
    op.execute(sa.text(f"UPDATE dead_letters SET org_id = NULL WHERE org_id = '{NO_ORG}'"))
