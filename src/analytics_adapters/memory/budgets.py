"""In-memory budgets and fired alerts (SPEC §13)."""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime

from analytics_adapters.memory.repositories import Repository
from analytics_core.budgets import Alert, Budget
from analytics_core.errors import Conflict


class InMemoryBudgetStore(Repository):
    """Budgets by id."""

    def add(self, budget: Budget) -> None:
        """Store a new budget; Conflict when its id exists."""
        journal = self._unit.journal()
        if budget.budget_id in self._db.budgets:
            raise Conflict(f"budget {budget.budget_id} already exists")
        journal.put(self._db.budgets, budget.budget_id, budget)

    def get(self, org_id: uuid.UUID, budget_id: uuid.UUID) -> Budget | None:
        """One budget of the org."""
        self._unit.journal()
        budget = self._db.budgets.get(budget_id)
        return budget if budget is not None and budget.org_id == org_id else None

    def for_org(self, org_id: uuid.UUID) -> builtins.list[Budget]:
        """The org's budgets, oldest first."""
        self._unit.journal()
        return sorted((b for b in self._db.budgets.values() if b.org_id == org_id),
                      key=lambda b: (b.created_at, b.budget_id))

    def save(self, budget: Budget) -> None:
        """Replace a stored budget of the same org."""
        journal = self._unit.journal()
        if self.get(budget.org_id, budget.budget_id) is not None:
            journal.put(self._db.budgets, budget.budget_id, budget)

    def delete(self, org_id: uuid.UUID, budget_id: uuid.UUID) -> bool:
        """Remove a budget of the org."""
        journal = self._unit.journal()
        if self.get(org_id, budget_id) is None:
            return False
        journal.delete(self._db.budgets, budget_id)
        return True

    def all(self) -> builtins.list[Budget]:
        """Every budget by (org, id)."""
        self._unit.journal()
        return sorted(self._db.budgets.values(), key=lambda b: (b.org_id, b.budget_id))


class InMemoryAlertStore(Repository):
    """Alerts by identity: units of work are serialised, so a check then insert is atomic."""

    def fire(self, alert: Alert) -> bool:
        """Store the alert unless its identity is stored."""
        journal = self._unit.journal()
        if alert.identity in self._db.alerts:
            return False
        journal.put(self._db.alerts, alert.identity, alert)
        return True

    def fired(self, budget_id: uuid.UUID, since: datetime) -> builtins.list[Alert]:
        """The budget's alerts of periods starting at or after `since`."""
        self._unit.journal()
        return sorted((a for a in self._db.alerts.values()
                       if a.budget_id == budget_id and a.period_start >= since),
                      key=lambda a: (a.period_start, a.kind, a.threshold))

    def page(self, org_id: uuid.UUID, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None,
             budget_id: uuid.UUID | None = None) -> builtins.list[Alert]:
        """The org's alerts, newest first."""
        self._unit.journal()
        rows = sorted((a for a in self._db.alerts.values() if a.org_id == org_id
                       and (budget_id is None or a.budget_id == budget_id)
                       and (before is None or (a.fired_at, a.alert_id) < before)),
                      key=lambda a: (a.fired_at, a.alert_id), reverse=True)
        return rows[:limit]
