"""A partition worker's database side: the stored offset, and each batch committed exactly once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from analytics_app.observability import tracing
from analytics_app.stream.backoff import pause
from analytics_app.stream.settings import ConsumerSettings
from analytics_app.stream.status import ConsumerStatus, PartitionState, StreamMetrics
from analytics_core.errors import OffsetGap, StoreUnavailable
from analytics_core.usecases.ingest import BatchResult, RawMessage, StreamCheckpoint

log = logging.getLogger("analytics_app.stream.partition")  # the partition worker's log


class IngestBatch(Protocol):
    """The ingest use case, bound: one batch and its checkpoint in one transaction."""

    def __call__(self, messages: Sequence[RawMessage], *, source: str,
                 checkpoint: StreamCheckpoint | None) -> BatchResult: ...


StoredOffset = Callable[[str, str], int | None]
"""(consumer group, stream) -> the last offset committed, None before the first."""


class Committer:
    """Reads the partition's stored offset and commits batches, holding them while the
    database is down (never dropping one unless told to give up)."""

    def __init__(self, stream: str, *, ingest: IngestBatch, stored_offset: StoredOffset,
                 settings: ConsumerSettings, status: ConsumerStatus, metrics: StreamMetrics,
                 stopping: asyncio.Event) -> None:
        self.stream, self.ingest, self.stored_offset = stream, ingest, stored_offset
        self.settings, self.status, self.metrics = settings, status, metrics
        self.stopping = stopping

    async def load_offset(self) -> tuple[bool, int | None]:
        """(loaded, the stored offset), retrying while the database is down; (False, None)
        once a stop is requested first."""
        backoff = self.settings.backoff()
        while not self.stopping.is_set():
            try:
                offset = await asyncio.to_thread(self.stored_offset, self.settings.group,
                                                 self.stream)
            except StoreUnavailable as e:
                self.database_down(e)
                await pause(self.stopping, backoff.next())
                continue
            return True, offset
        return False, None

    async def commit(self, batch: list[RawMessage], checkpoint: StreamCheckpoint,
                     gave_up: Callable[[], bool]) -> BatchResult | OffsetGap | None:
        """Commit `batch` with its checkpoint, retrying while storage is down. Returns the
        result, the OffsetGap the database raised (nothing committed), or None when
        `gave_up()` says to stop holding the batch (its offsets are read again later)."""
        backoff = self.settings.backoff()
        while True:
            started = time.monotonic()
            try:
                result = await self._ingest(batch, checkpoint)
            except OffsetGap as e:
                return e
            except StoreUnavailable as e:
                self.database_down(e)
                self.metrics.store_retries.inc()
                if gave_up():
                    log.error("partition %s: shutting down with %d uncommitted messages "
                              "(offsets to %d); they will be read again", self.stream,
                              len(batch), checkpoint.offset)
                    return None
                await asyncio.sleep(min(backoff.next(), 1.0) if self.stopping.is_set()
                                    else backoff.next())
                continue
            self._record(result, checkpoint.offset, time.monotonic() - started)
            return result

    async def _ingest(self, batch: list[RawMessage], checkpoint: StreamCheckpoint) -> BatchResult:
        """One commit attempt in a worker thread, inside an `ingest batch` span."""
        source = f"stream:{self.stream}"
        with tracing.ingest_batch_span(
            source, len(batch), tracing.event_trace_contexts(m.payload for m in batch),
        ) as span:
            result = await asyncio.to_thread(self.ingest, batch, source=source,
                                             checkpoint=checkpoint)
            span.set_attribute("analytics.ingest.batch_id", str(result.batch_id))
        return result

    def _record(self, result: BatchResult, last: int, seconds: float) -> None:
        self.metrics.record_batch(result, seconds)
        self.metrics.committed.labels(self.stream).set(last)
        log.debug("partition %s: batch %s committed through offset %d (%d accepted, "
                  "%d duplicate, %d rejected)", self.stream, result.batch_id, last,
                  result.accepted, result.duplicates, result.rejected,
                  extra={"batch_id": str(result.batch_id), "stream": self.stream,
                         "offset": last, "accepted": result.accepted,
                         "duplicates": result.duplicates, "rejected": result.rejected,
                         "conflicts": result.conflicts})

    def database_down(self, error: StoreUnavailable) -> None:
        """Log and report that the partition waits for the database."""
        log.warning("partition %s: database unavailable, holding the batch and retrying: %s",
                    self.stream, error)
        self.status.set(self.stream, PartitionState.WAITING_FOR_DATABASE, str(error))
