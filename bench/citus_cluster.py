"""Stream -> Citus throughput with one and two worker nodes beside single-node PostgreSQL, and
the largest org's 7-day usage and reliability reads on each (SPEC §16, issue 18).

Usage: .venv/bin/python bench/citus_cluster.py [--seconds 40] [--backlog 600000]
       [--consumers 2] [--batch-size 10000] [--repeat 20] [--skip-queries] [--shards 8]

Needs the cluster of `.ci/citus` (started) and the RabbitMQ stream port. In one run, for each
target -- PostgreSQL on 5432, a Citus database with one worker, a Citus database with two
workers (`.ci/citus createdb`, `citus.shard_count` = `--shards`; for one worker the second is
removed before the migration, so every shard lands on the first) -- it:
1. creates the database and fresh partition streams, publishes a backlog of realistic events
   (250 orgs, benchdb's factory), runs `--consumers` real `analytics consume` processes and
   measures the committed-offset rate over `--seconds` from the first commit, and the CPU time
   each server (PostgreSQL, coordinator, each worker: postmaster and every backend) and the
   consumers spend per 1,000 events in that window; checks that committed == stored;
2. unless `--skip-queries`: loads `scale_data.sql` for the largest org only (13 months of
   15-minute rollups with every tier) and times the 7-day usage and reliability p95 reads for
   it (the use case + the HTTP renderer, UTC and Asia/Kolkata), `--repeat` times.
Ratios are against single-node PostgreSQL in the same run. Everything is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import sqlalchemy as sa  # noqa: E402
from benchdb import create_database, drop_database, machine, postgres_version  # noqa: E402
from export_bench import ALL_ORGS  # noqa: E402
from query_postgres import END, LARGEST_ORG, org_uuid  # noqa: E402
from sqlalchemy.engine import URL, make_url  # noqa: E402
from stream_support import (  # noqa: E402
    bench_runtime,
    broker_description,
    committed_messages,
    consumer_env,
    consumers,
    payloads,
    publish_all,
    stored_events,
)

from analytics_adapters.memory.clock import ManualClock  # noqa: E402
from analytics_adapters.memory.pipeline import SynchronousPipeline  # noqa: E402
from analytics_adapters.sql import SqlStorage, migrate_to_head  # noqa: E402
from analytics_app.http.render import reliability_body, usage_body  # noqa: E402
from analytics_core.timegrid import Grain  # noqa: E402
from analytics_core.usecases.queries import AnalyticsQuery, query_analytics  # noqa: E402

CITUS = HERE.parent / ".ci" / "citus"
TARGETS = ("postgres", "citus-1-worker", "citus-2-workers")
CITUS_STATE = Path("/var/tmp/analytics-citus")
# The servers whose CPU time is sampled: (label, postmaster.pid file).
SERVERS = (("postgres", Path("/var/run/postgresql/15-main.pid")),
           ("coordinator", CITUS_STATE / "coordinator-5440" / "postmaster.pid"),
           ("worker 5441", CITUS_STATE / "worker-5441" / "postmaster.pid"),
           ("worker 5442", CITUS_STATE / "worker-5442" / "postmaster.pid"))
TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (0 when it is gone)."""
    try:
        fields = _stat(pid)
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def server_cpu(pidfile: Path) -> float:
    """CPU seconds of a PostgreSQL server so far: the postmaster, its reaped children
    (cutime, cstime) and its live children."""
    try:
        postmaster = int(pidfile.read_text().split()[0])
        fields = _stat(postmaster)
    except (OSError, ValueError, IndexError):
        return 0.0
    total = sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                child = _stat(int(entry.name))
            except OSError:
                continue
            if int(child[1]) == postmaster:
                total += (int(child[11]) + int(child[12])) / TICK
    return total


def cpu_snapshot(pids: list[int]) -> dict[str, float]:
    """CPU seconds so far of every server and of the consumer processes together."""
    out = {label: server_cpu(path) for label, path in SERVERS}
    out["consumers"] = sum(process_cpu(pid) for pid in pids)
    return out


def _citus(*args: str) -> str:
    return subprocess.run([str(CITUS), *args], check=True, capture_output=True, text=True,
                          timeout=300).stdout


@contextmanager
def target_database(target: str, shards: int) -> Iterator[URL]:
    """A fresh migrated database for `target`, dropped on exit."""
    name = f"analytics_bench_citus_{uuid.uuid4().hex[:8]}"
    if target == "postgres":
        url = create_database(name)
        try:
            yield url
        finally:
            drop_database(name)
        return
    _citus("createdb", name)
    url = make_url(_citus("url", name).strip())
    try:
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        with engine.begin() as conn:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" SET citus.shard_count = {shards}')
        if target == "citus-1-worker":
            with engine.begin() as conn:
                last = conn.execute(sa.text(
                    "SELECT nodename, nodeport FROM pg_dist_node WHERE groupid > 0 "
                    "ORDER BY nodeport DESC LIMIT 1")).one()
                conn.execute(sa.text("SELECT citus_remove_node(:h, :p)"),
                             {"h": last.nodename, "p": last.nodeport})
        engine.dispose()
        migrate_to_head(url)
        yield url
    finally:
        _citus("dropdb", name)


def sustained(engine: sa.Engine, streams: tuple[str, ...], seconds: float, backlog: int,
              pids: list[int]) -> tuple[int, float, dict[str, float]]:
    """(messages committed, window seconds, CPU seconds per process group) from the first
    commit on."""
    while committed_messages(engine, streams) == 0:
        time.sleep(0.05)
    start_count, started = committed_messages(engine, streams), time.perf_counter()
    before = cpu_snapshot(pids)
    count = start_count
    while time.perf_counter() - started < seconds and count < backlog:
        time.sleep(0.5)
        count = committed_messages(engine, streams)
    after = cpu_snapshot(pids)
    cpu = {k: after[k] - before[k] for k in after}
    return count - start_count, time.perf_counter() - started, cpu


def stream_rate(url: URL, args: argparse.Namespace
                ) -> tuple[float, int, str, dict[str, float]]:
    """(events/s sustained, committed but not stored, broker description, CPU seconds per
    1,000 events of each server and of the consumers)."""
    runtime = bench_runtime(4, url.render_as_string(hide_password=False))
    streams = runtime.topology.streams
    try:
        events = payloads(args.backlog)
        asyncio.run(runtime.declare())
        asyncio.run(publish_all(runtime, events))
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        env = consumer_env(url, runtime.topology, args.batch_size, 200)
        with consumers(env, args.consumers) as procs:
            done, window, cpu = sustained(engine, streams, args.seconds, len(events),
                                          [p.pid for p in procs])
        lost = committed_messages(engine, streams) - stored_events(engine)
        engine.dispose()
        broker = asyncio.run(broker_description(runtime))
    finally:
        asyncio.run(runtime.delete())
    per_thousand = {k: v * 1000 / max(done, 1) for k, v in cpu.items() if v > 0.05}
    return done / window, lost, broker, per_thousand


def load_largest_org(url: URL) -> float:
    """scale_data.sql for the largest org only; seconds taken."""
    script = (HERE / "scale_data.sql").read_text()
    assert ALL_ORGS in script, "scale_data.sql changed: update load_largest_org"
    script = script.replace(ALL_ORGS,
                            f"FROM generate_series({LARGEST_ORG}, {LARGEST_ORG}) AS o(o)")
    started = time.perf_counter()
    subprocess.run(
        ["psql", url.render_as_string(hide_password=False).replace("+psycopg", ""), "-q",
         "-v", "ON_ERROR_STOP=1", "-v", f"end_ts={END.isoformat()}", "-f", "-"],
        input=script.encode(), check=True, capture_output=True)
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()
    return time.perf_counter() - started


def p95_ms(run: Callable[[], object], repeat: int) -> float:
    """p95 in milliseconds over `repeat` runs after one warm-up."""
    run()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return samples[max(0, round(0.95 * len(samples)) - 1)]


def read_p95s(url: URL, repeat: int) -> dict[str, float]:
    """7-day usage and reliability p95 (ms) for the largest org, in UTC and Asia/Kolkata."""
    storage = SqlStorage.from_url(url)
    clock, progress = ManualClock(END), SynchronousPipeline()
    out = {}
    try:
        for tz in ("UTC", "Asia/Kolkata"):
            query = AnalyticsQuery(org_uuid(LARGEST_ORG), END - timedelta(days=7), END,
                                   Grain.DAY, tz)

            def report(q: AnalyticsQuery = query) -> object:
                return query_analytics(q, uow_factory=storage.unit_of_work, progress=progress,
                                       clock=clock)

            out[f"usage {tz}"] = p95_ms(lambda r=report: usage_body(r()), repeat)
            out[f"reliability {tz}"] = p95_ms(
                lambda r=report: reliability_body(r(), "p95"), repeat)
    finally:
        storage.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--backlog", type=int, default=600_000)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--skip-queries", action="store_true")
    parser.add_argument("--shards", type=int, default=8,
                        help="citus.shard_count of the Citus databases (Citus's default: 32)")
    args = parser.parse_args()
    rates: dict[str, float] = {}
    reads: dict[str, dict[str, float]] = {}
    for target in TARGETS:
        with target_database(target, args.shards) as url:
            version = postgres_version(url)
            rate, lost, broker, cpu = stream_rate(url, args)
            rates[target] = rate
            print(f"{target:16} stream -> storage: {rate:9,.0f} events/s "
                  f"(x{args.consumers} consumers, batch {args.batch_size}, {args.seconds:.0f} s;"
                  f" committed but not stored: {lost})", flush=True)
            print(f"{'':16} CPU seconds per 1,000 events: " + "; ".join(
                f"{k} {v:.3f}" for k, v in cpu.items()), flush=True)
        if args.skip_queries:
            continue
        with target_database(target, args.shards) as url:
            seconds = load_largest_org(url)
            reads[target] = read_p95s(url, args.repeat)
            print(f"{target:16} largest org loaded in {seconds:.0f} s; 7-day p95: " + "; ".join(
                f"{k} {v:.1f} ms" for k, v in reads[target].items()), flush=True)
    print(f"machine: {machine()}; PostgreSQL {version}; {broker}")
    base = rates["postgres"]
    for target in TARGETS:
        print(f"{target:16} ingest ratio vs single-node PostgreSQL: {rates[target] / base:.2f}")
    if reads:
        for target in TARGETS[1:]:
            print(f"{target:16} read p95 ratio vs PostgreSQL (lower is faster): " + "; ".join(
                f"{k} {v / reads['postgres'][k]:.2f}" for k, v in reads[target].items()))


if __name__ == "__main__":
    main()
