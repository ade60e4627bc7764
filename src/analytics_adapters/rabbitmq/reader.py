"""Read one partition stream with credit-based flow control: memory stays bounded."""

from __future__ import annotations

import logging

from rstream.exceptions import StreamDoesNotExist

from analytics_adapters.rabbitmq.connection import (
    BROKER_ERRORS,
    BrokerAddress,
    BrokerUnavailable,
    close_quietly,
    connect,
)
from analytics_adapters.rabbitmq.subscription import (
    StartAt,
    StreamChunk,
    Subscription,
    decode_chunk,
)

log = logging.getLogger(__name__)
_SUBSCRIPTION_ID = 1  # one subscription per reader connection


class PartitionReader:
    """Chunks of one stream, from a start position, at most `credit` chunks ahead.

    The broker may send a chunk only while the reader holds credit. The reader subscribes
    with `credit` and grants one more each time the caller *takes* a chunk, so at most
    `credit` chunks are ever buffered: when the caller stops taking (database slow or down),
    the broker stops sending. Nothing is acknowledged to the broker: the position that
    counts is the offset the caller commits in its own database.
    """

    def __init__(self, address: BrokerAddress, stream: str, start: StartAt, *,
                 credit: int = 4, name: str = "analytics-consumer") -> None:
        if credit < 1:
            raise ValueError("credit must be >= 1")
        self.address = address
        self.stream = stream
        self.credit = credit
        self.name = name
        self._start = start
        self._min_offset = start.min_offset
        self._subscription: Subscription | None = None

    async def open(self) -> None:
        """Connect and subscribe; raises BrokerUnavailable (or StreamDoesNotExist)."""
        client = await connect(self.address, f"{self.name}:{self.stream}")
        subscription = Subscription(client, _SUBSCRIPTION_ID, self.stream)
        try:
            await subscription.start(self._start, self.credit)
        except BaseException as e:
            await close_quietly(client)
            if isinstance(e, (*BROKER_ERRORS, StreamDoesNotExist)):  # retried until it exists
                raise BrokerUnavailable(f"cannot subscribe to {self.stream!r} on "
                                        f"{self.address.describe()}: {e!r}") from e
            raise
        self._subscription = subscription
        log.info("subscribed to %s from %s", self.stream, self._start)

    @property
    def buffered(self) -> int:
        """Chunks received and not yet taken (at most `credit`)."""
        return self._subscription.buffered if self._subscription else 0

    async def next_chunk(self, timeout: float) -> StreamChunk | None:
        """The next chunk with new messages, or None when none arrived within `timeout`.

        Raises BrokerUnavailable when the connection broke; reopen a reader after the last
        offset taken to continue without a gap.
        """
        if self._subscription is None:
            raise RuntimeError("reader is not open")
        frame = await self._subscription.next_frame(timeout)
        if frame is None:
            return None
        await self._subscription.credit(1)
        chunk = decode_chunk(self.stream, frame, self._min_offset)
        if chunk is not None:
            self._min_offset = chunk.last_offset + 1
        return chunk

    async def close(self) -> None:
        """Unsubscribe and close the connection."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await subscription.stop()
            await close_quietly(subscription.client)
