"""Repricing is a restatement (SPEC §12): after versions are added for the past, the rollups
equal a Decimal recomputation over the raw events with the final catalog, and the recorded
deltas equal new minus old totals, exactly, however the work is cut into batches."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
from core_strategies import usage_events
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from analytics_adapters.memory import (
    InMemoryStorage,
    ManualClock,
    SequentialIds,
    unit_of_work_factory,
)
from analytics_core.access import ADMIN, Actor
from analytics_core.attribution import AttributionSettings
from analytics_core.errors import ValidationFailed
from analytics_core.events import UsageEvent, to_canonical
from analytics_core.money import Cents
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.prices import Catalog, PriceCategory, decimal_cost
from analytics_core.usecases import restatements
from analytics_core.usecases.ingest import CatalogCache, RawMessage, ingest_batch
from analytics_core.usecases.prices import PriceDraft, add_versions

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=3)
ORGS = [uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)]
MODELS = [uuid.UUID(int=10), uuid.UUID(int=11)]
ADMIN_ACTOR = Actor("admin:test", None, frozenset({ADMIN}))

events_strategy = st.lists(
    usage_events(orgs=ORGS, models=MODELS, start=T0, end=NOW - timedelta(minutes=1)),
    max_size=40, unique_by=lambda e: e.key,
)


@st.composite
def drafts(draw: st.DrawFn) -> PriceDraft:
    """A version for the past (T0 .. NOW), global or for one org."""
    prices = {PriceCategory.INPUT: draw(st.integers(0, 10**7)),
              PriceCategory.OUTPUT: draw(st.integers(0, 10**7))}
    if draw(st.booleans()):
        prices[PriceCategory.CACHE_READ] = draw(st.integers(0, 10**6))
    return PriceDraft(
        draw(st.sampled_from(MODELS)), draw(st.sampled_from([None, *ORGS])),
        T0 + timedelta(minutes=draw(st.integers(0, 3 * 24 * 60 - 1))), prices, restate=True,
    )


def _totals(uow_factory: UnitOfWorkFactory) -> dict[uuid.UUID, int]:
    with uow_factory() as uow:
        return {org: sum(sum(r.stats.catalog_costs) for r in uow.rollups.query(
            org, T0 - timedelta(days=1), NOW + timedelta(days=1))) for org in ORGS}


@settings(max_examples=60, deadline=None)
@given(events_strategy, st.lists(drafts(), max_size=3), st.lists(drafts(), min_size=1,
                                                                  max_size=3),
       st.sampled_from([1, 3, 1000]))
def test_restated_rollups_equal_a_recomputation_and_deltas_equal_new_minus_old(
    events: list[UsageEvent], first: list[PriceDraft], later: list[PriceDraft], batch: int,
) -> None:
    """Events priced at ingest by `first`, then `later` versions added for the past: after the
    restatements every rollup's catalog cost is the Decimal sum over its events with the final
    catalog, and each org's deltas add up to its new total minus its old one."""
    storage = InMemoryStorage()
    uow_factory = unit_of_work_factory(storage)
    clock, ids, pricing = ManualClock(NOW), SequentialIds(), CatalogCache()
    try:
        if first:
            add_versions(ADMIN_ACTOR, first, uow_factory=uow_factory, clock=clock, ids=ids)
    except ValidationFailed:
        assume(False)
    clock.advance(timedelta(seconds=1))
    ingest_batch([RawMessage(to_canonical(e)) for e in events], source="test",
                 uow_factory=uow_factory, clock=clock, ids=ids, pricing=pricing)
    before = _totals(uow_factory)
    with uow_factory() as uow:
        revisions = uow.freshness.history_revisions()
    try:
        added = add_versions(ADMIN_ACTOR, later, uow_factory=uow_factory, clock=clock, ids=ids)
    except ValidationFailed:
        assume(False)
    assert len(added.restatements) == len(later)
    clock.advance(restatements.START_GRACE)
    restatements.run_restatements(uow_factory=uow_factory, clock=clock, batch=batch)
    with uow_factory() as uow:
        catalog = Catalog.of(uow.prices.all())
        assert uow.restatements.open() == []
        revised = uow.freshness.history_revisions()
    after = _totals(uow_factory)
    # a changed org's history is revised, so budget values kept between passes are re-read
    assert {o for o in ORGS if after[o] != before[o]} <= {
        o for o in ORGS if revised.get(o, 0) > revisions.get(o, 0)}
    for org in ORGS:
        expected = sum((decimal_cost(e, v) for e in events if e.org_id == org
                        if (v := catalog.version_for(e.org_id, e.model_id, e.occurred_at))),
                       Decimal(0))
        assert Cents(after[org]).exact == expected
        views = restatements.org_restatements(org, uow_factory=uow_factory)
        recorded = sum(d.delta_units for view in views for d in view.deltas)
        assert recorded == after[org] - before[org]


@settings(max_examples=25, deadline=None)
@given(events_strategy, st.lists(drafts(), min_size=1, max_size=3))
def test_a_restatement_cut_short_and_resumed_ends_as_one_run_uninterrupted(
    events: list[UsageEvent], later: list[PriceDraft],
) -> None:
    """Running one batch at a time, with a fresh start between batches, gives exactly the
    rollups and deltas of one uninterrupted run."""
    results = []
    for steps in (None, 1):
        storage = InMemoryStorage()
        uow_factory = unit_of_work_factory(storage)
        clock, ids = ManualClock(NOW), SequentialIds()
        ingest_batch([RawMessage(to_canonical(e)) for e in events], source="test",
                     uow_factory=uow_factory, clock=clock, ids=ids, pricing=CatalogCache())
        try:
            add_versions(ADMIN_ACTOR, later, uow_factory=uow_factory, clock=clock, ids=ids)
        except ValidationFailed:
            assume(False)
        clock.advance(restatements.START_GRACE)
        while restatements.run_restatements(uow_factory=uow_factory, clock=clock, batch=2,
                                            max_batches=steps):
            if steps is None:
                break
        deltas = sorted(
            (d.org_id, d.model_id, d.day, d.events, d.before_units, d.after_units)
            for org in ORGS
            for view in restatements.org_restatements(org, uow_factory=uow_factory)
            for d in view.deltas)
        results.append((_totals(uow_factory), deltas))
    assert results[0] == results[1]


ATTRIBUTION = AttributionSettings(("team",))
TEAMS = ["search", "ads", "growth"]


@st.composite
def team_events(draw: st.DrawFn) -> UsageEvent:
    """An event of the first org with a team tag, or none."""
    event = draw(usage_events(orgs=ORGS[:1], models=MODELS, start=T0,
                              end=NOW - timedelta(minutes=1), rich=False))
    team = draw(st.none() | st.sampled_from(TEAMS))
    return attrs.evolve(event, metadata={} if team is None else {"team": team})


@settings(max_examples=40, deadline=None)
@given(st.lists(team_events(), max_size=30, unique_by=lambda e: e.key),
       st.lists(drafts(), max_size=2), st.lists(drafts(), min_size=1, max_size=3))
def test_catalog_cost_per_tag_equals_a_recomputation_after_repricing(
    events: list[UsageEvent], first: list[PriceDraft], later: list[PriceDraft],
) -> None:
    """Grouped by an attribution tag, each value's catalog cost after the restatements is the
    Decimal sum over its events with the final catalog (groupings, versions added after the
    events, exactly)."""
    uow_factory = unit_of_work_factory(InMemoryStorage())
    clock, ids = ManualClock(NOW), SequentialIds()
    try:
        if first:
            add_versions(ADMIN_ACTOR, first, uow_factory=uow_factory, clock=clock, ids=ids)
        clock.advance(timedelta(seconds=1))
        ingest_batch([RawMessage(to_canonical(e)) for e in events], source="test",
                     uow_factory=uow_factory, clock=clock, ids=ids, pricing=CatalogCache(),
                     attribution=ATTRIBUTION)
        add_versions(ADMIN_ACTOR, later, uow_factory=uow_factory, clock=clock, ids=ids)
    except ValidationFailed:
        assume(False)
    clock.advance(restatements.START_GRACE)
    restatements.run_restatements(uow_factory=uow_factory, clock=clock, batch=4,
                                  attribution=ATTRIBUTION)
    with uow_factory() as uow:
        catalog = Catalog.of(uow.prices.all())
        cells = uow.attribution.aggregate(ORGS[0], [T0, NOW + timedelta(days=1)],
                                          dimension="tag:team", latency=False)
    got = {value: Cents(sum(stats.catalog_costs)).exact for _, value, stats in cells}
    expected: dict[str, Decimal] = {}
    for e in events:
        team = e.metadata.get("team", "")
        version = catalog.version_for(e.org_id, e.model_id, e.occurred_at)
        expected[team] = expected.get(team, Decimal(0)) + (
            decimal_cost(e, version) if version else Decimal(0))
    assert got == {team: cost.quantize(Decimal("0.0001")) for team, cost in expected.items()}
