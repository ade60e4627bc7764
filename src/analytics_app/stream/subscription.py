"""A partition worker's subscription: opened with backoff, watched for stalls, closed on loss."""

from __future__ import annotations

import asyncio
import logging
import time

from analytics_app.stream.backoff import pause
from analytics_app.stream.reading import Chunk, ChunkReader, ReaderFactory
from analytics_app.stream.settings import ConsumerSettings
from analytics_app.stream.status import ConsumerStatus, PartitionState, StreamMetrics
from analytics_core.errors import StoreUnavailable

log = logging.getLogger("analytics_app.stream.partition")


class Subscription:
    """The reader of one partition, reopened after the broker is lost or goes silent."""

    def __init__(self, stream: str, *, readers: ReaderFactory, settings: ConsumerSettings,
                 status: ConsumerStatus, metrics: StreamMetrics,
                 stopping: asyncio.Event) -> None:
        self.stream, self.readers, self.settings = stream, readers, settings
        self.status, self.metrics, self.stopping = status, metrics, stopping
        self.reader: ChunkReader | None = None
        self.tail: int | None = None  # the stream's last offset, as last measured
        self._starved = 0.0  # seconds spent waiting for a chunk since the last one

    async def open(self, after: int | None) -> ChunkReader | None:
        """The open reader, subscribing right after `after` (retrying while the broker is
        down); None once a stop is requested."""
        backoff = self.settings.backoff()
        while self.reader is None and not self.stopping.is_set():
            reader = self.readers(self.stream, after)
            try:
                await reader.open()
            except StoreUnavailable as e:
                self.status.set(self.stream, PartitionState.WAITING_FOR_BROKER, str(e))
                self.metrics.broker_retries.inc()
                log.warning("partition %s: broker unavailable, retrying: %s", self.stream, e)
                await pause(self.stopping, backoff.next())
                continue
            self.reader, self._starved = reader, 0.0
            self.status.set(self.stream, PartitionState.CONSUMING)
        return self.reader

    async def read(self, reader: ChunkReader, timeout: float,
                   received: int | None) -> tuple[Chunk | None, bool]:
        """(the next chunk or None, whether to keep reading): False after the broker was lost
        or the subscription stalled, both of which close the reader."""
        waiting = time.monotonic()
        try:
            chunk = await reader.next_chunk(timeout)
        except StoreUnavailable as e:
            await self._broker_down(e)
            return None, False
        self.metrics.buffered.labels(self.stream).set(reader.buffered)
        if chunk is not None:
            self._starved = 0.0
            return chunk, True
        self._starved += time.monotonic() - waiting
        return None, not await self._stalled(received)

    async def _stalled(self, received: int | None) -> bool:
        """Resubscribe (True) when nothing was delivered for `stall_timeout` seconds of waiting
        although the stream holds messages past the last one received: a subscription the
        broker silently stopped serving would otherwise only be noticed by the connection's
        next heartbeat (60 s)."""
        tail = self.tail
        behind = tail is not None and (received is None or tail > received)
        if not behind or self._starved < self.settings.stall_timeout:
            return False
        log.warning("partition %s: nothing delivered for %.0f s while the stream holds offsets "
                    "up to %s (received %s); resubscribing", self.stream, self._starved, tail,
                    received)
        self.metrics.stalls.inc()
        self._starved = 0.0
        await self.close()
        return True

    async def _broker_down(self, error: StoreUnavailable) -> None:
        log.warning("partition %s: lost the broker connection: %s", self.stream, error)
        self.status.set(self.stream, PartitionState.WAITING_FOR_BROKER, str(error))
        self.metrics.broker_retries.inc()
        await self.close()

    async def close(self) -> None:
        """Close the reader (the next `open` subscribes again)."""
        reader, self.reader = self.reader, None
        if reader is not None:
            await reader.close()
