"""PipelineProgress from the committed offsets versus what the partition streams hold (SPEC §4).

For each partition a *probe* subscription waits at the first offset not yet committed, with
credit for one chunk. While the consumer is caught up there is nothing at that offset and
the broker sends nothing; the moment a producer publishes past it, the broker pushes the chunk
and its write time becomes the partition's completeThrough. Every `refresh` seconds the
committed offsets are re-read and probes that fell behind the consumer move forward.

RabbitMQ 3.10 keeps a file of the stream open for every subscription made on a connection until
the connection closes, unsubscribed or not, so the probe connection is replaced after
`max_subscriptions` subscriptions: the broker's open files stay bounded (about 16 s of probing
at full speed with 4 partitions; without this a busy consumer exhausted the broker's 1,024 file
descriptors within minutes and stream connections started crashing with `emfile`).

completeThrough is `now` when every partition is caught up, otherwise the earliest broker
write time of a chunk holding an unaggregated message. "Behind" rests on what the broker
delivered: once a chunk showed data at or beyond a partition's first uncommitted offset, that
partition is behind until the committed offset passes the data, whether or not the broker
pushes the chunk again within `grace` after the probe moves (before, a re-subscribed probe that
saw nothing within 0.3 s was taken as caught up). While the broker or the database
cannot be read, it stays at the last instant verified complete, so the lag grows honestly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from datetime import UTC, datetime

import attrs
from rstream import exceptions as rs_errors
from rstream import schema
from rstream.client import Client

from analytics_adapters.rabbitmq.connection import (
    BROKER_ERRORS,
    BrokerAddress,
    close_quietly,
    connect,
)
from analytics_adapters.rabbitmq.subscription import StartAt, Subscription, chunk_time
from analytics_adapters.rabbitmq.topology import StreamTopology
from analytics_core.errors import StoreUnavailable
from analytics_core.ports import UnitOfWorkFactory

log = logging.getLogger(__name__)
_UNVERIFIABLE: tuple[type[BaseException], ...] = (
    StoreUnavailable, rs_errors.ServerError, *BROKER_ERRORS,
)


@attrs.define
class _Probe:
    stream: str
    target: int = -1
    subscription: Subscription | None = None
    task: asyncio.Task[None] | None = None
    behind_at: datetime | None = None
    # The highest offset the broker has shown to exist in the stream, and the write time of
    # the chunk that first showed data at or beyond the probe's target. Known data is a fact:
    # a probe that moves to a target at or below it stays behind until a committed offset
    # passes it, however long the broker takes to push the chunk again.
    seen_through: int = -1


@attrs.frozen
class PartitionProgress:
    """One partition as last seen: committed offset and, when behind, the oldest pending time."""

    stream: str
    committed: int | None
    behind_since: datetime | None


class StreamPipelineProgress:
    """A PipelineProgress for stream ingestion; safe to call from any thread."""

    def __init__(self, address: BrokerAddress, topology: StreamTopology, group: str,
                 uow_factory: UnitOfWorkFactory, *, refresh: float = 1.0, grace: float = 0.3,
                 started_at: datetime | None = None, max_subscriptions: int = 64) -> None:
        self.address, self.topology, self.group = address, topology, group
        self._uow_factory = uow_factory
        self._refresh, self._grace = refresh, grace
        self._lock = threading.Lock()
        self._probes = {s: _Probe(s) for s in topology.streams}
        self._committed: dict[str, int | None] = {}
        self._verified = False
        self._known_through = started_at or datetime.now(UTC)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._max_subscriptions = max(max_subscriptions, len(self._probes))
        self._subscribed = 0  # subscriptions made on the current probe connection
        self.connections = 0  # probe connections opened so far
        self.subscriptions = 0  # probe subscriptions made so far

    def complete_through(self, now: datetime) -> datetime:
        """Instant up to which every published event has been aggregated (<= now)."""
        self._ensure_started()
        with self._lock:
            if not self._verified:
                return min(self._known_through, now)
            behind = [p.behind_at for p in self._probes.values() if p.behind_at is not None]
        return min([now, *behind])

    def partitions(self) -> list[PartitionProgress]:
        """Per-partition state as of the last refresh (for metrics and the CLI)."""
        self._ensure_started()
        with self._lock:
            return [PartitionProgress(s, self._committed.get(s), p.behind_at)
                    for s, p in self._probes.items()]

    def close(self) -> None:
        """Stop the probe thread and its connection."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)

    def _ensure_started(self) -> None:
        # Started on first use, not at construction: gunicorn forks workers after the app is
        # built, and a thread does not survive a fork.
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._stop.clear()
                    self._thread = threading.Thread(
                        target=lambda: asyncio.run(self._main()), name="stream-progress",
                        daemon=True,
                    )
                    self._thread.start()

    async def _main(self) -> None:
        client: Client | None = None
        try:
            while not self._stop.is_set():
                try:
                    client = await self._cycle(client)
                except Exception:
                    log.exception("pipeline progress refresh failed")
                    self._mark_unverified()
                    await self._drop(client)
                    client = None
                await asyncio.sleep(self._refresh)
        finally:
            await self._drop(client)

    async def _cycle(self, client: Client | None) -> Client | None:
        try:
            committed = await asyncio.to_thread(self._read_committed)
            moves = sum(not _in_place(p, _target(committed.get(s)))
                        for s, p in self._probes.items())
            if client is not None and self._subscribed + moves > self._max_subscriptions:
                await self._drop(client)  # frees the files the broker keeps per subscription
                client = None
            if client is None or not client.is_connection_alive():
                await self._drop(client)
                client = await connect(self.address, "analytics-progress")
                self._subscribed = 0
                self.connections += 1
            await self._move_probes(client, committed)
            await asyncio.sleep(self._grace)  # let the broker push what it already holds
            self._mark_verified(client)
        except _UNVERIFIABLE as e:
            log.warning("pipeline progress cannot be verified: %r", e)
            self._mark_unverified()
            await self._drop(client)
            return None
        return client

    def _read_committed(self) -> dict[str, int | None]:
        with self._uow_factory() as uow:
            return {s: uow.offsets.get(self.group, s) for s in self.topology.streams}

    async def _move_probes(self, client: Client, committed: dict[str, int | None]) -> None:
        with self._lock:  # the offsets the probes now stand on, as `partitions()` reports them
            self._committed = committed
        for index, (stream, probe) in enumerate(self._probes.items()):
            target = _target(committed.get(stream))
            if _in_place(probe, target):
                continue
            await self._stop_probe(probe)  # unsubscribes, so its id is free again
            subscription = Subscription(client, index, stream)
            self._subscribed += 1
            self.subscriptions += 1
            await subscription.start(StartAt.offset(target), credit=1)
            with self._lock:
                # Data already seen at or beyond the new target keeps the partition behind
                # (with the older, conservative chunk time) until the broker pushes it again.
                behind = probe.behind_at if probe.seen_through >= target else None
                probe.target, probe.subscription, probe.behind_at = target, subscription, behind
            probe.task = asyncio.create_task(self._watch(probe, subscription, target))

    async def _watch(self, probe: _Probe, subscription: Subscription, target: int) -> None:
        while True:
            frame: schema.Deliver | None = await subscription.next_frame(3600)
            if frame is None:
                continue
            last = frame.chunk_first_offset + frame.num_records - 1
            with self._lock:
                probe.seen_through = max(probe.seen_through, last)
            if last >= target:
                with self._lock:
                    probe.behind_at = chunk_time(frame)
                return  # one chunk beyond the committed offset is all it needs to know
            await subscription.credit(1)  # a chunk below the target: wait for the next one

    def _mark_verified(self, client: Client) -> None:
        alive = client.is_connection_alive() and all(
            p.task is not None and (not p.task.done() or p.behind_at is not None)
            for p in self._probes.values()
        )
        now = datetime.now(UTC)
        with self._lock:
            if not alive:
                self._verified = False
                return
            self._verified = True
            behind = [p.behind_at for p in self._probes.values() if p.behind_at is not None]
            self._known_through = min([now, *behind])

    def _mark_unverified(self) -> None:
        with self._lock:
            self._verified = False

    async def _stop_probe(self, probe: _Probe) -> None:
        task, probe.task = probe.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        subscription, probe.subscription = probe.subscription, None
        if subscription is not None:
            await subscription.stop()

    async def _drop(self, client: Client | None) -> None:
        for probe in self._probes.values():
            await self._stop_probe(probe)
            probe.target = -1
        if client is not None:
            await close_quietly(client)


def _target(committed: int | None) -> int:
    """Where a partition's probe waits: the first offset not committed."""
    return 0 if committed is None else committed + 1


def _in_place(probe: _Probe, target: int) -> bool:
    """Whether the probe already waits at `target`."""
    return probe.target == target and probe.task is not None and not probe.task.done()
