"""Zone day tiers of the attribution rollups (PostgreSQL, Citus; migration 0019): built with
the rollups' days under the same progress, read by `groupBy=actor|tag:KEY` reads in a zone,
and kept exact by later writes (late events, restatements' catalog adjustments), removal and
purge."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import attrs
import pytest
import sqlalchemy as sa

from analytics_adapters.sql import SqlStorage, zone_days
from analytics_adapters.sql.convert import ROLLUP_COLUMNS, rollup_from_values
from analytics_adapters.sql.purge import purge
from analytics_adapters.sql.rollups import rollup_rows
from analytics_adapters.sql.schema import ATTRIBUTION
from analytics_adapters.sql.sqlite_rollups import coarsen
from analytics_core.attribution import group_of, value_of
from analytics_core.events import UsageEvent
from analytics_core.rollups import (
    Rollup,
    RollupKey,
    RollupStats,
    aggregate_rollups,
    build_rollups,
)
from analytics_core.timegrid import Grain, PeriodIndex, floor_bucket, period_start
from analytics_core.timegrid import zone as tz_of
from tests.integration.sql_support import boundaries
from tests.integration.test_sql_zone_days import (
    END,
    NOW,
    START,
    ZONES,
    add_zones,
    built_through,
    random_events,
    storage,
    zone_plan,
)

pytestmark = pytest.mark.postgres
__all__ = ["storage"]  # the fixture, one database per test
TEAMS = ("search", "ads", "infra", "lab")


def team_events(org: uuid.UUID, n: int, seed: int) -> list[UsageEvent]:
    """`random_events` whose client is the group key of a team."""
    rng = random.Random(seed)
    return [attrs.evolve(e, client_id=group_of("team", rng.choice(TEAMS)))
            for e in random_events(org, n, seed)]


def ingest(storage: SqlStorage, events: list[UsageEvent]) -> None:
    """The events' rollups and attribution rollups, as ingest writes them."""
    with storage.unit_of_work() as uow:
        uow.rollups.add(build_rollups(events))
        uow.attribution.add(build_rollups(events))
        uow.commit()


def base_rows(storage: SqlStorage, org: uuid.UUID) -> list[Rollup]:
    """Every 15-minute attribution row of an org."""
    with storage.engine.connect() as conn:
        return rollup_rows(conn, ATTRIBUTION.base, org, datetime(2020, 1, 1, tzinfo=UTC),
                           datetime(2030, 1, 1, tzinfo=UTC), model_ids=(), client_ids=())


def zone_rows(storage: SqlStorage, org: uuid.UUID, name: str) -> dict[RollupKey, RollupStats]:
    """The org's attribution rows of one zone's day tier, by key."""
    t = ATTRIBUTION.zone.c
    with storage.engine.connect() as conn:
        rows = conn.execute(sa.select(*(t[c] for c in ROLLUP_COLUMNS)).where(
            t.org_id == org, t.zone == name))
        return {r.key: r.stats for r in map(rollup_from_values, rows)}


def expected_days(storage: SqlStorage, org: uuid.UUID, name: str
                  ) -> dict[RollupKey, RollupStats]:
    """The attribution base rows of the built days merged per local day of the zone."""
    through = built_through(storage, org, name)
    merged = coarsen(base_rows(storage, org), PeriodIndex(Grain.DAY, tz_of(name)).start_of)
    return {r.key: r.stats for r in merged if r.key.bucket_start < through}


def check_reads(storage: SqlStorage, org: uuid.UUID, bounds: list[datetime]) -> None:
    """A read grouped by team equals the core's merge of the base rows."""
    inside = [r for r in base_rows(storage, org) if bounds[0] <= r.key.bucket_start < bounds[-1]]
    expected = [(start, value_of(group or ""), stats)
                for start, group, stats in aggregate_rollups(inside, bounds, "client", True)]
    with storage.unit_of_work() as uow:
        assert uow.attribution.aggregate(org, bounds, dimension="team") == expected


def test_attribution_days_are_built_with_the_rollups_and_reads_use_them(
    storage: SqlStorage,
) -> None:
    """One build writes both tiers; the attribution rows are the exact merges of their local
    days, and day reads by team in each zone take the built days and equal the base."""
    org = uuid.uuid4()
    ingest(storage, team_events(org, 700, seed=11))
    add_zones(storage)
    zone_days.build(storage.engine, NOW)
    for name in ZONES:
        assert built_through(storage, org, name) == period_start(
            floor_bucket(NOW - zone_days.LAG), Grain.DAY, tz_of(name))
        rows = zone_rows(storage, org, name)
        assert rows
        assert rows == expected_days(storage, org, name)
        bounds = boundaries(START, END, Grain.DAY, name)
        assert zone_plan(storage, org, bounds, ATTRIBUTION) >= 6
        check_reads(storage, org, bounds)


def test_late_events_and_catalog_adjustments_reach_built_days(storage: SqlStorage) -> None:
    """After a build: late attribution rows add to their built days; a restatement's catalog
    adjustment of an existing group adds to its day row, and one of a group that has no row
    (a key configured after ingest) creates none, as in the other tiers."""
    org = uuid.uuid4()
    ingest(storage, team_events(org, 400, seed=12))
    add_zones(storage)
    zone_days.build(storage.engine, NOW)
    ingest(storage, team_events(org, 250, seed=13))  # late, into built days
    some = base_rows(storage, org)[0].key
    missing = RollupKey(org, some.model_id, group_of("team", "nobody"), some.bucket_start)
    with storage.unit_of_work() as uow:
        uow.attribution.adjust_catalog([
            Rollup(some, RollupStats(catalog_costs=(5, 0, 0, 0, 7, 0, 0), priced=1)),
            Rollup(missing, RollupStats(catalog_costs=(9, 0, 0, 0, 0, 0, 0), priced=1))])
        uow.commit()
    for name in ZONES:
        rows = zone_rows(storage, org, name)
        assert rows == expected_days(storage, org, name)
        assert all(k.client_id != missing.client_id for k in rows)
        check_reads(storage, org, boundaries(START, END, Grain.DAY, name))
    assert sum(s.catalog_costs[0] for s in zone_rows(storage, org, ZONES[0]).values()) == 5


def test_removal_and_purge_delete_attribution_days(storage: SqlStorage) -> None:
    """Removing a zone deletes its attribution days; the purge deletes those before its
    cutoff."""
    org = uuid.uuid4()
    old = attrs.evolve(team_events(org, 1, seed=14)[0],
                       occurred_at=datetime(2025, 1, 10, 12, tzinfo=UTC))
    ingest(storage, [old, *team_events(org, 50, seed=15)])
    add_zones(storage)
    zone_days.build(storage.engine, NOW)
    assert zone_rows(storage, org, "Asia/Kolkata")
    zone_days.remove_zone(storage.engine, "Asia/Kolkata")
    assert zone_rows(storage, org, "Asia/Kolkata") == {}
    assert any(k.bucket_start.year == 2025 for k in zone_rows(storage, org, ZONES[0]))
    purge(storage.engine, NOW, rollup_months=12)
    assert zone_rows(storage, org, ZONES[0])
    assert all(k.bucket_start.year == 2026 for k in zone_rows(storage, org, ZONES[0]))
    assert all(k.bucket_start >= NOW - timedelta(days=400)
               for k in zone_rows(storage, org, ZONES[0]))
