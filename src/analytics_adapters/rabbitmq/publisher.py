"""Publish usage events to the partition streams: async, batched, confirmed, routed by org."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Self

import attrs
from rstream import schema
from rstream.client import Client

from analytics_adapters.rabbitmq.connection import (
    BROKER_ERRORS,
    BrokerAddress,
    BrokerUnavailable,
    close_quietly,
    connect,
    request,
)
from analytics_adapters.rabbitmq.topology import StreamTopology
from analytics_core.errors import AnalyticsError

log = logging.getLogger(__name__)
_FRAME_OVERHEAD = 64  # Publish frame header, generously rounded up
_MESSAGE_OVERHEAD = 12  # publishing id + length prefix


class PublishFailed(AnalyticsError, ConnectionError):
    """The broker refused messages, or they stayed unconfirmed after every retry."""


@attrs.define
class _Pending:
    partition: int
    body: bytes
    attempts: int = 0


def org_of(payload: bytes) -> str | None:
    """The orgId (or org_id) of a JSON event, None when absent or unreadable."""
    try:
        decoded = json.loads(payload)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        return None
    if not isinstance(decoded, dict):
        return None
    org = decoded.get("orgId", decoded.get("org_id"))
    return org if isinstance(org, str) else None


class StreamPublisher:
    """A library class for producers: `await send(...)`, then `await flush()`.

    Messages are raw UTF-8 JSON bodies routed to `topology.partition_of(orgId)`, buffered per
    partition and sent in frames of up to `batch_size` messages (or after `linger` seconds).
    At most `max_in_flight` messages wait for a broker confirm; `send` waits beyond that, so
    memory stays bounded. When the connection breaks, every unconfirmed message is sent again
    on a new connection (at-least-once; consumers dedupe by (orgId, eventId)).
    `flush()` returns when everything sent so far is confirmed, or raises PublishFailed.
    """

    def __init__(self, address: BrokerAddress, topology: StreamTopology, *,
                 batch_size: int = 500, linger: float = 0.02, max_in_flight: int = 20_000,
                 max_attempts: int = 5, name: str = "analytics-publisher") -> None:
        self.address, self.topology, self.name = address, topology, name
        self.batch_size, self.linger = batch_size, linger
        self.max_in_flight, self.max_attempts = max_in_flight, max_attempts
        self._client: Client | None = None
        self._buffers: list[list[int]] = [[] for _ in range(topology.partitions)]
        self._pending: dict[int, _Pending] = {}
        self._next_id = 0
        self._failures: list[str] = []
        self._changed = asyncio.Condition()
        self._recovering = asyncio.Lock()
        self._linger_task: asyncio.Task[None] | None = None
        self.confirmed = 0

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close(flush=exc is None)

    async def start(self) -> None:
        """Connect and declare one publisher per partition, retrying a broker that is not
        ready (e.g. a stream just created); BrokerUnavailable after `max_attempts`."""
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self._open()
                return
            except BrokerUnavailable as e:
                if attempt == self.max_attempts:
                    raise
                log.warning("publisher start %d/%d: %s", attempt, self.max_attempts, e)
                await asyncio.sleep(min(0.2 * 2**attempt, 5.0))

    async def _open(self) -> None:
        client = await connect(self.address, self.name)
        client.add_handler(schema.PublishConfirm, self._on_confirm, name="analytics")
        client.add_handler(schema.PublishError, self._on_error, name="analytics")
        try:
            for index, stream in enumerate(self.topology.streams):
                await request(self.address, client.declare_publisher(stream, None, index))
        except BaseException:
            await close_quietly(client)
            raise
        self._client = client
        if self._linger_task is None:
            self._linger_task = asyncio.create_task(self._linger_loop())

    async def send(self, payload: bytes | Mapping[str, object], *,
                   org_id: str | None = None) -> None:
        """Queue one event (JSON bytes or a mapping) for its org's partition; ValueError for a
        message larger than one broker frame (`BrokerAddress.frame_max`)."""
        body = payload if isinstance(payload, bytes) else _encode(payload)
        largest = self.address.frame_max - _FRAME_OVERHEAD - _MESSAGE_OVERHEAD
        if len(body) > largest:  # the broker would close the connection on such a frame
            raise ValueError(f"message of {len(body)} bytes exceeds the largest the broker "
                             f"accepts in one frame ({largest} bytes)")
        org = org_id if org_id is not None else _org_of(payload, body)
        while len(self._pending) >= self.max_in_flight:
            await self._wait_change()
        partition = self.topology.partition_of(org)
        publishing_id = self._next_id
        self._next_id += 1
        self._pending[publishing_id] = _Pending(partition, body)
        self._buffers[partition].append(publishing_id)
        if len(self._buffers[partition]) >= self.batch_size:
            await self._send_buffer(partition)

    async def send_many(self, payloads: Iterable[bytes | Mapping[str, object]]) -> None:
        """`send` each payload."""
        for payload in payloads:
            await self.send(payload)

    @property
    def in_flight(self) -> int:
        """Messages sent or buffered and not yet confirmed."""
        return len(self._pending)

    async def flush(self) -> None:
        """Send every buffer and wait until all messages are confirmed."""
        for partition in range(self.topology.partitions):
            await self._send_buffer(partition)
        while self._pending and not self._failures:
            await self._wait_change()
        if self._failures:
            failures, self._failures = self._failures, []
            raise PublishFailed(f"{len(failures)} message(s) not published: {failures[0]}")

    async def close(self, *, flush: bool = True) -> None:
        """Flush (unless told not to), then close the connection."""
        try:
            if flush:
                await self.flush()
        finally:
            if self._linger_task is not None:
                self._linger_task.cancel()
                self._linger_task = None
            client, self._client = self._client, None
            if client is not None:
                await close_quietly(client)

    async def _send_buffer(self, partition: int) -> None:
        ids, self._buffers[partition] = self._buffers[partition], []
        frame: list[schema.Message] = []
        size = _FRAME_OVERHEAD
        for publishing_id in ids:
            pending = self._pending.get(publishing_id)
            if pending is None:
                continue
            if frame and size + len(pending.body) + _MESSAGE_OVERHEAD > self.address.frame_max:
                await self._write(partition, frame)
                frame, size = [], _FRAME_OVERHEAD
            frame.append(schema.Message(publishing_id, None, pending.body))
            size += len(pending.body) + _MESSAGE_OVERHEAD
        if frame:
            await self._write(partition, frame)

    async def _write(self, partition: int, messages: list[schema.Message]) -> None:
        client = self._client
        if client is not None and client.is_connection_alive():
            try:
                await client.send_publish_frame(schema.Publish(partition, messages))
            except BROKER_ERRORS as e:
                log.warning("publish on %s failed: %s", self.address.describe(), e)
            if client.is_connection_alive():
                return
        await self._recover(client)  # re-sends every unconfirmed message, these included

    async def _recover(self, broken: Client | None) -> None:
        """Replace a broken connection and re-send every unconfirmed message on the new one."""
        async with self._recovering:
            if self._client is not broken:
                return  # another task already recovered
            for attempt in range(1, self.max_attempts + 1):
                self._client = None
                if broken is not None:
                    await close_quietly(broken)
                try:
                    await self._open()
                except BrokerUnavailable as e:
                    log.warning("publisher reconnect %d/%d: %s", attempt, self.max_attempts, e)
                    await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
                    continue
                broken = self._client
                if await self._resend_all():
                    return
            self._fail_all("the broker stayed unreachable")

    async def _resend_all(self) -> bool:
        client = self._client
        assert client is not None
        for buffer in self._buffers:
            buffer.clear()
        by_partition: dict[int, list[schema.Message]] = {}
        for publishing_id, pending in list(self._pending.items()):
            pending.attempts += 1
            if pending.attempts > self.max_attempts:
                self._fail(publishing_id, "unconfirmed after every retry")
                continue
            batch = by_partition.setdefault(pending.partition, [])
            batch.append(schema.Message(publishing_id, None, pending.body))
        for partition, messages in by_partition.items():
            for start in range(0, len(messages), self.batch_size):
                frame = schema.Publish(partition, messages[start:start + self.batch_size])
                try:
                    await client.send_publish_frame(frame)
                except BROKER_ERRORS:
                    return False
        await self._notify()
        return client.is_connection_alive()

    async def _on_confirm(self, frame: schema.PublishConfirm) -> None:
        for publishing_id in frame.publishing_ids:
            if self._pending.pop(publishing_id, None) is not None:
                self.confirmed += 1
        await self._notify()

    async def _on_error(self, frame: schema.PublishError) -> None:
        for error in frame.errors:
            reason = f"the broker refused it (response code {error.response_code})"
            self._fail(error.publishing_id, reason)
        await self._notify()

    def _fail(self, publishing_id: int, reason: str) -> None:
        if self._pending.pop(publishing_id, None) is not None:
            self._failures.append(f"publishing id {publishing_id}: {reason}")

    def _fail_all(self, reason: str) -> None:
        for publishing_id in list(self._pending):
            self._fail(publishing_id, reason)
        for buffer in self._buffers:
            buffer.clear()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _wait_change(self) -> None:
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait(), 1.0)
                return
            except TimeoutError:
                pass
        client = self._client
        if self._pending and (client is None or not client.is_connection_alive()):
            await self._recover(client)

    async def _linger_loop(self) -> None:
        while True:
            await asyncio.sleep(self.linger)
            for partition, buffer in enumerate(self._buffers):
                if buffer:
                    await self._send_buffer(partition)


def _encode(payload: Mapping[str, object]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode("utf-8")


def _org_of(payload: bytes | Mapping[str, object], body: bytes) -> str | None:
    if isinstance(payload, Mapping):
        org = payload.get("orgId", payload.get("org_id"))
        return org if isinstance(org, str) else None
    return org_of(body)
