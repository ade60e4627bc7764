"""In-memory budgets, fired alerts, reliability rules and their transitions, webhook endpoints
and deliveries (SPEC §13)."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs

from analytics_adapters.memory.repositories import Repository
from analytics_core.budgets import Alert, AlertKind, Budget
from analytics_core.errors import Conflict
from analytics_core.rules import ReliabilityRule, RuleTransition
from analytics_core.webhooks import (
    AttemptOutcome,
    Claim,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    WebhookEndpoint,
)


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

    def fired(self, org_id: uuid.UUID, since: datetime) -> builtins.list[Alert]:
        """The org's alerts of periods starting at or after `since`."""
        self._unit.journal()
        return sorted((a for a in self._db.alerts.values()
                       if a.org_id == org_id and a.period_start >= since),
                      key=lambda a: (a.budget_id, a.period_start, a.kind, a.threshold))

    def fired_keys(self, org_id: uuid.UUID, since: datetime
                   ) -> set[tuple[uuid.UUID, datetime, AlertKind, int]]:
        """The identities of the org's alerts of periods starting at or after `since`."""
        return {a.identity for a in self.fired(org_id, since)}

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


class InMemoryWebhookStore(Repository):
    """Webhook endpoints by id."""

    def add(self, endpoint: WebhookEndpoint) -> None:
        """Store a new endpoint; Conflict when its id exists."""
        journal = self._unit.journal()
        if endpoint.endpoint_id in self._db.webhooks:
            raise Conflict(f"webhook {endpoint.endpoint_id} already exists")
        journal.put(self._db.webhooks, endpoint.endpoint_id, endpoint)

    def get(self, org_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        """One endpoint of the org."""
        self._unit.journal()
        endpoint = self._db.webhooks.get(endpoint_id)
        return endpoint if endpoint is not None and endpoint.org_id == org_id else None

    def for_org(self, org_id: uuid.UUID) -> builtins.list[WebhookEndpoint]:
        """The org's endpoints, oldest first."""
        self._unit.journal()
        return sorted((e for e in self._db.webhooks.values() if e.org_id == org_id),
                      key=lambda e: (e.created_at, e.endpoint_id))

    def save(self, endpoint: WebhookEndpoint) -> None:
        """Replace a stored endpoint of the same org."""
        journal = self._unit.journal()
        if self.get(endpoint.org_id, endpoint.endpoint_id) is not None:
            journal.put(self._db.webhooks, endpoint.endpoint_id, endpoint)

    def delete(self, org_id: uuid.UUID, endpoint_id: uuid.UUID) -> bool:
        """Remove an endpoint of the org with its deliveries and their attempts."""
        journal = self._unit.journal()
        if self.get(org_id, endpoint_id) is None:
            return False
        journal.delete(self._db.webhooks, endpoint_id)
        for d in [d for d in self._db.deliveries.values() if d.endpoint_id == endpoint_id]:
            journal.delete(self._db.deliveries, d.delivery_id)
            journal.delete(self._db.attempts, d.delivery_id)
        return True


class InMemoryDeliveryStore(Repository):
    """Deliveries by id and their attempts; units of work are serialised, so a claim is
    atomic."""

    def add(self, deliveries: Sequence[Delivery]) -> None:
        """Store new deliveries."""
        journal = self._unit.journal()
        for d in deliveries:
            journal.put(self._db.deliveries, d.delivery_id, d)

    def claim(self, now: datetime, lease: timedelta, limit: int) -> builtins.list[Claim]:
        """Due deliveries of enabled endpoints, earliest due first, leased."""
        journal = self._unit.journal()
        due = sorted((d for d in self._db.deliveries.values()
                      if d.status is DeliveryStatus.PENDING and d.next_attempt_at <= now
                      and (d.lease_until is None or d.lease_until <= now)
                      and self._enabled(d.endpoint_id)),
                     key=lambda d: (d.next_attempt_at, d.delivery_id))[:max(limit, 0)]
        claims = []
        for d in due:
            leased = attrs.evolve(d, lease_until=now + lease)
            journal.put(self._db.deliveries, d.delivery_id, leased)
            old = self._db.attempts.get(d.delivery_id, ())
            marked = tuple(attrs.evolve(a, outcome=AttemptOutcome.INTERRUPTED)
                           if a.outcome is AttemptOutcome.IN_FLIGHT else a for a in old)
            attempt = DeliveryAttempt(d.delivery_id, len(old) + 1, now,
                                      AttemptOutcome.IN_FLIGHT)
            journal.put(self._db.attempts, d.delivery_id, (*marked, attempt))
            claims.append(Claim(leased, self._db.webhooks[d.endpoint_id], attempt))
        return claims

    def _enabled(self, endpoint_id: uuid.UUID) -> bool:
        endpoint = self._db.webhooks.get(endpoint_id)
        return endpoint is not None and endpoint.enabled

    def finish(self, delivery: Delivery, attempt: DeliveryAttempt) -> None:
        """Store the delivery and replace its attempt of the same number."""
        journal = self._unit.journal()
        if delivery.delivery_id not in self._db.deliveries:
            return  # its endpoint was deleted meanwhile
        journal.put(self._db.deliveries, delivery.delivery_id, delivery)
        old = self._db.attempts.get(delivery.delivery_id, ())
        journal.put(self._db.attempts, delivery.delivery_id,
                    tuple(attempt if a.number == attempt.number else a for a in old))

    def get(self, org_id: uuid.UUID, delivery_id: uuid.UUID) -> Delivery | None:
        """One delivery of the org."""
        self._unit.journal()
        d = self._db.deliveries.get(delivery_id)
        return d if d is not None and d.org_id == org_id else None

    def save(self, delivery: Delivery) -> None:
        """Replace a stored delivery."""
        journal = self._unit.journal()
        if delivery.delivery_id in self._db.deliveries:
            journal.put(self._db.deliveries, delivery.delivery_id, delivery)

    def page(self, org_id: uuid.UUID, endpoint_id: uuid.UUID, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None) -> builtins.list[Delivery]:
        """An endpoint's deliveries, newest first."""
        self._unit.journal()
        rows = sorted((d for d in self._db.deliveries.values()
                       if d.org_id == org_id and d.endpoint_id == endpoint_id
                       and (before is None or (d.created_at, d.delivery_id) < before)),
                      key=lambda d: (d.created_at, d.delivery_id), reverse=True)
        return rows[:limit]

    def attempts(self, delivery_ids: Sequence[uuid.UUID]
                 ) -> dict[uuid.UUID, builtins.list[DeliveryAttempt]]:
        """The attempts of each delivery, first first."""
        self._unit.journal()
        return {i: list(self._db.attempts.get(i, ())) for i in delivery_ids}


class InMemoryRuleStore(Repository):
    """Reliability rules by id."""

    def add(self, rule: ReliabilityRule) -> None:
        """Store a new rule; Conflict when its id exists."""
        journal = self._unit.journal()
        if rule.rule_id in self._db.rules:
            raise Conflict(f"rule {rule.rule_id} already exists")
        journal.put(self._db.rules, rule.rule_id, rule)

    def get(self, org_id: uuid.UUID, rule_id: uuid.UUID) -> ReliabilityRule | None:
        """One rule of the org."""
        self._unit.journal()
        rule = self._db.rules.get(rule_id)
        return rule if rule is not None and rule.org_id == org_id else None

    def for_org(self, org_id: uuid.UUID) -> builtins.list[ReliabilityRule]:
        """The org's rules, oldest first."""
        self._unit.journal()
        return sorted((r for r in self._db.rules.values() if r.org_id == org_id),
                      key=lambda r: (r.created_at, r.rule_id))

    def save(self, rule: ReliabilityRule) -> None:
        """Replace a stored rule of the same org."""
        journal = self._unit.journal()
        if self.get(rule.org_id, rule.rule_id) is not None:
            journal.put(self._db.rules, rule.rule_id, rule)

    def delete(self, org_id: uuid.UUID, rule_id: uuid.UUID) -> bool:
        """Remove a rule of the org."""
        journal = self._unit.journal()
        if self.get(org_id, rule_id) is None:
            return False
        journal.delete(self._db.rules, rule_id)
        return True

    def all(self) -> builtins.list[ReliabilityRule]:
        """Every rule by (org, id)."""
        self._unit.journal()
        return sorted(self._db.rules.values(), key=lambda r: (r.org_id, r.rule_id))


class InMemoryTransitionStore(Repository):
    """Rule transitions by (rule, number)."""

    def record(self, transition: RuleTransition) -> bool:
        """Store unless the rule has a transition with this number."""
        journal = self._unit.journal()
        key = (transition.rule_id, transition.number)
        if key in self._db.transitions:
            return False
        journal.put(self._db.transitions, key, transition)
        return True

    def latest(self, org_id: uuid.UUID) -> dict[uuid.UUID, RuleTransition]:
        """The last transition of each rule of the org."""
        self._unit.journal()
        out: dict[uuid.UUID, RuleTransition] = {}
        for t in self._db.transitions.values():
            if t.org_id == org_id and (t.rule_id not in out or t.number > out[t.rule_id].number):
                out[t.rule_id] = t
        return out

    def page(self, org_id: uuid.UUID, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None,
             rule_id: uuid.UUID | None = None) -> builtins.list[RuleTransition]:
        """The org's transitions, newest first."""
        self._unit.journal()
        rows = sorted((t for t in self._db.transitions.values() if t.org_id == org_id
                       and (rule_id is None or t.rule_id == rule_id)
                       and (before is None or (t.at, t.transition_id) < before)),
                      key=lambda t: (t.at, t.transition_id), reverse=True)
        return rows[:limit]
