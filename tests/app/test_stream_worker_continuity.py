"""A partition worker never commits an offset past messages it did not store.

The worker runs against in-memory storage with scripted readers: each reader is opened at
the offset the worker asks for and hands out the chunks the script gives it for that
offset, so a broker that skips messages, a retention gap and a database that lost commits
can each be played exactly.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import attrs

from analytics_adapters.memory import InMemoryStorage, ManualClock, unit_of_work_factory
from analytics_adapters.system import RandomIds
from analytics_app.stream.partition import PartitionWorker
from analytics_app.stream.settings import ConsumerSettings
from analytics_app.stream.status import ConsumerStatus, StreamMetrics
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.usecases.ingest import RawMessage, StreamCheckpoint, ingest_batch
from tests.wiring import stream_ingest

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ORG = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
MODEL = uuid.UUID("00000000-0000-4000-8000-0000000000bb")
STREAM = "analytics.usage.test-0"
GROUP = "analytics"


def body(offset: int) -> bytes:
    """A valid event whose id encodes its stream offset."""
    return json.dumps({
        "eventId": str(uuid.UUID(int=offset + 1)), "orgId": str(ORG), "modelId": str(MODEL),
        "occurredAt": (NOW - timedelta(minutes=1)).isoformat(), "status": "success",
        "latencyMs": 10, "inputTokens": 1, "outputTokens": 1, "costEstimateCents": "0.01",
    }).encode()


@attrs.frozen
class Chunk:
    """A broker chunk as the worker sees it."""

    first_offset: int
    bodies: tuple[bytes, ...]
    retention_skipped: int = 0
    timestamp: datetime = NOW


def chunk(first: int, last: int, retention_skipped: int = 0) -> Chunk:
    """The chunk holding offsets first..last."""
    return Chunk(first, tuple(body(o) for o in range(first, last + 1)), retention_skipped)


class ScriptedReader:
    """Hands out the chunks scripted for its start offset, then nothing; an Event in the script
    holds the following chunks back until it is set."""

    def __init__(self, chunks: list[Chunk | asyncio.Event]) -> None:
        self._chunks = list(chunks)
        self.buffered = 0

    async def open(self) -> None:
        """Nothing to open."""

    async def next_chunk(self, timeout: float) -> Chunk | None:
        """The next scripted chunk, or None after a short wait."""
        while self._chunks and isinstance(self._chunks[0], asyncio.Event):
            if not self._chunks[0].is_set():
                await asyncio.sleep(min(timeout, 0.005))
                return None
            self._chunks.pop(0)
        if self._chunks:
            item = self._chunks.pop(0)
            assert isinstance(item, Chunk)
            return item
        await asyncio.sleep(min(timeout, 0.005))
        return None

    async def close(self) -> None:
        """Nothing to close."""


class Broker:
    """Reader factory: `script(start)` gives the chunks a reader opened at `start` delivers."""

    def __init__(self, script: Callable[[int], list[Chunk | asyncio.Event]]) -> None:
        self.script = script
        self.opened_at: list[int] = []

    def __call__(self, stream: str, after: int | None) -> ScriptedReader:
        start = 0 if after is None else after + 1
        self.opened_at.append(start)
        return ScriptedReader(self.script(start))


def stored_event_ids(uow_factory: UnitOfWorkFactory) -> set[int]:
    """Offsets (from the event ids) of every stored event."""
    with uow_factory() as uow:
        found = uow.events.fingerprints([(ORG, uuid.UUID(int=o + 1)) for o in range(200)])
    return {key[1].int - 1 for key in found}


def committed(uow_factory: UnitOfWorkFactory) -> int | None:
    """The worker's stored offset."""
    with uow_factory() as uow:
        return uow.offsets.get(GROUP, STREAM)


async def until(done: Callable[[], bool]) -> None:
    """Wait (at most 10 s) for `done()` to hold."""
    for _ in range(2000):
        if done():
            return
        await asyncio.sleep(0.005)


async def run_until(worker: PartitionWorker, done: Callable[[], bool]) -> None:
    """Run the worker until `done()` holds, then stop it cleanly."""
    task = asyncio.create_task(worker.run())
    await until(lambda: done() or task.done())
    worker.stop()
    await asyncio.wait_for(task, 5)


def make_worker(uow_factory: UnitOfWorkFactory, broker: Broker,
                metrics: StreamMetrics, stall_timeout: float = 15.0) -> PartitionWorker:
    """A worker with small batches that commit quickly."""
    settings = ConsumerSettings(group=GROUP, batch_size=10, batch_max_wait=0.01,
                                backoff_initial=0.001, backoff_max=0.01,
                                stall_timeout=stall_timeout)
    return PartitionWorker(STREAM, **stream_ingest(uow_factory, ManualClock(NOW), RandomIds()),
                           readers=broker, settings=settings,
                           status=ConsumerStatus(), metrics=metrics)


def gaps(metrics: StreamMetrics, where: str) -> float:
    """The offset-gap counter."""
    return metrics.offset_gaps.labels(where)._value.get()


def test_a_chunk_past_the_next_offset_is_dropped_and_the_partition_resubscribed() -> None:
    """The first reader skips offsets 10..19: the worker refuses the chunk, reopens at 10, and
    every message ends up stored exactly once."""
    uow_factory = unit_of_work_factory(InMemoryStorage())
    first_reader = True

    def script(start: int) -> list[Chunk | asyncio.Event]:
        nonlocal first_reader
        if first_reader:
            first_reader = False
            return [chunk(0, 9), chunk(20, 29)]  # a broker that skipped 10..19
        return [chunk(start, 29)]

    broker, metrics = Broker(script), StreamMetrics()
    worker = make_worker(uow_factory, broker, metrics)
    asyncio.run(run_until(worker, lambda: committed(uow_factory) == 29))

    assert committed(uow_factory) == 29
    assert stored_event_ids(uow_factory) == set(range(30))
    assert broker.opened_at == [0, 10]
    assert gaps(metrics, "reader") == 1


def test_a_gap_made_by_retention_is_accepted_and_counted() -> None:
    """Messages 10..19 were deleted before they were read: the worker goes on from 20."""
    uow_factory = unit_of_work_factory(InMemoryStorage())
    broker = Broker(lambda start: [chunk(0, 9), chunk(20, 29, retention_skipped=10)]
                    if start == 0 else [])
    metrics = StreamMetrics()
    worker = make_worker(uow_factory, broker, metrics)
    asyncio.run(run_until(worker, lambda: committed(uow_factory) == 29))

    assert committed(uow_factory) == 29
    assert stored_event_ids(uow_factory) == set(range(10)) | set(range(20, 30))
    assert metrics.retention_skipped._value.get() == 10
    assert gaps(metrics, "reader") == 0


def test_a_batch_starting_after_a_retention_gap_commits_past_the_stored_offset() -> None:
    """The stored offset is 9 and retention deleted 10..19: the batch starting at 20 is
    committed (the database check is lifted for it)."""
    storage = InMemoryStorage()
    uow_factory = unit_of_work_factory(storage)
    with uow_factory() as uow:
        uow.offsets.save(GROUP, STREAM, 9)
        uow.commit()
    broker = Broker(lambda start: [chunk(20, 29, retention_skipped=10)] if start == 10 else [])
    metrics = StreamMetrics()
    worker = make_worker(uow_factory, broker, metrics)
    asyncio.run(run_until(worker, lambda: committed(uow_factory) == 29))

    assert committed(uow_factory) == 29
    assert stored_event_ids(uow_factory) == set(range(20, 30))
    assert gaps(metrics, "database") == 0


def test_a_database_behind_the_worker_makes_it_re_read_from_the_stored_offset() -> None:
    """The database is restored from a backup holding offsets 0..9 after the worker committed
    through 19: the worker's next batch (20..29) is refused, and it re-reads from 10, so the
    restored database ends up with every message."""
    live, backup = InMemoryStorage(), InMemoryStorage()
    ingest_batch([RawMessage(body(o), o) for o in range(10)], source="backup",
                 uow_factory=unit_of_work_factory(backup), clock=ManualClock(NOW),
                 ids=RandomIds(), checkpoint=StreamCheckpoint(GROUP, STREAM, 9))
    current = [unit_of_work_factory(live)]

    async def scenario() -> tuple[Broker, StreamMetrics]:
        restored = asyncio.Event()
        broker = Broker(lambda start: [chunk(0, 9), chunk(10, 19), restored, chunk(20, 29)]
                        if start == 0 else [chunk(start, 29)])
        metrics = StreamMetrics()
        worker = make_worker(lambda: current[0](), broker, metrics)  # noqa: PLW0108  late-bound
        task = asyncio.create_task(worker.run())
        await until(lambda: committed(current[0]) == 19)
        current[0] = unit_of_work_factory(backup)  # the database is restored from the backup
        restored.set()
        await until(lambda: committed(current[0]) == 29)
        worker.stop()
        await asyncio.wait_for(task, 5)
        return broker, metrics

    broker, metrics = asyncio.run(scenario())

    assert stored_event_ids(current[0]) == set(range(30))
    assert gaps(metrics, "database") == 1
    assert broker.opened_at == [0, 10]


def test_a_subscription_that_stops_delivering_while_the_stream_holds_more_is_renewed() -> None:
    """The first subscription delivers 0..9 and then nothing, although the stream's tail is 29:
    after the stall timeout the worker resubscribes at 10 and gets the rest."""
    uow_factory = unit_of_work_factory(InMemoryStorage())
    broker = Broker(lambda start: [chunk(0, 9)] if start == 0 else [chunk(start, 29)])
    metrics = StreamMetrics()
    worker = make_worker(uow_factory, broker, metrics, stall_timeout=0.05)
    worker.tail = 29  # as the consumer's lag loop measures it
    asyncio.run(run_until(worker, lambda: committed(uow_factory) == 29))

    assert stored_event_ids(uow_factory) == set(range(30))
    assert broker.opened_at == [0, 10]
    assert metrics.stalls._value.get() == 1


def test_an_idle_subscription_is_kept_while_nothing_more_exists() -> None:
    """Caught up (tail 9 received): waiting longer than the stall timeout changes nothing."""
    uow_factory = unit_of_work_factory(InMemoryStorage())
    broker = Broker(lambda start: [chunk(0, 9)] if start == 0 else [])
    metrics = StreamMetrics()
    worker = make_worker(uow_factory, broker, metrics, stall_timeout=0.02)
    worker.tail = 9

    async def scenario() -> None:
        task = asyncio.create_task(worker.run())
        await until(lambda: committed(uow_factory) == 9)
        await asyncio.sleep(0.2)  # ten stall timeouts of waiting
        worker.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert broker.opened_at == [0]
    assert metrics.stalls._value.get() == 0
