"""Partition ownership through the broker's single active consumer (RabbitMQ 3.13+ super streams).

Each consumer process joins its group on every partition of the super stream with a *member*
subscription: properties `single-active-consumer`, `name` = the group and `super-stream` = the
topology's base name, and no credit, so it never receives messages. The broker makes exactly one
member of the group active per partition, spreads the partitions over the members, and when a
member's connection closes (a crash included) activates another at once. It announces each
change with a ConsumerUpdate frame; this process owns a partition while its member
subscription on it is active, and answers every update at once.

Messages are read by the partition worker's own subscription, from the offset stored in the
database, exactly as with advisory locks: ownership only decides *who* reads. A handover lets
the new owner start while the previous one may still commit the batch in hand (at most one
ownership poll); both commit in transactions keyed by event and offset, so the overlap stores
nothing twice (docs/streams.md, "Partition ownership").
"""

from __future__ import annotations

import logging

from rstream import schema
from rstream.client import Client
from rstream.constants import OffsetType
from rstream.schema import OffsetSpecification

from analytics_adapters.rabbitmq.connection import (
    BROKER_ERRORS,
    BrokerAddress,
    BrokerUnavailable,
    close_quietly,
    connect,
    request,
    silent,
)
from analytics_adapters.rabbitmq.subscription import StartAt
from analytics_adapters.rabbitmq.topology import StreamTopology

log = logging.getLogger(__name__)
_ANSWER = OffsetSpecification(OffsetType.NEXT, 0)  # required by the protocol, unused: no credit
_HANDLER = "analytics-sac"


class SingleActiveConsumerOwnership:
    """Which partitions this process owns, as the broker's single active consumer decides."""

    def __init__(self, address: BrokerAddress, topology: StreamTopology, group: str) -> None:
        self.address, self.topology, self.group = address, topology, group
        self._client: Client | None = None
        self._held: set[str] = set()
        self._ids = {i + 1: stream for i, stream in enumerate(topology.streams)}

    @property
    def held(self) -> frozenset[str]:
        """Partitions whose member subscription the broker made active (empty when closed)."""
        return frozenset(self._held)

    async def connect(self) -> None:
        """Join the group on every partition; raises BrokerUnavailable (a StoreUnavailable)."""
        if self._client is not None and self._client.is_connection_alive():
            return
        await self._drop()
        # Set before subscribing: the broker announces activations while the subscribes run.
        self._client = client = await connect(self.address, f"analytics-sac:{self.group}")
        client.add_handler(schema.ConsumerUpdateResponse, self._on_update, name=_HANDLER)
        properties = {"single-active-consumer": "true", "name": self.group,
                      "super-stream": self.topology.base}
        try:
            for subscription_id, stream in self._ids.items():
                await request(self.address, client.subscribe(
                    stream, subscription_id, StartAt.last().spec(), initial_credit=0,
                    properties=properties,
                ))
        except BaseException:
            await self._drop()
            raise

    async def _on_update(self, frame: schema.ConsumerUpdateResponse) -> None:
        stream = self._ids.get(frame.subscription_id)
        client = self._client
        if stream is None or client is None:
            return
        if frame.active:
            self._held.add(stream)
        else:
            self._held.discard(stream)
        log.info("single active consumer: partition %s %s", stream,
                 "assigned to this process" if frame.active else "handed to a peer")
        try:
            await client.consumer_update(frame.correlation_id, _ANSWER)
        except BROKER_ERRORS:
            log.debug("answering a consumer update failed", exc_info=True)

    async def alive(self) -> bool:
        """Whether the membership connection still works; when it does not, nothing is held."""
        client = self._client
        if client is None or not client.is_connection_alive() or silent(client):
            await self._drop()
            return False
        return True

    async def fair_share(self, partitions: int) -> int:
        """Every partition: the broker spreads them over the members, not this process."""
        return partitions

    async def try_acquire(self, stream: str) -> bool:
        """True while the broker has this process active on `stream`."""
        return stream in self._held

    async def release(self, stream: str) -> None:
        """Nothing to give back: the broker moves partitions between members itself."""

    async def close(self) -> None:
        """Leave the group: the broker activates peers on this process's partitions at once."""
        await self._drop()

    async def _drop(self) -> None:
        self._held.clear()
        client, self._client = self._client, None
        if client is not None:
            client.remove_handler(schema.ConsumerUpdateResponse, name=_HANDLER)
            await close_quietly(client)


async def broker_version(address: BrokerAddress) -> tuple[int, ...]:
    """The broker's version as integers (e.g. (4, 0, 5)); BrokerUnavailable when unreachable."""
    client = await connect(address, "analytics-version")
    try:
        text = (client.server_properties or {}).get("version", "")
    finally:
        await close_quietly(client)
    numbers = []
    for part in text.split("."):
        digits = "".join(ch for ch in part if ch.isdigit())
        if not digits:
            break
        numbers.append(int(digits))
    if not numbers:
        raise BrokerUnavailable(f"RabbitMQ {address.describe()} did not report its version")
    return tuple(numbers)


SUPER_STREAM_VERSION = (3, 13)
"""Oldest broker on which the consumer declares super streams from the client (3.13 added the
protocol command) and uses single active consumer for ownership."""
