"""Local day starts of a zone, and read plans that take built zone days."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from analytics_adapters.sql.rollup_query import ZoneSpans, read_plan
from analytics_adapters.sql.schema import rollups_1d, rollups_1h, rollups_15m, rollups_zone_1d
from analytics_core.timegrid import day_starts, zone


def test_day_starts_follow_dst_and_half_hour_offsets() -> None:
    """New York's 31 October has 24 hours and 1 November 25 (fall back); Kolkata's days start
    at 18:30 UTC."""
    start = datetime(2026, 10, 31, 4, tzinfo=UTC)
    ny = day_starts(start, start + timedelta(days=3), zone("America/New_York"))
    assert [b - a for a, b in itertools.pairwise(ny)] == [
        timedelta(hours=24), timedelta(hours=25)]
    assert ny[0] == start
    kolkata = day_starts(start, start + timedelta(days=2), zone("Asia/Kolkata"))
    assert kolkata == [datetime(2026, 10, 31, 18, 30, tzinfo=UTC),
                       datetime(2026, 11, 1, 18, 30, tzinfo=UTC)]
    assert day_starts(start, start - timedelta(minutes=15), zone("Asia/Kolkata")) == []


def test_a_plan_reads_built_zone_days_and_the_rest_from_hours_and_buckets() -> None:
    """Whole built local days inside one period come from the zone day tier; the partial
    days around them from hours and 15-minute buckets; unbuilt days as before."""
    tz = zone("Asia/Kolkata")
    first = datetime(2026, 11, 2, tzinfo=UTC)  # 05:30 local
    starts = day_starts(first, first + timedelta(days=4), tz)
    bounds = [first, *starts, first + timedelta(days=4)]
    built = ZoneSpans("Asia/Kolkata", tuple(itertools.pairwise(starts[:3])))  # 2 built days
    plan = {table.name: ranges for table, _, ranges in read_plan(bounds, zoned=built)}
    assert plan[rollups_zone_1d.name] == [(starts[0], starts[2])]
    assert rollups_1d.name not in plan
    assert plan[rollups_15m.name]  # the half hours around local midnights
    covered = sorted(r for ranges in plan.values() for r in ranges)
    assert covered[0][0] == bounds[0]
    assert covered[-1][1] == bounds[-1]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))
    without = {table.name for table, _, _ in read_plan(bounds)}
    assert without == {rollups_1h.name, rollups_15m.name}


def test_a_built_day_cut_by_a_boundary_is_not_read_from_the_tier() -> None:
    """A boundary inside a built day (a window starting mid-day) keeps that day out."""
    tz = zone("Asia/Kathmandu")
    starts = day_starts(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC),
                        tz)
    built = ZoneSpans("Asia/Kathmandu", tuple(itertools.pairwise(starts)))
    bounds = [starts[0] + timedelta(hours=2), starts[1], starts[2]]
    plan = {table.name: ranges for table, _, ranges in read_plan(bounds, zoned=built)}
    assert plan[rollups_zone_1d.name] == [(starts[1], starts[2])]
