"""Budgets, fired alerts, webhook endpoints and deliveries on SQL (SPEC §13)."""

from __future__ import annotations

import builtins
import itertools
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import attrs
import sqlalchemy as sa

from analytics_adapters.sql.base import lock_each
from analytics_adapters.sql.errors import translated
from analytics_adapters.sql.records import SqlRecordRepository
from analytics_adapters.sql.schema import (
    alerts,
    budgets,
    reliability_rules,
    rule_transitions,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)
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
from analytics_core.rules import (
    ErrorClass,
    ReliabilityRule,
    RuleMetric,
    RuleState,
    RuleTransition,
)
from analytics_core.webhooks import (
    AttemptOutcome,
    Claim,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    WebhookEndpoint,
)


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
            _changes(_budget_row(budget))))

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
    def fired(self, org_id: uuid.UUID, since: datetime) -> builtins.list[Alert]:
        """The org's alerts of periods starting at or after `since`."""
        t = alerts.c
        rows = self._read().execute(sa.select(alerts).where(
            t.org_id == org_id, t.period_start >= since).order_by(
            t.budget_id, t.period_start, t.kind, t.threshold))
        return [_alert(r) for r in rows]

    @translated
    def fired_keys(self, org_id: uuid.UUID, since: datetime
                   ) -> set[tuple[uuid.UUID, datetime, AlertKind, int]]:
        """The identities of the org's alerts of periods starting at or after `since` (the
        primary key's columns only)."""
        t = alerts.c
        rows = self._read().execute(sa.select(t.budget_id, t.period_start, t.kind, t.threshold)
                                    .where(t.org_id == org_id, t.period_start >= since))
        return {(b, start, AlertKind(kind), int(n)) for b, start, kind, n in rows}

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


def _endpoint_row(e: WebhookEndpoint) -> dict[str, Any]:
    return {"org_id": e.org_id, "endpoint_id": e.endpoint_id, "url": e.url,
            "description": e.description, "secret": e.secret,
            "previous_secret": e.previous_secret, "previous_until": e.previous_until,
            "enabled": e.enabled, "created_at": e.created_at, "created_by": e.created_by,
            "updated_at": e.updated_at}


def _endpoint(r: Any) -> WebhookEndpoint:
    return WebhookEndpoint(r.endpoint_id, r.org_id, r.url, r.description, r.secret,
                           r.previous_secret, r.previous_until, bool(r.enabled), r.created_at,
                           r.created_by, r.updated_at)


def _changes(row: dict[str, Any]) -> dict[str, Any]:
    """The columns an UPDATE of a stored row sets: all but `org_id`, which never changes (and
    Citus refuses an UPDATE that sets its distribution column, even to the same value)."""
    return {column: value for column, value in row.items() if column != "org_id"}


def _delivery_row(d: Delivery) -> dict[str, Any]:
    return {"org_id": d.org_id, "delivery_id": d.delivery_id, "endpoint_id": d.endpoint_id,
            "alert_id": d.alert_id, "event_type": d.event_type, "payload": d.payload,
            "status": d.status.value, "attempts": d.attempts, "created_at": d.created_at,
            "next_attempt_at": d.next_attempt_at, "deadline": d.deadline,
            "lease_until": d.lease_until, "last_status_code": d.last_status_code,
            "last_error": d.last_error, "completed_at": d.completed_at}


def _delivery(r: Any) -> Delivery:
    return Delivery(r.delivery_id, r.org_id, r.endpoint_id, r.alert_id, r.event_type,
                    r.payload, DeliveryStatus(r.status), int(r.attempts), r.created_at,
                    r.next_attempt_at, r.deadline, r.lease_until, r.last_status_code,
                    r.last_error, r.completed_at)


def _attempt(r: Any) -> DeliveryAttempt:
    return DeliveryAttempt(r.delivery_id, int(r.number), r.started_at, AttemptOutcome(r.outcome),
                           r.status_code, r.error, r.seconds)


class SqlWebhookStore(SqlRecordRepository):
    """Webhook endpoints keyed by (org, endpoint id)."""

    @translated
    def add(self, endpoint: WebhookEndpoint) -> None:
        """Store a new endpoint; Conflict when its id exists."""
        t = webhook_endpoints
        stmt = self._insert(t).on_conflict_do_nothing().returning(t.c.endpoint_id)
        if self._write().execute(stmt, _endpoint_row(endpoint)).first() is None:
            raise Conflict(f"webhook {endpoint.endpoint_id} already exists")

    @translated
    def get(self, org_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        """One endpoint of the org."""
        t = webhook_endpoints.c
        row = self._read().execute(sa.select(webhook_endpoints).where(
            t.org_id == org_id, t.endpoint_id == endpoint_id)).one_or_none()
        return None if row is None else _endpoint(row)

    @translated
    def for_org(self, org_id: uuid.UUID) -> builtins.list[WebhookEndpoint]:
        """The org's endpoints, oldest first."""
        t = webhook_endpoints.c
        return [_endpoint(r) for r in self._read().execute(sa.select(webhook_endpoints).where(
            t.org_id == org_id).order_by(t.created_at, t.endpoint_id))]

    @translated
    def save(self, endpoint: WebhookEndpoint) -> None:
        """Replace a stored endpoint of the same org."""
        t = webhook_endpoints.c
        self._write().execute(webhook_endpoints.update().where(
            t.org_id == endpoint.org_id, t.endpoint_id == endpoint.endpoint_id).values(
            _changes(_endpoint_row(endpoint))))

    @translated
    def delete(self, org_id: uuid.UUID, endpoint_id: uuid.UUID) -> bool:
        """Remove an endpoint of the org with its deliveries and their attempts."""
        write = self._write()
        d, a = webhook_deliveries.c, webhook_attempts.c
        ids = sa.select(d.delivery_id).where(d.org_id == org_id, d.endpoint_id == endpoint_id)
        write.execute(webhook_attempts.delete().where(a.org_id == org_id,
                                                      a.delivery_id.in_(ids)))
        write.execute(webhook_deliveries.delete().where(d.org_id == org_id,
                                                        d.endpoint_id == endpoint_id))
        t = webhook_endpoints.c
        result = write.execute(webhook_endpoints.delete().where(
            t.org_id == org_id, t.endpoint_id == endpoint_id))
        return bool(result.rowcount)


# Due deliveries a claim considers beyond twice its limit (those other claimers hold are
# skipped).
CLAIM_SLACK = 16


class SqlDeliveryStore(SqlRecordRepository):
    """The delivery outbox and its attempt log. A claim selects due rows FOR UPDATE SKIP
    LOCKED (PostgreSQL; SQLite has one writer) and leases them in the same transaction."""

    @translated
    def add(self, deliveries: Sequence[Delivery]) -> None:
        """Store new deliveries."""
        if deliveries:
            self._write().execute(webhook_deliveries.insert(),
                                  [_delivery_row(d) for d in deliveries])

    @translated
    def claim(self, now: datetime, lease: timedelta, limit: int) -> builtins.list[Claim]:
        """Due deliveries of enabled endpoints, earliest due first, leased, each with a new
        attempt in flight."""
        write = self._write()
        d, e = webhook_deliveries.c, webhook_endpoints.c
        claimable = sa.and_(d.status == DeliveryStatus.PENDING.value, d.next_attempt_at <= now,
                            sa.or_(d.lease_until.is_(None), d.lease_until <= now))
        # Candidates without locks, earliest due first, then each locked and checked again
        # (`lock_each`) until `limit` are held.
        candidates = write.execute(
            sa.select(d.org_id, d.delivery_id)
            .join(webhook_endpoints, sa.and_(e.org_id == d.org_id,
                                             e.endpoint_id == d.endpoint_id))
            .where(claimable, e.enabled)
            .order_by(d.next_attempt_at, d.delivery_id)
            .limit(max(limit, 0) * 2 + CLAIM_SLACK)).all()
        locked = lock_each(write, candidates, lambda org_id, delivery_id: sa.select(
            webhook_deliveries).where(d.org_id == org_id, d.delivery_id == delivery_id,
                                      claimable))
        rows = [_delivery(row) for row in itertools.islice(locked, max(limit, 0))]
        if not rows:
            return []
        until = now + lease
        keys = [(r.org_id, r.delivery_id) for r in rows]
        write.execute(webhook_deliveries.update().where(
            sa.tuple_(d.org_id, d.delivery_id).in_(keys)).values(lease_until=until))
        a = webhook_attempts.c
        write.execute(webhook_attempts.update().where(
            sa.tuple_(a.org_id, a.delivery_id).in_(keys),
            a.outcome == AttemptOutcome.IN_FLIGHT.value).values(
            outcome=AttemptOutcome.INTERRUPTED.value))
        last = dict(write.execute(sa.select(a.delivery_id, sa.func.max(a.number)).where(
            sa.tuple_(a.org_id, a.delivery_id).in_(keys)).group_by(a.delivery_id)).all())
        endpoints = {(r.org_id, r.endpoint_id): _endpoint(r) for r in write.execute(
            sa.select(webhook_endpoints).where(sa.tuple_(e.org_id, e.endpoint_id).in_(
                {(r.org_id, r.endpoint_id) for r in rows})))}
        claims = []
        for r in rows:
            attempt = DeliveryAttempt(r.delivery_id, int(last.get(r.delivery_id) or 0) + 1, now,
                                      AttemptOutcome.IN_FLIGHT)
            claims.append(Claim(attrs.evolve(r, lease_until=until),
                                endpoints[(r.org_id, r.endpoint_id)], attempt))
        write.execute(webhook_attempts.insert(), [
            {"org_id": c.delivery.org_id, "delivery_id": c.delivery.delivery_id,
             "number": c.attempt.number, "started_at": now,
             "outcome": AttemptOutcome.IN_FLIGHT.value} for c in claims])
        return claims

    @translated
    def finish(self, delivery: Delivery, attempt: DeliveryAttempt) -> None:
        """Store the delivery and the outcome of its attempt."""
        write = self._write()
        d, a = webhook_deliveries.c, webhook_attempts.c
        write.execute(webhook_deliveries.update().where(
            d.org_id == delivery.org_id, d.delivery_id == delivery.delivery_id).values(
            _changes(_delivery_row(delivery))))
        write.execute(webhook_attempts.update().where(
            a.org_id == delivery.org_id, a.delivery_id == delivery.delivery_id,
            a.number == attempt.number).values(
            outcome=attempt.outcome.value, status_code=attempt.status_code,
            error=attempt.error, seconds=attempt.seconds))

    @translated
    def get(self, org_id: uuid.UUID, delivery_id: uuid.UUID) -> Delivery | None:
        """One delivery of the org."""
        d = webhook_deliveries.c
        row = self._read().execute(sa.select(webhook_deliveries).where(
            d.org_id == org_id, d.delivery_id == delivery_id)).one_or_none()
        return None if row is None else _delivery(row)

    @translated
    def save(self, delivery: Delivery) -> None:
        """Replace a stored delivery."""
        d = webhook_deliveries.c
        self._write().execute(webhook_deliveries.update().where(
            d.org_id == delivery.org_id, d.delivery_id == delivery.delivery_id).values(
            _changes(_delivery_row(delivery))))

    @translated
    def page(self, org_id: uuid.UUID, endpoint_id: uuid.UUID, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None) -> builtins.list[Delivery]:
        """An endpoint's deliveries, newest first."""
        d = webhook_deliveries.c
        stmt = sa.select(webhook_deliveries).where(d.org_id == org_id,
                                                   d.endpoint_id == endpoint_id)
        if before is not None:
            stmt = stmt.where(sa.tuple_(d.created_at, d.delivery_id) < sa.tuple_(
                sa.literal(before[0], d.created_at.type), sa.literal(before[1], sa.Uuid())))
        rows = self._read().execute(stmt.order_by(d.created_at.desc(), d.delivery_id.desc())
                                    .limit(limit))
        return [_delivery(r) for r in rows]

    @translated
    def attempts(self, delivery_ids: Sequence[uuid.UUID]
                 ) -> dict[uuid.UUID, builtins.list[DeliveryAttempt]]:
        """The attempts of each delivery, first first."""
        out: dict[uuid.UUID, builtins.list[DeliveryAttempt]] = {i: [] for i in delivery_ids}
        if not delivery_ids:
            return out
        a = webhook_attempts.c
        for r in self._read().execute(sa.select(webhook_attempts).where(
                a.delivery_id.in_(list(delivery_ids))).order_by(a.delivery_id, a.number)):
            out[r.delivery_id].append(_attempt(r))
        return out


def _rule_row(r: ReliabilityRule) -> dict[str, Any]:
    return {"org_id": r.org_id, "rule_id": r.rule_id, "name": r.name,
            "scope_type": r.scope.type.value, "scope_value": r.scope.value,
            "metric": r.metric.value, "error_class": r.error_class.value,
            "window_minutes": r.window_minutes, "threshold": r.threshold,
            "resolve_threshold": r.resolve_threshold, "min_volume": r.min_volume,
            "created_at": r.created_at, "created_by": r.created_by, "updated_at": r.updated_at}


def _rule(r: Any) -> ReliabilityRule:
    return ReliabilityRule(r.rule_id, r.org_id, r.name,
                           BudgetScope(ScopeType(r.scope_type), r.scope_value),
                           RuleMetric(r.metric), ErrorClass(r.error_class),
                           int(r.window_minutes), int(r.threshold), int(r.resolve_threshold),
                           int(r.min_volume), r.created_at, r.created_by, r.updated_at)


def _transition(r: Any) -> RuleTransition:
    return RuleTransition(r.transition_id, r.org_id, r.rule_id, r.rule_name, int(r.number),
                          RuleState(r.state), RuleMetric(r.metric), int(r.value),
                          int(r.threshold), int(r.volume), r.window_start, r.window_end, r.at)


class SqlRuleStore(SqlRecordRepository):
    """Reliability rules keyed by (org, rule id)."""

    @translated
    def add(self, rule: ReliabilityRule) -> None:
        """Store a new rule; Conflict when its id exists."""
        t = reliability_rules
        stmt = self._insert(t).on_conflict_do_nothing().returning(t.c.rule_id)
        if self._write().execute(stmt, _rule_row(rule)).first() is None:
            raise Conflict(f"rule {rule.rule_id} already exists")

    @translated
    def get(self, org_id: uuid.UUID, rule_id: uuid.UUID) -> ReliabilityRule | None:
        """One rule of the org."""
        t = reliability_rules.c
        row = self._read().execute(sa.select(reliability_rules).where(
            t.org_id == org_id, t.rule_id == rule_id)).one_or_none()
        return None if row is None else _rule(row)

    @translated
    def for_org(self, org_id: uuid.UUID) -> builtins.list[ReliabilityRule]:
        """The org's rules, oldest first."""
        t = reliability_rules.c
        return [_rule(r) for r in self._read().execute(sa.select(reliability_rules).where(
            t.org_id == org_id).order_by(t.created_at, t.rule_id))]

    @translated
    def save(self, rule: ReliabilityRule) -> None:
        """Replace a stored rule of the same org."""
        t = reliability_rules.c
        self._write().execute(reliability_rules.update().where(
            t.org_id == rule.org_id, t.rule_id == rule.rule_id).values(
            _changes(_rule_row(rule))))

    @translated
    def delete(self, org_id: uuid.UUID, rule_id: uuid.UUID) -> bool:
        """Remove a rule of the org."""
        t = reliability_rules.c
        result = self._write().execute(reliability_rules.delete().where(
            t.org_id == org_id, t.rule_id == rule_id))
        return bool(result.rowcount)

    @translated
    def all(self) -> builtins.list[ReliabilityRule]:
        """Every rule by (org, id)."""
        t = reliability_rules.c
        return [_rule(r) for r in self._read().execute(
            sa.select(reliability_rules).order_by(t.org_id, t.rule_id))]


class SqlTransitionStore(SqlRecordRepository):
    """Rule transitions keyed by (org, rule, number): ON CONFLICT DO NOTHING records each
    transition once."""

    @translated
    def record(self, transition: RuleTransition) -> bool:
        """Store unless the rule has a transition with this number."""
        t = rule_transitions
        x = transition
        stmt = self._insert(t).on_conflict_do_nothing(
            index_elements=["org_id", "rule_id", "number"]).returning(t.c.transition_id)
        return self._write().execute(stmt, {
            "org_id": x.org_id, "rule_id": x.rule_id, "number": x.number,
            "transition_id": x.transition_id, "rule_name": x.rule_name, "state": x.state.value,
            "metric": x.metric.value, "value": x.value, "threshold": x.threshold,
            "volume": x.volume, "window_start": x.window_start, "window_end": x.window_end,
            "at": x.at}).first() is not None

    @translated
    def latest(self, org_id: uuid.UUID) -> dict[uuid.UUID, RuleTransition]:
        """The last transition of each rule of the org."""
        t = rule_transitions.c
        last = sa.select(t.rule_id, sa.func.max(t.number).label("n")).where(
            t.org_id == org_id).group_by(t.rule_id).subquery()
        rows = self._read().execute(sa.select(rule_transitions).join(
            last, sa.and_(t.rule_id == last.c.rule_id, t.number == last.c.n)).where(
            t.org_id == org_id))
        return {r.rule_id: _transition(r) for r in rows}

    @translated
    def page(self, org_id: uuid.UUID, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None,
             rule_id: uuid.UUID | None = None) -> builtins.list[RuleTransition]:
        """The org's transitions, newest first."""
        t = rule_transitions.c
        stmt = sa.select(rule_transitions).where(t.org_id == org_id)
        if rule_id is not None:
            stmt = stmt.where(t.rule_id == rule_id)
        if before is not None:
            stmt = stmt.where(sa.tuple_(t.at, t.transition_id) < sa.tuple_(
                sa.literal(before[0], t.at.type), sa.literal(before[1], sa.Uuid())))
        rows = self._read().execute(stmt.order_by(t.at.desc(), t.transition_id.desc())
                                    .limit(limit))
        return [_transition(r) for r in rows]
