"""Ingest throughput on PostgreSQL: the real `ingest_batch` use case against a raw binary COPY.

Usage: .venv/bin/python bench/ingest_postgres.py [--events 200000] [--batch 5000]

Creates its own databases (dropped at the end unless --keep), generates stream-like JSON
events (250 orgs, 40 models, ~5 models and 3 clients per org, spread over --span-minutes), then
measures in one run:

1. first ingest through `ingest_batch` (decode, validate, fingerprint, dedupe, rollups and both
   tiers, freshness, one unit of work per batch) into an empty database;
2. replay of the same batches (every event already stored: all duplicates);
3. the storage part alone: the same unit of work (`add_new`, `rollups.add`, `freshness.touch`,
   commit) fed with events already parsed and rollup deltas already built;
4. a raw binary COPY of the same rows into `usage_events` of an empty database.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import EventFactory, machine, postgres_version, scratch_database, server_url

from analytics_adapters.memory.clock import ManualClock
from analytics_adapters.sql import SqlStorage
from analytics_adapters.sql.convert import STATUS_CODES
from analytics_adapters.system import RandomIds
from analytics_core.event_parsing import parse_event
from analytics_core.events import UsageEvent
from analytics_core.freshness import FreshnessMarker
from analytics_core.rollups import build_rollups
from analytics_core.usecases.ingest import RawMessage, decode_payload, ingest_batch

RAW_TYPES = ["uuid", "timestamptz", "uuid", "uuid", "int2", "int8", "int8", "int8", "int8",
             "uuid", "text", "text", "jsonb"]


def run_use_case(storage: SqlStorage, batches: list[list[RawMessage]], clock: ManualClock) -> float:
    """Seconds to ingest every batch through the use case."""
    ids = RandomIds()
    started = time.perf_counter()
    for batch in batches:
        ingest_batch(batch, source="stream:bench", uow_factory=storage.unit_of_work,
                     clock=clock, ids=ids)
    return time.perf_counter() - started


def run_storage(storage: SqlStorage, events: list[UsageEvent], batch: int, now: datetime) -> float:
    """Seconds for the storage part of ingest with parsing and rollup building done before."""
    chunks = [events[i:i + batch] for i in range(0, len(events), batch)]
    work = [(c, build_rollups(c), markers(c, now)) for c in chunks]
    started = time.perf_counter()
    for chunk, deltas, marks in work:
        with storage.unit_of_work() as uow:
            uow.events.add_new(chunk)
            uow.rollups.add(deltas)
            uow.freshness.touch(marks)
            uow.commit()
    return time.perf_counter() - started


def markers(events: list[UsageEvent], now: datetime) -> list[FreshnessMarker]:
    """One freshness marker per (org, model) of a batch."""
    latest: dict[tuple[object, object], FreshnessMarker] = {}
    for e in events:
        m = FreshnessMarker(e.org_id, e.model_id, e.occurred_at, now)
        key = (e.org_id, e.model_id)
        latest[key] = latest[key].merge(m) if key in latest else m
    return list(latest.values())


def raw_copy(storage: SqlStorage, events: list[UsageEvent]) -> float:
    """Seconds for one binary COPY of the same rows into usage_events."""
    from psycopg.types.json import Jsonb  # noqa: PLC0415  bench-only

    days = sorted({e.occurred_at.date() for e in events})
    with storage.engine.begin() as conn:
        conn.execute(__import__("sqlalchemy").text(
            "SELECT analytics_ensure_event_partitions(CAST(:d AS date[]))"), {"d": days})
    raw = storage.engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        started = time.perf_counter()
        with driver.cursor() as cur, cur.copy(
            "COPY usage_events (org_id, occurred_at, event_id, model_id, status, latency_ms, "
            "input_tokens, output_tokens, cost_units, actor_id, client_id, error_code, metadata)"
            " FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(RAW_TYPES)
            for e in events:
                copy.write_row((
                    e.org_id, e.occurred_at, e.event_id, e.model_id, STATUS_CODES[e.status],
                    e.latency_ms, e.input_tokens, e.output_tokens, e.cost.units, e.actor_id,
                    e.client_id, e.error_code, Jsonb(dict(e.metadata)) if e.metadata else None,
                ))
        driver.commit()
        return time.perf_counter() - started
    finally:
        raw.close()


def measure_round(args: argparse.Namespace, batches: list[list[RawMessage]],
                  events: list[UsageEvent], clock: ManualClock, now: datetime) -> dict[str, float]:
    """One round of the four measurements, each in a fresh database; seconds by name."""
    with scratch_database("analytics_bench_ingest", args.keep) as url:
        storage = SqlStorage.from_url(url)
        first = run_use_case(storage, batches, clock)
        replay = run_use_case(storage, batches, clock)
        storage.close()
    with scratch_database("analytics_bench_storage", args.keep) as url:
        storage = SqlStorage.from_url(url)
        alone = run_storage(storage, events, args.batch, now)
        storage.close()
    with scratch_database("analytics_bench_copy", args.keep) as url:
        storage = SqlStorage.from_url(url)
        copy = raw_copy(storage, events)
        storage.close()
    return {"first": first, "replay": replay, "alone": alone, "copy": copy}


def main() -> None:
    """Run the measurements (best of --rounds, the machine is shared) and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--span-minutes", type=int, default=15,
                        help="event times spread over this many minutes before now")
    parser.add_argument("--rounds", type=int, default=2, help="report the best of N rounds")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()

    now = datetime.now(UTC).replace(microsecond=0)
    clock = ManualClock(now)
    span = timedelta(minutes=args.span_minutes)
    payloads = EventFactory(seed=42).payloads(args.events, now - span, span)
    batches = [[RawMessage(p) for p in payloads[i:i + args.batch]]
               for i in range(0, len(payloads), args.batch)]
    events = [parse_event(decode_payload(p), now=now, raw_retention=timedelta(days=400))
              for p in payloads]

    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, seconds in measure_round(args, batches, events, clock, now).items():
            best[name] = min(seconds, best.get(name, seconds))
    first, replay, alone, copy = best["first"], best["replay"], best["alone"], best["copy"]
    url = server_url()

    n = len(payloads)
    print(f"machine: {machine()}; PostgreSQL {postgres_version(url)}")
    print(f"events: {n} in batches of {args.batch}, occurred over {args.span_minutes} min; "
          f"best of {args.rounds} rounds")
    print(f"use case, first ingest   : {n / first:>9,.0f} events/s ({first:.2f} s)")
    print(f"use case, replay (dups)  : {n / replay:>9,.0f} events/s ({replay:.2f} s)")
    print(f"storage part, first      : {n / alone:>9,.0f} events/s ({alone:.2f} s)")
    print(f"raw binary COPY          : {n / copy:>9,.0f} rows/s   ({copy:.2f} s)")
    print(f"ratio use case / COPY    : {copy / first:>9.2f}")
    print(f"ratio storage part / COPY: {copy / alone:>9.2f}")


if __name__ == "__main__":
    main()
