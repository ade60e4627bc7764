"""Reliability rules (SPEC §13): managing them, reading their state, and evaluating them.

Evaluation runs in the alerts worker's pass (analytics_core.usecases.budgets): per org, one read
of each rule's window and of the last transitions, then, only where a state changes, a write
that records the transition (once per rule and number, whoever evaluates) and its webhook
deliveries in the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

import attrs

from analytics_core.access import Actor
from analytics_core.budgets import ScopeType
from analytics_core.errors import NotFound
from analytics_core.ports import Clock, IdGenerator, UnitOfWork, UnitOfWorkFactory
from analytics_core.rollups import RollupStats, merge_stats
from analytics_core.rules import (
    ReliabilityRule,
    RuleMetric,
    RuleState,
    RuleTransition,
    measure,
    next_state,
    read_rule,
    read_rule_update,
)
from analytics_core.usecases.access import record_change
from analytics_core.webhooks import Delivery, WebhookEndpoint, deliveries_of, transition_payload


@attrs.frozen
class RuleView:
    """A rule with its state and its current window."""

    rule: ReliabilityRule
    state: RuleState
    last: RuleTransition | None
    window_start: datetime
    window_end: datetime
    value: int | None  # None without invocations in the window
    volume: int


def create_rule(actor: Actor, org_id: uuid.UUID, body: object, *,
                uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator
                ) -> ReliabilityRule:
    """A new rule from a request body (access checked by the driver); audited."""
    fields = read_rule(body)
    now = clock.now()
    rule = ReliabilityRule(ids.new_id(), org_id, created_at=now, created_by=actor.subject,
                           updated_at=now, **fields)
    with uow_factory() as uow:
        uow.rules.add(rule)
        record_change(uow, ids, now, actor=actor, org_id=org_id,
                      resource=f"rule:{rule.rule_id}",
                      action="rules.create", reason=f"{rule.metric.value} of {rule.scope.label()}")
        uow.commit()
    return rule


def update_rule(actor: Actor, org_id: uuid.UUID, rule_id: uuid.UUID, body: object, *,
                uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator
                ) -> ReliabilityRule:
    """Change a rule's name, thresholds, minimum volume or window; audited."""
    now = clock.now()
    with uow_factory() as uow:
        record_change(uow, ids, now, actor=actor, org_id=org_id,
                      resource=f"rule:{rule_id}",
                      action="rules.update", reason="changed " + ", ".join(sorted(body))
                      if isinstance(body, Mapping) else "")
        rule = uow.rules.get(org_id, rule_id)
        if rule is None:
            raise NotFound(f"rule {rule_id} not found")
        changed = attrs.evolve(read_rule_update(body, rule), updated_at=now)
        uow.rules.save(changed)
        uow.commit()
    return changed


def delete_rule(actor: Actor, org_id: uuid.UUID, rule_id: uuid.UUID, *,
                uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator) -> None:
    """Remove a rule (its transitions stay); audited; NotFound when unknown."""
    now = clock.now()
    with uow_factory() as uow:
        record_change(uow, ids, now, actor=actor, org_id=org_id,
                      resource=f"rule:{rule_id}",
                      action="rules.delete", reason="deleted")
        if not uow.rules.delete(org_id, rule_id):
            raise NotFound(f"rule {rule_id} not found")
        uow.commit()


def list_rules(org_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory, clock: Clock
               ) -> list[RuleView]:
    """The org's rules with their state and current window, oldest first."""
    now = clock.now()
    with uow_factory() as uow:
        rules = uow.rules.for_org(org_id)
        latest = uow.transitions.latest(org_id)
        return [_view(r, latest.get(r.rule_id), window_stats(uow, r, now), now)
                for r in rules]


def get_rule(org_id: uuid.UUID, rule_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory,
             clock: Clock) -> RuleView:
    """One rule with its state; NotFound for unknown ids and other orgs' rules."""
    now = clock.now()
    with uow_factory() as uow:
        rule = uow.rules.get(org_id, rule_id)
        if rule is None:
            raise NotFound(f"rule {rule_id} not found")
        return _view(rule, uow.transitions.latest(org_id).get(rule_id),
                     window_stats(uow, rule, now), now)


def _view(rule: ReliabilityRule, last: RuleTransition | None, stats: RollupStats,
          now: datetime) -> RuleView:
    start, end = rule.window(now)
    return RuleView(rule, state_of(last), last, start, end, measure(rule, stats),
                    stats.invocations)


def state_of(last: RuleTransition | None) -> RuleState:
    """A rule's state: the one its last transition entered (ok before any)."""
    return RuleState.OK if last is None else last.state


def window_stats(uow: UnitOfWork, rule: ReliabilityRule, now: datetime) -> RollupStats:
    """The rule's scope over its window."""
    start, end = rule.window(now)
    scope = rule.scope
    cells = uow.rollups.aggregate(
        rule.org_id, [start, end], group_by="none",
        model_ids=[uuid.UUID(scope.value)] if scope.type is ScopeType.MODEL and scope.value
        else (),
        client_ids=[scope.value] if scope.type is ScopeType.CLIENT and scope.value else (),
        latency=rule.metric is RuleMetric.P95_LATENCY)
    return merge_stats(stats for _, _, stats in cells)


def due_transitions(rules: Sequence[ReliabilityRule], uow: UnitOfWork, now: datetime,
                    ids: IdGenerator) -> list[tuple[RuleTransition, ReliabilityRule]]:
    """The transitions one org's rules make now (recording them is the store's decision:
    another evaluator may record the same number first)."""
    if not rules:
        return []
    latest = uow.transitions.latest(rules[0].org_id)
    out = []
    for rule in rules:
        last = latest.get(rule.rule_id)
        state = state_of(last)
        stats = window_stats(uow, rule, now)
        new = next_state(rule, state, stats)
        if new is state:
            continue
        value = measure(rule, stats)
        start, end = rule.window(now)
        out.append((RuleTransition(
            ids.new_id(), rule.org_id, rule.rule_id, rule.name,
            1 if last is None else last.number + 1, new, rule.metric,
            0 if value is None else value,
            rule.threshold if new is RuleState.FIRING else rule.resolve_threshold,
            stats.invocations, start, end, now), rule))
    return out


def record_transitions(due: Sequence[tuple[RuleTransition, ReliabilityRule]],
                       uow: UnitOfWork, endpoints: Sequence[WebhookEndpoint],
                       ids: IdGenerator, now: datetime) -> list[RuleTransition]:
    """Record the due transitions and a webhook delivery of each to every enabled endpoint;
    the transitions this unit recorded."""
    recorded = []
    deliveries: list[Delivery] = []
    for transition, rule in due:
        if uow.transitions.record(transition):
            recorded.append(transition)
            deliveries.extend(deliveries_of(
                transition.transition_id, transition.org_id,
                transition_payload(transition, rule), endpoints=endpoints, ids=ids, now=now))
    uow.deliveries.add(deliveries)
    return recorded
