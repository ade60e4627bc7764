"""One stream subscription on a low-level client, with credit granted only when asked."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime

import attrs
from rstream import amqp_decoder, schema
from rstream.client import Client
from rstream.constants import OffsetType

from analytics_adapters.rabbitmq.connection import BROKER_ERRORS, BrokerUnavailable, silent

_AMQP_SECTION = b"\x00S"  # an AMQP 1.0 described section starts every AMQP-encoded message
_POLL = 0.25  # how often a waiting reader checks that its connection is still alive


@attrs.frozen
class StartAt:
    """Where a subscription starts: an offset, a broker timestamp, or the first message."""

    kind: OffsetType
    value: int | None = None

    @classmethod
    def offset(cls, offset: int) -> StartAt:
        """At this offset (chunks are delivered whole; earlier messages are skipped)."""
        return cls(OffsetType.OFFSET, max(offset, 0))

    @classmethod
    def first(cls) -> StartAt:
        """At the oldest message the stream still holds."""
        return cls(OffsetType.FIRST)

    @classmethod
    def timestamp(cls, when: datetime) -> StartAt:
        """At the first chunk the broker wrote at or after `when`."""
        return cls(OffsetType.TIMESTAMP, int(when.timestamp() * 1000))

    @classmethod
    def last(cls) -> StartAt:
        """At the last chunk (to read the tail)."""
        return cls(OffsetType.LAST)

    @property
    def min_offset(self) -> int:
        """Messages below this offset are skipped."""
        return self.value if self.kind is OffsetType.OFFSET and self.value is not None else 0

    def spec(self) -> schema.OffsetSpec:
        """The protocol's offset specification."""
        return schema.OffsetSpec.from_params(self.kind, self.value)


@attrs.frozen
class StreamChunk:
    """Messages of one broker chunk from one partition, at consecutive offsets."""

    stream: str
    first_offset: int
    timestamp: datetime
    bodies: tuple[bytes, ...]
    retention_skipped: int = 0  # messages right before this chunk deleted before being read

    @property
    def last_offset(self) -> int:
        """Offset of the last message."""
        return self.first_offset + len(self.bodies) - 1

    def offsets(self) -> range:
        """The offset of each body."""
        return range(self.first_offset, self.first_offset + len(self.bodies))


def chunk_time(frame: schema.Deliver) -> datetime:
    """When the broker wrote a chunk."""
    return datetime.fromtimestamp(frame.timestamp / 1000, UTC)


def message_body(data: bytes) -> bytes:
    """The payload of a message: AMQP 1.0 bodies are unwrapped, raw bytes pass through."""
    if not data.startswith(_AMQP_SECTION):
        return data
    try:
        body = amqp_decoder(data).body
    except Exception:  # raw bytes that only look like AMQP are still a payload
        return data
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if isinstance(body, list):
        return b"".join(bytes(part) for part in body)
    return str(body).encode("utf-8")


def decode_chunk(stream: str, frame: schema.Deliver, min_offset: int,
                 retention_skipped: int = 0) -> StreamChunk | None:
    """The chunk's messages at offsets >= min_offset, or None when every one is below."""
    first = frame.chunk_first_offset
    messages = frame.get_messages()
    skip = max(0, min_offset - first)
    if skip >= len(messages):
        return None
    bodies = tuple(message_body(bytes(m)) for m in messages[skip:])
    return StreamChunk(stream, first + skip, chunk_time(frame), bodies, retention_skipped)


class Subscription:
    """Deliver frames of one subscription in arrival order; the caller grants credit."""

    def __init__(self, client: Client, subscription_id: int, stream: str) -> None:
        self.client = client
        self.subscription_id = subscription_id
        self.stream = stream
        self._frames: asyncio.Queue[schema.Deliver] = asyncio.Queue()
        self._gone = False  # the broker announced the stream moved or was deleted

    async def start(self, start: StartAt, credit: int) -> None:
        """Subscribe with `credit` chunks the broker may send before more credit is granted."""
        name = str(self.subscription_id)
        self.client.add_handler(schema.Deliver, _ignore, name=name)
        self.client.add_handler(schema.MetadataUpdate, self._on_metadata, name=name)
        await self.client.run_queue_listener_task(self.subscription_id, self._on_frame)
        await self.client.subscribe(
            self.stream, self.subscription_id, start.spec(), initial_credit=credit
        )

    def _on_frame(self, frame: schema.Deliver) -> None:
        if frame.subscription_id == self.subscription_id:
            self._frames.put_nowait(frame)

    def _on_metadata(self, frame: schema.MetadataUpdate) -> None:
        if frame.metadata_info.stream == self.stream:
            self._gone = True

    @property
    def buffered(self) -> int:
        """Chunks received and not yet taken."""
        return self._frames.qsize()

    def alive(self) -> bool:
        """Whether the connection still looks usable (open, heartbeats arriving)."""
        return not (self._gone or not self.client.is_connection_alive()
                    or silent(self.client))

    async def next_frame(self, timeout: float) -> schema.Deliver | None:
        """The next chunk frame, None after `timeout` seconds; BrokerUnavailable if it broke."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            if not self._frames.empty():
                return self._frames.get_nowait()
            if not self.alive():
                raise BrokerUnavailable(f"subscription to the stream {self.stream!r} was lost "
                                        "(connection closed, or the stream moved or was deleted)")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                return await asyncio.wait_for(self._frames.get(), min(remaining, _POLL))

    async def credit(self, chunks: int = 1) -> None:
        """Let the broker send `chunks` more chunks."""
        try:
            await self.client.credit(self.subscription_id, chunks)
        except BROKER_ERRORS as e:
            raise BrokerUnavailable(f"credit on {self.stream!r} failed: {e}") from e

    async def stop(self) -> None:
        """Unsubscribe (best effort on a broken connection) and drop buffered chunks."""
        with contextlib.suppress(Exception):
            await self.client.stop_queue_listener_task(self.subscription_id)
        self.client.remove_handler(schema.Deliver, name=str(self.subscription_id))
        self.client.remove_handler(schema.MetadataUpdate, name=str(self.subscription_id))
        if self.client.is_connection_alive():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self.client.unsubscribe(self.subscription_id)
        while not self._frames.empty():
            self._frames.get_nowait()


def _ignore(_: schema.Deliver) -> None:
    """Placeholder handler: the client routes Deliver frames to the subscription's queue."""
