"""RuleStore and TransitionStore on every backend: rules read back exactly and stay in their
org; a transition number is recorded once, also by concurrent writers; the latest transition
of each rule; pages newest first."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import attrs
import pytest

from analytics_core.budgets import BudgetScope, ScopeType
from analytics_core.errors import Conflict
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.rules import (
    ErrorClass,
    ReliabilityRule,
    RuleMetric,
    RuleState,
    RuleTransition,
)
from tests.contract.factories import BASE, new_id


def _rule(org: uuid.UUID | None = None, **overrides: object) -> ReliabilityRule:
    fields: dict[str, object] = {
        "rule_id": new_id(), "org_id": org or new_id(), "name": "5xx — «EU»",
        "scope": BudgetScope(ScopeType.CLIENT, "batch"), "metric": RuleMetric.ERROR_RATE,
        "error_class": ErrorClass.TIMEOUT, "window_minutes": 45, "threshold": 250,
        "resolve_threshold": 200, "min_volume": 50, "created_at": BASE, "created_by": "k",
        "updated_at": BASE}
    fields.update(overrides)
    return ReliabilityRule(**fields)  # type: ignore[arg-type]


def _transition(rule: ReliabilityRule, number: int, **overrides: object) -> RuleTransition:
    fields: dict[str, object] = {
        "transition_id": new_id(), "org_id": rule.org_id, "rule_id": rule.rule_id,
        "rule_name": rule.name, "number": number,
        "state": RuleState.FIRING if number % 2 else RuleState.OK, "metric": rule.metric,
        "value": 300, "threshold": 250, "volume": 120, "window_start": BASE,
        "window_end": BASE + timedelta(minutes=45), "at": BASE + timedelta(minutes=number)}
    fields.update(overrides)
    return RuleTransition(**fields)  # type: ignore[arg-type]


def test_rules_read_back_exactly_and_only_in_their_org(uow_factory: UnitOfWorkFactory) -> None:
    """Every field survives; save and delete act in the org only; ids are unique."""
    org = new_id()
    first = _rule(org)
    second = _rule(org, scope=BudgetScope(ScopeType.ORG), metric=RuleMetric.P95_LATENCY,
                   error_class=ErrorClass.ANY, threshold=1500, resolve_threshold=1200,
                   created_at=BASE + timedelta(seconds=1))
    with uow_factory() as uow:
        uow.rules.add(second)
        uow.rules.add(first)
        uow.commit()
    with uow_factory() as uow, pytest.raises(Conflict):
        uow.rules.add(first)
    with uow_factory() as uow:
        assert uow.rules.for_org(org) == [first, second]
        assert uow.rules.get(new_id(), first.rule_id) is None
        uow.rules.save(attrs.evolve(first, threshold=999))
        assert not uow.rules.delete(new_id(), second.rule_id)
        assert uow.rules.delete(org, second.rule_id)
        uow.commit()
    with uow_factory() as uow:
        assert uow.rules.for_org(org) == [attrs.evolve(first, threshold=999)]
        assert [r for r in uow.rules.all() if r.org_id == org] == [
            attrs.evolve(first, threshold=999)]


def test_a_transition_number_is_recorded_once(uow_factory: UnitOfWorkFactory) -> None:
    """The second record of number 1 does nothing; latest is the highest number; pages are
    newest first."""
    rule, other = _rule(), _rule()
    other = attrs.evolve(other, org_id=rule.org_id)
    with uow_factory() as uow:
        assert uow.transitions.record(_transition(rule, 1))
        assert not uow.transitions.record(_transition(rule, 1, state=RuleState.OK))
        assert uow.transitions.record(_transition(rule, 2))
        assert uow.transitions.record(_transition(other, 1, at=BASE + timedelta(seconds=90)))
        uow.commit()
    with uow_factory() as uow:
        latest = uow.transitions.latest(rule.org_id)
        page = uow.transitions.page(rule.org_id, limit=10)
        assert uow.transitions.page(rule.org_id, limit=10, rule_id=other.rule_id) == [
            latest[other.rule_id]]
        cursor = (page[0].at, page[0].transition_id)
        assert uow.transitions.page(rule.org_id, limit=10, before=cursor) == page[1:]
    assert {k: v.number for k, v in latest.items()} == {rule.rule_id: 2, other.rule_id: 1}
    assert [(t.rule_id, t.number) for t in page] == [
        (rule.rule_id, 2), (other.rule_id, 1), (rule.rule_id, 1)]
    assert page[0].state is RuleState.OK


def test_concurrent_writers_record_a_number_once(uow_factory: UnitOfWorkFactory) -> None:
    """Five threads record transition 1 of one rule at once: one stores it."""
    rule = _rule()
    results: list[bool] = []
    barrier = threading.Barrier(5)

    def record() -> None:
        barrier.wait()
        with uow_factory() as uow:
            stored = uow.transitions.record(_transition(rule, 1))
            uow.commit()
        results.append(stored)

    threads = [threading.Thread(target=record) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 4 + [True]
