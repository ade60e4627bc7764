"""Rollups: exact totals under any partition, 1 % percentiles after merges, error rate and codes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from core_strategies import (
    NOW,
    QUANTILES,
    RETENTION,
    exact_rank_value,
    usage_events,
    valid_payload,
    within_one_percent,
)
from hypothesis import given
from hypothesis import strategies as st

from analytics_core.event_parsing import parse_event
from analytics_core.events import Status, UsageEvent
from analytics_core.money import Cents
from analytics_core.prices import EventPrice
from analytics_core.rollups import (
    MAX_ERROR_CODES_PER_ROLLUP,
    NO_CLIENT,
    OTHER_ERROR_CODE,
    Rollup,
    RollupKey,
    RollupStats,
    build_group_rollups,
    build_rollups,
    merge_error_codes,
    merge_stats,
    stats_of,
)
from analytics_core.timegrid import floor_bucket

ORGS = [uuid.UUID(int=1), uuid.UUID(int=2)]
MODELS = [uuid.UUID(int=10), uuid.UUID(int=11), uuid.UUID(int=12)]
CLIENTS = [None, "", "key-a", "key-b"]
CODES = ["E_RATE", "E_5XX", "E_TIMEOUT", None]
WINDOW_START = datetime(2025, 3, 1, 23, 0, tzinfo=UTC)

pooled_events = usage_events(
    orgs=ORGS,
    models=MODELS,
    clients=CLIENTS,
    start=WINDOW_START,
    end=WINDOW_START + timedelta(hours=3),
    codes=CODES,
    rich=False,
)
event_lists = st.lists(pooled_events, min_size=1, max_size=100)


@st.composite
def batched(draw: st.DrawFn) -> tuple[list[UsageEvent], list[list[UsageEvent]]]:
    """A list of events and a random split of it into ingest batches."""
    events = draw(event_lists)
    count = draw(st.integers(min_value=1, max_value=6))
    owners = draw(st.lists(st.integers(0, count - 1), min_size=len(events), max_size=len(events)))
    batches: list[list[UsageEvent]] = [[] for _ in range(count)]
    for event, owner in zip(events, owners, strict=True):
        batches[owner].append(event)
    return events, batches


def assert_totals_match_raw(stats: RollupStats, events: list[UsageEvent]) -> None:
    """Every additive field of `stats` equals the same sum over the raw events."""
    by_status = {s: sum(1 for e in events if e.status is s) for s in Status}
    assert stats.invocations == len(events)
    assert stats.success == by_status[Status.SUCCESS]
    assert stats.errors == by_status[Status.ERROR]
    assert stats.timeouts == by_status[Status.TIMEOUT]
    assert stats.throttled == by_status[Status.THROTTLED]
    assert stats.input_tokens == sum(e.input_tokens for e in events)
    assert stats.output_tokens == sum(e.output_tokens for e in events)
    assert stats.cost == Cents(sum(e.cost.units for e in events))
    assert stats.latency_sum == sum(e.latency_ms for e in events)
    assert stats.latency_min == min(e.latency_ms for e in events)
    assert stats.latency_max == max(e.latency_ms for e in events)
    assert stats.sketch.count == len(events)


@given(batched())
def test_totals_of_merged_batches_equal_raw_sums_exactly(
    split: tuple[list[UsageEvent], list[list[UsageEvent]]],
) -> None:
    """Building rollups per batch and merging everything gives the raw sums exactly."""
    events, batches = split
    deltas = [r for batch in batches for r in build_rollups(batch)]
    assert_totals_match_raw(merge_stats(r.stats for r in deltas), events)


@given(batched())
def test_merging_batch_deltas_per_key_equals_one_big_batch(
    split: tuple[list[UsageEvent], list[list[UsageEvent]]],
) -> None:
    """Per bucket key, the merge of batch deltas equals the rollup of all events at once."""
    events, batches = split
    merged: dict[RollupKey, RollupStats] = {}
    for batch in batches:
        for rollup in build_rollups(batch):
            previous = merged.get(rollup.key, RollupStats())
            merged[rollup.key] = previous.merge(rollup.stats)
    assert merged == {r.key: r.stats for r in build_rollups(events)}


@given(event_lists)
def test_each_rollup_holds_exactly_its_own_events(events: list[UsageEvent]) -> None:
    """A base rollup's totals equal the raw sums of the events sharing its key."""
    for rollup in build_rollups(events):
        own = [
            e
            for e in events
            if (e.org_id, e.model_id, e.client_id or NO_CLIENT, floor_bucket(e.occurred_at))
            == attrs.astuple(rollup.key)
        ]
        assert_totals_match_raw(rollup.stats, own)


@given(event_lists)
def test_rollups_are_sorted_by_key_with_bucket_aligned_starts(events: list[UsageEvent]) -> None:
    """build_rollups returns one rollup per key, sorted, on 15-minute UTC boundaries."""
    rollups = build_rollups(events)
    keys = [r.key for r in rollups]
    assert keys == sorted(set(keys))
    for key in keys:
        assert key.bucket_start.tzinfo is UTC
        assert key.bucket_start.timestamp() % 900 == 0


@given(event_lists)
def test_percentiles_after_merging_rollups_are_within_one_percent(events: list[UsageEvent]) -> None:
    """p50/p95/p99 of merge_stats(build_rollups(...)) are within 1 % of exact nearest rank."""
    merged = merge_stats(r.stats for r in build_rollups(events))
    values = [e.latency_ms for e in events]
    for q, exact_q in QUANTILES:
        exact = exact_rank_value(values, exact_q)
        assert within_one_percent(merged.percentile(q), exact), (q, merged.percentile(q), exact)


@given(event_lists, st.sampled_from(ORGS), st.sampled_from(MODELS))
def test_percentiles_of_a_filtered_merge_are_within_one_percent(
    events: list[UsageEvent], org: uuid.UUID, model: uuid.UUID
) -> None:
    """Merging only one org and model's rollups keeps the guarantee for exactly those events."""
    chosen = [
        r.stats for r in build_rollups(events) if (r.key.org_id, r.key.model_id) == (org, model)
    ]
    values = [e.latency_ms for e in events if (e.org_id, e.model_id) == (org, model)]
    merged = merge_stats(chosen)
    if not values:
        assert merged.percentile(0.5) is None
        return
    for q, exact_q in QUANTILES:
        assert within_one_percent(merged.percentile(q), exact_rank_value(values, exact_q))


@given(event_lists)
def test_percentile_never_leaves_the_observed_range(events: list[UsageEvent]) -> None:
    """Estimates are clamped to [latency_min, latency_max]."""
    stats = stats_of(events)
    assert stats.latency_min is not None
    assert stats.latency_max is not None
    for q, _ in QUANTILES:
        estimate = stats.percentile(q)
        assert estimate is not None
        # Estimates are floats: beyond 2**53 ms the bounds themselves round to a float.
        assert float(stats.latency_min) <= estimate <= float(stats.latency_max)


def test_single_latency_percentile_is_exact() -> None:
    """One event of 1 ms reports exactly 1 ms, not its bin's representative."""
    assert stats_of([make_event(Status.SUCCESS, latency=1)]).percentile(0.99) == 1.0


def test_empty_stats_have_no_percentile_and_zero_error_rate() -> None:
    """No events: no latency numbers are made up and the error rate is 0."""
    empty = RollupStats()
    assert empty.percentile(0.5) is None
    assert (empty.error_rate, empty.latency_min, empty.latency_max) == (0.0, None, None)


def make_event(status: Status, *, latency: int = 10, code: str | None = None) -> UsageEvent:
    """A fixed valid event with a chosen status, latency and error code."""
    base = parse_event(valid_payload(), now=NOW, raw_retention=RETENTION)
    return attrs.evolve(
        base, event_id=uuid.uuid4(), status=status, latency_ms=latency, error_code=code
    )


def test_error_rate_counts_error_timeout_and_throttled() -> None:
    """error_rate = (error + timeout + throttled) / invocations; each class is also kept alone."""
    statuses = [Status.SUCCESS] * 5 + [Status.ERROR] * 2 + [Status.TIMEOUT, Status.THROTTLED] * 1
    stats = stats_of(make_event(s) for s in statuses)
    assert (stats.success, stats.errors, stats.timeouts, stats.throttled) == (5, 2, 1, 1)
    assert stats.failures == 4
    assert stats.error_rate == 4 / 9


@given(event_lists)
def test_error_rate_matches_its_definition(events: list[UsageEvent]) -> None:
    """For any events the rate is the non-success share."""
    stats = stats_of(events)
    failing = sum(1 for e in events if e.status is not Status.SUCCESS)
    assert stats.error_rate == failing / len(events)


def test_error_codes_count_only_failed_events() -> None:
    """A success carrying an errorCode does not count as an error code."""
    stats = stats_of(
        [
            make_event(Status.ERROR, code="E1"),
            make_event(Status.TIMEOUT, code="E1"),
            make_event(Status.SUCCESS, code="E1"),
            make_event(Status.THROTTLED, code="E2"),
            make_event(Status.ERROR, code=None),
        ]
    )
    assert stats.error_codes == {"E1": 2, "E2": 1}


def test_error_codes_are_capped_with_the_rest_folded_into_other() -> None:
    """Past the cap the smallest codes fold into "(other)"; the total is preserved."""
    events = [
        make_event(Status.ERROR, code=f"E{i:03}")
        for i in range(100)
        for _ in range(1 + (i < 10) * 5)  # E000..E009 are the most frequent
    ]
    codes = stats_of(events).error_codes
    assert len(codes) == MAX_ERROR_CODES_PER_ROLLUP
    assert sum(codes.values()) == len(events)
    assert all(codes[f"E{i:03}"] == 6 for i in range(10))
    assert codes[OTHER_ERROR_CODE] == 100 - (MAX_ERROR_CODES_PER_ROLLUP - 1)


@given(
    st.dictionaries(st.text(max_size=4), st.integers(1, 50), max_size=100),
    st.dictionaries(st.text(max_size=4), st.integers(1, 50), max_size=100),
)
def test_merged_error_codes_respect_the_cap_and_keep_the_total(
    a: dict[str, int], b: dict[str, int]
) -> None:
    """merge_error_codes never exceeds the cap and never loses a count."""
    merged = merge_error_codes(a, b)
    assert len(merged) <= MAX_ERROR_CODES_PER_ROLLUP
    assert sum(merged.values()) == sum(a.values()) + sum(b.values())


def test_events_without_client_share_the_empty_client_key() -> None:
    """clientId absent and "" roll up under the same key, client ""."""
    first = make_event(Status.SUCCESS)
    second = attrs.evolve(make_event(Status.SUCCESS), client_id="")
    rollups = build_rollups([first, second])
    assert [r.key.client_id for r in rollups] == [NO_CLIENT]
    assert rollups[0].stats.invocations == 2


@given(st.lists(st.lists(pooled_events, max_size=20).map(stats_of), min_size=3, max_size=3))
def test_stats_merge_is_associative_and_commutative(parts: list[RollupStats]) -> None:
    """Merge order and grouping never change the result."""
    a, b, c = parts
    assert a.merge(b) == b.merge(a)
    assert a.merge(b).merge(c) == a.merge(b.merge(c)) == merge_stats([c, a, b])


@given(event_lists)
def test_stats_merge_with_empty_is_identity(events: list[UsageEvent]) -> None:
    """Merging with empty statistics changes nothing."""
    stats = stats_of(events)
    assert stats.merge(RollupStats()) == stats == RollupStats().merge(stats)


@given(event_lists)
def test_rollup_value_objects_round_trip_through_asdict_and_evolve(
    events: list[UsageEvent],
) -> None:
    """RollupKey, RollupStats and Rollup rebuild from their fields unchanged."""
    for rollup in build_rollups(events):
        assert RollupKey(**attrs.asdict(rollup.key, recurse=False)) == rollup.key
        assert RollupStats(**attrs.asdict(rollup.stats, recurse=False)) == rollup.stats
        assert Rollup(**attrs.asdict(rollup, recurse=False)) == rollup
        assert attrs.evolve(rollup) == rollup


@pytest.mark.parametrize("latency", [0, 1, 2**63 - 1])
def test_extreme_latencies_are_summarised_exactly(latency: int) -> None:
    """Zero, one and the int64 limit keep exact sum/min/max and a clamped percentile."""
    stats = stats_of([make_event(Status.SUCCESS, latency=latency)] * 3)
    assert (stats.latency_sum, stats.latency_min, stats.latency_max) == (
        3 * latency,
        latency,
        latency,
    )
    assert within_one_percent(stats.percentile(0.5), latency)


GROUPS = ["actor\x1fa", "actor\x1fb", "tag:team\x1fx", "tag:team\x1f(other)", "tag:env\x1f"]
_PRICES = st.none() | st.builds(
    EventPrice, st.just(uuid.UUID(int=99)),
    st.tuples(*[st.integers(0, 10**9)] * 7))


@given(st.lists(st.tuples(pooled_events, st.sets(st.sampled_from(GROUPS), min_size=1),
                          _PRICES), min_size=1, max_size=60))
def test_group_rollups_equal_each_keys_events_summed_directly(
    drawn: list[tuple[UsageEvent, set[str], EventPrice | None]],
) -> None:
    """Each (org, model, group, bucket) holds exactly the stats of its events with their prices,
    whether it holds one event (whose stats its other groups share) or many; sorted by key."""
    events = [e for e, _, _ in drawn]
    groups = [sorted(g) for _, g, _ in drawn]
    prices = [p for _, _, p in drawn]
    members: dict[RollupKey, list[int]] = {}
    for i, e in enumerate(events):
        for group in groups[i]:
            key = RollupKey(e.org_id, e.model_id, group, floor_bucket(e.occurred_at))
            members.setdefault(key, []).append(i)
    built = build_group_rollups(events, prices, groups)
    assert [r.key for r in built] == sorted(members, key=lambda k: (
        k.org_id, k.model_id, k.client_id, k.bucket_start))
    for rollup in built:
        chosen = members[rollup.key]
        assert rollup.stats == stats_of([events[i] for i in chosen], [prices[i] for i in chosen])
