"""In-memory kept invoice reconciliations (SPEC §15) and org settings."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime

from analytics_adapters.memory.repositories import Repository
from analytics_core.errors import Conflict
from analytics_core.org_settings import OrgSettings
from analytics_core.reconciliation import ReconciliationLine
from analytics_core.reconciliation_runs import ReconciliationRun


class InMemoryReconciliationStore(Repository):
    """Runs by id, each with its lines."""

    def add(self, run: ReconciliationRun, lines: Sequence[ReconciliationLine]) -> None:
        """Store a new run; Conflict when its id exists."""
        journal = self._unit.journal()
        if run.reconciliation_id in self._db.reconciliations:
            raise Conflict(f"reconciliation {run.reconciliation_id} already exists")
        journal.put(self._db.reconciliations, run.reconciliation_id, (run, tuple(lines)))

    def get(self, org_id: uuid.UUID, reconciliation_id: uuid.UUID
            ) -> ReconciliationRun | None:
        """One run of the org."""
        self._unit.journal()
        kept = self._db.reconciliations.get(reconciliation_id)
        return kept[0] if kept is not None and kept[0].org_id == org_id else None

    def page(self, org_id: uuid.UUID, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None) -> builtins.list[ReconciliationRun]:
        """The org's runs, newest first by (created_at, id)."""
        self._unit.journal()
        runs = [run for run, _ in self._db.reconciliations.values()
                if run.org_id == org_id
                and (before is None or (run.created_at, run.reconciliation_id) < before)]
        runs.sort(key=lambda r: (r.created_at, r.reconciliation_id), reverse=True)
        return runs[:max(limit, 0)]

    def lines(self, org_id: uuid.UUID, reconciliation_id: uuid.UUID
              ) -> builtins.list[ReconciliationLine]:
        """A run's lines in report order."""
        self._unit.journal()
        kept = self._db.reconciliations.get(reconciliation_id)
        return list(kept[1]) if kept is not None and kept[0].org_id == org_id else []


class InMemoryOrgSettingsStore(Repository):
    """Settings by org."""

    def get(self, org_id: uuid.UUID) -> OrgSettings | None:
        """The org's settings."""
        self._unit.journal()
        return self._db.org_settings.get(org_id)

    def put(self, settings: OrgSettings) -> None:
        """Store or replace."""
        self._unit.journal().put(self._db.org_settings, settings.org_id, settings)

    def zones(self) -> dict[uuid.UUID, str]:
        """Every org's zone."""
        self._unit.journal()
        return {org: s.tz for org, s in self._db.org_settings.items()}
