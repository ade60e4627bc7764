"""Freshness lag while publishing at a steady rate and during a burst, with memory and loss checks.

Usage: .venv/bin/python bench/stream_freshness.py [--steady-rate 3000] [--steady-seconds 60]
       [--burst-rate 15000] [--burst-seconds 20] [--partitions 4] [--consumers 2]

Starts `--consumers` real `analytics consume` processes on fresh partition streams and a fresh
database (both deleted at the end), then publishes at `--steady-rate` events/s, then at
`--burst-rate`, then waits until everything is committed. Every 0.25 s it samples the product's
own freshness lag (now - completeThrough, from StreamPipelineProgress: committed offsets versus
the streams) and the consumers' resident memory. Once every offset is committed, zero loss means
stored events == published events (all distinct).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa
from benchdb import machine, postgres_version, scratch_database
from stream_support import (
    bench_runtime,
    broker_description,
    committed_messages,
    consumer_env,
    consumers,
    payloads,
    percentile,
    publish_at,
    rss_mib,
    stored_events,
    wait_for_owners,
)

from analytics_adapters.rabbitmq import StreamRuntime


class Sampler:
    """Samples lag and consumer memory on a thread, tagged with the current phase."""

    def __init__(self, runtime: StreamRuntime, pids: list[int]) -> None:
        self.runtime, self.pids = runtime, pids
        self.phase = "idle"
        self.lag: dict[str, list[float]] = {}
        self.rss: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            now = datetime.now(UTC)
            lag = (now - self.runtime.progress.complete_through(now)).total_seconds()
            self.lag.setdefault(self.phase, []).append(lag)
            memory = sum(rss_mib(p) for p in self.pids)
            self.rss[self.phase] = max(self.rss.get(self.phase, 0.0), memory)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steady-rate", type=float, default=3000)
    parser.add_argument("--steady-seconds", type=float, default=60)
    parser.add_argument("--burst-rate", type=float, default=15000)
    parser.add_argument("--burst-seconds", type=float, default=20)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--batch-wait-ms", type=int, default=200)
    args = parser.parse_args()
    steady = payloads(int(args.steady_rate * args.steady_seconds))
    burst = payloads(int(args.burst_rate * args.burst_seconds))
    rates: dict[str, float] = {}
    with scratch_database("analytics_bench_fresh") as url:
        runtime = bench_runtime(args.partitions, url.render_as_string(hide_password=False))
        engine = sa.create_engine(url, poolclass=sa.NullPool)
        try:
            asyncio.run(runtime.declare())
            env = consumer_env(url, runtime.topology, args.batch_size, args.batch_wait_ms)
            with consumers(env, args.consumers) as procs:
                wait_for_owners(engine, runtime, args.consumers)
                with Sampler(runtime, [p.pid for p in procs]) as sampler:
                    for phase, events, rate in (("steady", steady, args.steady_rate),
                                                ("burst", burst, args.burst_rate)):
                        sampler.phase = phase
                        seconds = asyncio.run(publish_at(runtime, events, rate))
                        rates[phase] = len(events) / seconds
                    sampler.phase = "drain"
                    drain_started = time.perf_counter()
                    published = len(steady) + len(burst)
                    while (committed_messages(engine, runtime.topology.streams) < published
                           and time.perf_counter() - drain_started < 600):
                        time.sleep(0.25)
                    drain = time.perf_counter() - drain_started
            stored = stored_events(engine)
            version = postgres_version(url)
            broker = asyncio.run(broker_description(runtime))
        finally:
            runtime.close()
            asyncio.run(runtime.delete())
    print(f"machine: {machine()}; PostgreSQL {version}; {broker}; "
          f"{args.consumers} consumers over {args.partitions} partitions, batch "
          f"{args.batch_size} / {args.batch_wait_ms} ms")
    for phase in ("steady", "burst", "drain"):
        lags = sampler.lag.get(phase, [])
        rate = f"published {rates[phase]:,.0f}/s; " if phase in rates else ""
        print(f"{phase}: {rate}lag p50 {percentile(lags, 0.5):.2f} s, p95 "
              f"{percentile(lags, 0.95):.2f} s, max {max(lags, default=0):.2f} s; consumer RSS "
              f"peak {sampler.rss.get(phase, 0):.0f} MiB")
    print(f"drained {drain:.1f} s after the burst; stored {stored} of "
          f"{len(steady) + len(burst)} published (lost {len(steady) + len(burst) - stored})")


if __name__ == "__main__":
    main()
