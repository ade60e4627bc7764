"""Attribution reads by day in zones, with and without the attribution zone day tier.

Usage: .venv/bin/python bench/attribution_zones.py [--repeat 20]

The largest org of the planned-scale generator (scale_data.sql, its 13 months of rollups only,
`export_bench.build_largest_only`) gets attribution rows of the dimension `tag:team` copied from
its rollups (each client as a team: the same rows and sketches per tier), in a scratch
PostgreSQL database removed at the end. Then, in one run, for UTC, America/New_York,
Asia/Kolkata and Asia/Kathmandu, 7-day and 31-day reliability by team (`groupBy=tag:team`,
the use case rendered to the API body, p95 of `--repeat` reads): first with no zone listed,
then after `zone_days.build` for the three non-UTC zones (timed). Each zone's figure is also
printed as a ratio to UTC's in the same phase.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sqlalchemy as sa  # noqa: E402
from benchdb import drop_database, machine  # noqa: E402
from export_bench import build_largest_only  # noqa: E402
from query_postgres import END, LARGEST_ORG, org_uuid, timed  # noqa: E402

from analytics_adapters.memory import ManualClock, SynchronousPipeline  # noqa: E402
from analytics_adapters.sql import SqlStorage, zone_days  # noqa: E402
from analytics_adapters.sql.schema import ATTRIBUTION, ROLLUPS  # noqa: E402
from analytics_app.http.render import reliability_body  # noqa: E402
from analytics_core.attribution import SEPARATOR, AttributionSettings  # noqa: E402
from analytics_core.timegrid import Grain  # noqa: E402
from analytics_core.usecases.queries import (  # noqa: E402
    AnalyticsQuery,
    GroupBy,
    query_analytics,
)

ZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu")
SETTINGS = AttributionSettings(keys=("team",))


def copy_as_teams(storage: SqlStorage) -> int:
    """Every rollup row of every tier copied into the attribution tier of the same grain,
    its client as the team; returns the base rows copied."""
    copied = 0
    with storage.engine.begin() as conn:
        for source, target in zip(ROLLUPS.tables, ATTRIBUTION.tables, strict=True):
            columns = [c.name for c in source.columns]
            picked = [f"'tag:team{SEPARATOR}' || client_id" if c == "client_id" else c
                      for c in columns]
            rows = conn.execute(sa.text(
                f"INSERT INTO {target.name} ({', '.join(columns)}) "
                f"SELECT {', '.join(picked)} FROM {source.name}")).rowcount
            copied = copied or rows
        conn.execute(sa.text("ANALYZE"))
    return copied


def p95(storage: SqlStorage, days: int, tz: str, repeat: int) -> float:
    """p95 milliseconds of one reliability read by team."""
    query = AnalyticsQuery(org_uuid(LARGEST_ORG), END - timedelta(days=days), END, Grain.DAY,
                           tz, group_by=GroupBy.TAG, tag="team")
    clock, progress = ManualClock(END), SynchronousPipeline()

    def read() -> object:
        return reliability_body(query_analytics(
            query, uow_factory=storage.unit_of_work, progress=progress, clock=clock,
            attribution=SETTINGS), "p95")

    return timed(read, repeat)[1]


def phase(storage: SqlStorage, label: str, repeat: int) -> None:
    """Every zone and window, with each zone's ratio to UTC."""
    print(label, flush=True)
    for days in (7, 31):
        utc = 0.0
        for tz in ZONES:
            ms = p95(storage, days, tz, repeat)
            utc = utc or ms
            print(f"  {days:>2}-day {tz:<17} p95 {ms:7.1f} ms  ({ms / utc:.1f}x UTC)",
                  flush=True)


def main() -> None:
    """Build, copy, measure without and with the tier, drop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(machine(), flush=True)
    name = f"analytics_attr_zones_{int(time.time())}"
    url = build_largest_only(name)
    storage = SqlStorage.from_url(url)
    try:
        print(f"copied {copy_as_teams(storage):,} 15-minute rows as team attribution",
              flush=True)
        phase(storage, "without zone day tiers:", args.repeat)
        for tz in ZONES[1:]:
            zone_days.add_zone(storage.engine, tz, END)
        started = time.perf_counter()
        built = zone_days.build(storage.engine, END)
        print(f"zone day tiers (rollups and attribution) built for {', '.join(ZONES[1:])}: "
              f"{built.days:,} org-days in {time.perf_counter() - started:.1f} s "
              f"({built.transactions} transactions)", flush=True)
        with storage.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
        phase(storage, "with zone day tiers:", args.repeat)
    finally:
        storage.close()
        drop_database(name)


if __name__ == "__main__":
    main()
