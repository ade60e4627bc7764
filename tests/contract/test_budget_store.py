"""BudgetStore and AlertStore on every backend: budgets read back exactly and stay in their
org; an alert's identity is stored once, also when several writers fire it at the same time;
alert pages are newest first with a cursor."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import attrs
import pytest

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
from analytics_core.ports import UnitOfWorkFactory
from tests.contract.factories import BASE, new_id


def _budget(org_id: uuid.UUID | None = None, **overrides: object) -> Budget:
    fields: dict[str, object] = {
        "budget_id": new_id(), "org_id": org_id or new_id(), "name": "Monthly spend — «EU»",
        "scope": BudgetScope(ScopeType.TAG, "search", "team"), "measure": Measure.CATALOG_COST,
        "period": BudgetPeriod.MONTH, "tz": "Asia/Kathmandu", "amount": 5_000_000_000,
        "thresholds": (50, 80, 100, 150), "forecast": True, "created_at": BASE,
        "created_by": "key:abc", "updated_at": BASE,
    }
    fields.update(overrides)
    return Budget(**fields)  # type: ignore[arg-type]


def _alert(budget: Budget, **overrides: object) -> Alert:
    fields: dict[str, object] = {
        "alert_id": new_id(), "org_id": budget.org_id, "budget_id": budget.budget_id,
        "budget_name": budget.name, "measure": budget.measure,
        "kind": AlertKind.THRESHOLD, "threshold": 80, "period_start": BASE.replace(
            minute=15, second=0, microsecond=0), "period_end": BASE + timedelta(days=30),
        "value": 4_000_000_001, "amount": budget.amount, "forecast_value": None,
        "fired_at": BASE + timedelta(minutes=1), "late": False,
        "complete_through": BASE + timedelta(seconds=30),
    }
    fields.update(overrides)
    return Alert(**fields)  # type: ignore[arg-type]


def _add(uow_factory: UnitOfWorkFactory, *budgets: Budget) -> None:
    with uow_factory() as uow:
        for b in budgets:
            uow.budgets.add(b)
        uow.commit()


def test_budgets_read_back_exactly_and_only_in_their_org(uow_factory: UnitOfWorkFactory
                                                         ) -> None:
    """Every field survives; another org's id finds nothing; for_org is oldest first."""
    org = new_id()
    first = _budget(org)
    second = _budget(org, scope=BudgetScope(ScopeType.ORG), measure=Measure.TOKENS,
                     period=BudgetPeriod.WEEK, tz="UTC", forecast=False, thresholds=(100,),
                     created_at=BASE + timedelta(seconds=1))
    third = _budget(org, scope=BudgetScope(ScopeType.MODEL, str(new_id())),
                    created_at=BASE + timedelta(seconds=2))
    _add(uow_factory, third, first, second)
    with uow_factory() as uow:
        assert uow.budgets.get(org, first.budget_id) == first
        assert uow.budgets.get(new_id(), first.budget_id) is None
        assert uow.budgets.for_org(org) == [first, second, third]
        assert [b for b in uow.budgets.all() if b.org_id == org] == sorted(
            [first, second, third], key=lambda b: b.budget_id)


def test_adding_an_existing_id_is_a_conflict(uow_factory: UnitOfWorkFactory) -> None:
    """Budget ids are unique."""
    budget = _budget()
    _add(uow_factory, budget)
    with uow_factory() as uow, pytest.raises(Conflict):
        uow.budgets.add(budget)


def test_save_replaces_and_delete_removes_in_the_org_only(uow_factory: UnitOfWorkFactory
                                                          ) -> None:
    """save changes a budget; delete from another org does nothing; delete reports."""
    budget = _budget()
    _add(uow_factory, budget)
    changed = attrs.evolve(budget, name="renamed", amount=7, thresholds=(10,), forecast=False,
                           updated_at=BASE + timedelta(hours=1))
    with uow_factory() as uow:
        uow.budgets.save(changed)
        assert not uow.budgets.delete(new_id(), budget.budget_id)
        uow.commit()
    with uow_factory() as uow:
        assert uow.budgets.get(budget.org_id, budget.budget_id) == changed
        assert uow.budgets.delete(budget.org_id, budget.budget_id)
        assert not uow.budgets.delete(budget.org_id, budget.budget_id)
        uow.commit()
    with uow_factory() as uow:
        assert uow.budgets.get(budget.org_id, budget.budget_id) is None


def test_uncommitted_budgets_are_rolled_back(uow_factory: UnitOfWorkFactory) -> None:
    """Leaving the unit without commit stores nothing."""
    budget = _budget()
    with uow_factory() as uow:
        uow.budgets.add(budget)
    with uow_factory() as uow:
        assert uow.budgets.get(budget.org_id, budget.budget_id) is None


def test_an_alert_identity_fires_once(uow_factory: UnitOfWorkFactory) -> None:
    """A second alert of the same (budget, period, kind, threshold) is not stored; another
    threshold, kind or period is."""
    budget = _budget()
    first = _alert(budget)
    with uow_factory() as uow:
        assert uow.alerts.fire(first)
        uow.commit()
    with uow_factory() as uow:
        assert not uow.alerts.fire(_alert(budget, value=1))
        assert uow.alerts.fire(_alert(budget, threshold=100))
        assert uow.alerts.fire(_alert(budget, kind=AlertKind.FORECAST, threshold=100,
                                      forecast_value=6_000_000_000))
        assert uow.alerts.fire(_alert(budget, period_start=first.period_end,
                                      late=True))
        uow.commit()
    with uow_factory() as uow:
        fired = uow.alerts.fired(budget.org_id, first.period_start)
        assert first in fired
        assert len(fired) == 4
        assert uow.alerts.fired(budget.org_id, first.period_end) == [
            a for a in fired if a.period_start == first.period_end]
        assert uow.alerts.fired(new_id(), first.period_start) == []
        assert uow.alerts.fired_keys(budget.org_id, first.period_start) == {
            a.identity for a in fired}


def test_concurrent_writers_fire_an_identity_once(uow_factory: UnitOfWorkFactory) -> None:
    """Six threads fire the same identity at once, each in its own unit: one stores it."""
    budget = _budget()
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def fire() -> None:
        barrier.wait()
        with uow_factory() as uow:
            stored = uow.alerts.fire(_alert(budget))
            uow.commit()
        results.append(stored)

    threads = [threading.Thread(target=fire) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]
    with uow_factory() as uow:
        assert len(uow.alerts.fired(budget.org_id, BASE - timedelta(days=1))) == 1


def test_a_rolled_back_alert_can_fire_again(uow_factory: UnitOfWorkFactory) -> None:
    """Firing is part of the unit: without commit the identity stays free."""
    budget = _budget()
    with uow_factory() as uow:
        assert uow.alerts.fire(_alert(budget))
    with uow_factory() as uow:
        assert uow.alerts.fire(_alert(budget))
        uow.commit()


def test_alert_pages_are_newest_first_per_org(uow_factory: UnitOfWorkFactory) -> None:
    """page: the org's alerts by (fired_at, id) descending, before a cursor, by budget."""
    org = new_id()
    one, two = _budget(org), _budget(org)
    alerts = [_alert(one, threshold=t, fired_at=BASE + timedelta(minutes=t))
              for t in (50, 80, 100)]
    alerts.append(_alert(two, fired_at=BASE + timedelta(minutes=90)))
    other = _alert(_budget(), fired_at=BASE + timedelta(minutes=95))
    with uow_factory() as uow:
        for a in [*alerts, other]:
            uow.alerts.fire(a)
        uow.commit()
    newest = sorted(alerts, key=lambda a: (a.fired_at, a.alert_id), reverse=True)
    with uow_factory() as uow:
        assert uow.alerts.page(org, limit=10) == newest
        assert uow.alerts.page(org, limit=2) == newest[:2]
        cursor = (newest[1].fired_at, newest[1].alert_id)
        assert uow.alerts.page(org, limit=10, before=cursor) == newest[2:]
        assert uow.alerts.page(org, limit=10, budget_id=two.budget_id) == [alerts[3]]
