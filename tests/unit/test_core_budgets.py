"""Budgets (SPEC §13): zone-local periods, exact thresholds, the forecast, request validation,
and evaluation that fires each threshold once per budget and period, deferred while data is
not fresh, late alerts marked late, and the fired set independent of arrival order."""

from __future__ import annotations

import json
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_adapters.memory.clock import ManualClock
from analytics_adapters.memory.ids import SequentialIds
from analytics_adapters.memory.state import InMemoryStorage
from analytics_adapters.memory.uow import unit_of_work_factory
from analytics_core.access import ORG_ADMIN, Actor
from analytics_core.attribution import AttributionSettings
from analytics_core.budgets import (
    DEFAULT_THRESHOLDS,
    AlertKind,
    BudgetPeriod,
    BudgetScope,
    Measure,
    ScopeType,
    crossed,
    percent,
    period_bounds,
    periods_to_check,
    projection,
    read_budget,
    read_update,
)
from analytics_core.errors import NotFound, ValidationFailed
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.timegrid import zone
from analytics_core.usecases import budgets as uc
from analytics_core.usecases.ingest import RawMessage, ingest_batch

ATTRIBUTION = AttributionSettings(("team",))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- periods ------------------------------------------------------------------------------


def test_a_month_in_kathmandu_starts_at_its_local_midnight() -> None:
    """+05:45: December starts at 18:15 UTC on 30 November, not at 00:00 UTC."""
    start, end = period_bounds(utc(2026, 12, 1, 0, 0), BudgetPeriod.MONTH, zone("Asia/Kathmandu"))
    assert (start, end) == (utc(2026, 11, 30, 18, 15), utc(2026, 12, 31, 18, 15))
    before = period_bounds(utc(2026, 11, 30, 18, 14), BudgetPeriod.MONTH,
                           zone("Asia/Kathmandu"))
    assert before[1] == start


def test_periods_follow_dst_in_new_york() -> None:
    """The November month spans the fall-back change (EDT to EST); the DST day is 25 h."""
    tz = zone("America/New_York")
    start, end = period_bounds(utc(2026, 11, 15, 12), BudgetPeriod.MONTH, tz)
    assert (start, end) == (utc(2026, 11, 1, 4), utc(2026, 12, 1, 5))
    day = period_bounds(utc(2026, 11, 1, 12), BudgetPeriod.DAY, tz)
    assert day == (utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))


def test_a_week_is_monday_to_monday_local() -> None:
    """ISO weeks: 2026-12-03 (a Thursday) is in the week of Monday 2026-11-30, in Berlin."""
    start, end = period_bounds(utc(2026, 12, 3, 9), BudgetPeriod.WEEK, zone("Europe/Berlin"))
    assert (start, end) == (utc(2026, 11, 29, 23), utc(2026, 12, 6, 23))


def test_periods_to_check_reach_back_over_the_lookback() -> None:
    """The current day and the days that ended within 2 days, oldest first."""
    now = utc(2026, 12, 3, 10)
    got = periods_to_check(now, BudgetPeriod.DAY, UTC, timedelta(days=2))
    assert got == ((utc(2026, 12, 1), utc(2026, 12, 2)), (utc(2026, 12, 2), utc(2026, 12, 3)),
                   (utc(2026, 12, 3), utc(2026, 12, 4)))
    assert periods_to_check(now, BudgetPeriod.MONTH, UTC, timedelta(days=2)) == (
        (utc(2026, 12, 1), utc(2027, 1, 1)),)


# -- values -------------------------------------------------------------------------------


def test_thresholds_are_exact_integers() -> None:
    """80 % of 3 units is reached at 2.4, so by 3 and not by 2; 100 % exactly at the amount."""
    assert crossed(2, 3, (50, 80, 100)) == [50]
    assert crossed(3, 3, (50, 80, 100)) == [50, 80, 100]
    assert crossed(10**15 - 1, 10**15, (100,)) == []
    assert percent(2, 3) == Decimal("66.7")


def test_the_projection_adds_the_trailing_run_rate_for_the_time_left() -> None:
    """7 days of 700 units is 100 a day: 3.5 days left add 350."""
    now = utc(2026, 12, 3, 12)
    assert projection(40, 700, now, now + timedelta(days=3, hours=12)) == 390
    assert projection(40, 700, now, now - timedelta(hours=1)) == 40


# -- requests -----------------------------------------------------------------------------


def test_a_minimal_budget_takes_the_documented_defaults() -> None:
    """Whole org, catalog cost, month, UTC, 50/80/100 %, forecast on; cents to units."""
    draft = read_budget({"name": "Spend", "amount": "1234.5"}, ())
    assert draft["scope"] == BudgetScope(ScopeType.ORG)
    assert (draft["measure"], draft["period"], draft["tz"]) == (Measure.CATALOG_COST,
                                                                BudgetPeriod.MONTH, "UTC")
    assert draft["amount"] == 12_345_000
    assert draft["thresholds"] == DEFAULT_THRESHOLDS
    assert draft["forecast"]


def test_every_bad_field_is_named_with_the_valid_choices() -> None:
    """One error per field; enums list their values; tag keys must be attribution keys."""
    with pytest.raises(ValidationFailed) as info:
        read_budget({"name": "", "amount": -1, "measure": "dollars", "period": "year",
                     "tz": "Mars/Olympus", "thresholds": [0, 50, 50], "forecast": "yes",
                     "scope": {"type": "tag", "key": "project", "value": "x"}, "owner": 1},
                    ("team",))
    fields = {e.field: e.reason for e in info.value.errors}
    assert set(fields) == {"owner", "name", "amount", "measure", "period", "tz", "thresholds",
                           "forecast", "scope.key"}
    assert "catalogCost, reportedCost, tokens, invocations" in fields["measure"]
    assert "day, week, month" in fields["period"]
    assert "team" in fields["scope.key"]


@pytest.mark.parametrize(("body", "field"), [
    ({"measure": "tokens", "amount": "10.5"}, "amount"),
    ({"measure": "catalogCost", "amount": "0.00001"}, "amount"),
    ({"amount": 5, "scope": {"type": "model", "modelId": "nope"}}, "scope.modelId"),
    ({"amount": 5, "scope": {"type": "client", "clientId": "a\x00b"}}, "scope.clientId"),
    ({"amount": 5, "scope": {"type": "org", "clientId": "x"}}, "scope.clientId"),
    ({"amount": 5, "scope": {"type": "galaxy"}}, "scope.type"),
    ({"amount": True}, "amount"),
    ({}, "amount"),
    ({"amount": 5, "thresholds": [1001]}, "thresholds"),
])
def test_invalid_values_are_refused(body: dict[str, object], field: str) -> None:
    """Amount units per measure, scope ids, control characters, unknown scope fields."""
    with pytest.raises(ValidationFailed) as info:
        read_budget({"name": "b", **body}, ())
    assert field in {e.field for e in info.value.errors}


def test_updates_cannot_change_what_alerts_are_about() -> None:
    """scope, measure, period and tz are fixed; the rest change."""
    budget = uc.Budget(uuid.uuid4(), uuid.uuid4(), created_at=utc(2026, 1, 1), created_by="me",
                       updated_at=utc(2026, 1, 1),
                       **read_budget({"name": "b", "amount": 10}, ()))
    with pytest.raises(ValidationFailed) as info:
        read_update({"period": "day", "tz": "UTC", "amount": 3}, budget)
    assert {e.field for e in info.value.errors} == {"period", "tz"}
    changed = read_update({"amount": 3, "thresholds": [90], "forecast": False, "name": "c"},
                          budget)
    assert (changed.amount, changed.thresholds, changed.forecast, changed.name) == (
        30_000, (90,), False, "c")


# -- evaluation ---------------------------------------------------------------------------


@attrs.define
class Progress:
    """Pipeline progress a test moves by hand."""

    lag: timedelta = timedelta(0)

    def complete_through(self, now: datetime) -> datetime:
        return now - self.lag


@attrs.define
class World:
    """A memory store, a clock, ids and one org's budgets."""

    clock: ManualClock
    uow_factory: UnitOfWorkFactory
    progress: Progress = attrs.Factory(Progress)
    ids: SequentialIds = attrs.Factory(SequentialIds)
    org: uuid.UUID = attrs.Factory(uuid.uuid4)
    model: uuid.UUID = attrs.Factory(uuid.uuid4)
    actor: Actor = attrs.Factory(lambda: Actor("key:admin", None, frozenset({ORG_ADMIN})))
    cache: uc.ValueCache | None = attrs.Factory(uc.ValueCache)
    """Every pass keeps settled values, as the alerts worker's do (None: reads everything)."""

    @classmethod
    def at(cls, now: datetime, *, cache: bool = True) -> World:
        return cls(ManualClock(now), unit_of_work_factory(InMemoryStorage()),
                   cache=uc.ValueCache() if cache else None)

    def budget(self, **body: object) -> uc.Budget:
        return uc.create_budget(self.actor, self.org, {"name": "b", **body},
                                uow_factory=self.uow_factory, clock=self.clock, ids=self.ids,
                                attribution=ATTRIBUTION)

    def ingest(self, *events: tuple[datetime, int], team: str = "search",
               client: str = "app", actor: uuid.UUID | None = None) -> None:
        """Events (occurred at, cost in cents) of the org's model."""
        messages = [RawMessage(json.dumps({
            "eventId": str(uuid.uuid4()), "orgId": str(self.org), "modelId": str(self.model),
            "occurredAt": at.isoformat(), "status": "success", "latencyMs": 10,
            "inputTokens": 100, "outputTokens": 10, "costEstimateCents": cents,
            "clientId": client, "metadata": {"team": team},
            **({"actorId": str(actor)} if actor else {}),
        }).encode()) for at, cents in events]
        result = ingest_batch(messages, source="http", uow_factory=self.uow_factory,
                              clock=self.clock, ids=self.ids, attribution=ATTRIBUTION)
        assert result.accepted == len(events)

    def evaluate(self) -> uc.Evaluation:
        return uc.evaluate_budgets(uow_factory=self.uow_factory, clock=self.clock,
                                   progress=self.progress, ids=self.ids, cache=self.cache)

    def alerts(self) -> list[uc.Alert]:
        return list(uc.list_alerts(self.org, uow_factory=self.uow_factory).alerts)


def test_each_threshold_fires_once_per_period() -> None:
    """50 % then 80 % and 100 %; passes after that fire nothing; status follows."""
    now = utc(2026, 12, 3, 12)
    w = World.at(now)
    budget = w.budget(measure="reportedCost", amount=100, period="month", forecast=False)
    w.ingest((now - timedelta(hours=1), 60))
    assert [(a.kind, a.threshold) for a in w.evaluate().fired] == [(AlertKind.THRESHOLD, 50)]
    assert w.evaluate().fired == ()
    w.ingest((now - timedelta(minutes=30), 45))
    assert [a.threshold for a in w.evaluate().fired] == [80, 100]
    assert w.evaluate().fired == ()
    assert sorted(a.threshold for a in w.alerts()) == [50, 80, 100]
    view = uc.get_budget(w.org, budget.budget_id, uow_factory=w.uow_factory, clock=w.clock,
                         progress=w.progress)
    assert view.state is uc.BudgetState.EXCEEDED
    assert view.value == 1_050_000
    assert {a.threshold for a in view.fired} == {50, 80, 100}


def test_nothing_fires_while_data_is_not_fresh_and_the_crossing_fires_once_after() -> None:
    """A delayed pipeline defers the pass (and the status says why); caught up, it fires."""
    now = utc(2026, 12, 3, 12)
    w = World.at(now)
    budget = w.budget(measure="reportedCost", amount=100, forecast=False)
    w.ingest((now - timedelta(hours=1), 120))
    w.progress.lag = timedelta(minutes=20)
    result = w.evaluate()
    assert result.fired == ()
    assert result.deferred is not None
    assert result.deferred.status.value == "delayed"
    view = uc.get_budget(w.org, budget.budget_id, uow_factory=w.uow_factory, clock=w.clock,
                         progress=w.progress)
    assert view.state is uc.BudgetState.DEFERRED
    assert view.reason is not None
    assert "delayed" in view.reason
    w.progress.lag = timedelta(seconds=30)
    assert [a.threshold for a in w.evaluate().fired] == [50, 80, 100]
    assert w.evaluate().fired == ()


def test_a_late_event_fires_the_closed_period_once_marked_late() -> None:
    """Yesterday's budget crossed by an event that arrives today."""
    w = World.at(utc(2026, 12, 2, 23, 40))
    w.budget(measure="reportedCost", amount=100, period="day", thresholds=[100],
             forecast=False)
    w.clock.set(utc(2026, 12, 3, 0, 20))
    w.ingest((utc(2026, 12, 2, 23, 50), 99))
    assert w.evaluate().fired == ()
    w.ingest((utc(2026, 12, 2, 23, 55), 1))
    (alert,) = w.evaluate().fired
    assert alert.late
    assert (alert.period_start, alert.period_end) == (utc(2026, 12, 2), utc(2026, 12, 3))
    assert w.evaluate().fired == ()


def test_a_new_budget_does_not_fire_for_periods_that_ended_before_it() -> None:
    """Created today, a day budget ignores yesterday's spend (the lookback is for late data
    of periods it watched)."""
    now = utc(2026, 12, 3, 10)
    w = World.at(now)
    w.ingest((utc(2026, 12, 2, 12), 500), (now - timedelta(hours=1), 60))
    w.budget(measure="reportedCost", amount=100, period="day", thresholds=[50, 100],
             forecast=False)
    (alert,) = w.evaluate().fired
    assert (alert.period_start, alert.threshold) == (utc(2026, 12, 3), 50)


def test_a_kathmandu_month_resets_at_its_midnight() -> None:
    """Spend before 18:15 UTC on 30 November is November's in Kathmandu, not December's."""
    w = World.at(utc(2026, 11, 30, 18))
    w.budget(measure="reportedCost", amount=100, period="month", tz="Asia/Kathmandu",
             thresholds=[50], forecast=False)
    w.clock.set(utc(2026, 11, 30, 19))
    w.ingest((utc(2026, 11, 30, 18, 10), 60))  # November, local 23:55
    w.ingest((utc(2026, 11, 30, 18, 20), 40))  # December, local 00:05
    (alert,) = w.evaluate().fired  # December's 40 % does not reach 50 %
    assert (alert.period_start, alert.period_end) == (utc(2026, 10, 31, 18, 15),
                                                      utc(2026, 11, 30, 18, 15))
    assert alert.late  # November had ended (local midnight) when it fired


@pytest.mark.parametrize(("scope", "expected"), [
    ({"type": "org"}, [50, 100]),
    ({"type": "client", "clientId": "app"}, [50]),
    ({"type": "tag", "key": "team", "value": "ads"}, [50]),
    ({"type": "tag", "key": "team", "value": "nobody"}, []),
])
def test_scopes_read_their_own_part_of_the_org(scope: dict[str, str],
                                               expected: list[int]) -> None:
    """The org sees both events; a client or tag value only its own."""
    now = utc(2026, 12, 3, 12)
    w = World.at(now)
    w.budget(scope=scope, measure="reportedCost", amount=100, thresholds=[50, 100],
             forecast=False)
    w.ingest((now - timedelta(hours=2), 50), team="search", client="batch")
    w.ingest((now - timedelta(hours=1), 50), team="ads", client="app")
    assert [a.threshold for a in w.evaluate().fired] == expected


def test_an_actor_scope_counts_that_actor_only() -> None:
    """Two actors spend 60 each: the actor's budget of 100 reaches 50 %, not 100 %."""
    now = utc(2026, 12, 3, 12)
    w = World.at(now)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    w.budget(scope={"type": "actor", "actorId": str(alice)}, measure="reportedCost",
             amount=100, thresholds=[50, 100], forecast=False)
    w.ingest((now - timedelta(hours=2), 60), actor=alice)
    w.ingest((now - timedelta(hours=1), 60), actor=bob)
    assert [a.threshold for a in w.evaluate().fired] == [50]


def test_a_model_scope_counts_that_model_only() -> None:
    """Two budgets on two models: only the one whose model spent fires."""
    now = utc(2026, 12, 3, 12)
    w = World.at(now)
    w.budget(scope={"type": "model", "modelId": str(w.model)}, measure="invocations",
             amount=2, thresholds=[100], forecast=False)
    w.budget(scope={"type": "model", "modelId": str(uuid.uuid4())}, measure="invocations",
             amount=2, thresholds=[100], forecast=False)
    w.ingest((now - timedelta(hours=2), 1), (now - timedelta(hours=1), 1))
    assert len(w.evaluate().fired) == 1


def test_the_forecast_fires_once_when_the_run_rate_reaches_the_amount() -> None:
    """100 a day for the past week: 1,000 for a 30-day month is forecast on the 3rd."""
    now = utc(2026, 11, 3, 12)
    w = World.at(now)
    w.budget(measure="reportedCost", amount=1000, thresholds=[100])
    w.ingest(*((now - timedelta(days=d, hours=1), 100) for d in range(7)))
    (alert,) = w.evaluate().fired
    assert alert.kind is AlertKind.FORECAST
    assert alert.forecast_value is not None
    assert alert.forecast_value >= 1000 * 10_000
    assert w.evaluate().fired == ()


def test_budget_management_is_scoped_to_the_org_and_audited() -> None:
    """Another org's id finds nothing; each change leaves an audit entry."""
    w = World.at(utc(2026, 12, 3, 12))
    budget = w.budget(amount=10)
    with pytest.raises(NotFound):
        uc.get_budget(uuid.uuid4(), budget.budget_id, uow_factory=w.uow_factory,
                      clock=w.clock, progress=w.progress)
    uc.update_budget(w.actor, w.org, budget.budget_id, {"amount": 20},
                     uow_factory=w.uow_factory, clock=w.clock, ids=w.ids)
    with pytest.raises(NotFound):
        uc.delete_budget(w.actor, uuid.uuid4(), budget.budget_id, uow_factory=w.uow_factory,
                         clock=w.clock, ids=w.ids)
    uc.delete_budget(w.actor, w.org, budget.budget_id, uow_factory=w.uow_factory,
                     clock=w.clock, ids=w.ids)
    with w.uow_factory() as uow:
        actions = [e.action for e in uow.audit.recent(w.org)]
    assert actions == ["budgets.delete", "budgets.update", "budgets.create"]


@settings(max_examples=40, deadline=None)
@given(costs=st.lists(st.tuples(st.integers(0, 47), st.integers(1, 60)), min_size=1,
                      max_size=12),
       order=st.randoms(use_true_random=False), evaluate_every=st.integers(1, 4))
def test_fired_thresholds_equal_those_of_the_final_totals(
        costs: list[tuple[int, int]], order: object, evaluate_every: int) -> None:
    """Events of two days arrive in any order with passes in between: the fired (day,
    threshold) pairs are exactly those the final daily totals reach."""
    w = World.at(utc(2026, 12, 1, 23))
    w.budget(measure="reportedCost", amount=100, period="day", thresholds=[25, 50, 100, 200],
             forecast=False)
    w.clock.set(utc(2026, 12, 3, 23, 59))
    events = [(utc(2026, 12, 2) + timedelta(hours=h), c) for h, c in costs]
    order.shuffle(events)  # type: ignore[attr-defined]
    for i, event in enumerate(events, 1):
        w.ingest(event)
        if i % evaluate_every == 0:
            w.evaluate()
    w.evaluate()
    totals: dict[datetime, int] = {}
    for at, c in events:
        day = at.replace(hour=0)
        totals[day] = totals.get(day, 0) + c
    expected = {(day, t) for day, total in totals.items() for t in (25, 50, 100, 200)
                if total * 100 >= 100 * t}
    assert {(a.period_start, a.threshold) for a in w.alerts()} == expected


# -- values kept between passes (ValueCache) ------------------------------------------------

_KEPT_BUDGETS = (
    {"name": "day utc", "period": "day", "forecast": True},
    {"name": "day kolkata", "period": "day", "tz": "Asia/Kolkata",
     "scope": {"type": "client", "clientId": "app"}},
    {"name": "week new york", "period": "week", "tz": "America/New_York", "forecast": True},
    {"name": "month kathmandu", "period": "month", "tz": "Asia/Kathmandu",
     "scope": {"type": "client", "clientId": "cli"}},
    {"name": "week tokens by team", "period": "week", "tz": "Asia/Kolkata", "measure": "tokens",
     "amount": 300, "scope": {"type": "tag", "key": "team", "value": "ads"}, "forecast": True},
    {"name": "day invocations", "period": "day", "tz": "America/New_York",
     "measure": "invocations", "amount": 3},
)


def _fired(w: World) -> set[tuple[object, ...]]:
    return {(a.budget_name, a.period_start, a.kind, a.threshold, a.value, a.forecast_value,
             a.late)
            for a in w.alerts()}


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.one_of(
    st.tuples(st.just("advance"), st.integers(1, 30), st.just(0)),
    st.tuples(st.just("ingest"), st.integers(0, 200), st.integers(1, 40))),
    min_size=1, max_size=25),
    clients=st.randoms(use_true_random=False))
def test_kept_values_fire_exactly_what_reading_everything_fires(
        steps: list[tuple[str, int, int]], clients: object) -> None:
    """Two stores get the same events (many of them late, into days the cached evaluator
    already settled) while the clock crosses days: evaluated after every step, one with the
    ValueCache and one reading everything, they fire the same alerts with the same values."""
    start = utc(2026, 11, 20, 5)
    kept, plain = World.at(start), World.at(start, cache=False)
    plain.org, plain.model = kept.org, kept.model
    for w in (kept, plain):
        for body in _KEPT_BUDGETS:
            w.budget(**{"measure": "reportedCost", "amount": 100,
                        "thresholds": [25, 50, 100, 200], **body})
    for op, hours, cents in steps:
        if op == "advance":
            for w in (kept, plain):
                w.clock.advance(timedelta(hours=hours, minutes=7))
        else:
            at = kept.clock.now() - timedelta(hours=hours, minutes=11)
            client = clients.choice(["app", "cli"])  # type: ignore[attr-defined]
            team = clients.choice(["ads", "search"])  # type: ignore[attr-defined]
            for w in (kept, plain):
                w.ingest((at, cents), client=client, team=team)
        kept.evaluate()
        plain.evaluate()
        assert _fired(kept) == _fired(plain)


def test_a_late_event_into_a_settled_day_is_read_again() -> None:
    """Values of days before yesterday are kept between passes; an event of such a day (a
    history revision) makes the next pass read them again and fire the crossing, once."""
    w = World.at(utc(2026, 12, 1, 12))
    w.budget(measure="reportedCost", amount=100, period="day", thresholds=[100],
             forecast=False)
    w.ingest((utc(2026, 12, 1, 10), 90))
    w.clock.set(utc(2026, 12, 4, 9))  # 1 December is settled now
    assert w.evaluate().fired == ()
    assert w.cache is not None
    misses = w.cache.misses
    assert w.evaluate().fired == ()
    assert (w.cache.misses, w.cache.hits > 0) == (misses, True)  # kept, not read again
    w.ingest((utc(2026, 12, 1, 11), 10))
    (alert,) = w.evaluate().fired
    assert (alert.period_start, alert.value, alert.late) == (utc(2026, 12, 1), 1_000_000, True)
    assert w.cache.misses == misses + 1
    assert w.evaluate().fired == ()


def test_only_events_of_past_utc_days_revise_history() -> None:
    """Events of today (UTC) leave the org's history revision alone; one of yesterday counts
    one revision per batch."""
    w = World.at(utc(2026, 12, 4, 0, 30))

    def revision() -> int:
        with w.uow_factory() as uow:
            return uow.freshness.history_revisions().get(w.org, 0)

    w.ingest((utc(2026, 12, 4, 0, 5), 1), (utc(2026, 12, 4, 0, 10), 1))
    assert revision() == 0
    w.ingest((utc(2026, 12, 3, 23, 59), 1), (utc(2026, 12, 3, 23, 58), 1),
             (utc(2026, 12, 4, 0, 20), 1))
    assert revision() == 1


def test_kept_values_survive_midnight() -> None:
    """At UTC midnight the settled boundary and the forecast window move by a day; the next
    pass still reads only what is not settled (no org read again in full)."""
    w = World.at(utc(2026, 12, 4, 9))
    w.budget(measure="reportedCost", amount=100, period="day", tz="Asia/Kolkata")
    w.budget(measure="tokens", amount=10**6, period="month", tz="America/New_York")
    w.ingest((utc(2026, 12, 1, 10), 5), (utc(2026, 12, 4, 8), 5))
    w.evaluate()
    assert w.cache is not None
    misses = w.cache.misses
    for hour in (23, 25, 49):
        w.clock.set(utc(2026, 12, 4, 0, 30) + timedelta(hours=hour))
        w.evaluate()
    assert w.cache.misses == misses


def test_an_org_left_without_budgets_is_forgotten() -> None:
    """Kept values go with the org's last budget."""
    w = World.at(utc(2026, 12, 4, 9))
    budget = w.budget(measure="reportedCost", amount=100, period="month")
    w.ingest((utc(2026, 12, 1, 10), 5))  # of a past day: the org's first history revision
    w.evaluate()
    assert w.cache is not None
    assert w.cache.get((w.org, "model"), 1) is not None
    uc.delete_budget(w.actor, w.org, budget.budget_id, uow_factory=w.uow_factory,
                     clock=w.clock, ids=w.ids)
    w.evaluate()
    assert w.cache.get((w.org, "model"), 1) is None


def test_a_clock_set_back_reads_what_is_no_longer_settled() -> None:
    """Passes on 3, 5 and 7 December keep values through 6 December; with the clock set back to
    4 December, an event of that day (today's for the ingest: no history revision) is read
    at once, as without the cache."""
    worlds = World.at(utc(2026, 12, 3, 12)), World.at(utc(2026, 12, 3, 12), cache=False)
    kept, plain = worlds
    plain.org, plain.model = kept.org, kept.model
    for w in worlds:
        w.budget(measure="reportedCost", amount=100, period="day", thresholds=[100],
                 forecast=False)
    for at in (utc(2026, 12, 3, 12), utc(2026, 12, 5, 12), utc(2026, 12, 7, 12)):
        for w in worlds:
            w.clock.set(at)
            w.evaluate()
    for w in worlds:
        w.clock.set(utc(2026, 12, 4, 12))
        w.ingest((utc(2026, 12, 4, 10), 100))
        w.evaluate()
    assert _fired(kept) == _fired(plain) != set()


def test_forgetting_orgs_while_another_pass_keeps_values_is_safe() -> None:
    """`retain` in one thread while other threads add entries never fails."""
    cache = uc.ValueCache()
    edges = (utc(2026, 12, 1), utc(2026, 12, 2))
    entry = uc._Kept(0, edges, {})
    orgs = [uuid.uuid4() for _ in range(20_000)]
    for org in orgs:
        cache.put((org, "model"), entry)
    stop = threading.Event()
    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible

    def add() -> None:
        while not stop.is_set():
            cache.put((uuid.uuid4(), "model"), entry)

    adders = [threading.Thread(target=add) for _ in range(2)]
    for t in adders:
        t.start()
    try:
        for _ in range(100):
            cache.retain(orgs)
    finally:
        stop.set()
        for t in adders:
            t.join()
        sys.setswitchinterval(switching)
