"""Time and memory to produce a 31-day HOURLY usage export for the largest org on PostgreSQL.

Usage: .venv/bin/python bench/export_bench.py [--repeat 5] [--full] [--reuse NAME] [--keep]

The data comes from the planned-scale generator `scale_data.sql` (250 orgs, 40 models, each org
5 models x 3 clients, a rollup row per (model, client) in every 15-minute bucket, 13 months for
the 20 largest orgs). By default only the largest org is generated (its 13 months at full
density: exactly the rows the export reads; the other orgs only share heap pages with it);
`--full` builds the whole ~23-million-row database with `query_postgres.build`, and `--reuse`
measures a database built earlier with `--keep` (by this script or by `query_postgres.py`).

Measured: the real `ExportRunner.run_next` (claim, read rollups, zone-exact hourly merge,
CSV streamed to a local-directory object store with its SHA-256, manifest, CAS save), wall
time over `--repeat` runs, then the tracemalloc peak for 1-, 7- and 31-day windows (flat memory
means the peak does not grow with the window) and the process's ru_maxrss.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
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
from query_postgres import END, LARGEST_ORG, build, org_uuid  # noqa: E402

from analytics_adapters.localfs.object_store import LocalDirectoryObjectStore  # noqa: E402
from analytics_adapters.memory import ManualClock, SynchronousPipeline  # noqa: E402
from analytics_adapters.sql import SqlStorage  # noqa: E402
from analytics_adapters.system import RandomIds  # noqa: E402
from analytics_core.exports import ExportGranularity, ExportRequest, ExportStatus  # noqa: E402
from analytics_core.usecases.export_runner import ExportRunner  # noqa: E402
from analytics_core.usecases.exports import create_export  # noqa: E402

ALL_ORGS = "FROM generate_series(0, 249) AS o(o)"


def build_largest_only(name: str) -> sa.URL:
    """scale_data.sql restricted to the largest org (rank 0): its 13 months at full density."""
    script = (HERE / "scale_data.sql").read_text()
    assert ALL_ORGS in script, "scale_data.sql changed: update build_largest_only"
    script = script.replace(ALL_ORGS, f"FROM generate_series({LARGEST_ORG}, {LARGEST_ORG}) AS o(o)")
    url = create_database(name)
    started = time.perf_counter()
    subprocess.run(
        ["psql", url.render_as_string(hide_password=False).replace("+psycopg", ""),
         "-q", "-v", "ON_ERROR_STOP=1", "-v", f"end_ts={END.isoformat()}", "-f", "-"],
        input=script.encode(), check=True,
    )
    print(f"built {name} (largest org only) in {time.perf_counter() - started:.0f} s")
    return url


def export_once(storage: SqlStorage, objects: LocalDirectoryObjectStore, days: int,
                tz: str) -> tuple[float, int, int]:
    """Create and run one hourly export of the last `days` days; (seconds, rows, bytes)."""
    clock = ManualClock(END + timedelta(hours=1))
    request = ExportRequest(org_uuid(LARGEST_ORG), END - timedelta(days=days), END,
                            ExportGranularity.HOURLY, tz)
    create_export(request, initiated_by="bench", idempotency_key=None,
                  uow_factory=storage.unit_of_work, clock=clock, ids=RandomIds())
    runner = ExportRunner(f"bench-{uuid.uuid4().hex[:6]}", storage.unit_of_work, objects,
                          clock, SynchronousPipeline())
    started = time.perf_counter()
    job = runner.run_next()
    seconds = time.perf_counter() - started
    assert job is not None
    assert job.status is ExportStatus.SUCCEEDED, job
    assert job.object_key is not None
    assert job.row_count is not None
    size = sum(len(chunk) for chunk in objects.open(job.object_key))
    return seconds, job.row_count, size


def traced_peak(storage: SqlStorage, objects: LocalDirectoryObjectStore, days: int,
                tz: str) -> int:
    """tracemalloc peak (bytes) of one export of `days` days."""
    gc.collect()
    tracemalloc.start()
    try:
        export_once(storage, objects, days, tz)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def maxrss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(storage: SqlStorage, repeat: int) -> None:
    """Print wall times, tracemalloc peaks and ru_maxrss."""
    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        objects = LocalDirectoryObjectStore(Path(tmp))
        rss_before = maxrss_mib()
        for tz in ("UTC", "America/New_York"):
            export_once(storage, objects, 31, tz)  # warm-up (caches, zone tables)
            runs = [export_once(storage, objects, 31, tz) for _ in range(repeat)]
            times = sorted(r[0] for r in runs)
            _, rows, size = runs[0]
            print(f"31-day hourly export, tz {tz}: {rows:,} rows, {size / 2**20:.1f} MiB CSV; "
                  f"median {statistics.median(times):.2f} s, max {times[-1]:.2f} s "
                  f"over {repeat} runs")
        rss_after = maxrss_mib()
        for days in (1, 7, 31):
            peak = traced_peak(storage, objects, days, "America/New_York")
            print(f"tracemalloc peak, {days:2}-day hourly export: {peak / 2**20:6.1f} MiB")
        print(f"ru_maxrss: {rss_before:.0f} MiB before the exports, {rss_after:.0f} MiB after "
              f"the timed runs, {maxrss_mib():.0f} MiB at the end")


def main() -> None:
    """Build (or reuse) the database, print its size and the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--full", action="store_true", help="build every org (~23 M rows)")
    parser.add_argument("--reuse", metavar="NAME", help="measure an existing scale database")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    name = args.reuse or f"analytics_bench_export_{uuid.uuid4().hex[:8]}"
    if args.reuse and not database_exists(name):
        raise SystemExit(f"no database {name!r}")
    if args.reuse:
        url = server_url().set(database=name)
    else:
        url = build(name) if args.full else build_largest_only(name)
    storage = SqlStorage.from_url(url)
    try:
        with storage.engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM rollups_15m")).scalar_one()
            org_rows = conn.execute(sa.text(
                "SELECT count(*) FROM rollups_15m WHERE org_id = :o"),
                {"o": org_uuid(LARGEST_ORG)}).scalar_one()
        print(f"machine: {machine()}; PostgreSQL {postgres_version(url)}")
        print(f"database {name}: {count:,} rollup rows, {org_rows:,} of the largest org "
              f"(through {END:%Y-%m-%d})")
        measure(storage, args.repeat)
        if args.reuse:  # leave a reused database as it was: only rollups were read
            with storage.engine.begin() as conn:
                conn.execute(sa.text("DELETE FROM export_jobs WHERE initiated_by = 'bench'"))
    finally:
        storage.close()
        if not (args.keep or args.reuse):
            drop_database(name)


if __name__ == "__main__":
    started = datetime.now(UTC)
    main()
    print(f"total {(datetime.now(UTC) - started).total_seconds():.0f} s")
