"""Partition ownership by the broker's single active consumer, on a real RabbitMQ 4 broker.

The host broker (RabbitMQ 3.10.8) has neither super streams nor single active consumer;
`.ci/rabbitmq4` runs Debian trixie's RabbitMQ 4.0.5 in a chroot with its stream port on 5553
(ANALYTICS_TEST_RABBITMQ4_STREAM_PORT), and these tests use it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from analytics_adapters.rabbitmq import (
    BrokerAddress,
    OwnershipMode,
    SingleActiveConsumerOwnership,
    StreamOptions,
    StreamRuntime,
    StreamTopology,
)
from analytics_adapters.rabbitmq.admin import (
    declare_streams,
    delete_streams,
    super_stream_state,
)
from analytics_adapters.sql import AdvisoryLockOwnership, SqlStorage
from analytics_core.errors import ValidationFailed
from tests.conftest import port_open, require_service
from tests.integration.stream_support import (
    GROUP,
    RABBITMQ_HOST,
    deleted_afterwards,
    random_topology,
    require_broker,
    runtime_for,
    survivor_takes_over,
)

SAC_PORT = int(os.environ.get("ANALYTICS_TEST_RABBITMQ4_STREAM_PORT", "5553"))

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


def require_broker4() -> BrokerAddress:
    """Skip (fail under CI=true) unless the RabbitMQ 4 stream port answers."""
    require_service("RabbitMQ 4 stream port (.ci/rabbitmq4 start)",
                    port_open(RABBITMQ_HOST, SAC_PORT))
    return BrokerAddress(RABBITMQ_HOST, SAC_PORT)


@pytest.fixture
def partitions() -> int:
    """Four partitions: two consumers get two each."""
    return 4


@pytest.fixture
def broker() -> BrokerAddress:
    """`runtime` uses the RabbitMQ 4 broker (ownership `auto`)."""
    return require_broker4()


def test_auto_picks_single_active_consumer_on_rabbitmq_4_and_locks_on_3_10(
    runtime: StreamRuntime, storage: SqlStorage, database: URL,
) -> None:
    """`auto` asks the broker: 4.0 gets single active consumer, 3.10 advisory locks; without
    PostgreSQL (one consumer process) it stays on the single-process scheme."""
    assert asyncio.run(runtime.resolve_ownership()) is OwnershipMode.SINGLE_ACTIVE_CONSUMER
    old = runtime_for(require_broker(), random_topology(2), storage.unit_of_work,
                      database.render_as_string(hide_password=False))
    assert asyncio.run(old.resolve_ownership()) is OwnershipMode.ADVISORY_LOCKS
    alone = runtime_for(require_broker4(), random_topology(2), storage.unit_of_work, None)
    assert asyncio.run(alone.resolve_ownership()) is OwnershipMode.ADVISORY_LOCKS


def test_declare_makes_the_topology_one_super_stream(runtime: StreamRuntime) -> None:
    """Nothing exists, then declare creates the super stream with exactly the partitions."""
    assert asyncio.run(super_stream_state(runtime.address, runtime.topology)) == "absent"
    assert asyncio.run(runtime.declare()) == list(runtime.topology.streams)
    assert asyncio.run(super_stream_state(runtime.address, runtime.topology)) == "ready"
    assert asyncio.run(runtime.declare()) == []  # idempotent


def test_partition_streams_without_their_super_stream_keep_advisory_locks(
    storage: SqlStorage, database: URL,
) -> None:
    """Streams declared one by one (an older deployment): `auto` keeps advisory locks, and an
    explicit single-active-consumer setting is refused by name at declare."""
    address, topology = require_broker4(), random_topology(2)
    url = database.render_as_string(hide_password=False)
    asyncio.run(declare_streams(address, topology))
    try:
        auto = runtime_for(address, topology, storage.unit_of_work, url)
        assert asyncio.run(auto.resolve_ownership()) is OwnershipMode.ADVISORY_LOCKS
        forced = StreamRuntime(StreamOptions(
            address, topology, group=GROUP, ownership=OwnershipMode.SINGLE_ACTIVE_CONSUMER,
        ), storage.unit_of_work, functools.partial(AdvisoryLockOwnership, url, GROUP))
        with pytest.raises(ValidationFailed) as refused:
            asyncio.run(forced.declare())
        assert refused.value.errors[0].field == "ANALYTICS_RABBITMQ_OWNERSHIP"
    finally:
        asyncio.run(runtime_for(address, topology, storage.unit_of_work, None).delete())


async def _until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    """Poll `condition` until it holds (AssertionError naming `what` after `timeout`)."""
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_members_split_the_partitions_only_after_the_previous_owner_released_them(
    runtime: StreamRuntime,
) -> None:
    """A first member holds every partition. When a second joins, the broker takes some
    partitions from the first but activates the second on them only once the first has
    released them (its workers stopped): never two owners at once. When the first leaves, the
    second holds them all."""
    asyncio.run(runtime.declare())
    streams = set(runtime.topology.streams)

    async def scenario() -> None:
        first = SingleActiveConsumerOwnership(runtime.address, runtime.topology, GROUP)
        second = SingleActiveConsumerOwnership(runtime.address, runtime.topology, GROUP)
        try:
            await first.connect()
            await _until(lambda: first.held == streams, "the first member to hold all")
            await second.connect()
            await _until(lambda: 0 < len(first.held) < len(streams), "a rebalance")
            moving = streams - first.held
            await asyncio.sleep(0.5)
            assert second.held == frozenset()  # the broker waits for the first's answer
            for stream in moving:
                await first.release(stream)
            await _until(lambda: second.held == moving, "the second member to get them")
            assert first.held.isdisjoint(second.held)
            await first.close()
            await _until(lambda: second.held == streams, "the second member to hold all")
        finally:
            await first.close()
            await second.close()

    asyncio.run(scenario())


def test_a_member_whose_stream_is_deleted_reports_the_membership_lost(
    runtime: StreamRuntime,
) -> None:
    """The broker drops the member subscription of a deleted partition stream: `alive()`
    turns False and nothing is held, so the consumer stops and joins again."""
    asyncio.run(runtime.declare())

    async def scenario() -> None:
        member = SingleActiveConsumerOwnership(runtime.address, runtime.topology, GROUP)
        try:
            await member.connect()
            await _until(lambda: len(member.held) == runtime.topology.partitions, "ownership")
            assert await member.alive()
            await delete_streams(runtime.address, [runtime.topology.stream(0)])
            await _until(lambda: not member.held, "the membership to be dropped")
            assert not await member.alive()
        finally:
            await member.close()

    asyncio.run(scenario())


def test_auto_falls_back_to_locks_when_plain_streams_appear_before_declare(
    runtime: StreamRuntime,
) -> None:
    """`auto` chose single active consumer while nothing existed; an older publisher then
    declared plain partition streams: declare keeps them and switches to advisory locks."""
    assert asyncio.run(runtime.resolve_ownership()) is OwnershipMode.SINGLE_ACTIVE_CONSUMER
    asyncio.run(declare_streams(runtime.address, runtime.topology))
    assert asyncio.run(runtime.declare()) == []
    assert asyncio.run(runtime.resolve_ownership()) is OwnershipMode.ADVISORY_LOCKS


def test_two_processes_share_the_partitions_and_a_survivor_takes_over(
    runtime: StreamRuntime, storage: SqlStorage, database: URL, tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """Two `analytics consume` processes on RabbitMQ 4 (ownership `auto`, so single active
    consumer): the broker gives each two partitions; one is killed with -9 mid-stream, the
    other is handed its partitions; every event is counted exactly once."""
    asyncio.run(runtime.declare())
    logs = survivor_takes_over(runtime, storage, database, tmp_path, processes, seed=23)
    assert "partition ownership: single-active-consumer" in logs[0].read_text()


def test_topology_of_the_wrong_partition_count_is_a_conflict() -> None:
    """A super stream whose partitions differ from the configured ones is not used."""
    address, topology = require_broker4(), random_topology(3)
    runtime = StreamRuntime(StreamOptions(address, topology, group=GROUP,
                                          ownership=OwnershipMode.SINGLE_ACTIVE_CONSUMER),
                            lambda: None, None)  # type: ignore[arg-type,return-value]
    with deleted_afterwards(runtime):
        asyncio.run(runtime.declare())
        bigger = StreamTopology(topology.base, 4)
        assert asyncio.run(super_stream_state(address, bigger)) == "conflict"
