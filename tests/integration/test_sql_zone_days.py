"""Zone day tiers (PostgreSQL, Citus): built rows equal merges of the base, reads in a zone equal
the core's merge, and later writes (late events, restatement deltas) reach built days exactly,
also when they race a build."""

from __future__ import annotations

import itertools
import random
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import attrs
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_adapters.sql import SqlStorage, zone_days
from analytics_adapters.sql.convert import ROLLUP_COLUMNS, rollup_from_values
from analytics_adapters.sql.purge import purge
from analytics_adapters.sql.rollup_query import read_plan
from analytics_adapters.sql.rollups import SqlRollupStore
from analytics_adapters.sql.schema import ROLLUPS, RollupFamily, rollups_zone_1d
from analytics_adapters.sql.sqlite_rollups import coarsen
from analytics_core.events import Status, UsageEvent
from analytics_core.money import Cents
from analytics_core.rollups import (
    Rollup,
    RollupKey,
    RollupStats,
    aggregate_rollups,
    build_rollups,
)
from analytics_core.timegrid import Grain, PeriodIndex, floor_bucket, period_start
from analytics_core.timegrid import zone as tz_of
from analytics_core.usecases.queries import GroupBy, group_series
from tests.integration.sql_support import boundaries, event, fresh_storage

pytestmark = pytest.mark.postgres

# Eight days around the end of daylight saving time in New York (2026-11-01).
START = datetime(2026, 10, 28, tzinfo=UTC)
END = START + timedelta(days=8)
NOW = END + timedelta(hours=3)
ZONES = ("America/New_York", "Asia/Kolkata", "Asia/Kathmandu")


@pytest.fixture(params=["postgres", pytest.param("citus", marks=pytest.mark.citus)])
def storage(request: pytest.FixtureRequest) -> Iterator[SqlStorage]:
    """A fresh migrated database of each kind."""
    with fresh_storage(request.param) as s:
        yield s


def random_events(org: uuid.UUID, n: int, seed: int, start: datetime = START,
                  days: int = 8) -> list[UsageEvent]:
    """Events over `days` days, 2 models, 2 clients, every status, some error codes."""
    rng = random.Random(seed)
    models = [uuid.UUID(int=seed * 1000 + i) for i in range(2)]
    out = []
    for _ in range(n):
        e = event(org, start + timedelta(minutes=rng.randrange(days * 24 * 60)),
                  model_id=rng.choice(models), latency_ms=rng.choice([0, 3, 90, 400, 9000]),
                  status=rng.choice(list(Status)))
        code = None if e.status is Status.SUCCESS else rng.choice(["E1", "E2"])
        out.append(attrs.evolve(e, client_id=rng.choice(["a", "b"]), error_code=code))
    return out


def ingest(storage: SqlStorage, events: list[UsageEvent], batch: int = 200) -> None:
    """Rollups of `events`, one committed transaction per batch."""
    for i in range(0, len(events), batch):
        with storage.unit_of_work() as uow:
            uow.rollups.add(build_rollups(events[i:i + batch]))
            uow.commit()


def base_rows(storage: SqlStorage, org: uuid.UUID) -> list[Rollup]:
    """Every 15-minute rollup of an org."""
    with storage.unit_of_work() as uow:
        return list(uow.rollups.query(org, datetime(2020, 1, 1, tzinfo=UTC),
                                      datetime(2030, 1, 1, tzinfo=UTC)))


def zone_rows(storage: SqlStorage, org: uuid.UUID, name: str) -> dict[RollupKey, RollupStats]:
    """The org's rows of one zone's day tier, by key."""
    t = rollups_zone_1d.c
    with storage.engine.connect() as conn:
        rows = conn.execute(sa.select(*(t[c] for c in ROLLUP_COLUMNS)).where(
            t.org_id == org, t.zone == name))
        return {r.key: r.stats for r in map(rollup_from_values, rows)}


def expected_days(storage: SqlStorage, org: uuid.UUID, name: str, through: datetime
                  ) -> dict[RollupKey, RollupStats]:
    """The base rows of days before `through` merged per local day of the zone."""
    index = PeriodIndex(Grain.DAY, tz_of(name))
    merged = coarsen(base_rows(storage, org), index.start_of)
    return {r.key: r.stats for r in merged if r.key.bucket_start < through}


def built_through(storage: SqlStorage, org: uuid.UUID, name: str) -> datetime:
    """The org's progress in a zone."""
    with storage.engine.connect() as conn:
        return conn.execute(sa.text(  # type: ignore[no-any-return]
            "SELECT built_through FROM zone_day_progress WHERE org_id = :o AND zone = :z"),
            {"o": org, "z": name}).scalar_one()


def check_reads(storage: SqlStorage, org: uuid.UUID, name: str, bounds: list[datetime]
                ) -> None:
    """aggregate() over `bounds` equals the core's merge of the base rows, in every grouping."""
    base = base_rows(storage, org)
    for group_by in ("model", "client", "none"):
        with storage.unit_of_work() as uow:
            assert isinstance(uow.rollups, SqlRollupStore)
            cells = uow.rollups.aggregate(org, bounds, group_by=group_by)
        inside = [r for r in base if bounds[0] <= r.key.bucket_start < bounds[-1]]
        assert cells == aggregate_rollups(inside, bounds, group_by, True)
        if bounds == boundaries(START, END, Grain.DAY, name):  # and equal the day series
            expected = group_series(inside, Grain.DAY, name, GroupBy(group_by))
            assert [(c[0], c[1], c[2]) for c in cells] == [
                (p.bucket_start, p.group, p.stats) for p in expected]


def zone_plan(storage: SqlStorage, org: uuid.UUID, bounds: list[datetime],
              family: RollupFamily = ROLLUPS) -> int:
    """How many local days a read of `family` over `bounds` takes from its zone day tier."""
    with storage.engine.connect() as conn:
        spans = zone_days.try_zone_spans(conn, org, bounds)
        conn.rollback()
    if spans is None:
        return 0
    ranges = [r for table, _, runs in read_plan(bounds, family, spans) for r in runs
              if table is family.zone]
    return sum(1 for start, _ in spans.spans if any(lo <= start < hi for lo, hi in ranges))


def add_zones(storage: SqlStorage) -> None:
    """List the three zones."""
    for name in ZONES:
        assert zone_days.add_zone(storage.engine, name, NOW)


def test_built_days_equal_merges_of_the_base_and_reads_use_them(storage: SqlStorage) -> None:
    """After a build, every zone's rows are the exact merges of their local days' base rows,
    progress stops at the last local midnight an hour before now, and day reads in each zone
    take the built days from the tier and still equal the core's merge of the base."""
    org = uuid.uuid4()
    ingest(storage, random_events(org, 900, seed=1))
    add_zones(storage)
    report = zone_days.build(storage.engine, NOW)
    assert report.zones == 3
    for name in ZONES:
        through = built_through(storage, org, name)
        assert through == period_start(floor_bucket(NOW - zone_days.LAG), Grain.DAY,
                                       tz_of(name))
        assert zone_rows(storage, org, name) == expected_days(storage, org, name, through)
        bounds = boundaries(START, END, Grain.DAY, name)
        assert zone_plan(storage, org, bounds) >= 6
        check_reads(storage, org, name, bounds)
    # A second build has nothing left to do.
    assert zone_days.build(storage.engine, NOW).days == 0


def test_a_build_out_of_time_stops_and_the_next_goes_on(storage: SqlStorage) -> None:
    """With a spent time budget a build runs one transaction and says it is not finished;
    builds repeated until one finishes leave exactly the rows of one whole build."""
    org = uuid.uuid4()
    ingest(storage, random_events(org, 300, seed=4, start=START - timedelta(days=40),
                                  days=48))
    add_zones(storage)
    first = zone_days.build(storage.engine, NOW, budget_seconds=0)
    assert (first.transactions, first.finished) == (1, False)
    builds = 1
    while not zone_days.build(storage.engine, NOW, budget_seconds=0).finished:
        builds += 1
        assert builds < 50
    assert builds >= 3 * 4 - 1  # 48 days in 14-day transactions, three zones
    for name in ZONES:
        through = built_through(storage, org, name)
        assert zone_rows(storage, org, name) == expected_days(storage, org, name, through)


def test_reads_cut_by_boundaries_inside_days_and_weeks_stay_exact(storage: SqlStorage) -> None:
    """Windows starting and ending mid-day, and week periods, read correctly."""
    org = uuid.uuid4()
    ingest(storage, random_events(org, 600, seed=2))
    add_zones(storage)
    zone_days.build(storage.engine, NOW)
    for name in ZONES:
        days = boundaries(START, END, Grain.DAY, name)
        bounds = [days[0] + timedelta(hours=5, minutes=15), *days[1:-1],
                  days[-2] + timedelta(hours=7)]
        check_reads(storage, org, name, bounds)
        weekly = [days[1], days[4], days[-2]]
        with storage.unit_of_work() as uow:
            assert isinstance(uow.rollups, SqlRollupStore)
            cells = uow.rollups.aggregate(org, weekly, group_by="none")
        base = [r for r in base_rows(storage, org)
                if weekly[0] <= r.key.bucket_start < weekly[-1]]
        totals = [sum(r.stats.invocations for r in base if a <= r.key.bucket_start < b)
                  for a, b in itertools.pairwise(weekly)]
        assert [c[2].invocations for c in cells] == totals


def test_late_events_and_catalog_deltas_reach_built_days(storage: SqlStorage) -> None:
    """Writes after a build into built days (late events, catalog-only restatement deltas)
    keep the built rows equal to the base and the reads exact; writes after the built
    midnight leave the tier alone."""
    org = uuid.uuid4()
    ingest(storage, random_events(org, 500, seed=3))
    add_zones(storage)
    zone_days.build(storage.engine, NOW)
    ingest(storage, random_events(org, 300, seed=4), batch=97)  # late, into built days
    model = uuid.UUID(int=3000)
    with storage.unit_of_work() as uow:
        uow.rollups.add([Rollup(RollupKey(org, model, "a", START + timedelta(hours=30)),
                                RollupStats(catalog_costs=(5, 0, 0, 0, 7, 0, 0), priced=1))])
        uow.commit()
    for name in ZONES:
        through = built_through(storage, org, name)
        assert zone_rows(storage, org, name) == expected_days(storage, org, name, through)
        check_reads(storage, org, name, boundaries(START, END, Grain.DAY, name))


def _waiting_advisory_locks(storage: SqlStorage) -> int:
    with storage.engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND classid = CAST(CAST(:c AS bigint) AS oid)"),
            {"c": zone_days.LOCK_CLASS}).scalar_one())


def test_a_build_waits_for_a_writer_of_the_org_and_loses_nothing(storage: SqlStorage) -> None:
    """A writer adds late rollups and has not committed when a build starts: the build waits
    for it (the org's lock), then reads its rows. Without the writer's shared lock the build
    would read the days without them and the writer would not add them to the tier."""
    org = uuid.uuid4()
    ingest(storage, random_events(org, 300, seed=5))
    add_zones(storage)
    late = random_events(org, 120, seed=6)
    uow = storage.unit_of_work()
    uow.__enter__()
    uow.rollups.add(build_rollups(late))
    result: list[object] = []
    builder = threading.Thread(target=lambda: result.append(
        zone_days.build(storage.engine, NOW)))
    builder.start()
    deadline = time.monotonic() + 30
    while _waiting_advisory_locks(storage) == 0:
        assert builder.is_alive(), "the build did not wait for the writer"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    uow.commit()
    uow.__exit__(None, None, None)
    builder.join(60)
    assert result
    for name in ZONES:
        through = built_through(storage, org, name)
        assert zone_rows(storage, org, name) == expected_days(storage, org, name, through)


def test_reads_skip_the_tier_while_a_build_holds_the_org(storage: SqlStorage) -> None:
    """While the org's lock is held exclusively, a read does not wait: it reads hours and
    15-minute rows, with the same result."""
    org = uuid.uuid4()
    ingest(storage, random_events(org, 300, seed=7))
    add_zones(storage)
    zone_days.build(storage.engine, NOW)
    bounds = boundaries(START, END, Grain.DAY, "Asia/Kolkata")
    with storage.engine.connect() as holder:
        holder.execute(sa.text("SELECT pg_advisory_xact_lock(:c, :k)"),
                       {"c": zone_days.LOCK_CLASS, "k": zone_days.org_lock_key(org)})
        assert zone_plan(storage, org, bounds) == 0
        check_reads(storage, org, "Asia/Kolkata", bounds)
        holder.rollback()
    assert zone_plan(storage, org, bounds) > 0


def test_removing_a_zone_deletes_its_rows_and_reads_stay_exact(storage: SqlStorage) -> None:
    """remove_zone unlists the zone and deletes its rows and progress."""
    org = uuid.uuid4()
    ingest(storage, random_events(org, 200, seed=8))
    add_zones(storage)
    assert not zone_days.add_zone(storage.engine, "Asia/Kolkata", NOW)  # already listed
    zone_days.build(storage.engine, NOW)
    assert zone_days.remove_zone(storage.engine, "Asia/Kolkata") > 0
    assert zone_rows(storage, org, "Asia/Kolkata") == {}
    zone_days.build(storage.engine, NOW)  # an unlisted zone is not built again
    assert zone_rows(storage, org, "Asia/Kolkata") == {}
    with storage.engine.connect() as conn:
        assert [z[0] for z in zone_days.zones(conn)] == ["America/New_York", "Asia/Kathmandu"]
    bounds = boundaries(START, END, Grain.DAY, "Asia/Kolkata")
    assert zone_plan(storage, org, bounds) == 0
    check_reads(storage, org, "Asia/Kolkata", bounds)


def test_purge_deletes_zone_days_with_the_rollups(storage: SqlStorage) -> None:
    """The rollup purge removes the zone days that start before its cutoff."""
    org = uuid.uuid4()
    old = [event(org, datetime(2025, 1, 10, 12, tzinfo=UTC)),
           event(org, datetime(2026, 10, 30, 12, tzinfo=UTC), model_id=uuid.uuid4())]
    ingest(storage, old)
    assert zone_days.add_zone(storage.engine, "Asia/Kolkata", NOW)
    zone_days.build(storage.engine, NOW)
    assert len(zone_rows(storage, org, "Asia/Kolkata")) == 2
    purge(storage.engine, NOW, rollup_months=12)
    remaining = zone_rows(storage, org, "Asia/Kolkata")
    assert [k.bucket_start.year for k in remaining] == [2026]


def test_catalog_only_delta_is_priced_in_the_day(storage: SqlStorage) -> None:
    """A delta with no invocations (a restatement) adds its costs to a built day row."""
    org = uuid.uuid4()
    e = attrs.evolve(event(org, START + timedelta(hours=12)), cost=Cents.parse("1"))
    ingest(storage, [e])
    assert zone_days.add_zone(storage.engine, "Asia/Kolkata", NOW)
    zone_days.build(storage.engine, NOW)
    with storage.unit_of_work() as uow:
        uow.rollups.add([Rollup(RollupKey(org, e.model_id, "c", floor_bucket(e.occurred_at)),
                                RollupStats(catalog_costs=(1, 2, 3, 4, 5, 6, 7), priced=1))])
        uow.commit()
    (stats,) = zone_rows(storage, org, "Asia/Kolkata").values()
    assert stats.catalog_costs == (1, 2, 3, 4, 5, 6, 7)
    assert stats.invocations == 1


ODD_ZONES = ("Australia/Lord_Howe", "Pacific/Chatham", "America/Havana", "America/Santiago",
             "Asia/Kathmandu", "America/St_Johns")


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_zone_any_build_time_and_late_writes_stay_exact(storage: SqlStorage,
                                                            data: st.DataObject) -> None:
    """Zones with DST at midnight, 30-minute DST and :45 offsets; a build at a random time;
    late events after it: built rows equal the base merge and day reads equal the core's."""
    org = uuid.uuid4()
    name = data.draw(st.sampled_from(ODD_ZONES))
    seed = data.draw(st.integers(0, 10_000))
    start = datetime(2026, 3, 26, tzinfo=UTC) + timedelta(
        days=data.draw(st.sampled_from([0, 14, 190, 200, 215])))
    ingest(storage, random_events(org, 150, seed=seed, start=start, days=6))
    zone_days.add_zone(storage.engine, name, NOW)
    now = start + timedelta(hours=data.draw(st.integers(20, 8 * 24)))
    zone_days.build(storage.engine, now)
    ingest(storage, random_events(org, 60, seed=seed + 1, start=start, days=6), batch=23)
    through = built_through(storage, org, name)
    assert zone_rows(storage, org, name) == expected_days(storage, org, name, through)
    check_reads(storage, org, name, boundaries(start, start + timedelta(days=6), Grain.DAY,
                                                name))
