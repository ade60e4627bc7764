"""Reliability rules (SPEC §13): exact error rates, p95 from the sketch, the minimum volume,
hysteresis between fire and resolve, request validation, and evaluation that records each
transition once and lists it among the alerts with a webhook delivery."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from analytics_adapters.memory.clock import ManualClock
from analytics_adapters.memory.ids import SequentialIds
from analytics_adapters.memory.state import InMemoryStorage
from analytics_adapters.memory.uow import unit_of_work_factory
from analytics_core.access import ORG_ADMIN, Actor
from analytics_core.budgets import BudgetScope, ScopeType
from analytics_core.errors import NotFound, ValidationFailed
from analytics_core.events import Status
from analytics_core.rollups import stats_of
from analytics_core.rules import (
    ErrorClass,
    ReliabilityRule,
    RuleMetric,
    RuleState,
    RuleTransition,
    measure,
    next_state,
    read_rule,
    read_rule_update,
)
from analytics_core.usecases import budgets, rules
from analytics_core.usecases.ingest import RawMessage, ingest_batch
from analytics_core.usecases.webhooks import WebhookPolicy, create_webhook
from tests.contract.factories import make_event

NOW = datetime(2026, 12, 3, 12, 7, tzinfo=UTC)


def _rule(**overrides: object) -> ReliabilityRule:
    fields: dict[str, object] = {
        "rule_id": uuid.uuid4(), "org_id": uuid.uuid4(), "name": "errors",
        "scope": BudgetScope(ScopeType.ORG), "metric": RuleMetric.ERROR_RATE,
        "error_class": ErrorClass.ANY, "window_minutes": 30, "threshold": 500,
        "resolve_threshold": 400, "min_volume": 20, "created_at": NOW, "created_by": "k",
        "updated_at": NOW}
    fields.update(overrides)
    return ReliabilityRule(**fields)  # type: ignore[arg-type]


def _stats(ok: int, errors: int = 0, timeouts: int = 0, latency: int = 100) -> object:
    events = ([make_event(status=Status.SUCCESS, latency_ms=latency)] * ok
              + [make_event(status=Status.ERROR, error_code="e")] * errors
              + [make_event(status=Status.TIMEOUT)] * timeouts)
    return stats_of(events)


def test_the_window_is_whole_buckets_with_the_current_one() -> None:
    """30 minutes at 12:07: [11:45, 12:15)."""
    assert _rule().window(NOW) == (datetime(2026, 12, 3, 11, 45, tzinfo=UTC),
                                   datetime(2026, 12, 3, 12, 15, tzinfo=UTC))


def test_error_rates_are_exact_and_classes_count_apart() -> None:
    """1 of 20 is exactly 5 %: it fires a 5.00 % rule; a timeout-only rule ignores errors."""
    stats = _stats(19, errors=1)
    assert measure(_rule(), stats) == 500  # type: ignore[arg-type]
    assert next_state(_rule(), RuleState.OK, stats) is RuleState.FIRING  # type: ignore[arg-type]
    timeouts = _rule(error_class=ErrorClass.TIMEOUT)
    assert next_state(timeouts, RuleState.OK, stats) is RuleState.OK  # type: ignore[arg-type]


def test_below_the_minimum_volume_the_state_holds() -> None:
    """1 error in 2 calls pages nobody; a firing rule whose traffic stops stays firing."""
    few = _stats(1, errors=1)
    assert next_state(_rule(), RuleState.OK, few) is RuleState.OK  # type: ignore[arg-type]
    assert next_state(_rule(), RuleState.FIRING, few) is RuleState.FIRING  # type: ignore[arg-type]


def test_hysteresis_between_fire_and_resolve() -> None:
    """At 4.5 % (between 4 % and 5 %) an ok rule stays ok and a firing one keeps firing;
    below 4 % it resolves."""
    between, low = _stats(191, errors=9), _stats(97, errors=3)
    assert next_state(_rule(), RuleState.OK, between) is RuleState.OK  # type: ignore[arg-type]
    assert next_state(_rule(), RuleState.FIRING, between) is RuleState.FIRING  # type: ignore[arg-type]
    assert next_state(_rule(), RuleState.FIRING, low) is RuleState.OK  # type: ignore[arg-type]


def test_p95_rules_read_the_sketch() -> None:
    """A window of 2-second calls fires a 1,500 ms p95 rule."""
    rule = _rule(metric=RuleMetric.P95_LATENCY, threshold=1500, resolve_threshold=1200)
    slow = _stats(30, latency=2000)
    assert abs(measure(rule, slow) - 2000) <= 20  # type: ignore[arg-type, operator]
    assert next_state(rule, RuleState.OK, slow) is RuleState.FIRING  # type: ignore[arg-type]


def test_a_rule_body_names_every_bad_field_and_fills_defaults() -> None:
    """Percent with 2 decimals; windows in 15-minute steps; resolve at most threshold."""
    fields = read_rule({"name": "e", "metric": "errorRate", "threshold": "2.5"})
    assert (fields["threshold"], fields["resolve_threshold"], fields["window_minutes"],
            fields["min_volume"], fields["error_class"]) == (250, 200, 15, 100, ErrorClass.ANY)
    with pytest.raises(ValidationFailed) as info:
        read_rule({"name": "", "metric": "errorRate", "threshold": "2.555",
                   "windowMinutes": 20, "minVolume": 0, "errorClass": "fatal",
                   "scope": {"type": "tag", "key": "k", "value": "v"}, "extra": 1})
    assert {e.field for e in info.value.errors} == {
        "extra", "name", "threshold", "windowMinutes", "minVolume", "errorClass", "scope.key",
        "scope.type"}
    with pytest.raises(ValidationFailed) as info:
        read_rule({"name": "p", "metric": "p95Latency", "threshold": 100,
                   "resolveThreshold": 200, "errorClass": "any"})
    assert {e.field for e in info.value.errors} == {"resolveThreshold", "errorClass"}


def test_updates_keep_the_metric() -> None:
    """threshold moves the default resolve threshold; metric cannot change."""
    changed = read_rule_update({"threshold": 10}, _rule())
    assert (changed.threshold, changed.resolve_threshold) == (1000, 800)
    with pytest.raises(ValidationFailed):
        read_rule_update({"metric": "p95Latency"}, _rule())


@attrs.define
class Fresh:
    """A pipeline that is never behind."""

    def complete_through(self, now: datetime) -> datetime:
        return now


def _ingest(uow_factory: object, clock: ManualClock, org: uuid.UUID, ok: int,
            errors: int) -> None:
    model = uuid.uuid4()
    messages = [RawMessage(json.dumps({
        "eventId": str(uuid.uuid4()), "orgId": str(org), "modelId": str(model),
        "occurredAt": (clock.now() - timedelta(minutes=1)).isoformat(),
        "status": "success" if i < ok else "error", "latencyMs": 50, "inputTokens": 1,
        "outputTokens": 1, "costEstimateCents": 0,
        **({} if i < ok else {"errorCode": "upstream_5xx"})}).encode())
        for i in range(ok + errors)]
    ingest_batch(messages, source="test", uow_factory=uow_factory,  # type: ignore[arg-type]
                 clock=clock, ids=SequentialIds(10_000))


def test_a_rule_fires_once_resolves_once_and_both_are_alerts_with_webhooks() -> None:
    """A spike fires (transition 1, a delivery to the org's endpoint); later passes record
    nothing new; the spike's window passing resolves it (transition 2)."""
    uow_factory = unit_of_work_factory(InMemoryStorage())
    clock, ids, org = ManualClock(NOW), SequentialIds(), uuid.uuid4()
    actor = Actor("key:admin", org, frozenset({ORG_ADMIN}))
    rule = rules.create_rule(actor, org, {"name": "5xx", "metric": "errorRate",
                                          "threshold": 5, "minVolume": 20},
                             uow_factory=uow_factory, clock=clock, ids=ids)
    endpoint, _ = create_webhook(actor, org, {"url": "http://127.0.0.1:9/"},
                                 uow_factory=uow_factory, clock=clock, ids=ids,
                                 sender=None,  # type: ignore[arg-type]
                                 policy=WebhookPolicy(allow_private=True))
    _ingest(uow_factory, clock, org, ok=80, errors=20)

    def evaluate() -> tuple[RuleTransition, ...]:
        return budgets.evaluate_budgets(uow_factory=uow_factory, clock=clock,
                                        progress=Fresh(), ids=ids).transitions

    (fired,) = evaluate()
    assert (fired.number, fired.state, fired.value, fired.volume) == (
        1, RuleState.FIRING, 2000, 100)
    assert evaluate() == ()
    view = rules.get_rule(org, rule.rule_id, uow_factory=uow_factory, clock=clock)
    assert view.state is RuleState.FIRING
    clock.advance(timedelta(minutes=20))
    _ingest(uow_factory, clock, org, ok=100, errors=0)
    (resolved,) = evaluate()
    assert (resolved.number, resolved.state) == (2, RuleState.OK)
    page = budgets.list_alerts(org, uow_factory=uow_factory)
    assert [a.number for a in page.alerts] == [2, 1]  # type: ignore[union-attr]
    with uow_factory() as uow:
        deliveries = uow.deliveries.page(org, endpoint.endpoint_id, limit=10)
    assert sorted(json.loads(d.payload)["data"]["state"] for d in deliveries) == [
        "firing", "resolved"]
    assert {d.event_type for d in deliveries} == {"reliability.alert"}
    rules.delete_rule(actor, org, rule.rule_id, uow_factory=uow_factory, clock=clock, ids=ids)
    with pytest.raises(NotFound):
        rules.get_rule(org, rule.rule_id, uow_factory=uow_factory, clock=clock)
    assert len(budgets.list_alerts(org, uow_factory=uow_factory).alerts) == 2
