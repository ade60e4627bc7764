"""Read one partition stream with credit-based flow control: memory stays bounded."""

from __future__ import annotations

import logging

from rstream.client import Client
from rstream.constants import OffsetType
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
_PROBE_ID = 2  # a short-lived subscription reading where the stream starts


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
        # From an offset the stream must continue exactly there; from FIRST or a timestamp
        # the first chunk sets the position and continuity is checked from then on.
        self._strict = start.kind is OffsetType.OFFSET
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
        skipped = 0
        if self._strict and frame.chunk_first_offset > self._min_offset:
            skipped = await self._accept_gap(frame.chunk_first_offset)
        self._strict = True
        chunk = decode_chunk(self.stream, frame, self._min_offset, skipped)
        if chunk is not None:
            self._min_offset = chunk.last_offset + 1
        return chunk

    async def _accept_gap(self, delivered: int) -> int:
        """A chunk beyond the next expected offset: accepted only when retention deleted every
        missing message (returns how many); anything else is treated as a broken subscription
        (BrokerUnavailable, so the caller resubscribes at the expected offset) rather than
        skipping messages."""
        assert self._subscription is not None
        oldest = await _oldest_offset(self._subscription.client, self.stream)
        expected = self._min_offset
        if oldest is not None and oldest >= delivered:
            log.error("stream %s: messages %d..%d were deleted by retention before they were "
                      "consumed", self.stream, expected, delivered - 1)
            return delivered - expected
        raise BrokerUnavailable(f"stream {self.stream!r} delivered offset {delivered} while "
                                f"{expected} was expected; resubscribing")

    async def close(self) -> None:
        """Unsubscribe and close the connection."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            await subscription.stop()
            await close_quietly(subscription.client)


async def _oldest_offset(client: Client, stream: str) -> int | None:
    """The first offset the stream still holds (None when it sent nothing within a second)."""
    probe = Subscription(client, _PROBE_ID, stream)
    try:
        await probe.start(StartAt.first(), credit=1)
        frame = await probe.next_frame(1.0)
    except BROKER_ERRORS as e:
        raise BrokerUnavailable(f"cannot read the start of {stream!r}: {e!r}") from e
    finally:
        await probe.stop()
    return None if frame is None else int(frame.chunk_first_offset)
