"""Everything stream ingestion needs, built from one set of options (used by the container)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime

import attrs

from analytics_adapters.rabbitmq.admin import declare_streams, delete_streams, read_tails
from analytics_adapters.rabbitmq.connection import BrokerAddress
from analytics_adapters.rabbitmq.health import RabbitStreamHealthCheck
from analytics_adapters.rabbitmq.ownership import AdvisoryLockOwnership, SingleProcessOwnership
from analytics_adapters.rabbitmq.progress import StreamPipelineProgress
from analytics_adapters.rabbitmq.publisher import StreamPublisher
from analytics_adapters.rabbitmq.reader import PartitionReader
from analytics_adapters.rabbitmq.subscription import StartAt
from analytics_adapters.rabbitmq.topology import StreamTopology
from analytics_core.ports import UnitOfWorkFactory


@attrs.frozen
class StreamOptions:
    """Broker, topology and consumer-group options of stream ingestion."""

    address: BrokerAddress
    topology: StreamTopology
    group: str = "analytics"
    credit: int = 4
    progress_refresh: float = 1.0


class StreamRuntime:
    """Factories for the stream adapters of one process.

    `database_url` is the PostgreSQL URL used for partition ownership (advisory locks); with
    None (SQLite or in-memory storage) one consumer process owns every partition.
    """

    def __init__(self, options: StreamOptions, uow_factory: UnitOfWorkFactory,
                 database_url: str | None) -> None:
        self.options = options
        self.address, self.topology = options.address, options.topology
        self._uow_factory = uow_factory
        self._database_url = database_url

    @functools.cached_property
    def progress(self) -> StreamPipelineProgress:
        """The PipelineProgress of this process (its probe thread starts on first use)."""
        return StreamPipelineProgress(
            self.address, self.topology, self.options.group, self._uow_factory,
            refresh=self.options.progress_refresh,
        )

    @functools.cached_property
    def health_check(self) -> RabbitStreamHealthCheck:
        """Readiness probe named `rabbitmq`."""
        return RabbitStreamHealthCheck(self.address, self.topology)

    def ownership(self) -> AdvisoryLockOwnership | SingleProcessOwnership:
        """A new ownership session for one consumer process."""
        if self._database_url is None:
            return SingleProcessOwnership()
        return AdvisoryLockOwnership(self._database_url, self.options.group)

    def reader(self, stream: str, after: int | None) -> PartitionReader:
        """A reader of `stream` starting right after offset `after` (None: the first message)."""
        start = StartAt.first() if after is None else StartAt.offset(after + 1)
        return PartitionReader(self.address, stream, start, credit=self.options.credit,
                               name=f"analytics-consumer:{self.options.group}")

    def replay_reader(self, stream: str, start: int | datetime) -> PartitionReader:
        """A reader of `stream` from an offset or from the first chunk written at/after a time."""
        at = StartAt.offset(start) if isinstance(start, int) else StartAt.timestamp(start)
        return PartitionReader(self.address, stream, at, credit=self.options.credit,
                               name="analytics-replay")

    def publisher(self, *, batch_size: int = 500, linger: float = 0.02,
                  max_in_flight: int = 20_000) -> StreamPublisher:
        """A publisher routed over this topology."""
        return StreamPublisher(self.address, self.topology, batch_size=batch_size,
                               linger=linger, max_in_flight=max_in_flight)

    async def declare(self) -> list[str]:
        """Create the missing partition streams with the configured retention."""
        return await declare_streams(self.address, self.topology)

    async def delete(self) -> None:
        """Delete every partition stream (tests and teardown only)."""
        await delete_streams(self.address, self.topology.streams)

    async def tails(self, streams: Sequence[str]) -> dict[str, int | None]:
        """The last offset of each stream (None when empty)."""
        found = await read_tails(self.address, streams)
        return {s: (t.offset if t is not None else None) for s, t in found.items()}

    def close(self) -> None:
        """Stop the progress probe if it was started."""
        if "progress" in self.__dict__:
            self.progress.close()

