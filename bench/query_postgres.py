"""Usage and reliability query latency on PostgreSQL at planned scale (~23 million rollups).

Usage: .venv/bin/python bench/query_postgres.py [--repeat 30] [--reuse NAME] [--keep]

Builds a dedicated database with `scale_data.sql` (250 orgs, 40 models, ~5 models and 3
clients per org, 13 months of 15-minute rollups for the 20 largest orgs and 35 days for the
rest), prints the row count, then times 7-day and 31-day usage and reliability queries for the
largest and the median org, rendered to the JSON bodies of the HTTP resources, through two read
paths: `query()+python` is the `query_analytics` use case as wired today (every 15-minute row
fetched by `RollupStore.query`, merged in Python); `aggregate()` reads through
`SqlRollupStore.aggregate` (the day tier here, counters and sketch bins summed in SQL).
`--reuse NAME` measures an existing database built earlier with `--keep`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchdb import (  # noqa: E402
    create_database,
    database_exists,
    drop_database,
    machine,
    postgres_version,
    server_url,
)

from analytics_adapters.memory.clock import ManualClock  # noqa: E402
from analytics_adapters.memory.pipeline import SynchronousPipeline  # noqa: E402
from analytics_adapters.sql import SqlStorage, zone_days  # noqa: E402
from analytics_adapters.sql.rollups import SqlRollupStore  # noqa: E402
from analytics_app.http.render import reliability_body, usage_body  # noqa: E402
from analytics_core.rollups import merge_stats  # noqa: E402
from analytics_core.timegrid import (  # noqa: E402
    Grain,
    ceil_bucket,
    floor_bucket,
    period_end,
    period_start,
    zone,
)
from analytics_core.usecases.queries import (  # noqa: E402
    AnalyticsQuery,
    AnalyticsReport,
    SeriesPoint,
    current_freshness,
    query_analytics,
)

END = datetime(2026, 11, 30, tzinfo=UTC)
LARGEST_ORG = 0
MEDIAN_ORG = 125  # orgs are ranked by volume; 125 of 250 is the median


def org_uuid(rank: int) -> uuid.UUID:
    """The id the generator gives the org of that rank (md5('org' || rank))."""
    import hashlib  # noqa: PLC0415  bench-only

    return uuid.UUID(hashlib.md5(f"org{rank}".encode()).hexdigest())


def build(name: str) -> sa.URL:
    """Create, migrate and fill the scale database; return its URL."""
    url = create_database(name)
    started = time.perf_counter()
    subprocess.run(
        ["psql", url.render_as_string(hide_password=False).replace("+psycopg", ""),
         "-q", "-v", "ON_ERROR_STOP=1", "-v", f"end_ts={END.isoformat()}",
         "-f", str(HERE / "scale_data.sql")],
        check=True,
    )
    print(f"built {name} in {time.perf_counter() - started:.0f} s")
    return url


def timed(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds over `repeat` runs (after one warm-up run)."""
    run()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, round(0.95 * len(samples)) - 1)]


def edges(query: AnalyticsQuery) -> list[datetime]:
    """Period boundaries of a query window, clipped to its 15-minute buckets."""
    tz = zone(query.tz)
    first, last = floor_bucket(query.start), ceil_bucket(query.end)
    out = [first]
    start = period_start(first, query.grain, tz)
    while (start := period_end(start, query.grain, tz)) < last:
        out.append(start)
    return [*out, last]


def report_via_aggregate(storage: SqlStorage, query: AnalyticsQuery, clock: ManualClock,
                         progress: SynchronousPipeline, latency: bool) -> AnalyticsReport:
    """What `query_analytics` returns, read through `SqlRollupStore.aggregate` (tiers + SQL)."""
    freshness = current_freshness(progress, clock)
    tz = zone(query.tz)
    with storage.unit_of_work() as uow:
        store = uow.rollups
        assert isinstance(store, SqlRollupStore)
        cells = store.aggregate(query.org_id, edges(query), group_by=query.group_by.value,
                                model_ids=query.model_ids, client_ids=query.client_ids,
                                latency=latency)
    series = []
    for start, group, stats in cells:
        label = period_start(start, query.grain, tz)
        series.append(SeriesPoint(label, period_end(label, query.grain, tz), group, stats))
    return AnalyticsReport(query, tuple(series), merge_stats(p.stats for p in series), freshness)


CASES = [
    *((label, rank, days, "UTC") for label, rank in (("largest", LARGEST_ORG),
                                                    ("median", MEDIAN_ORG))
      for days in (7, 31)),
    # Whole-hour offset (hour tier), +05:30 and +05:45 (hours and 15-minute rows), or the zone
    # day tiers with --zones.
    *(("largest", LARGEST_ORG, days, tz) for days in (7, 31)
      for tz in ("America/New_York", "Asia/Kolkata", "Asia/Kathmandu")),
]
ZONES = ("America/New_York", "Asia/Kolkata", "Asia/Kathmandu")


def measure_case(storage: SqlStorage, case: tuple[str, int, int, str], repeat: int) -> None:
    """Print p50/p95 of usage and reliability for one query through both read paths."""
    label, rank, days, tz = case
    clock, progress = ManualClock(END), SynchronousPipeline()
    query = AnalyticsQuery(org_uuid(rank), END - timedelta(days=days), END, Grain.DAY, tz)

    def current() -> AnalyticsReport:
        return query_analytics(query, uow_factory=storage.unit_of_work, progress=progress,
                               clock=clock)

    def tiered(latency: bool) -> AnalyticsReport:
        return report_via_aggregate(storage, query, clock, progress, latency)

    points = len(current().series)
    paths = {
        "query()+python": (lambda: usage_body(current()),
                           lambda: reliability_body(current(), "p95")),
        "aggregate()   ": (lambda: usage_body(tiered(False)),
                           lambda: reliability_body(tiered(True), "p95")),
    }
    for path, (usage, reliability) in paths.items():
        u, r = timed(usage, repeat), timed(reliability, repeat)
        print(f"{label:7} org {days:2}-day {tz:16} ({points:3} points) {path}: "
              f"usage p50 {u[0]:7.1f} p95 {u[1]:7.1f} ms | "
              f"reliability p50 {r[0]:7.1f} p95 {r[1]:7.1f} ms")


def build_zones(storage: SqlStorage) -> None:
    """List the three zones and build their days up to END (timed, with the tier's size)."""
    for tz in ZONES:
        zone_days.add_zone(storage.engine, tz, END)
    started = time.perf_counter()
    report = zone_days.build(storage.engine, END)
    with storage.engine.begin() as conn:
        conn.execute(sa.text("ANALYZE rollups_zone_1d"))
        count, size = conn.execute(sa.text(
            "SELECT count(*), pg_size_pretty(pg_total_relation_size('rollups_zone_1d')) "
            "FROM rollups_zone_1d")).one()
    print(f"zone day tiers {', '.join(ZONES)}: {report.days:,} org-days built for "
          f"{report.orgs} orgs in {time.perf_counter() - started:.0f} s "
          f"({report.transactions:,} transactions); rollups_zone_1d {count:,} rows, {size}",
          flush=True)


def main() -> None:
    """Build (or reuse) the database, print its size and the latencies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--reuse", metavar="NAME", help="measure an existing scale database")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--zones", action="store_true",
                        help="give New York, Kolkata and Kathmandu zone day tiers and build them "
                             "(timed) before measuring")
    args = parser.parse_args()

    name = args.reuse or f"analytics_bench_scale_{uuid.uuid4().hex[:8]}"
    if args.reuse and not database_exists(name):
        raise SystemExit(f"no database {name!r}")
    url = server_url().set(database=name) if args.reuse else build(name)
    storage = SqlStorage.from_url(url)
    try:
        with storage.engine.connect() as conn:
            sizes = {
                table: conn.execute(sa.text(
                    f"SELECT count(*), pg_size_pretty(pg_total_relation_size('{table}')) "
                    f"FROM {table}")).one()
                for table in ("rollups_15m", "rollups_1h", "rollups_1d")
            }
        print(f"machine: {machine()}; PostgreSQL {postgres_version(url)}")
        for table, (count, size) in sizes.items():
            print(f"database {name}: {table} {count:,} rows, {size}")
        if args.zones:
            build_zones(storage)
        for case in CASES:
            measure_case(storage, case, args.repeat)
    finally:
        storage.close()
        if not (args.keep or args.reuse):
            drop_database(name)


if __name__ == "__main__":
    main()
