"""Budgets and fired alerts on SQL (SPEC §13)."""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from analytics_adapters.sql.errors import translated
from analytics_adapters.sql.records import SqlRecordRepository
from analytics_adapters.sql.schema import alerts, budgets
from analytics_core.budgets import (
    Alert,
    AlertKind,
    Budget,
    BudgetPeriod,
    BudgetScope,
    Measure,
    ScopeType,
)
from analytics_core.errors import Conflict


def _budget_row(b: Budget) -> dict[str, Any]:
    return {"org_id": b.org_id, "budget_id": b.budget_id, "name": b.name,
            "scope_type": b.scope.type.value, "scope_key": b.scope.key,
            "scope_value": b.scope.value, "measure": b.measure.value, "period": b.period.value,
            "tz": b.tz, "amount": b.amount, "thresholds": list(b.thresholds),
            "forecast": b.forecast, "created_at": b.created_at, "created_by": b.created_by,
            "updated_at": b.updated_at}


def _budget(r: sa.Row[Any]) -> Budget:
    return Budget(r.budget_id, r.org_id, r.name,
                  BudgetScope(ScopeType(r.scope_type), r.scope_value, r.scope_key),
                  Measure(r.measure), BudgetPeriod(r.period), r.tz, int(r.amount),
                  tuple(int(t) for t in r.thresholds), bool(r.forecast), r.created_at,
                  r.created_by, r.updated_at)


def _alert(r: sa.Row[Any]) -> Alert:
    return Alert(r.alert_id, r.org_id, r.budget_id, r.budget_name, Measure(r.measure),
                 AlertKind(r.kind), int(r.threshold),
                 r.period_start, r.period_end, int(r.value), int(r.amount),
                 None if r.forecast_value is None else int(r.forecast_value), r.fired_at,
                 bool(r.late), r.complete_through)


class SqlBudgetStore(SqlRecordRepository):
    """Budgets keyed by (org, budget id)."""

    @translated
    def add(self, budget: Budget) -> None:
        """Store a new budget; Conflict when its id exists."""
        stmt = self._insert(budgets).on_conflict_do_nothing().returning(budgets.c.budget_id)
        if self._write().execute(stmt, _budget_row(budget)).first() is None:
            raise Conflict(f"budget {budget.budget_id} already exists")

    @translated
    def get(self, org_id: uuid.UUID, budget_id: uuid.UUID) -> Budget | None:
        """One budget of the org."""
        t = budgets.c
        row = self._read().execute(sa.select(budgets).where(
            t.org_id == org_id, t.budget_id == budget_id)).one_or_none()
        return None if row is None else _budget(row)

    @translated
    def for_org(self, org_id: uuid.UUID) -> builtins.list[Budget]:
        """The org's budgets, oldest first."""
        t = budgets.c
        rows = self._read().execute(sa.select(budgets).where(t.org_id == org_id).order_by(
            t.created_at, t.budget_id))
        return [_budget(r) for r in rows]

    @translated
    def save(self, budget: Budget) -> None:
        """Replace a stored budget of the same org."""
        t = budgets.c
        self._write().execute(budgets.update().where(
            t.org_id == budget.org_id, t.budget_id == budget.budget_id).values(
            _budget_row(budget)))

    @translated
    def delete(self, org_id: uuid.UUID, budget_id: uuid.UUID) -> bool:
        """Remove a budget of the org."""
        t = budgets.c
        result = self._write().execute(budgets.delete().where(
            t.org_id == org_id, t.budget_id == budget_id))
        return bool(result.rowcount)

    @translated
    def all(self) -> builtins.list[Budget]:
        """Every budget by (org, id)."""
        t = budgets.c
        return [_budget(r) for r in self._read().execute(
            sa.select(budgets).order_by(t.org_id, t.budget_id))]


class SqlAlertStore(SqlRecordRepository):
    """Alerts keyed by their identity: INSERT ... ON CONFLICT DO NOTHING fires once (a
    concurrent insert of the same key waits for the other transaction, then does nothing if
    it committed)."""

    @translated
    def fire(self, alert: Alert) -> bool:
        """Store the alert unless its identity is stored; True when this call stored it."""
        row = {"org_id": alert.org_id, "budget_id": alert.budget_id,
               "period_start": alert.period_start, "kind": alert.kind.value,
               "threshold": alert.threshold, "alert_id": alert.alert_id,
               "budget_name": alert.budget_name, "measure": alert.measure.value,
               "period_end": alert.period_end, "value": alert.value, "amount": alert.amount,
               "forecast_value": alert.forecast_value, "fired_at": alert.fired_at,
               "late": alert.late, "complete_through": alert.complete_through}
        stmt = self._insert(alerts).on_conflict_do_nothing(
            index_elements=["org_id", "budget_id", "period_start", "kind", "threshold"],
        ).returning(alerts.c.alert_id)
        return self._write().execute(stmt, row).first() is not None

    @translated
    def fired(self, budget_id: uuid.UUID, since: datetime) -> builtins.list[Alert]:
        """The budget's alerts of periods starting at or after `since`."""
        t = alerts.c
        rows = self._read().execute(sa.select(alerts).where(
            t.budget_id == budget_id, t.period_start >= since).order_by(
            t.period_start, t.kind, t.threshold))
        return [_alert(r) for r in rows]

    @translated
    def page(self, org_id: uuid.UUID, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None,
             budget_id: uuid.UUID | None = None) -> builtins.list[Alert]:
        """The org's alerts, newest first."""
        t = alerts.c
        stmt = sa.select(alerts).where(t.org_id == org_id)
        if budget_id is not None:
            stmt = stmt.where(t.budget_id == budget_id)
        if before is not None:
            stmt = stmt.where(sa.tuple_(t.fired_at, t.alert_id) < sa.tuple_(
                sa.literal(before[0], t.fired_at.type), sa.literal(before[1], sa.Uuid())))
        rows = self._read().execute(stmt.order_by(t.fired_at.desc(), t.alert_id.desc())
                                    .limit(limit))
        return [_alert(r) for r in rows]
