"""Declare, inspect and delete the partition streams; read a stream's tail."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import attrs
from rstream import exceptions as rs_errors
from rstream.client import Client

from analytics_adapters.rabbitmq.connection import BrokerAddress, request, session
from analytics_adapters.rabbitmq.subscription import StartAt, Subscription, chunk_time
from analytics_adapters.rabbitmq.topology import StreamTopology
from analytics_core.errors import NotFound

log = logging.getLogger(__name__)
TAIL_WAIT_SECONDS = 1.0


@attrs.frozen
class Tail:
    """The newest message of a stream: its offset and the broker time of its chunk."""

    offset: int
    written_at: datetime


async def declare_streams(address: BrokerAddress, topology: StreamTopology) -> list[str]:
    """Create every missing partition stream with the topology's retention; return those made.

    An existing stream keeps the retention it was created with (the broker refuses to change
    it on declare); a different declared retention is logged, not applied.
    """
    created: list[str] = []
    async with session(address, "analytics-admin") as client:
        for stream in topology.streams:
            try:
                await request(address, client.create_stream(stream, topology.retention.arguments()))
                created.append(stream)
            except (rs_errors.StreamAlreadyExists, rs_errors.PreconditionFailed) as e:
                if isinstance(e, rs_errors.PreconditionFailed):
                    log.warning("stream %s exists with another retention; kept as is", stream)
    if created:
        log.info("declared streams %s with retention %s", created, topology.retention.arguments())
    return created


async def delete_streams(address: BrokerAddress, streams: Sequence[str]) -> None:
    """Delete streams and their data; absent streams are ignored."""
    async with session(address, "analytics-admin") as client:
        for stream in streams:
            try:
                await request(address, client.delete_stream(stream))
            except rs_errors.StreamDoesNotExist:
                continue


async def stream_exists(address: BrokerAddress, stream: str) -> bool:
    """Whether the broker has this stream."""
    async with session(address, "analytics-admin") as client:
        return bool(await request(address, client.stream_exists(stream)))


async def read_tail(client: Client, stream: str, subscription_id: int,
                    wait: float = TAIL_WAIT_SECONDS) -> Tail | None:
    """The last message of a stream, or None when it delivered nothing within `wait` seconds.

    RabbitMQ 3.10 has no StreamStats command, so the tail is read by subscribing at LAST: the
    broker sends the last chunk at once when there is one. An empty stream sends nothing.
    """
    subscription = Subscription(client, subscription_id, stream)
    try:
        await subscription.start(StartAt.last(), credit=1)
        frame = await subscription.next_frame(wait)
    finally:
        await subscription.stop()
    if frame is None:
        return None
    return Tail(frame.chunk_first_offset + frame.num_records - 1, chunk_time(frame))


async def read_tails(address: BrokerAddress, streams: Sequence[str],
                     wait: float = TAIL_WAIT_SECONDS) -> dict[str, Tail | None]:
    """`read_tail` of each stream over one connection; NotFound when one does not exist."""
    async with session(address, "analytics-tail") as client:
        try:
            tails = await asyncio.gather(
                *(read_tail(client, s, i + 1, wait) for i, s in enumerate(streams))
            )
        except rs_errors.StreamDoesNotExist:
            missing = [s for s in streams if not await client.stream_exists(s)]
            raise NotFound(f"stream(s) {', '.join(missing) or '?'} do not exist on "
                           f"{address.describe()} (nothing was published to them yet, or "
                           "ANALYTICS_RABBITMQ_STREAM / _PARTITIONS do not match the "
                           "producers)") from None
    return dict(zip(streams, tails, strict=True))


SuperStreamState = Literal["ready", "absent", "conflict"]


async def super_stream_state(address: BrokerAddress,
                             topology: StreamTopology) -> SuperStreamState:
    """What the broker has for the topology as a super stream: "ready" (a super stream named
    after the topology's base with exactly its partition streams), "absent" (neither the super
    stream nor any partition stream: it can be created), or "conflict" (partition streams
    without the super stream, or a super stream with other partitions)."""
    async with session(address, "analytics-admin") as client:
        partitions = await request(address, client.partitions(topology.base))
        if partitions:
            same = len(partitions) == topology.partitions and set(partitions) == set(
                topology.streams)
            return "ready" if same else "conflict"
        for stream in topology.streams:
            if await request(address, client.stream_exists(stream)):
                return "conflict"
    return "absent"


async def declare_super_stream(address: BrokerAddress, topology: StreamTopology) -> bool:
    """Create the topology as a super stream (RabbitMQ 3.13+): an exchange named after its base
    bound to the partition streams `{base}-{i}` with binding keys "0".."n-1", each created with
    the topology's retention. False when it already existed."""
    async with session(address, "analytics-admin") as client:
        try:
            await request(address, client.create_super_stream(
                topology.base, list(topology.streams),
                [str(i) for i in range(topology.partitions)], topology.retention.arguments(),
            ))
        except (rs_errors.StreamAlreadyExists, rs_errors.PreconditionFailed):
            return False
    log.info("declared super stream %s with partitions %s", topology.base,
             list(topology.streams))
    return True


async def delete_super_stream(address: BrokerAddress, topology: StreamTopology) -> None:
    """Delete the super stream and its partition streams (tests and teardown only)."""
    async with session(address, "analytics-admin") as client:
        try:
            await request(address, client.delete_super_stream(topology.base))
        except (rs_errors.StreamDoesNotExist, rs_errors.ServerError):
            log.debug("no super stream %s to delete", topology.base)
