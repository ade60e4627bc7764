"""The embedded default (SQLite file) at embedded scale: ingest throughput and query latency.

Usage: .venv/bin/python bench/sqlite_embedded.py [--events 50000] [--repeat 20]

In a temporary data directory:
1. ingest through `ingest_batch` (first pass, then a replay of the same batches) against a
   plain executemany INSERT of the same rows into `usage_events`;
2. query latency at embedded scale: 10 orgs, each with 5 models x 3 clients, 13 months of
   15-minute rollups (and their hour/day tiers) for the 2 largest and 35 days for the rest,
   for the largest and the median org, 7 and 31 days, through both read paths.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import EventFactory, machine
from query_postgres import report_via_aggregate, timed

from analytics_adapters.memory.clock import ManualClock
from analytics_adapters.memory.pipeline import SynchronousPipeline
from analytics_adapters.sql import SqlStorage, migrate_to_head
from analytics_adapters.sql.convert import STATUS_CODES
from analytics_adapters.sql.sqlite_rollups import floor_day, floor_hour
from analytics_adapters.sql.types import to_micros
from analytics_adapters.system import RandomIds
from analytics_app.http.render import reliability_body, usage_body
from analytics_core.event_parsing import parse_event
from analytics_core.events import Status, UsageEvent
from analytics_core.money import Cents
from analytics_core.rollups import RollupStats, merge_stats, stats_of
from analytics_core.timegrid import Grain
from analytics_core.usecases.ingest import RawMessage, decode_payload, ingest_batch
from analytics_core.usecases.queries import AnalyticsQuery, query_analytics

END = datetime(2026, 11, 30, tzinfo=UTC)
ORGS, LARGE = 10, 2


def ingest(path: Path, events: int, batch: int) -> None:
    """Print use-case ingest, replay and raw INSERT throughput."""
    now = datetime.now(UTC).replace(microsecond=0)
    clock, ids = ManualClock(now), RandomIds()
    payloads = EventFactory(seed=7).payloads(events, now - timedelta(minutes=15),
                                              timedelta(minutes=15))
    batches = [[RawMessage(p) for p in payloads[i:i + batch]]
               for i in range(0, events, batch)]
    url = f"sqlite:///{path / 'ingest.db'}"
    migrate_to_head(url)
    storage = SqlStorage.from_url(url)
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        for b in batches:
            ingest_batch(b, source="stream:bench", uow_factory=storage.unit_of_work,
                         clock=clock, ids=ids)
        timings.append(time.perf_counter() - started)
    storage.close()
    parsed = [parse_event(decode_payload(p), now=now, raw_retention=timedelta(days=400))
              for p in payloads]
    raw = raw_insert(path / "raw.db", parsed)
    print(f"events: {events} in batches of {batch}")
    print(f"use case, first ingest : {events / timings[0]:>9,.0f} events/s")
    print(f"use case, replay (dups): {events / timings[1]:>9,.0f} events/s")
    print(f"plain executemany INSERT: {events / raw:>8,.0f} rows/s")


def raw_insert(path: Path, events: list[UsageEvent]) -> float:
    """Seconds for one executemany INSERT of the rows into usage_events (one transaction)."""
    migrate_to_head(f"sqlite:///{path}")
    rows = [(e.org_id.hex, to_micros(e.occurred_at), e.event_id.hex, e.model_id.hex,
             STATUS_CODES[e.status], e.latency_ms, e.input_tokens, e.output_tokens,
             e.cost.units, None, e.client_id, e.error_code,
             json.dumps(dict(e.metadata)) if e.metadata else None) for e in events]
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(f"INSERT INTO usage_events VALUES ({','.join('?' * 13)})", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def templates(rng: random.Random) -> list[RollupStats]:
    """500 busy (20-300 events) and 500 quiet (1-30 events) 15-minute statistics."""
    out = []
    for i in range(1000):
        n = 20 + (i * 37) % 281 if i < 500 else 1 + (i * 13) % 30
        events = [UsageEvent(uuid.uuid4(), uuid.UUID(int=0), uuid.UUID(int=0), END,
                             Status.SUCCESS if rng.random() < 0.96 else Status.ERROR,
                             max(1, int(rng.lognormvariate(6.2, 0.7))), 300, 80,
                             Cents(rng.randrange(1000, 40000)), error_code="upstream_5xx")
                  for _ in range(n)]
        out.append(stats_of(events))
    return out


def row(org: uuid.UUID, at: datetime, model: uuid.UUID, client: str,
        s: RollupStats) -> tuple[object, ...]:
    """A rollup row as SQLite stores it."""
    bins = list(s.sketch.bins)
    return (org.hex, to_micros(at), model.hex, client, s.invocations, s.success, s.errors,
            s.timeouts, s.throttled, s.input_tokens, s.output_tokens, s.cost.units,
            s.latency_sum, s.latency_min, s.latency_max, s.sketch.zero_count,
            ",".join(map(str, bins)), ",".join(str(s.sketch.bins[b]) for b in bins),
            json.dumps(dict(s.error_codes)))


def build(path: Path) -> None:
    """Fill the three rollup tables at embedded scale, in time order."""
    rng = random.Random(11)
    base = templates(rng)
    tiers = {"rollups_1h": (timedelta(hours=1), 4), "rollups_1d": (timedelta(days=1), 96)}
    pools = {name: [merge_stats(rng.sample(base[:500] if i < 500 else base[500:], width))
                    for i in range(200)] for name, (_, width) in tiers.items()}
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    for table, step, pick in (("rollups_15m", timedelta(minutes=15), None),
                              ("rollups_1h", timedelta(hours=1), "rollups_1h"),
                              ("rollups_1d", timedelta(days=1), "rollups_1d")):
        at = floor_day(END - timedelta(days=396))
        sql = f"INSERT INTO {table} VALUES ({','.join('?' * 19)})"
        while at < END:
            rows = []
            for o in range(ORGS):
                if o >= LARGE and at < END - timedelta(days=35):
                    continue
                for m in range(5):
                    for c in range(3):
                        i = rng.randrange(500)
                        s = pools[pick][i % 200] if pick else base[i + (0 if o < LARGE else 500)]
                        rows.append(row(org_id(o), at, model_id(o, m), f"client-{c}", s))
            conn.executemany(sql, rows)
            at += step
    conn.execute("COMMIT")
    conn.close()
    assert floor_hour(END) == END


def org_id(rank: int) -> uuid.UUID:
    """Deterministic org id of a rank."""
    return uuid.UUID(int=rank + 1)


def model_id(org: int, k: int) -> uuid.UUID:
    """Deterministic model id."""
    return uuid.UUID(int=1000 + (org * 7 + k * 3) % 40)


def queries(path: Path, repeat: int) -> None:
    """Print p50/p95 latency for both read paths."""
    url = f"sqlite:///{path}"
    migrate_to_head(url)
    started = time.perf_counter()
    build(path)
    storage = SqlStorage.from_url(url)
    with storage.engine.connect() as conn:
        count = conn.exec_driver_sql("SELECT count(*) FROM rollups_15m").scalar_one()
    print(f"built {count:,} 15-minute rollups (+ tiers) in {time.perf_counter() - started:.0f} s,"
          f" file {path.stat().st_size / 2**20:,.0f} MiB")
    clock, progress = ManualClock(END), SynchronousPipeline()
    for label, rank in (("largest", 0), ("median", ORGS // 2)):
        for days in (7, 31):
            q = AnalyticsQuery(org_id(rank), END - timedelta(days=days), END, Grain.DAY)
            paths = {
                "query()+python": lambda q=q: query_analytics(
                    q, uow_factory=storage.unit_of_work, progress=progress, clock=clock),
                "aggregate()   ": lambda q=q: report_via_aggregate(
                    storage, q, clock, progress, True),
            }
            for name, report in paths.items():
                u = timed(lambda r=report: usage_body(r()), repeat)
                r = timed(lambda r=report: reliability_body(r(), "p95"), repeat)
                print(f"{label:7} org {days:2}-day {name}: usage p50 {u[0]:6.1f} p95 "
                      f"{u[1]:6.1f} ms | reliability p50 {r[0]:6.1f} p95 {r[1]:6.1f} ms")
    storage.close()


def main() -> None:
    """Run both parts in a temporary data directory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {machine()}; SQLite {sqlite3.sqlite_version}")
    with tempfile.TemporaryDirectory(prefix="analytics-bench-") as tmp:
        ingest(Path(tmp), args.events, args.batch)
        queries(Path(tmp) / "scale.db", args.repeat)


if __name__ == "__main__":
    main()
