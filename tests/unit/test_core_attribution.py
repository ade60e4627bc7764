"""Attribution (SPEC §12): rolled up at ingest exactly per actor and tag value, values past the
daily cap in `(other)`, and top=N plus `(other)` always summing to the totals."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from core_strategies import usage_events
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_adapters.memory import (
    InMemoryStorage,
    ManualClock,
    SequentialIds,
    SynchronousPipeline,
    unit_of_work_factory,
)
from analytics_core.attribution import OTHER, AttributionSettings, parse_keys
from analytics_core.errors import ValidationFailed
from analytics_core.events import UsageEvent, to_canonical
from analytics_core.timegrid import Grain
from analytics_core.usecases.ingest import RawMessage, ingest_batch
from analytics_core.usecases.queries import (
    AnalyticsQuery,
    GroupBy,
    parse_group_by,
    query_analytics,
    top_groups,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=2)
ORG = uuid.UUID(int=1)
MODELS = [uuid.UUID(int=10), uuid.UUID(int=11)]
ACTORS = [uuid.UUID(int=100 + i) for i in range(3)]  # within the cap: exact per actor
TEAMS = ["search", "support", "growth", "ads", "x" * 3]
SETTINGS = AttributionSettings(("team", "feature"), value_cap=3)


@st.composite
def tagged_events(draw: st.DrawFn) -> UsageEvent:
    """An event of ORG with an actor (or none) and a team tag (or none)."""
    event = draw(usage_events(orgs=[ORG], models=MODELS, start=T0,
                              end=NOW - timedelta(minutes=1), rich=False))
    tags = {}
    if draw(st.booleans()):
        tags["team"] = draw(st.sampled_from(TEAMS))
    return attrs.evolve(event, actor_id=draw(st.none() | st.sampled_from(ACTORS)),
                        metadata=tags)


def _ingest(events: list[UsageEvent]) -> tuple[object, ManualClock]:
    uow_factory = unit_of_work_factory(InMemoryStorage())
    clock = ManualClock(NOW)
    ingest_batch([RawMessage(to_canonical(e)) for e in events], source="test",
                 uow_factory=uow_factory, clock=clock, ids=SequentialIds(),
                 attribution=SETTINGS)
    return uow_factory, clock


def _report(uow_factory: object, clock: ManualClock, group_by: GroupBy, tag: str | None = None,
            top: int | None = None) -> object:
    query = AnalyticsQuery(ORG, T0, NOW, Grain.DAY, "Asia/Kolkata", group_by=group_by, tag=tag,
                           top=top)
    return query_analytics(query, uow_factory=uow_factory,  # type: ignore[arg-type]
                           progress=SynchronousPipeline(), clock=clock, latency=False,
                           attribution=SETTINGS)


@settings(max_examples=60, deadline=None)
@given(st.lists(tagged_events(), max_size=40, unique_by=lambda e: e.key),
       st.integers(1, 4))
def test_tags_and_actors_sum_exactly_and_top_n_plus_other_equals_the_totals(
    events: list[UsageEvent], n: int,
) -> None:
    """Per team value (the cap of 3 values per day folds the rest into (other)) and per actor,
    invocations and cost equal a direct count over the events; with top=N the N largest
    groups are kept exactly and (other) holds the rest, so the totals never change."""
    uow_factory, clock = _ingest(events)
    by_team = _report(uow_factory, clock, GroupBy.TAG, "team")
    by_actor = _report(uow_factory, clock, GroupBy.ACTOR)
    for report in (by_team, by_actor):
        assert report.totals.invocations == len(events)  # type: ignore[attr-defined]
        assert report.totals.cost.units == sum(e.cost.units for e in events)  # type: ignore[attr-defined]
    per_actor: dict[str, int] = {}
    for e in events:
        key = "" if e.actor_id is None else str(e.actor_id)
        per_actor[key] = per_actor.get(key, 0) + 1
    got: dict[str, int] = {}
    for p in by_actor.series:  # type: ignore[attr-defined]
        got[p.group] = got.get(p.group, 0) + p.stats.invocations
    assert got == per_actor
    for p in by_team.series:  # type: ignore[attr-defined]
        assert p.group in {*TEAMS, "", OTHER}
    for report in (by_team, by_actor):
        top = _report(uow_factory, clock, report.query.group_by,  # type: ignore[attr-defined]
                      report.query.tag, top=n)  # type: ignore[attr-defined]
        assert top.totals == report.totals  # type: ignore[attr-defined]
        kept = {p.group for p in top.series if p.group != OTHER}  # type: ignore[attr-defined]
        assert len(kept) <= n
        sums: dict[str, list[int]] = {}
        for p in report.series:  # type: ignore[attr-defined]
            s = sums.setdefault(p.group, [0, 0])
            s[0] += p.stats.cost.units
            s[1] += p.stats.invocations
        ranked = sorted((g for g in sums if g != OTHER), key=lambda g: (-sums[g][0],
                                                                        -sums[g][1], g))
        assert kept == set(ranked[:n])


def test_values_past_the_daily_cap_count_in_other() -> None:
    """With a cap of 3, a fourth team on the same day counts in (other); the next day has
    room again."""
    base = dict(to_canonical(_plain(T0)))
    events = []
    for i, (day, team) in enumerate([(0, "a"), (0, "b"), (0, "c"), (0, "d"), (1, "d")]):
        when = T0 + timedelta(days=day, hours=1, minutes=i)
        events.append({**base, "eventId": str(uuid.uuid4()), "occurredAt": when.isoformat(),
                       "metadata": {"team": team}})
    uow_factory = unit_of_work_factory(InMemoryStorage())
    clock = ManualClock(NOW)
    result = ingest_batch([RawMessage(e) for e in events], source="test",
                          uow_factory=uow_factory, clock=clock, ids=SequentialIds(),
                          attribution=SETTINGS)
    assert result.attribution_overflow == 1
    query = AnalyticsQuery(ORG, T0, NOW, Grain.DAY, "UTC", group_by=GroupBy.TAG, tag="team")
    report = query_analytics(query, uow_factory=uow_factory, progress=SynchronousPipeline(),
                             clock=clock, latency=False, attribution=SETTINGS)
    cells = {(p.bucket_start.day, p.group): p.stats.invocations for p in report.series}
    assert cells == {(1, "a"): 1, (1, "b"): 1, (1, "c"): 1, (1, OTHER): 1, (2, "d"): 1}


def _plain(when: datetime) -> UsageEvent:
    from analytics_core.events import Status  # noqa: PLC0415
    from analytics_core.money import Cents  # noqa: PLC0415

    return UsageEvent(uuid.uuid4(), ORG, MODELS[0], when, Status.SUCCESS, 10, 5, 5,
                      Cents.parse("1"))


def test_grouping_by_a_tag_that_is_not_configured_names_the_valid_choices() -> None:
    """groupBy=tag:unknown is a field error listing the configured keys."""
    uow_factory, clock = _ingest([])
    with pytest.raises(ValidationFailed, match=r"tag:team, tag:feature") as caught:
        _report(uow_factory, clock, GroupBy.TAG, "unknown")
    assert [e.field for e in caught.value.errors] == ["groupBy"]


@pytest.mark.parametrize(("text", "expected"), [
    ("model", (GroupBy.MODEL, None)), ("actor", (GroupBy.ACTOR, None)),
    ("tag:team", (GroupBy.TAG, "team")), ("tag:a:b", (GroupBy.TAG, "a:b")),
])
def test_group_by_parses(text: str, expected: tuple[GroupBy, str | None]) -> None:
    """Every grouping and tag:KEY."""
    assert parse_group_by(text) == expected


@pytest.mark.parametrize("text", ["tag:", "tag", "team", "MODEL", ""])
def test_bad_group_by_names_the_choices(text: str) -> None:
    """Anything else is refused with the valid choices."""
    with pytest.raises(ValueError, match="model, client, actor, none or tag:KEY"):
        parse_group_by(text)


@pytest.mark.parametrize(("text", "reason"), [
    (",".join(f"k{i}" for i in range(9)), "at most 8"), ("a,a", "repeat"),
    ("a\x1fb", "printable"), ("x" * 65, "printable"),
])
def test_attribution_keys_are_bounded(text: str, reason: str) -> None:
    """At most 8 distinct printable keys of at most 64 characters."""
    with pytest.raises(ValueError, match=reason):
        parse_keys(text)


def test_top_groups_of_nothing_is_nothing() -> None:
    """No cells, no (other)."""
    assert top_groups([], 3) == []


class CountingStore:
    """An Admitter that admits everything under the cap from an in-memory table, counting
    how often it is asked."""

    def __init__(self) -> None:
        self.calls = 0
        self.table: dict[object, set[str]] = {}

    def admit(self, wanted: Mapping[Any, set[str]], cap: int) -> dict[Any, set[str]]:
        self.calls += 1
        out = {}
        for key, values in wanted.items():
            have = self.table.setdefault(key, set())
            fresh = sorted(values - have)[:max(cap - len(have), 0)]
            have.update(fresh)
            out[key] = values & have
        return out


def test_the_admitted_cache_asks_only_for_what_it_has_not_seen_committed() -> None:
    """Known values and full keys need no read; nothing is known before `remember`."""
    from analytics_core.attribution import AdmittedCache  # noqa: PLC0415

    store, cache = CountingStore(), AdmittedCache()
    key = (ORG, T0.date(), "tag:team")
    first = cache.admit(store, {key: {"a", "b"}}, 2)
    assert (first, store.calls) == ({key: {"a", "b"}}, 1)
    cache.admit(store, {key: {"a"}}, 2)
    assert store.calls == 2  # not remembered: the unit may not have committed
    cache.remember(first)
    assert cache.admit(store, {key: {"a"}}, 2) == {key: {"a"}}
    assert cache.admit(store, {key: {"c"}}, 2) == {key: set()}  # full: (other), no read
    assert store.calls == 2
    assert cache.admit(store, {key: {"c"}}, 3) == {key: {"c"}}  # room again: asks
    assert store.calls == 3
