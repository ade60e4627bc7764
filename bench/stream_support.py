"""Shared helpers of the stream benchmarks: consumer processes, offsets, memory, publishing."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL

from analytics_adapters.memory import InMemoryStorage, unit_of_work_factory
from analytics_adapters.rabbitmq import BrokerAddress, StreamRuntime, StreamTopology
from analytics_adapters.rabbitmq.runtime import OwnershipMode, StreamOptions
from analytics_adapters.rabbitmq.sac import broker_version
from analytics_adapters.sql import AdvisoryLockOwnership

ROOT = Path(__file__).resolve().parents[1]
ANALYTICS = str(Path(sys.executable).with_name("analytics"))
GROUP = "analytics-bench"
_SEEDS = itertools.count(time.time_ns())
BROKER = BrokerAddress(os.environ.get("ANALYTICS_BENCH_RABBITMQ_HOST", "127.0.0.1"),
                       int(os.environ.get("ANALYTICS_BENCH_RABBITMQ_PORT", "5552")))


def bench_runtime(partitions: int, database_url: str | None = None) -> StreamRuntime:
    """A runtime over fresh random partition streams (offsets read from `database_url`)."""
    topology = StreamTopology(f"analytics.bench.{uuid.uuid4().hex[:8]}", partitions)
    storage = None
    if database_url is not None:
        from analytics_adapters.sql import SqlStorage  # noqa: PLC0415

        storage = SqlStorage.from_url(database_url)
    uow = storage.unit_of_work if storage else unit_of_work_factory(InMemoryStorage())
    return StreamRuntime(StreamOptions(BROKER, topology, group=GROUP, progress_refresh=0.25),
                         uow, None if database_url is None
                         else functools.partial(AdvisoryLockOwnership, database_url, GROUP))


def consumer_env(url: URL, topology: StreamTopology, batch_size: int,
                 batch_wait_ms: int) -> dict[str, str]:
    """Environment of an `analytics consume` process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env.update({
        "ANALYTICS_DATABASE_URL": url.render_as_string(hide_password=False),
        "ANALYTICS_RABBITMQ_HOST": BROKER.host, "ANALYTICS_RABBITMQ_PORT": str(BROKER.port),
        "ANALYTICS_RABBITMQ_STREAM": topology.base,
        "ANALYTICS_RABBITMQ_PARTITIONS": str(topology.partitions),
        "ANALYTICS_RABBITMQ_CONSUMER_GROUP": GROUP,
        "ANALYTICS_RABBITMQ_BATCH_SIZE": str(batch_size),
        "ANALYTICS_RABBITMQ_BATCH_MAX_WAIT_MS": str(batch_wait_ms),
        "ANALYTICS_RABBITMQ_OWNERSHIP_POLL_SECONDS": "0.5",
        "ANALYTICS_RABBITMQ_STATUS_PORT": "0", "ANALYTICS_LOG_LEVEL": "WARNING",
    })
    return env


@contextlib.contextmanager
def consumers(env: dict[str, str], count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` consumer processes, stopped with SIGTERM on exit."""
    procs = [subprocess.Popen([ANALYTICS, "consume"], env=env, cwd=ROOT) for _ in range(count)]
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()


def rss_mib(pid: int) -> float:
    """Resident memory of a process in MiB (0 when it is gone)."""
    with contextlib.suppress(OSError, ValueError), open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def committed_messages(engine: sa.Engine, streams: Sequence[str]) -> int:
    """Messages committed by the bench group over every partition."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT stream, last_offset FROM stream_offsets WHERE consumer = :c"),
            {"c": GROUP},
        ).all()
    return sum(int(r[1]) + 1 for r in rows if r[0] in streams)


def stored_events(engine: sa.Engine) -> int:
    """Raw events stored."""
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM usage_events")).scalar_one())


async def broker_description(runtime: StreamRuntime) -> str:
    """"RabbitMQ <version>, <ownership scheme>" of the runtime's broker."""
    version = await broker_version(runtime.address)
    mode = await runtime.resolve_ownership()
    return f"RabbitMQ {'.'.join(map(str, version))}, ownership {mode.value}"


def wait_for_owners(engine: sa.Engine, runtime: StreamRuntime, consumers: int) -> None:
    """Until every partition has an owner: with advisory locks, one lock per partition and per
    consumer process; with single active consumer (the broker assigns partitions within a
    poll), a fixed 3 s."""
    if asyncio.run(runtime.resolve_ownership()) is OwnershipMode.SINGLE_ACTIVE_CONSUMER:
        time.sleep(3)
        return
    while owners(engine) < runtime.topology.partitions + consumers:
        time.sleep(0.2)


def owners(engine: sa.Engine) -> int:
    """Advisory locks held on the database (partitions owned plus member locks)."""
    with engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )).scalar_one())


async def publish_all(runtime: StreamRuntime, payloads: Sequence[tuple[bytes, str]]) -> float:
    """Publish as fast as confirms allow; seconds taken."""
    started = time.perf_counter()
    async with runtime.publisher(batch_size=500, max_in_flight=50_000) as publisher:
        for body, org in payloads:
            await publisher.send(body, org_id=org)
    return time.perf_counter() - started


async def publish_at(runtime: StreamRuntime, payloads: Sequence[tuple[bytes, str]],
                     rate: float) -> float:
    """Publish at `rate` messages per second in 10 ms ticks; achieved seconds."""
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    started = time.perf_counter()
    async with runtime.publisher(batch_size=500, linger=0.005,
                                 max_in_flight=50_000) as publisher:
        for i in range(0, len(payloads), per_tick):
            for body, org in payloads[i:i + per_tick]:
                await publisher.send(body, org_id=org)
            due = started + (i // per_tick + 1) * tick
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
    return time.perf_counter() - started


def payloads(count: int, start: datetime | None = None,
             span: timedelta = timedelta(minutes=2)) -> list[tuple[bytes, str]]:
    """Realistic events (benchdb's factory) with their org ids, occurring over `span`."""
    from benchdb import EventFactory  # noqa: PLC0415  bench-local module

    factory = EventFactory(seed=next(_SEEDS))  # a seed per call: no id repeats across calls
    bodies = factory.payloads(count, start or datetime.now(UTC) - span, span)
    return [(b, b[b.index(b'"orgId": "') + 10:][:36].decode()) for b in bodies]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q * len(ordered) + 0.5)))
    return ordered[rank - 1]
