"""Readiness probe of the RabbitMQ stream port and the partition streams."""

from __future__ import annotations

import asyncio

from analytics_adapters.rabbitmq.connection import (
    BrokerAddress,
    BrokerUnavailable,
    request,
    session,
)
from analytics_adapters.rabbitmq.topology import StreamTopology


class RabbitStreamHealthCheck:
    """Healthy when the stream port answers and every partition stream exists."""

    name = "rabbitmq"

    def __init__(self, address: BrokerAddress, topology: StreamTopology) -> None:
        self.address = address
        self.topology = topology

    def check(self) -> None:
        """Return when healthy; raise BrokerUnavailable naming what is missing."""
        missing = asyncio.run(self._missing())
        if missing:
            raise BrokerUnavailable(f"streams missing: {', '.join(missing)}")

    async def _missing(self) -> list[str]:
        async with session(self.address, "analytics-health") as client:
            return [
                stream for stream in self.topology.streams
                if not await request(self.address, client.stream_exists(stream))
            ]
