"""One owned partition: read chunks, batch by size and time, commit each batch exactly once."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import attrs

from analytics_app.observability import tracing
from analytics_app.stream.status import ConsumerStatus, PartitionState, StreamMetrics
from analytics_core.errors import OffsetGap, StoreUnavailable
from analytics_core.ports import (
    Clock,
    EventDecoder,
    FreshnessCache,
    IdGenerator,
    UnitOfWorkFactory,
)
from analytics_core.usecases.ingest import (
    DEFAULT_RAW_RETENTION,
    BatchResult,
    RawMessage,
    StreamCheckpoint,
    ingest_batch,
)

log = logging.getLogger(__name__)
_IDLE_POLL = 0.25  # how often an idle worker notices a stop request


class Chunk(Protocol):
    """Messages of one broker chunk at consecutive offsets."""

    @property
    def first_offset(self) -> int: ...

    @property
    def timestamp(self) -> datetime: ...

    @property
    def bodies(self) -> tuple[bytes, ...]: ...

    @property
    def retention_skipped(self) -> int:
        """Messages right before this chunk that retention deleted before they were read."""
        ...


class ChunkReader(Protocol):
    """A subscription to one partition that asks the broker for more only when taken from."""

    async def open(self) -> None: ...

    async def next_chunk(self, timeout: float) -> Chunk | None: ...

    async def close(self) -> None: ...

    @property
    def buffered(self) -> int: ...


ReaderFactory = Callable[[str, int | None], ChunkReader]
"""(stream, last offset already handled or None) -> a reader starting right after it."""


@attrs.frozen
class ConsumerSettings:
    """Batching, retry and shutdown behaviour of the consumer."""

    group: str = "analytics"
    batch_size: int = 10_000
    batch_max_wait: float = 0.5
    ownership_poll: float = 2.0
    backoff_initial: float = 0.2
    backoff_max: float = 30.0
    shutdown_grace: float = 30.0
    lag_interval: float = 5.0
    stall_timeout: float = 15.0
    raw_retention: timedelta = DEFAULT_RAW_RETENTION


@attrs.frozen
class IngestPorts:
    """What ingest_batch needs."""

    uow_factory: UnitOfWorkFactory
    clock: Clock
    ids: IdGenerator
    cache: FreshnessCache | None = None
    decoder: EventDecoder | None = None


class Backoff:
    """Exponential backoff with jitter, reset after a success."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum = initial, maximum
        self.delay = initial

    def next(self) -> float:
        """The delay to wait now; the following one doubles (up to the maximum)."""
        delay = self.delay * random.uniform(0.8, 1.2)  # noqa: S311  jitter, not a secret
        self.delay = min(self.delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        """Back to the initial delay."""
        self.delay = self.initial


class PartitionWorker:
    """Consumes one partition until told to stop; then commits the batch in hand."""

    def __init__(self, stream: str, *, ports: IngestPorts, readers: ReaderFactory,
                 settings: ConsumerSettings, status: ConsumerStatus,
                 metrics: StreamMetrics) -> None:
        self.stream = stream
        self.ports, self.readers, self.settings = ports, readers, settings
        self.status, self.metrics = status, metrics
        self.stopping = asyncio.Event()
        self.committed: int | None = None
        self._reader: ChunkReader | None = None
        self._batch: list[RawMessage] = []
        self._carry: list[RawMessage] = []  # the part of a chunk that did not fit the batch
        self._received: int | None = None  # last offset taken from the reader
        self._after_retention = False  # the batch may start past a retention gap
        self.tail: int | None = None  # the stream's last offset, as last measured
        self._starved = 0.0  # seconds spent waiting for a chunk since the last one
        self._batch_started = 0.0
        self._stopped_at: float | None = None

    def stop(self, *, abandon: bool = False) -> None:
        """Stop fetching; `run` commits what it holds (retrying for the shutdown grace, or
        once when `abandon`: the uncommitted offsets are then simply read again later)."""
        if abandon:
            self._stopped_at = time.monotonic() - self.settings.shutdown_grace - 1
        elif self._stopped_at is None:
            self._stopped_at = time.monotonic()
        self.stopping.set()

    async def run(self) -> None:
        """Load the stored offset, then read, batch and commit until stopped."""
        self.status.set(self.stream, PartitionState.STARTING)
        try:
            if not await self._load_offset():
                return
            self._received = self.committed
            while not self.stopping.is_set():
                await self._fill_batch()
                if self._batch and (self._batch_full() or self._batch_due()
                                    or self._reader is None or self.stopping.is_set()):
                    await self._commit()
            if self._batch:
                await self._commit()
        finally:
            await self._close_reader()
            self.status.forget(self.stream)

    async def _load_offset(self) -> bool:
        backoff = Backoff(self.settings.backoff_initial, self.settings.backoff_max)
        while not self.stopping.is_set():
            try:
                self.committed = await asyncio.to_thread(self._stored_offset)
                return True
            except StoreUnavailable as e:
                self._database_down(e)
                await self._pause(backoff.next())
        return False

    def _stored_offset(self) -> int | None:
        with self.ports.uow_factory() as uow:
            return uow.offsets.get(self.settings.group, self.stream)

    async def _fill_batch(self) -> None:
        """Add messages until the batch is full or due, the broker is lost, or a stop comes."""
        if self._carry:
            self._take(self._carry)
        while not self.stopping.is_set() and not self._batch_full():
            due_in = self._until_due() if self._batch else _IDLE_POLL
            if due_in <= 0 or (self._reader is None and self._batch):
                return
            reader = await self._ensure_reader()
            if reader is None:
                return
            waiting = time.monotonic()
            try:
                chunk = await reader.next_chunk(min(due_in, _IDLE_POLL))
            except StoreUnavailable as e:
                await self._broker_down(e)
                return
            self.metrics.buffered.labels(self.stream).set(reader.buffered)
            if chunk is None:
                self._starved += time.monotonic() - waiting
                if await self._stalled():
                    return
            else:
                self._starved = 0.0
                if not await self._take_chunk(chunk):
                    return

    async def _stalled(self) -> bool:
        """Resubscribe (True) when nothing was delivered for `stall_timeout` seconds of waiting
        although the stream holds messages past the last one received: a subscription the
        broker silently stopped serving would otherwise only be noticed by the connection's
        next heartbeat (60 s)."""
        tail, received = self.tail, self._received
        behind = tail is not None and (received is None or tail > received)
        if not behind or self._starved < self.settings.stall_timeout:
            return False
        log.warning("partition %s: nothing delivered for %.0f s while the stream holds offsets "
                    "up to %s (received %s); resubscribing", self.stream, self._starved, tail,
                    received)
        self.metrics.stalls.inc()
        self._starved = 0.0
        await self._close_reader()
        return True

    async def _take_chunk(self, chunk: Chunk) -> bool:
        """Take a chunk that continues from the last offset taken; False (and resubscribe
        there) when it does not, unless retention deleted the messages in between."""
        messages = _messages(chunk)
        expected = None if self._received is None else self._received + 1
        if expected is not None and messages and chunk.first_offset != expected:
            if chunk.first_offset < expected:  # delivered again: keep only the new ones
                messages = messages[expected - chunk.first_offset:]
            elif chunk.retention_skipped >= chunk.first_offset - expected:
                # the reader that accepted the gap has logged the range
                self.metrics.retention_skipped.inc(chunk.first_offset - expected)
                self._after_retention = self._after_retention or not self._batch
            else:
                log.error("partition %s: the broker delivered offset %d while %d was expected; "
                          "dropping the chunk and resubscribing at %d", self.stream,
                          chunk.first_offset, expected, expected)
                self.metrics.offset_gaps.labels("reader").inc()
                await self._close_reader()
                return False
        self._take(messages)
        return True

    def _take(self, messages: Sequence[RawMessage]) -> None:
        if not messages:
            return
        if not self._batch:
            self._batch_started = time.monotonic()
        room = self.settings.batch_size - len(self._batch)
        self._batch.extend(messages[:room])
        self._carry = list(messages[room:])
        self._received = messages[-1].offset

    def _batch_full(self) -> bool:
        return len(self._batch) >= self.settings.batch_size

    def _until_due(self) -> float:
        return self._batch_started + self.settings.batch_max_wait - time.monotonic()

    def _batch_due(self) -> bool:
        return self._until_due() <= 0

    async def _ensure_reader(self) -> ChunkReader | None:
        backoff = Backoff(self.settings.backoff_initial, self.settings.backoff_max)
        while self._reader is None and not self.stopping.is_set():
            reader = self.readers(self.stream, self._received)
            try:
                await reader.open()
            except StoreUnavailable as e:
                self.status.set(self.stream, PartitionState.WAITING_FOR_BROKER, str(e))
                self.metrics.broker_retries.inc()
                log.warning("partition %s: broker unavailable, retrying: %s", self.stream, e)
                await self._pause(backoff.next())
                continue
            self._reader, self._starved = reader, 0.0
            self.status.set(self.stream, PartitionState.CONSUMING)
        return self._reader

    async def _broker_down(self, error: StoreUnavailable) -> None:
        log.warning("partition %s: lost the broker connection: %s", self.stream, error)
        self.status.set(self.stream, PartitionState.WAITING_FOR_BROKER, str(error))
        self.metrics.broker_retries.inc()
        await self._close_reader()

    async def _close_reader(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            await reader.close()

    async def _commit(self) -> None:
        """Commit the batch with its last offset; retry while storage is down, never drop it."""
        batch = self._batch
        first, last = batch[0].offset, batch[-1].offset
        assert first is not None
        assert last is not None
        checkpoint = StreamCheckpoint(self.settings.group, self.stream, last,
                                      first_offset=None if self._after_retention else first)
        backoff = Backoff(self.settings.backoff_initial, self.settings.backoff_max)
        while True:
            started = time.monotonic()
            try:
                result = await self._ingest(batch, checkpoint)
            except OffsetGap as e:
                await self._resume_after(e)
                return
            except StoreUnavailable as e:
                self._database_down(e)
                self.metrics.store_retries.inc()
                if self._gave_up():
                    log.error("partition %s: shutting down with %d uncommitted messages "
                              "(offsets to %d); they will be read again", self.stream,
                              len(batch), last)
                    self._batch = []
                    return
                await asyncio.sleep(min(backoff.next(), 1.0) if self.stopping.is_set()
                                    else backoff.next())
                continue
            break
        self.metrics.record_batch(result, time.monotonic() - started)
        self.metrics.committed.labels(self.stream).set(last)
        self.committed, self._batch, self._after_retention = last, [], False
        if self._reader is not None:
            self.status.set(self.stream, PartitionState.CONSUMING)
        log.debug("partition %s: batch %s committed through offset %d (%d accepted, "
                  "%d duplicate, %d rejected)", self.stream, result.batch_id, last,
                  result.accepted, result.duplicates, result.rejected,
                  extra={"batch_id": str(result.batch_id), "stream": self.stream,
                         "offset": last, "accepted": result.accepted,
                         "duplicates": result.duplicates, "rejected": result.rejected,
                         "conflicts": result.conflicts})

    async def _ingest(self, batch: list[RawMessage], checkpoint: StreamCheckpoint) -> BatchResult:
        """One commit attempt in a worker thread, inside an `ingest batch` span."""
        with tracing.ingest_batch_span(
            f"stream:{self.stream}", len(batch),
            tracing.event_trace_contexts(m.payload for m in batch),
        ) as span:
            result = await asyncio.to_thread(
                ingest_batch, batch, source=f"stream:{self.stream}",
                uow_factory=self.ports.uow_factory, clock=self.ports.clock,
                ids=self.ports.ids, raw_retention=self.settings.raw_retention,
                checkpoint=checkpoint, cache=self.ports.cache, decoder=self.ports.decoder,
            )
            span.set_attribute("analytics.ingest.batch_id", str(result.batch_id))
        return result

    async def _resume_after(self, gap: OffsetGap) -> None:
        """The database refused a batch that would skip messages: drop what is in hand and
        read again right after the stored offset (duplicates of it are deduplicated)."""
        log.error("partition %s: %s; re-reading from offset %d", self.stream, gap,
                  gap.stored + 1)
        self.metrics.offset_gaps.labels("database").inc()
        self._batch, self._carry, self._after_retention = [], [], False
        self.committed = self._received = gap.stored
        await self._close_reader()

    def _gave_up(self) -> bool:
        return (self._stopped_at is not None
                and time.monotonic() - self._stopped_at > self.settings.shutdown_grace)

    def _database_down(self, error: StoreUnavailable) -> None:
        log.warning("partition %s: database unavailable, holding the batch and retrying: %s",
                    self.stream, error)
        self.status.set(self.stream, PartitionState.WAITING_FOR_DATABASE, str(error))

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            return


def _messages(chunk: Chunk) -> list[RawMessage]:
    first = chunk.first_offset
    return [RawMessage(body, first + i) for i, body in enumerate(chunk.bodies)]
