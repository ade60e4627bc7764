"""The price catalog (SPEC §12): exact catalog cost, resolution by instant, price parsing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from core_strategies import usage_events
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from analytics_core.events import UsageEvent
from analytics_core.money import Cents
from analytics_core.prices import (
    CATEGORIES,
    Catalog,
    PriceCategory,
    PriceVersion,
    category_costs,
    category_tokens,
    decimal_cost,
    price_micros,
    price_text,
)
from analytics_core.rollups import build_rollups, merge_stats

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ORGS = [uuid.UUID(int=1), uuid.UUID(int=2)]
MODELS = [uuid.UUID(int=10), uuid.UUID(int=11)]
prices_micros = st.integers(0, 10**6 * 10**6) | st.sampled_from([1, 150_000, 3, 999_999])


@st.composite
def versions(draw: st.DrawFn) -> PriceVersion:
    """A version of a global or an org line, with some categories left out."""
    chosen = draw(st.lists(st.sampled_from(CATEGORIES[1:4] + CATEGORIES[5:]), unique=True))
    prices = {PriceCategory.INPUT: draw(prices_micros), PriceCategory.OUTPUT: draw(prices_micros)}
    prices.update({c: draw(prices_micros) for c in chosen})
    return PriceVersion(
        uuid.uuid4(), draw(st.sampled_from(MODELS)), draw(st.sampled_from([None, *ORGS])),
        T0 + timedelta(minutes=draw(st.integers(0, 3 * 24 * 60))), prices,
        T0 + timedelta(seconds=draw(st.integers(0, 10**6))), "admin",
    )


def reference_version(versions: list[PriceVersion], e: UsageEvent) -> PriceVersion | None:
    """Resolution written out plainly: the org's line if it has a version in effect, else the
    global line; the latest start (then the latest created) at or before the event."""
    superseded = {v.supersedes for v in versions}
    for org in (e.org_id, None):
        live = [v for v in versions if v.org_id == org and v.model_id == e.model_id
                and v.effective_from <= e.occurred_at and v.version_id not in superseded]
        if live:
            return max(live, key=lambda v: (v.effective_from, v.created_at))
    return None


timed_events = usage_events(orgs=ORGS, models=MODELS, start=T0 - timedelta(days=1),
                            end=T0 + timedelta(days=4))


@settings(max_examples=150)
@given(st.lists(timed_events, max_size=40), st.lists(versions(), max_size=8))
def test_catalog_cost_per_group_equals_a_decimal_recomputation(
    events: list[UsageEvent], catalog_versions: list[PriceVersion],
) -> None:
    """For every event the catalog picks the reference version; each (org, model, bucket)
    rollup's catalog cost is the Decimal sum over its events, exactly, and its categories add
    up to it; priced + unpriced = invocations."""
    starts = [(v.line, v.effective_from) for v in catalog_versions]
    assume(len(set(starts)) == len(starts))  # the use case refuses two live starts per line
    catalog = Catalog.of(catalog_versions)
    prices = [catalog.price(e) for e in events]
    for e, p in zip(events, prices, strict=True):
        ref = reference_version(catalog_versions, e)
        assert (p.version_id if p else None) == (ref.version_id if ref else None)
    for rollup in build_rollups(events, prices):
        k, s = rollup.key, rollup.stats
        mine = [e for e in events if (e.org_id, e.model_id, e.client_id or "") ==
                (k.org_id, k.model_id, k.client_id)
                and k.bucket_start <= e.occurred_at < k.bucket_start + timedelta(minutes=15)]
        expected = sum((decimal_cost(e, v) for e in mine
                        if (v := reference_version(catalog_versions, e)) is not None),
                       Decimal(0))
        assert s.catalog_cost.exact == expected
        assert sum(s.catalog_costs) == s.catalog_cost.units
        assert s.priced == sum(reference_version(catalog_versions, e) is not None for e in mine)
        assert s.priced + s.unpriced == s.invocations == len(mine)


@given(timed_events, versions())
def test_category_tokens_add_up_to_the_totals_and_costs_round_half_even(
    event: UsageEvent, version: PriceVersion,
) -> None:
    """Plain input plus the input parts is inputTokens (same for output); each category
    costs tokens x price rounded half-even to 0.0001 cent."""
    tokens = category_tokens(event)
    assert sum(tokens[:4]) == event.input_tokens
    assert sum(tokens[4:]) == event.output_tokens
    costs = category_costs(event, version)
    assert Cents(sum(costs)).exact == decimal_cost(event, version)


def test_missing_categories_cost_their_sides_plain_price() -> None:
    """cacheRead falls back to input, reasoning to output."""
    v = PriceVersion(uuid.uuid4(), MODELS[0], None, T0,
                     {PriceCategory.INPUT: 2_000_000, PriceCategory.OUTPUT: 8_000_000}, T0, "a")
    assert v.price(PriceCategory.CACHE_READ) == 2_000_000
    assert v.price(PriceCategory.REASONING) == 8_000_000
    assert v.price(PriceCategory.AUDIO_OUTPUT) == 8_000_000


def test_an_org_override_wins_only_while_in_effect() -> None:
    """Before the override starts the global line prices the org; other orgs never see it."""
    model = MODELS[0]
    glob = PriceVersion(uuid.uuid4(), model, None, T0, {PriceCategory.INPUT: 1,
                                                        PriceCategory.OUTPUT: 1}, T0, "a")
    own = PriceVersion(uuid.uuid4(), model, ORGS[0], T0 + timedelta(days=1),
                       {PriceCategory.INPUT: 2, PriceCategory.OUTPUT: 2}, T0, "a")
    catalog = Catalog.of([glob, own])
    assert catalog.version_for(ORGS[0], model, T0 + timedelta(hours=1)) == glob
    assert catalog.version_for(ORGS[0], model, T0 + timedelta(days=2)) == own
    assert catalog.version_for(ORGS[1], model, T0 + timedelta(days=2)) == glob
    assert catalog.version_for(ORGS[1], model, T0 - timedelta(seconds=1)) is None


def test_a_superseded_version_no_longer_prices_anything() -> None:
    """A correction replaces the version it supersedes."""
    model = MODELS[0]
    old = PriceVersion(uuid.uuid4(), model, None, T0, {PriceCategory.INPUT: 1,
                                                       PriceCategory.OUTPUT: 1}, T0, "a")
    fix = PriceVersion(uuid.uuid4(), model, None, T0, {PriceCategory.INPUT: 5,
                                                       PriceCategory.OUTPUT: 5}, T0, "a",
                       supersedes=old.version_id)
    assert Catalog.of([old, fix]).version_for(ORGS[0], model, T0) == fix
    assert Catalog.of([old, fix]).live((None, model)) == [fix]


@pytest.mark.parametrize(("value", "micros"), [
    ("0.15", 150_000), (3, 3_000_000), (Decimal("0.000001"), 1), ("0", 0),
    ("1000000", 10**12), ("1.500000", 1_500_000),
])
def test_prices_parse_exactly(value: object, micros: int) -> None:
    """Decimal strings, ints and Decimals become micro-dollars, and print back exactly."""
    assert price_micros(value) == micros
    assert Decimal(price_text(micros)) == Decimal(str(value))


@pytest.mark.parametrize(("value", "reason"), [
    ("-1", ">= 0"), (Decimal("-0.01"), ">= 0"), ("0.0000001", "6 decimal places"),
    ("1000000.000001", "at most 1000000"), (0.15, "decimal number"), (True, "decimal number"),
    ("abc", "decimal number"), ("NaN", ">= 0"), ("Infinity", ">= 0"), (None, "decimal"),
])
def test_bad_prices_are_refused_with_a_reason(value: object, reason: str) -> None:
    """Negative, too precise, too large, floats and non-numbers are refused."""
    with pytest.raises(ValueError, match=reason):
        price_micros(value)


@given(st.lists(timed_events, max_size=30), st.lists(versions(), max_size=6))
def test_merged_rollups_keep_every_catalog_counter(
    events: list[UsageEvent], catalog_versions: list[PriceVersion],
) -> None:
    """Merging rollups adds catalog costs and priced counts exactly like every counter."""
    catalog = Catalog.of(catalog_versions)
    prices = [catalog.price(e) for e in events]
    merged = merge_stats(r.stats for r in build_rollups(events, prices))
    assert merged.priced == sum(p is not None for p in prices)
    assert list(merged.catalog_costs) == [
        sum(p.costs[i] for p in prices if p is not None) for i in range(len(CATEGORIES))]
