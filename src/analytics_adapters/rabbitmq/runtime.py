"""Everything stream ingestion needs, built from one set of options (used by the container)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import StrEnum

import attrs

from analytics_adapters.rabbitmq.admin import (
    declare_streams,
    declare_super_stream,
    delete_streams,
    delete_super_stream,
    read_tails,
    super_stream_state,
)
from analytics_adapters.rabbitmq.connection import BrokerAddress
from analytics_adapters.rabbitmq.health import RabbitStreamHealthCheck
from analytics_adapters.rabbitmq.ownership import PartitionOwnership, SingleProcessOwnership
from analytics_adapters.rabbitmq.progress import StreamPipelineProgress
from analytics_adapters.rabbitmq.publisher import StreamPublisher
from analytics_adapters.rabbitmq.reader import PartitionReader
from analytics_adapters.rabbitmq.sac import (
    SUPER_STREAM_VERSION,
    SingleActiveConsumerOwnership,
    broker_version,
)
from analytics_adapters.rabbitmq.subscription import StartAt
from analytics_adapters.rabbitmq.topology import StreamTopology
from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.ports import UnitOfWorkFactory

log = logging.getLogger(__name__)


class OwnershipMode(StrEnum):
    """How consumer processes share the partitions (docs/streams.md, "Partition ownership")."""

    AUTO = "auto"  # single active consumer on RabbitMQ 3.13+, advisory locks otherwise
    ADVISORY_LOCKS = "advisory-locks"
    SINGLE_ACTIVE_CONSUMER = "single-active-consumer"


@attrs.frozen
class StreamOptions:
    """Broker, topology and consumer-group options of stream ingestion."""

    address: BrokerAddress
    topology: StreamTopology
    group: str = "analytics"
    credit: int = 4
    progress_refresh: float = 1.0
    ownership: OwnershipMode = OwnershipMode.AUTO


class StreamRuntime:
    """Factories for the stream adapters of one process.

    `advisory_locks` makes a new advisory-lock ownership session (storage is PostgreSQL; the
    composition root passes the SQL adapter's); with None (SQLite or in-memory storage) one
    consumer process owns every partition.
    """

    def __init__(self, options: StreamOptions, uow_factory: UnitOfWorkFactory,
                 advisory_locks: Callable[[], PartitionOwnership] | None) -> None:
        self.options = options
        self.address, self.topology = options.address, options.topology
        self._uow_factory = uow_factory
        self._advisory_locks = advisory_locks
        self._mode: OwnershipMode | None = None

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

    def ownership(self) -> DeferredOwnership:
        """A new ownership session for one consumer process (its scheme is chosen on connect:
        `resolve_ownership`)."""
        return DeferredOwnership(self)

    async def resolve_ownership(self) -> OwnershipMode:
        """The scheme this process uses: the configured one, or for `auto` single active
        consumer when the broker is 3.13+ and the topology is (or can become) a super stream,
        else advisory locks. Decided once per process; raises BrokerUnavailable."""
        if self._mode is None:
            mode = self.options.ownership
            if mode is OwnershipMode.AUTO:
                mode = await self._auto_mode()
            self._mode = mode
        return self._mode

    async def _auto_mode(self) -> OwnershipMode:
        if self._advisory_locks is None:
            return OwnershipMode.ADVISORY_LOCKS  # SQLite or memory: one consumer process
        version = await broker_version(self.address)
        if version < SUPER_STREAM_VERSION:
            return OwnershipMode.ADVISORY_LOCKS
        state = await super_stream_state(self.address, self.topology)
        if state == "conflict":
            log.warning(
                "RabbitMQ %s supports single active consumer, but the partition streams of %s "
                "are not one super stream with exactly them as partitions; using advisory "
                "locks (docs/streams.md, \"Partition ownership\")",
                ".".join(map(str, version)), self.topology.base)
            return OwnershipMode.ADVISORY_LOCKS
        return OwnershipMode.SINGLE_ACTIVE_CONSUMER

    def ownership_for(self, mode: OwnershipMode) -> PartitionOwnership:
        """A new session of one scheme (advisory locks without PostgreSQL: this process alone)."""
        if mode is OwnershipMode.SINGLE_ACTIVE_CONSUMER:
            return SingleActiveConsumerOwnership(self.address, self.topology, self.options.group)
        if self._advisory_locks is None:
            return SingleProcessOwnership()
        return self._advisory_locks()

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
        """Create the missing partition streams with the configured retention; with single
        active consumer, as one super stream (ValidationFailed when the broker has the
        partitions but not as that super stream)."""
        if await self.resolve_ownership() is OwnershipMode.SINGLE_ACTIVE_CONSUMER:
            state = await super_stream_state(self.address, self.topology)
            if state == "conflict" and self.options.ownership is OwnershipMode.AUTO:
                # Plain partition streams appeared since the scheme was chosen (an older
                # publisher declared them): stay on advisory locks, as `auto` would have.
                log.warning("the partition streams of %s exist without their super stream; "
                            "using advisory locks", self.topology.base)
                self._mode = OwnershipMode.ADVISORY_LOCKS
                return await declare_streams(self.address, self.topology)
            if state == "conflict":
                raise ValidationFailed([FieldError(
                    "ANALYTICS_RABBITMQ_OWNERSHIP",
                    f"single active consumer needs {self.topology.base} as a super stream with "
                    f"exactly the partitions {', '.join(self.topology.streams)}; the broker has "
                    "the partition streams without it (docs/streams.md)")])
            created = state == "absent" and await declare_super_stream(self.address,
                                                                       self.topology)
            return list(self.topology.streams) if created else []
        return await declare_streams(self.address, self.topology)

    async def delete(self) -> None:
        """Delete every partition stream, and on RabbitMQ 3.13+ the super stream of the same
        name if there is one (tests and teardown only)."""
        if (self._mode is OwnershipMode.SINGLE_ACTIVE_CONSUMER
                or await broker_version(self.address) >= SUPER_STREAM_VERSION):
            await delete_super_stream(self.address, self.topology)
        await delete_streams(self.address, self.topology.streams)

    async def tails(self, streams: Sequence[str]) -> dict[str, int | None]:
        """The last offset of each stream (None when empty)."""
        found = await read_tails(self.address, streams)
        return {s: (t.offset if t is not None else None) for s, t in found.items()}

    def close(self) -> None:
        """Stop the progress probe if it was started."""
        if "progress" in self.__dict__:
            self.progress.close()



class DeferredOwnership:
    """The ownership session of a consumer process, on the scheme `resolve_ownership` picks
    when it first connects (the broker must be asked, so it cannot be picked at start-up)."""

    def __init__(self, runtime: StreamRuntime) -> None:
        self._runtime = runtime
        self._inner: PartitionOwnership | None = None

    @property
    def held(self) -> frozenset[str]:
        """Partitions owned right now."""
        return self._inner.held if self._inner is not None else frozenset()

    async def connect(self) -> None:
        """Pick the scheme (once) and connect it; raises StoreUnavailable."""
        if self._inner is None:
            mode = await self._runtime.resolve_ownership()
            self._inner = self._runtime.ownership_for(mode)
            log.info("partition ownership: %s", mode.value)
        await self._inner.connect()

    async def alive(self) -> bool:
        """Whether the scheme's connection works (False before the first connect)."""
        return self._inner is not None and await self._inner.alive()

    async def fair_share(self, partitions: int) -> int:
        """How many partitions this process should own."""
        assert self._inner is not None
        return await self._inner.fair_share(partitions)

    async def try_acquire(self, stream: str) -> bool:
        """True when this process owns `stream` now."""
        assert self._inner is not None
        return await self._inner.try_acquire(stream)

    async def release(self, stream: str) -> None:
        """Give a partition back."""
        if self._inner is not None:
            await self._inner.release(stream)

    async def close(self) -> None:
        """End the session."""
        if self._inner is not None:
            await self._inner.close()
