"""Budgets (SPEC §13): managing them, reading their status, and evaluating them.

Evaluation (`evaluate_budgets`, run by the alerts worker at least once a minute) reads each
budget's value from the rollups, for the current period and the periods that ended within the
late lookback, and fires every threshold reached. Firing is an insert that the store keeps only
once per identity (budget, period start, kind, threshold), in the transaction of that budget, so
any number of evaluators can run at once, crash and restart, and late events that push a closed
period over a threshold fire it once, marked late. While the pipeline's freshness is not
`fresh`, nothing is evaluated: a value that lags could fire too late or a forecast too early.
Each fired alert gets one webhook delivery per enabled endpoint of its org, in the same
transaction (analytics_core.webhooks).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum

import attrs

from analytics_core.access import Actor, Outcome
from analytics_core.attribution import AttributionSettings
from analytics_core.budgets import (
    FORECAST_WINDOW,
    Alert,
    AlertKind,
    Budget,
    BudgetDraft,
    ScopeType,
    crossed,
    measure_value,
    period_bounds,
    periods_to_check,
    projection,
    read_budget,
    read_update,
)
from analytics_core.errors import NotFound
from analytics_core.freshness import Freshness, FreshnessStatus
from analytics_core.ports import Clock, IdGenerator, PipelineProgress, UnitOfWork, UnitOfWorkFactory
from analytics_core.records import AuditEntry
from analytics_core.rollups import RollupStats
from analytics_core.timegrid import floor_bucket, zone
from analytics_core.usecases.queries import current_freshness
from analytics_core.webhooks import deliveries_for

LATE_LOOKBACK = timedelta(days=7)
"""How long after a period ends late events can still fire its thresholds (marked late).
Periods that ended before the budget was created are never evaluated."""
MAX_ALERTS_PAGE = 500


class BudgetState(StrEnum):
    """A budget's status in its current period."""

    OK = "ok"  # below every threshold and not forecast to reach the amount
    WARNING = "warning"  # a threshold reached, or forecast to reach the amount
    EXCEEDED = "exceeded"  # at or above the amount
    DEFERRED = "deferred"  # evaluation waits for fresh data (see `reason`)


@attrs.frozen
class BudgetView:
    """A budget with its current period's value, projection and status."""

    budget: Budget
    period_start: datetime
    period_end: datetime
    value: int
    forecast_value: int
    state: BudgetState
    reason: str | None
    freshness: Freshness
    fired: tuple[Alert, ...]  # this period's alerts


@attrs.frozen
class Evaluation:
    """What one evaluation pass did."""

    budgets: int
    fired: tuple[Alert, ...]
    deferred: Freshness | None  # the freshness that deferred the pass, if it was


@attrs.frozen
class AlertPage:
    """One page of alerts, newest first, and the cursor of the next page."""

    alerts: tuple[Alert, ...]
    next_cursor: tuple[datetime, uuid.UUID] | None


# -- management ---------------------------------------------------------------------------


def _audit(uow: UnitOfWork, ids: IdGenerator, now: datetime, *, actor: Actor,
           org_id: uuid.UUID, budget_id: uuid.UUID, action: str, reason: str) -> None:
    """Record a change. Changing use cases record it first: on SQLite the unit then holds the
    write lock before it reads, and never has to upgrade a read transaction (which fails at
    once under a concurrent writer); a change that then fails rolls its entry back."""
    uow.audit.record(AuditEntry(
        audit_id=ids.new_id(), at=now, actor=actor.subject, actor_org=actor.org_id,
        org_id=org_id, action=action, resource=f"budget:{budget_id}",
        outcome=Outcome.ALLOWED, reason=reason, request_id=None,
        cross_org=actor.org_id != org_id,
    ))


def create_budget(actor: Actor, org_id: uuid.UUID, body: object, *,
                  uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator,
                  attribution: AttributionSettings) -> Budget:
    """A new budget from a request body (access checked by the driver); audited."""
    draft: BudgetDraft = read_budget(body, attribution.keys)
    now = clock.now()
    budget = Budget(ids.new_id(), org_id, draft.name, draft.scope, draft.measure, draft.period,
                    draft.tz, draft.amount, draft.thresholds, draft.forecast, now,
                    actor.subject, now)
    with uow_factory() as uow:
        uow.budgets.add(budget)
        _audit(uow, ids, now, actor=actor, org_id=org_id, budget_id=budget.budget_id,
               action="budgets.create",
               reason=f"{budget.measure.value} of {budget.scope.label()} per "
                      f"{budget.period.value}")
        uow.commit()
    return budget


def update_budget(actor: Actor, org_id: uuid.UUID, budget_id: uuid.UUID, body: object, *,
                  uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator) -> Budget:
    """Change a budget's name, amount, thresholds or forecast; audited."""
    now = clock.now()
    with uow_factory() as uow:
        _audit(uow, ids, now, actor=actor, org_id=org_id, budget_id=budget_id,
               action="budgets.update", reason="changed " + ", ".join(sorted(body))
               if isinstance(body, Mapping) else "")
        budget = uow.budgets.get(org_id, budget_id)
        if budget is None:
            raise NotFound(f"budget {budget_id} not found")
        changed = attrs.evolve(read_update(body, budget), updated_at=now)
        uow.budgets.save(changed)
        uow.commit()
    return changed


def delete_budget(actor: Actor, org_id: uuid.UUID, budget_id: uuid.UUID, *,
                  uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator) -> None:
    """Remove a budget (its alerts stay); audited; NotFound when unknown."""
    now = clock.now()
    with uow_factory() as uow:
        _audit(uow, ids, now, actor=actor, org_id=org_id, budget_id=budget_id,
               action="budgets.delete", reason="deleted")
        if not uow.budgets.delete(org_id, budget_id):
            raise NotFound(f"budget {budget_id} not found")
        uow.commit()


def list_budgets(org_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory, clock: Clock,
                 progress: PipelineProgress) -> list[BudgetView]:
    """The org's budgets with their current status, oldest first."""
    freshness = current_freshness(progress, clock)
    with uow_factory() as uow:
        reader = _Reader(uow)
        return [_view(b, uow, reader, freshness, clock.now()) for b in uow.budgets.for_org(org_id)]


def get_budget(org_id: uuid.UUID, budget_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory,
               clock: Clock, progress: PipelineProgress) -> BudgetView:
    """One budget with its current status; NotFound for unknown ids and other orgs'."""
    freshness = current_freshness(progress, clock)
    with uow_factory() as uow:
        budget = uow.budgets.get(org_id, budget_id)
        if budget is None:
            raise NotFound(f"budget {budget_id} not found")
        return _view(budget, uow, _Reader(uow), freshness, clock.now())


def list_alerts(org_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory, limit: int = 50,
                before: tuple[datetime, uuid.UUID] | None = None,
                budget_id: uuid.UUID | None = None) -> AlertPage:
    """A page of the org's alerts, newest first (optionally of one budget)."""
    limit = max(1, min(limit, MAX_ALERTS_PAGE))
    with uow_factory() as uow:
        alerts = uow.alerts.page(org_id, limit=limit + 1, before=before, budget_id=budget_id)
    page = tuple(alerts[:limit])
    cursor = (page[-1].fired_at, page[-1].alert_id) if len(alerts) > limit else None
    return AlertPage(page, cursor)


def _view(budget: Budget, uow: UnitOfWork, reader: _Reader, freshness: Freshness,
          now: datetime) -> BudgetView:
    start, end = period_bounds(now, budget.period, zone(budget.tz))
    (value,) = reader.values(budget, [start, end])
    forecast = projection(value, reader.trailing(budget, now), now, end)
    fired = tuple(a for a in uow.alerts.fired(budget.budget_id, start)
                  if a.period_start == start)
    reason = None
    if freshness.status is not FreshnessStatus.FRESH:
        state = BudgetState.DEFERRED
        reason = (f"freshness is {freshness.status.value}: data is complete through "
                  f"{freshness.complete_through.isoformat()}; alerts are evaluated again once "
                  "it is fresh")
    elif value >= budget.amount:
        state = BudgetState.EXCEEDED
    elif crossed(value, budget.amount, budget.thresholds) or (
            budget.forecast and forecast >= budget.amount):
        state = BudgetState.WARNING
    else:
        state = BudgetState.OK
    return BudgetView(budget, start, end, value, forecast, state, reason, freshness, fired)


# -- evaluation ---------------------------------------------------------------------------


def evaluate_budgets(*, uow_factory: UnitOfWorkFactory, clock: Clock,
                     progress: PipelineProgress, ids: IdGenerator,
                     lookback: timedelta = LATE_LOOKBACK) -> Evaluation:
    """One pass over every budget: fire the thresholds reached (each at most once per budget
    and period), or nothing while freshness is not `fresh`."""
    freshness = current_freshness(progress, clock)
    with uow_factory() as uow:
        budgets = uow.budgets.all()
    if freshness.status is not FreshnessStatus.FRESH:
        return Evaluation(len(budgets), (), freshness)
    now = clock.now()
    fired: list[Alert] = []
    by_org: dict[uuid.UUID, list[Budget]] = {}
    for b in budgets:
        by_org.setdefault(b.org_id, []).append(b)
    for org_id, org_budgets in by_org.items():
        with uow_factory() as uow:  # one read per org: the rollup reads are shared
            reader = _Reader(uow)
            due = [(alert, budget) for budget in org_budgets
                   for alert in _due(budget, uow, reader, now, freshness, ids, lookback)]
        if due:  # then a write unit that begins with its first write (SQLite: the lock)
            with uow_factory() as uow:
                org_fired = [(a, b) for a, b in due if uow.alerts.fire(a)]
                if org_fired:  # the webhook outbox, in the transaction that fired them
                    endpoints = uow.webhooks.for_org(org_id)
                    uow.deliveries.add([d for alert, budget in org_fired for d in
                                        deliveries_for(alert, budget, endpoints, ids, now)])
                uow.commit()
            fired.extend(a for a, _ in org_fired)
    return Evaluation(len(budgets), tuple(fired), None)


def _due(budget: Budget, uow: UnitOfWork, reader: _Reader, now: datetime,  # noqa: PLR0917
         freshness: Freshness, ids: IdGenerator, lookback: timedelta) -> list[Alert]:
    """The alerts the budget's values reach that are not stored yet (firing them is the
    store's decision: another evaluator may get there first)."""
    periods = [p for p in periods_to_check(now, budget.period, zone(budget.tz), lookback)
               if p[1] > budget.created_at]  # never for periods over before it existed
    if not periods:
        return []
    done = {(a.period_start, a.kind, a.threshold)
            for a in uow.alerts.fired(budget.budget_id, periods[0][0])}
    edges = [start for start, _ in periods] + [periods[-1][1]]
    values = reader.values(budget, edges)
    out = []

    def due(kind: AlertKind, threshold: int, period: tuple[datetime, datetime], value: int,
             forecast: int | None) -> None:
        start, end = period
        if (start, kind, threshold) in done:
            return
        out.append(Alert(ids.new_id(), budget.org_id, budget.budget_id, budget.name,
                         budget.measure, kind, threshold, start, end, value, budget.amount,
                         forecast, now, end <= now, freshness.complete_through))

    for (start, end), value in zip(periods, values, strict=True):
        for t in crossed(value, budget.amount, budget.thresholds):
            due(AlertKind.THRESHOLD, t, (start, end), value, None)
        if (budget.forecast and end > now and value < budget.amount
                and (start, AlertKind.FORECAST, 100) not in done):
            forecast = projection(value, reader.trailing(budget, now), now, end)
            if forecast >= budget.amount:
                due(AlertKind.FORECAST, 100, (start, end), value, forecast)
    return out


class _Reader:
    """Values of budgets from one unit's rollups, one read per (org, window, grouping) shared
    by every budget of the org that needs it."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        self._cells: dict[tuple[uuid.UUID, tuple[datetime, ...], str],
                          dict[tuple[datetime, str | None], RollupStats]] = {}

    def _read(self, org_id: uuid.UUID, edges: Sequence[datetime], grouping: str
              ) -> Mapping[tuple[datetime, str | None], RollupStats]:
        key = (org_id, tuple(edges), grouping)
        if key not in self._cells:
            if grouping in ("model", "client"):
                cells = self._uow.rollups.aggregate(org_id, edges, group_by=grouping,
                                                    latency=False)
            else:
                cells = self._uow.attribution.aggregate(org_id, edges, dimension=grouping,
                                                        latency=False)
            self._cells[key] = {(start, group): stats for start, group, stats in cells}
        return self._cells[key]

    def values(self, budget: Budget, edges: Sequence[datetime]) -> list[int]:
        """The budget's value in each period between consecutive `edges`."""
        scope = budget.scope
        grouping = scope.dimension or ("client" if scope.type is ScopeType.CLIENT else "model")
        cells = self._read(budget.org_id, edges, grouping)
        totals = dict.fromkeys(edges[:-1], 0)
        for (start, group), stats in cells.items():
            if scope.type is ScopeType.ORG or group == scope.value:
                totals[start] += measure_value(stats, budget.measure)
        return [totals[e] for e in edges[:-1]]

    def trailing(self, budget: Budget, now: datetime) -> int:
        """The budget's value over the forecast window before now (whole buckets)."""
        end = floor_bucket(now)
        (value,) = self.values(budget, [end - FORECAST_WINDOW, end])
        return value
