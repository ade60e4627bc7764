"""Sustained stream -> PostgreSQL throughput of `analytics consume`, beside a bare rstream read.

Usage: .venv/bin/python bench/stream_throughput.py [--seconds 60] [--backlog 900000]
       [--partitions 4] [--consumers 2] [--batch-size 10000]

In one run, on fresh random partition streams and a fresh database (both deleted at the end):
1. publishes a backlog of realistic events with the library publisher (confirmed);
2. reads the whole backlog with rstream's own `Consumer` (callback per message, no parsing,
   no storage): the bare broker->Python ceiling on this machine;
3. starts `--consumers` real `analytics consume` processes and measures the committed-offset
   rate over `--seconds` (every event parsed, validated, deduped, rolled up and committed with
   its offset in one PostgreSQL transaction per batch), sampling consumer memory;
4. reports the ratio and checks nothing was lost (stored events == committed messages).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from benchdb import machine, postgres_version, scratch_database
from rstream import Consumer, MessageContext, OffsetType
from rstream.constants import ConsumerOffsetSpecification
from stream_support import (
    BROKER,
    bench_runtime,
    broker_description,
    committed_messages,
    consumer_env,
    consumers,
    payloads,
    publish_all,
    rss_mib,
    stored_events,
)


async def bare_read(streams: tuple[str, ...], expected: int) -> float:
    """Seconds for rstream's Consumer to deliver `expected` messages from every partition."""
    done = asyncio.Event()
    seen = 0

    async def on_message(_message: bytes, _context: MessageContext) -> None:
        nonlocal seen
        seen += 1
        if seen >= expected:
            done.set()

    consumer = Consumer(BROKER.host, BROKER.port, username=BROKER.username,
                        password=BROKER.password)
    started = time.perf_counter()
    for stream in streams:
        await consumer.subscribe(stream, on_message, initial_credit=10,
                                 offset_specification=ConsumerOffsetSpecification(
                                     OffsetType.FIRST, None))
    await asyncio.wait_for(done.wait(), 600)
    elapsed = time.perf_counter() - started
    await consumer.close()
    return elapsed


def sustained(engine: sa.Engine, streams: tuple[str, ...], seconds: float, backlog: int,
              pids: list[int]) -> tuple[int, float, float]:
    """(messages committed, window seconds, max consumer RSS MiB) from the first commit on."""
    while committed_messages(engine, streams) == 0:
        time.sleep(0.05)
    start_count, started, peak = committed_messages(engine, streams), time.perf_counter(), 0.0
    count = start_count
    while time.perf_counter() - started < seconds and count < backlog:
        time.sleep(0.5)
        count = committed_messages(engine, streams)
        peak = max(peak, sum(rss_mib(p) for p in pids))
    return count - start_count, time.perf_counter() - started, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--backlog", type=int, default=900_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=10_000)
    args = parser.parse_args()
    with scratch_database("analytics_bench_stream") as url:
        runtime = bench_runtime(args.partitions, url.render_as_string(hide_password=False))
        streams = runtime.topology.streams
        try:
            events = payloads(args.backlog)
            asyncio.run(runtime.declare())
            publish_seconds = asyncio.run(publish_all(runtime, events))
            bare_seconds = asyncio.run(bare_read(streams, len(events)))
            engine = sa.create_engine(url, poolclass=sa.NullPool)
            env = consumer_env(url, runtime.topology, args.batch_size, 200)
            with consumers(env, args.consumers) as procs:
                done, window, peak = sustained(engine, streams, args.seconds, len(events),
                                               [p.pid for p in procs])
            lost = committed_messages(engine, streams) - stored_events(engine)
            version = postgres_version(url)
            broker = asyncio.run(broker_description(runtime))
        finally:
            asyncio.run(runtime.delete())
    bare_rate, e2e_rate = len(events) / bare_seconds, done / window
    print(f"machine: {machine()}; PostgreSQL {version}; {broker}")
    print(f"backlog: {len(events)} events over {args.partitions} partitions "
          f"(published at {len(events) / publish_seconds:,.0f}/s with confirms)")
    print(f"bare rstream Consumer read: {bare_rate:,.0f} msg/s")
    print(f"analytics consume x{args.consumers}, batch {args.batch_size}: {e2e_rate:,.0f} "
          f"events/s sustained over {window:.1f} s ({done} events)")
    print(f"ratio end-to-end / bare read: {e2e_rate / bare_rate:.2f}")
    print(f"consumer RSS (sum of processes) peak: {peak:.0f} MiB; "
          f"committed but not stored: {lost}")


if __name__ == "__main__":
    main()
