"""Partition ownership through the broker's single active consumer (RabbitMQ 3.13+ super streams).

Each consumer process joins its group on every partition of the super stream with a *member*
subscription: properties `single-active-consumer`, `name` = the group and `super-stream` = the
topology's base name, and no credit, so it never receives messages. The broker makes exactly one
member of the group active per partition, spreads the partitions over the members, and when a
member's connection closes (a crash included) activates another at once. It announces each
change with a ConsumerUpdate frame; this process owns a partition while its member
subscription on it is active. An activation is answered at once; a deactivation only when the
consumer has stopped the partition's worker (`release`), because the broker activates the next
member only after that answer: so two processes never read one partition at the same time.

Messages are read by the partition worker's own subscription, from the offset stored in the
database, exactly as with advisory locks: ownership only decides *who* reads. If the broker
drops a member subscription (its stream moved or was deleted: a MetadataUpdate frame), the
membership is treated as lost, so the consumer stops every partition and joins again
(docs/streams.md, "Partition ownership").
"""

from __future__ import annotations

import logging

from rstream import exceptions as rs_errors
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
        self._pending: dict[str, int] = {}  # deactivations to answer once the worker stopped
        self._lost = False  # the broker dropped a member subscription
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
        client.add_handler(schema.MetadataUpdate, self._on_metadata, name=_HANDLER)
        properties = {"single-active-consumer": "true", "name": self.group,
                      "super-stream": self.topology.base}
        try:
            for subscription_id, stream in self._ids.items():
                await request(self.address, client.subscribe(
                    stream, subscription_id, StartAt.last().spec(), initial_credit=0,
                    properties=properties,
                ))
        except rs_errors.ServerError as e:  # e.g. a partition stream deleted meanwhile
            await self._drop()
            raise BrokerUnavailable(f"joining the group {self.group!r} on "
                                    f"{self.address.describe()} failed: {e!r}") from e
        except BaseException:
            await self._drop()
            raise

    async def _on_update(self, frame: schema.ConsumerUpdateResponse) -> None:
        stream = self._ids.get(frame.subscription_id)
        client = self._client
        if stream is None or client is None:
            return
        log.info("single active consumer: partition %s %s", stream,
                 "assigned to this process" if frame.active else "to be handed to a peer")
        if not frame.active:
            self._held.discard(stream)
            self._pending[stream] = frame.correlation_id  # answered by release()
            return
        self._held.add(stream)
        await self._answer(client, frame.correlation_id)

    def _on_metadata(self, frame: schema.MetadataUpdate) -> None:
        stream = frame.metadata_info.stream
        if stream in self._ids.values():
            log.warning("single active consumer: the broker dropped the member subscription "
                        "of %s (stream moved or deleted); joining the group again", stream)
            self._lost = True
            self._held.clear()

    async def _answer(self, client: Client, correlation_id: int) -> None:
        try:
            await client.consumer_update(correlation_id, _ANSWER)
        except BROKER_ERRORS:
            log.debug("answering a consumer update failed", exc_info=True)

    async def alive(self) -> bool:
        """Whether the membership connection still works; when it does not, nothing is held."""
        client = self._client
        if client is None or self._lost or not client.is_connection_alive() or silent(client):
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
        """The consumer stopped (or never ran) the worker of `stream`: answer the broker's
        pending deactivation, so it activates the next member now."""
        correlation_id = self._pending.pop(stream, None)
        if correlation_id is not None and self._client is not None:
            log.info("single active consumer: partition %s handed to a peer", stream)
            await self._answer(self._client, correlation_id)

    async def close(self) -> None:
        """Leave the group: the broker activates peers on this process's partitions at once."""
        await self._drop()

    async def _drop(self) -> None:
        self._held.clear()
        self._pending.clear()  # closing the connection ends the membership: nothing to answer
        self._lost = False
        client, self._client = self._client, None
        if client is not None:
            client.remove_handler(schema.ConsumerUpdateResponse, name=_HANDLER)
            client.remove_handler(schema.MetadataUpdate, name=_HANDLER)
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
