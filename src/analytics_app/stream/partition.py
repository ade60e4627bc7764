"""One owned partition: read chunks, batch by size and time, commit each batch exactly once.

The worker is a small loop over three parts: its `Subscription` (the reader, reopened after the
broker is lost or goes silent), its `Batch` (messages in offset order, cut by size and age) and
its `Committer` (the stored offset, and each batch committed with its offset in one
transaction through the bound ingest use case).
"""

from __future__ import annotations

import asyncio
import logging
import time

from analytics_app.stream.batch import Batch
from analytics_app.stream.commit import Committer, IngestBatch, StoredOffset
from analytics_app.stream.reading import Chunk, ReaderFactory, messages_of
from analytics_app.stream.settings import ConsumerSettings
from analytics_app.stream.status import ConsumerStatus, PartitionState, StreamMetrics
from analytics_app.stream.subscription import Subscription
from analytics_core.errors import OffsetGap

log = logging.getLogger(__name__)
_IDLE_POLL = 0.25  # how often an idle worker notices a stop request


class PartitionWorker:
    """Consumes one partition until told to stop; then commits the batch in hand."""

    def __init__(self, stream: str, *, ingest: IngestBatch, stored_offset: StoredOffset,
                 readers: ReaderFactory, settings: ConsumerSettings, status: ConsumerStatus,
                 metrics: StreamMetrics) -> None:
        self.stream, self.settings, self.status, self.metrics = stream, settings, status, metrics
        self.stopping = asyncio.Event()
        self.committed: int | None = None
        self._stopped_at: float | None = None
        self._batch = Batch(settings.batch_size, settings.batch_max_wait)
        self._subscription = Subscription(stream, readers=readers, settings=settings,
                                          status=status, metrics=metrics,
                                          stopping=self.stopping)
        self._committer = Committer(stream, ingest=ingest, stored_offset=stored_offset,
                                    settings=settings, status=status, metrics=metrics,
                                    stopping=self.stopping)

    @property
    def tail(self) -> int | None:
        """The stream's last offset, as last measured (for the stall watchdog)."""
        return self._subscription.tail

    @tail.setter
    def tail(self, value: int | None) -> None:
        self._subscription.tail = value

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
            loaded, self.committed = await self._committer.load_offset()
            if not loaded:
                return
            self._batch.received = self.committed
            while not self.stopping.is_set():
                await self._fill_batch()
                if self._batch and (self._batch.full() or self._batch.due()
                                    or self._subscription.reader is None
                                    or self.stopping.is_set()):
                    await self._commit()
            if self._batch:
                await self._commit()
        finally:
            await self._subscription.close()
            self.status.forget(self.stream)

    async def _fill_batch(self) -> None:
        """Add messages until the batch is full or due, the broker is lost, or a stop comes."""
        batch = self._batch
        batch.take_carry()
        while not self.stopping.is_set() and not batch.full():
            due_in = batch.until_due() if batch else _IDLE_POLL
            if due_in <= 0 or (self._subscription.reader is None and batch):
                return
            reader = await self._subscription.open(batch.received)
            if reader is None:
                return
            chunk, more = await self._subscription.read(reader, min(due_in, _IDLE_POLL),
                                                        batch.received)
            if not more or (chunk is not None and not await self._take_chunk(chunk)):
                return

    async def _take_chunk(self, chunk: Chunk) -> bool:
        """Take a chunk that continues from the last offset taken; False (and resubscribe
        there) when it does not, unless retention deleted the messages in between."""
        messages = messages_of(chunk)
        expected = None if self._batch.received is None else self._batch.received + 1
        if expected is not None and messages and chunk.first_offset != expected:
            if chunk.first_offset < expected:  # delivered again: keep only the new ones
                messages = messages[expected - chunk.first_offset:]
            elif chunk.retention_skipped >= chunk.first_offset - expected:
                # the reader that accepted the gap has logged the range
                self.metrics.retention_skipped.inc(chunk.first_offset - expected)
                self._batch.after_retention = self._batch.after_retention or not self._batch
            else:
                log.error("partition %s: the broker delivered offset %d while %d was expected; "
                          "dropping the chunk and resubscribing at %d", self.stream,
                          chunk.first_offset, expected, expected)
                self.metrics.offset_gaps.labels("reader").inc()
                await self._subscription.close()
                return False
        self._batch.take(messages)
        return True

    async def _commit(self) -> None:
        """Commit the batch with its last offset; retry while storage is down, never drop it
        (unless the shutdown grace has passed: then it is read again later)."""
        checkpoint = self._batch.checkpoint(self.settings.group, self.stream)
        outcome = await self._committer.commit(self._batch.messages, checkpoint, self._gave_up)
        if outcome is None:
            self._batch.drop()
        elif isinstance(outcome, OffsetGap):
            await self._resume_after(outcome)
        else:
            self.committed = checkpoint.offset
            self._batch.committed()
            if self._subscription.reader is not None:
                self.status.set(self.stream, PartitionState.CONSUMING)

    async def _resume_after(self, gap: OffsetGap) -> None:
        """The database refused a batch that would skip messages: drop what is in hand and
        read again right after the stored offset (duplicates of it are deduplicated)."""
        log.error("partition %s: %s; re-reading from offset %d", self.stream, gap,
                  gap.stored + 1)
        self.metrics.offset_gaps.labels("database").inc()
        self._batch.rewind(gap.stored)
        self.committed = gap.stored
        await self._subscription.close()

    def _gave_up(self) -> bool:
        return (self._stopped_at is not None
                and time.monotonic() - self._stopped_at > self.settings.shutdown_grace)
