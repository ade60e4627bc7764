"""Hour and day rollup tiers equal merges of the 15-minute base; tiered reads equal core merges."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_adapters.sql import SqlStorage
from analytics_adapters.sql.convert import ROLLUP_COLUMNS, rollup_from_values
from analytics_adapters.sql.rollup_query import read_plan
from analytics_adapters.sql.rollups import SqlRollupStore
from analytics_adapters.sql.schema import rollups_1d, rollups_1h
from analytics_adapters.sql.sqlite_rollups import coarsen, floor_day, floor_hour
from analytics_core.events import Status, UsageEvent
from analytics_core.rollups import Rollup, aggregate_rollups, build_rollups
from analytics_core.timegrid import Grain, floor_bucket
from analytics_core.usecases.queries import GroupBy, group_series
from tests.integration.sql_support import T0, boundaries, event, fresh_storage

START = T0 - timedelta(days=3)


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                        pytest.param("citus", marks=pytest.mark.citus)])
def storage(request: pytest.FixtureRequest) -> Iterator[SqlStorage]:
    """A fresh migrated database of each kind."""
    with fresh_storage(request.param) as s:
        yield s


def random_events(org: uuid.UUID, n: int, seed: int) -> list[UsageEvent]:
    """Events over 3 days, 3 models, 2 clients, every status, some error codes."""
    rng = random.Random(seed)
    models = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(3)]
    out = []
    for _ in range(n):
        e = event(org, START + timedelta(minutes=rng.randrange(3 * 24 * 60)),
                  model_id=rng.choice(models), latency_ms=rng.choice([0, 3, 90, 400, 9000]),
                  status=rng.choice(list(Status)))
        code = None if e.status is Status.SUCCESS else rng.choice(["E1", "E2", "E3"])
        out.append(attrs.evolve(e, client_id=rng.choice(["a", "b"]), error_code=code))
    return out


@pytest.fixture(scope="module")
def loaded(storage: SqlStorage) -> tuple[SqlStorage, uuid.UUID, list[UsageEvent]]:
    """One org's events ingested in several batches (several buckets per hour per batch)."""
    org = uuid.uuid4()
    events = random_events(org, 600, seed=3)
    for i in range(0, len(events), 150):
        with storage.unit_of_work() as uow:
            uow.rollups.add(build_rollups(events[i:i + 150]))
            uow.commit()
    return storage, org, events


def stored(storage: SqlStorage, table: sa.Table, org: uuid.UUID) -> dict[object, object]:
    """Rows of one org in a rollup table, by key."""
    t = table.c
    with storage.engine.connect() as conn:
        rows = conn.execute(sa.select(*(t[c] for c in ROLLUP_COLUMNS)).where(t.org_id == org))
        return {r.key: r.stats for r in map(rollup_from_values, rows)}


def test_hour_and_day_tiers_equal_merges_of_the_base_rollups(
    loaded: tuple[SqlStorage, uuid.UUID, list[UsageEvent]],
) -> None:
    """Every tier row is exactly the merge of the 15-minute deltas it covers."""
    storage, org, events = loaded
    base = build_rollups(events)
    for table, floor in ((rollups_1h, floor_hour), (rollups_1d, floor_day)):
        expected = {r.key: r.stats for r in coarsen(base, floor)}
        assert stored(storage, table, org) == expected


@pytest.mark.parametrize(("grain", "tz"), [
    (Grain.DAY, "UTC"), (Grain.HOUR, "UTC"), (Grain.DAY, "America/New_York"),
    (Grain.DAY, "Asia/Kolkata"), (Grain.HOUR, "Australia/Lord_Howe"),
])
@pytest.mark.parametrize("group_by", ["model", "client", "none"])
def test_aggregate_equals_the_core_merge_of_base_rollups(
    loaded: tuple[SqlStorage, uuid.UUID, list[UsageEvent]], grain: Grain, tz: str,
    group_by: str,
) -> None:
    """Per (period, group) stats from any tier equal group_series over the base rows."""
    storage, org, _ = loaded
    edges = boundaries(START, START + timedelta(days=3), grain, tz)
    with storage.unit_of_work() as uow:
        base: list[Rollup] = uow.rollups.query(org, edges[0], edges[-1])
        assert isinstance(uow.rollups, SqlRollupStore)
        cells = uow.rollups.aggregate(org, edges, group_by=group_by)
    expected = group_series(base, grain, tz, GroupBy(group_by))
    assert [(c[0], c[1], c[2]) for c in cells] == [
        (p.bucket_start, p.group, p.stats) for p in expected
    ]


def test_aggregate_filters_models_and_clients_and_can_skip_latency(
    loaded: tuple[SqlStorage, uuid.UUID, list[UsageEvent]],
) -> None:
    """Filters apply as in query(); latency=False keeps counters and drops sketches/codes."""
    storage, org, events = loaded
    model = events[0].model_id
    edges = boundaries(START, START + timedelta(days=3), Grain.DAY, "UTC")
    with storage.unit_of_work() as uow:
        assert isinstance(uow.rollups, SqlRollupStore)
        base = uow.rollups.query(org, edges[0], edges[-1], [model], ["a"])
        cells = uow.rollups.aggregate(org, edges, group_by="none", model_ids=[model],
                                      client_ids=["a"], latency=False)
    expected = group_series(base, Grain.DAY, "UTC", GroupBy.NONE)
    assert [c[2].invocations for c in cells] == [p.stats.invocations for p in expected]
    assert [c[2].cost for c in cells] == [p.stats.cost for p in expected]
    assert all(c[2].sketch.count == 0 and not c[2].error_codes for c in cells)


ZONES = ["UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe"]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True),
       grains=st.lists(st.sampled_from([Grain.HOUR, Grain.DAY]), min_size=1, max_size=2),
       cut=st.integers(0, 2 * 24 * 4), group_by=st.sampled_from(["model", "client", "none"]))
def test_any_union_of_zone_edges_reads_exactly_the_base_merge(
    loaded: tuple[SqlStorage, uuid.UUID, list[UsageEvent]], zones: list[str],
    grains: list[Grain], cut: int, group_by: str,
) -> None:
    """Edges of several zones and grains at once (what budget evaluation reads), cut at a
    random 15-minute edge: day, hour and base tiers mixed give the core's merge exactly."""
    storage, org, _ = loaded
    edges = sorted({e for tz in zones for grain in grains
                    for e in boundaries(START, START + timedelta(days=3), grain, tz)}
                   | {floor_bucket(START) + timedelta(minutes=15 * cut)})
    with storage.unit_of_work() as uow:
        base = uow.rollups.query(org, edges[0], edges[-1])
        cells = uow.rollups.aggregate(org, edges, group_by=group_by)
    assert cells == aggregate_rollups(base, edges, group_by)


def test_the_read_plan_takes_whole_days_and_hours_between_edges() -> None:
    """A Kathmandu day (18:15 to 18:15 UTC) and the next midnight: base up to the hour, hours
    to midnight, a whole UTC day, then hours and base to the edge."""
    day = datetime(2026, 12, 1, tzinfo=UTC)
    edges = [day - timedelta(hours=5, minutes=45), day + timedelta(hours=42, minutes=15)]
    plan = {table.name: ranges for table, _, ranges in read_plan(edges)}
    assert plan == {
        "rollups_1d": [(day, day + timedelta(days=1))],
        "rollups_1h": [(day - timedelta(hours=5), day),
                       (day + timedelta(days=1), day + timedelta(hours=42))],
        "rollups_15m": [(day - timedelta(hours=5, minutes=45), day - timedelta(hours=5)),
                        (day + timedelta(hours=42), day + timedelta(hours=42, minutes=15))],
    }
