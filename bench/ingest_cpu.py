"""CPU cost per event of ingest on PostgreSQL: this process's CPU and the PostgreSQL servers'.

Usage: .venv/bin/python bench/ingest_cpu.py [--events 60000] [--batch 2000]

Throughput on a shared machine is bounded by CPU, not by waiting: every ingested event costs
some CPU in the consumer process (Python) and some in PostgreSQL. This script measures both in
CPU seconds (process time of this process; utime+stime of every `postgres` process from
/proc), so the figures hold however busy the machine is, and prints the ceiling they imply:
cores / (Python + PostgreSQL µs per event).

Each measurement runs in a fresh database (dropped at the end) with the same events
(benchdb's factory: 250 orgs, ~5 models and 3 clients per org, over 15 minutes):

1. `ingest_batch` end to end, with a stream checkpoint and the msgspec decoder (what
   `analytics consume` runs per batch, with its garbage-collector settings unless
   `--default-gc`);
2. the storage part with parsing and rollup building done before: raw events only, rollups
   only (15-minute base and both tiers), then both.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import EventFactory, machine, postgres_version, scratch_database, server_url

from analytics_adapters.memory.clock import ManualClock
from analytics_adapters.msgspec_codec import MsgspecEventDecoder
from analytics_adapters.sql import SqlStorage
from analytics_adapters.system import RandomIds
from analytics_app.stream.gc_tuning import tune_for_batches
from analytics_core.event_parsing import parse_event
from analytics_core.events import UsageEvent
from analytics_core.rollups import Rollup, build_rollups
from analytics_core.usecases.ingest import (
    RawMessage,
    StreamCheckpoint,
    decode_payload,
    ingest_batch,
)


def postgres_cpu_seconds() -> float:
    """utime + stime of every process named `postgres` (server and backends)."""
    ticks = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def measure(run: Callable[[SqlStorage], None], n: int) -> tuple[float, float, float]:
    """(events/s wall, Python µs/event, PostgreSQL µs/event) of `run` in a fresh database."""
    with scratch_database("analytics_bench_cpu") as url:
        storage = SqlStorage.from_url(url)
        try:
            wall, cpu, pg = time.perf_counter(), time.process_time(), postgres_cpu_seconds()
            run(storage)
            wall = time.perf_counter() - wall
            cpu = time.process_time() - cpu
            pg = postgres_cpu_seconds() - pg
        finally:
            storage.close()
    return n / wall, cpu / n * 1e6, pg / n * 1e6


def main() -> None:
    """Run the measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--default-gc", action="store_true",
                        help="keep CPython's collector settings (the consumer tunes them)")
    args = parser.parse_args()
    if not args.default_gc:
        # As `analytics consume` does after start-up, before any message exists (the inputs
        # built below stay subject to collection, as a consumer's batch in hand is).
        tune_for_batches()

    now = datetime.now(UTC).replace(microsecond=0)
    clock, span = ManualClock(now), timedelta(minutes=15)
    payloads = EventFactory(seed=42).payloads(args.events, now - span, span)
    messages = [RawMessage(p, i) for i, p in enumerate(payloads)]
    batches = [messages[i:i + args.batch] for i in range(0, len(messages), args.batch)]
    events = [parse_event(decode_payload(p), now=now, raw_retention=timedelta(days=400))
              for p in payloads]
    prepared: list[tuple[list[UsageEvent], list[Rollup]]] = [
        (events[i:i + args.batch], build_rollups(events[i:i + args.batch]))
        for i in range(0, len(events), args.batch)
    ]
    n = len(payloads)

    def use_case(storage: SqlStorage) -> None:
        ids, decoder = RandomIds(), MsgspecEventDecoder()
        for batch in batches:
            last = batch[-1].offset
            assert last is not None
            ingest_batch(batch, source="stream:bench", uow_factory=storage.unit_of_work,
                         clock=clock, ids=ids, decoder=decoder,
                         checkpoint=StreamCheckpoint("bench", "bench-0", last,
                                                     first_offset=batch[0].offset))

    def storage_part(events_too: bool, rollups_too: bool) -> Callable[[SqlStorage], None]:
        def run(storage: SqlStorage) -> None:
            for chunk, deltas in prepared:
                with storage.unit_of_work() as uow:
                    if events_too:
                        uow.events.add_new(chunk)
                    if rollups_too:
                        uow.rollups.add(deltas)
                    uow.commit()
        return run

    keys = sum(len(d) for _, d in prepared) / len(prepared)
    print(f"machine: {machine()}; PostgreSQL {postgres_version(server_url())}")
    print(f"events: {n} in batches of {args.batch} ({keys:.0f} rollup keys per batch)")
    print(f"{'measurement':<34} {'events/s':>9} {'Python µs/ev':>13} {'PostgreSQL µs/ev':>17}")
    rows = [
        ("ingest_batch (stream checkpoint)", use_case),
        ("storage: raw events only", storage_part(True, False)),
        ("storage: rollups only (3 tiers)", storage_part(False, True)),
        ("storage: both", storage_part(True, True)),
    ]
    cores = os.cpu_count() or 1
    for name, run in rows:
        rate, python, pg = measure(run, n)
        print(f"{name:<34} {rate:>9,.0f} {python:>13.1f} {pg:>17.1f}")
        if run is use_case:
            ceiling = cores / ((python + pg) / 1e6)
    print(f"CPU ceiling of ingest_batch on {cores} cores (no broker, nothing else running): "
          f"{ceiling:,.0f} events/s")


if __name__ == "__main__":
    main()
