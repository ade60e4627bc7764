"""Stream ingestion end to end on the real broker and PostgreSQL: exact totals, dead letters,
bounded buffering, replay and pipeline freshness."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import URL

from analytics_adapters.memory import InMemoryStorage, unit_of_work_factory
from analytics_adapters.rabbitmq import (
    BrokerUnavailable,
    PartitionReader,
    Retention,
    StartAt,
    StreamPipelineProgress,
    StreamRuntime,
    StreamTopology,
)
from analytics_adapters.rabbitmq.admin import delete_streams
from analytics_adapters.sql import SqlStorage
from analytics_app.http.app import create_app
from tests.integration.stream_support import (
    GROUP,
    ConsumerThread,
    assert_exact,
    caught_up,
    consume_all,
    deleted_afterwards,
    make_scenario,
    publish,
    random_topology,
    require_broker,
    runtime_for,
    stream_bodies,
    wait_until,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


def test_consumed_totals_equal_the_ground_truth_and_dead_letters_the_invalid_ones(
    runtime: StreamRuntime, storage: SqlStorage,
) -> None:
    """Duplicates, late and invalid events published to the streams yield exact usage totals."""
    scenario = make_scenario(3000, seed=1)
    publish(runtime, scenario.lines)
    with ConsumerThread(runtime, storage, batch_size=250) as consumer:
        wait_until(caught_up(runtime, storage.unit_of_work), 60, "the consumer to catch up")
        assert consumer.stop() == 0
    assert_exact(storage.unit_of_work, scenario)


def test_events_are_routed_to_partitions_by_org(runtime: StreamRuntime) -> None:
    """Every message of one org lands on the partition its org id hashes to."""
    scenario = make_scenario(300, orgs=5, seed=2)
    publish(runtime, scenario.lines)
    seen: dict[str, set[int]] = {}
    for index, bodies in enumerate(stream_bodies(runtime, timeout=0.5).values()):
        for body in bodies:
            org = body.split(b'"orgId":"', 1)[-1][:36].decode(errors="replace")
            seen.setdefault(org, set()).add(index)
    for org in scenario.truth:
        if str(org) in seen:
            assert seen[str(org)] == {runtime.topology.partition_of(org)}


def test_a_reader_buffers_at_most_its_credit_while_nobody_takes_chunks(
    runtime: StreamRuntime,
) -> None:
    """Credit flow control: with the consumer stalled the broker stops sending chunks."""
    stream = runtime.topology.stream(0)
    org = next(o for o in (uuid.uuid4() for _ in range(100))
               if runtime.topology.partition_of(o) == 0)
    lines = [f'{{"orgId":"{org}","n":{i}}}'.encode() for i in range(2000)]

    async def scenario() -> tuple[int, int]:
        await runtime.declare()
        async with runtime.publisher(batch_size=20) as publisher:  # ~100 chunks
            for line in lines:
                await publisher.send(line)
        reader = PartitionReader(runtime.address, stream, StartAt.first(), credit=3)
        await reader.open()
        await asyncio.sleep(1.0)  # the broker would push all ~100 chunks if it could
        stalled = reader.buffered
        taken = 0
        while (chunk := await reader.next_chunk(1.0)) is not None:
            taken += len(chunk.bodies)
        await reader.close()
        return stalled, taken

    stalled, taken = asyncio.run(scenario())
    assert stalled <= 3
    assert taken == len(lines)


def test_replay_from_offset_zero_changes_no_total(
    runtime: StreamRuntime, storage: SqlStorage, database: URL,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Re-reading the whole stream counts every event as a duplicate: totals stay exact."""
    from analytics_app.bootstrap.application import Application  # noqa: PLC0415
    from analytics_app.config import load_settings  # noqa: PLC0415

    scenario = make_scenario(800, seed=3)
    publish(runtime, scenario.lines)
    consume_all(runtime, storage)
    for name, value in {
        "ANALYTICS_DATABASE_URL": database.render_as_string(hide_password=False),
        "ANALYTICS_RABBITMQ_HOST": runtime.address.host,
        "ANALYTICS_RABBITMQ_PORT": str(runtime.address.port),
        "ANALYTICS_RABBITMQ_STREAM": runtime.topology.base,
        "ANALYTICS_RABBITMQ_PARTITIONS": str(runtime.topology.partitions),
    }.items():
        monkeypatch.setenv(name, value)
    with Application(load_settings()) as app:
        totals = app.replayer()(start_text="0", end_text=None, partitions=None)
    assert sum(t["read"] for t in totals.values()) == len(scenario.lines)
    assert sum(t["accepted"] for t in totals.values()) == 0
    assert_exact(storage.unit_of_work, scenario)


def test_progress_is_now_when_caught_up_and_the_oldest_pending_chunk_when_behind(
    runtime: StreamRuntime, storage: SqlStorage,
) -> None:
    """completeThrough follows the committed offsets versus what the streams hold."""
    progress = runtime.progress
    publish(runtime, make_scenario(200, seed=4).lines)
    published_by = datetime.now(UTC)
    wait_until(lambda: progress.complete_through(datetime.now(UTC)) < published_by, 10,
               "progress to see the unconsumed messages")
    behind = progress.complete_through(datetime.now(UTC) + timedelta(minutes=1))
    assert behind <= published_by
    consume_all(runtime, storage)
    later = datetime.now(UTC) + timedelta(minutes=1)
    wait_until(lambda: progress.complete_through(later) == later, 10, "progress to catch up")
    assert [p.committed for p in progress.partitions()] == [
        storage_offset(storage, s) for s in runtime.topology.streams
    ]


def test_data_the_broker_showed_keeps_a_partition_behind_whatever_the_grace(
    runtime: StreamRuntime, storage: SqlStorage,
) -> None:
    """A probe that moves forward to offsets the broker already delivered is behind until the
    committed offset passes them, even when the broker does not push the chunk again within
    the grace (here none at all): being caught up is never concluded from a short silence."""
    progress = StreamPipelineProgress(runtime.address, runtime.topology, GROUP,
                                      storage.unit_of_work, refresh=0.1, grace=0.0)
    try:
        publish(runtime, make_scenario(200, seed=5).lines)
        published_by = datetime.now(UTC)
        streams = set(runtime.topology.streams)
        wait_until(lambda: {p.stream for p in progress.partitions() if p.behind_since} == streams,
                   10, "progress to see the unconsumed messages of every partition")
        busy = sorted(streams)
        with storage.unit_of_work() as uow:  # a consumer that committed only the first message
            for stream in busy:
                uow.offsets.save(GROUP, stream, 0)
            uow.commit()
        wait_until(lambda: all(p.committed == 0 for p in progress.partitions()
                               if p.stream in busy), 10, "progress to read the committed offsets")
        for _ in range(10):  # ten refresh cycles, each moving no probe and waiting no grace
            time.sleep(0.1)
            assert progress.complete_through(datetime.now(UTC)) < published_by
        consume_all(runtime, storage)
        later = datetime.now(UTC) + timedelta(minutes=1)
        wait_until(lambda: progress.complete_through(later) == later, 10, "progress to catch up")
    finally:
        progress.close()


def storage_offset(storage: SqlStorage, stream: str) -> int | None:
    """The committed offset of the test group on one stream."""
    with storage.unit_of_work() as uow:
        return uow.offsets.get(GROUP, stream)


def test_a_reader_reports_its_stream_gone_when_the_stream_is_deleted(
    runtime: StreamRuntime,
) -> None:
    """Deleting a stream under a reader surfaces as BrokerUnavailable, not as silence."""

    async def scenario() -> None:
        await runtime.declare()
        reader = runtime.reader(runtime.topology.stream(1), None)
        await reader.open()
        await delete_streams(runtime.address, [runtime.topology.stream(1)])
        with pytest.raises(BrokerUnavailable):
            await reader.next_chunk(5.0)
        await reader.close()

    asyncio.run(scenario())


def test_the_api_readiness_reports_the_broker_as_a_degraded_only_check() -> None:
    """A missing partition stream degrades /status/readyz (still 200); once declared, ok."""
    from falcon.testing import TestClient  # noqa: PLC0415

    from analytics_app.bootstrap.application import Application  # noqa: PLC0415
    from analytics_app.config import Settings  # noqa: PLC0415
    from analytics_app.config.stream import StreamConfig  # noqa: PLC0415

    address = require_broker()
    topology = random_topology(2)
    app = Application(Settings(rabbitmq=StreamConfig(
        host=address.host, port=address.port, stream=topology.base, partitions=2)))
    assert app.stream is not None
    with deleted_afterwards(app.stream):
        client = TestClient(create_app(app.http_api()))

        def broker_check() -> tuple[int, dict[str, object]]:
            result = client.simulate_get("/analytics/v1/status/readyz", params={"verbose": ""})
            checks = result.json["checks"]
            return result.status_code, next(c for c in checks if c["name"] == "rabbitmq")

        status, check = broker_check()
        assert (status, check["critical"], check["status"]) == (200, False, "degraded")
        asyncio.run(app.stream.declare())
        status, check = broker_check()
        assert (status, check["status"]) == (200, "ok")
        now = datetime.now(UTC)
        assert app.ports.progress.complete_through(now) <= now
        app.shutdown()


def test_a_reader_whose_offset_was_deleted_by_retention_resumes_at_the_oldest_message() -> None:
    """Offsets removed by retention are reported and skipped; later ones are all delivered."""
    address = require_broker()
    topology = StreamTopology(random_topology(1).base, 1,
                              Retention(timedelta(hours=1), 300_000, 60_000))
    runtime = runtime_for(address, topology, unit_of_work_factory(InMemoryStorage()), None)
    org = uuid.uuid4()
    lines = [f'{{"orgId":"{org}","n":{i},"pad":"{"x" * 400}"}}'.encode() for i in range(6000)]

    async def scenario() -> list[int]:
        await runtime.declare()
        async with runtime.publisher(batch_size=50) as publisher:
            for line in lines:
                await publisher.send(line)
        reader = PartitionReader(address, topology.stream(0), StartAt.offset(0))
        await reader.open()
        offsets: list[int] = []
        while (chunk := await reader.next_chunk(1.0)) is not None:
            offsets.extend(chunk.offsets())
        await reader.close()
        return offsets

    with deleted_afterwards(runtime):
        offsets = asyncio.run(scenario())
    assert offsets[0] > 0
    assert offsets == list(range(offsets[0], len(lines)))
