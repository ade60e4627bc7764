"""The consumer under failure: kill -9, SIGTERM, database outage, broker outage, peer death."""

from __future__ import annotations

import asyncio
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from analytics_adapters.rabbitmq import BrokerAddress, StreamRuntime
from analytics_adapters.sql import SqlStorage
from tests.conftest import port_open
from tests.integration.stream_support import (
    STREAM_PORT,
    ConsumerThread,
    CuttableProxy,
    assert_exact,
    caught_up,
    committed,
    consumer_env,
    free_port,
    kill9,
    make_scenario,
    owned,
    publish,
    readiness,
    runtime_for,
    set_connections,
    start_consumer,
    stream_bodies,
    survivor_takes_over,
    wait_until,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


@pytest.fixture
def partitions() -> int:
    """Four partition streams: two consumers own two each."""
    return 4


def total_committed(storage: SqlStorage, runtime: StreamRuntime) -> int:
    """Sum of committed offsets (+1 each), i.e. messages committed so far."""
    done = committed(storage.unit_of_work, runtime.topology.streams)
    return sum(o + 1 for o in done.values() if o is not None)


def test_sigterm_commits_the_batch_in_hand_and_exits_zero(
    runtime: StreamRuntime, storage: SqlStorage, database: URL, tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """A batch that neither size nor time would flush yet is committed on SIGTERM."""
    port = free_port()
    env = consumer_env(database, runtime.topology, ANALYTICS_RABBITMQ_STATUS_PORT=str(port),
                       ANALYTICS_RABBITMQ_BATCH_SIZE="100000",
                       ANALYTICS_RABBITMQ_BATCH_MAX_WAIT_MS="600000")
    processes.append(consumer := start_consumer(env, tmp_path / "consumer.log"))
    wait_until(lambda: len(owned(port)) == 4 and readiness(port)["status"] == "ready", 30,
               "the consumer to own every partition")
    scenario = make_scenario(600, seed=11)
    publish(runtime, scenario.lines)
    time.sleep(1.0)  # the chunks reach the consumer's batch; nothing is due yet
    assert total_committed(storage, runtime) == 0
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=30) == 0
    assert caught_up(runtime, storage.unit_of_work)()
    assert_exact(storage.unit_of_work, scenario)


def test_kill_9_at_random_points_loses_nothing_and_counts_nothing_twice(
    runtime: StreamRuntime, storage: SqlStorage, database: URL, tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """Four SIGKILLs mid-consumption, a restart after each: the totals are still exact."""
    rng = random.Random()
    scenario = make_scenario(12_000, seed=12)
    rounds = 4
    size = len(scenario.lines) // rounds
    env = consumer_env(database, runtime.topology, ANALYTICS_RABBITMQ_BATCH_SIZE="150")
    for round_ in range(rounds):
        publish(runtime, scenario.lines[round_ * size:(round_ + 1) * size])
        before = total_committed(storage, runtime)
        processes.append(consumer := start_consumer(env, tmp_path / "consumer.log"))
        wait_until(lambda b=before: total_committed(storage, runtime) > b, 60,
                   "the restarted consumer to commit something")
        time.sleep(rng.uniform(0.0, 0.4))
        kill9(consumer)
    publish(runtime, scenario.lines[rounds * size:])
    processes.append(consumer := start_consumer(env, tmp_path / "consumer.log"))
    wait_until(caught_up(runtime, storage.unit_of_work), 90, "the last consumer to catch up")
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=30) == 0
    assert_exact(storage.unit_of_work, scenario)


def test_a_peer_takes_over_the_partitions_of_a_consumer_that_died(
    runtime: StreamRuntime, storage: SqlStorage, database: URL, tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """Two processes share the partitions (advisory locks on this RabbitMQ 3.10); after one is
    killed the other owns all of them; totals exact."""
    logs = survivor_takes_over(runtime, storage, database, tmp_path, processes, seed=13)
    assert "partition ownership: advisory-locks" in logs[0].read_text()


def test_a_database_outage_pauses_consumption_which_resumes_by_itself(
    runtime: StreamRuntime, storage: SqlStorage, database: URL,
) -> None:
    """Connections refused mid-stream: nothing commits, readiness fails, then all lands once."""
    scenario = make_scenario(4000, seed=14)
    half = len(scenario.lines) // 2
    publish(runtime, scenario.lines[:half])
    with ConsumerThread(runtime, storage, batch_size=200) as consumer:
        wait_until(caught_up(runtime, storage.unit_of_work), 60, "the consumer to catch up")
        set_connections(database, allowed=False)
        try:
            publish(runtime, scenario.lines[half:])
            wait_until(lambda: not consumer.consumer.status.readiness()[0], 30,
                       "readiness to report the database")
            time.sleep(1.0)  # retries with backoff meanwhile; nothing is dropped
        finally:
            set_connections(database, allowed=True)
        wait_until(caught_up(runtime, storage.unit_of_work), 60, "consumption to resume")
        wait_until(lambda: consumer.consumer.status.readiness()[0], 30, "readiness to recover")
        assert consumer.stop() == 0
    assert_exact(storage.unit_of_work, scenario)


def test_a_broker_outage_mid_stream_is_survived_by_reconnecting(
    runtime: StreamRuntime, storage: SqlStorage, database: URL,
) -> None:
    """Every broker connection cut and refused for a while: the consumer finishes exactly."""
    proxy = CuttableProxy((runtime.address.host, STREAM_PORT))
    through_proxy = runtime_for(BrokerAddress(runtime.address.host, proxy.port),
                                runtime.topology, storage.unit_of_work,
                                database.render_as_string(hide_password=False))
    scenario = make_scenario(4000, seed=15)
    half = len(scenario.lines) // 2
    publish(runtime, scenario.lines[:half])
    with ConsumerThread(through_proxy, storage, batch_size=100) as consumer:
        wait_until(lambda: total_committed(storage, runtime) > 0, 60, "consumption to start")
        proxy.cut()
        publish(runtime, scenario.lines[half:])
        wait_until(lambda: not consumer.consumer.status.readiness()[0], 30,
                   "readiness to report the broker")
        time.sleep(1.0)
        proxy.restore()
        wait_until(caught_up(runtime, storage.unit_of_work), 60, "the consumer to finish")
        assert consumer.stop() == 0
    proxy.cut()
    assert_exact(storage.unit_of_work, scenario)


@pytest.mark.slow
def test_a_real_broker_restart_mid_stream_is_survived(
    runtime: StreamRuntime, storage: SqlStorage, database: URL, tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    """`rabbitmqctl stop_app` / `start_app` while consuming: the consumer finishes exactly."""
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        pytest.skip("rabbitmqctl is not on PATH (the TCP-cut test covers the behaviour)")
    scenario = make_scenario(8000, seed=16)
    publish(runtime, scenario.lines)
    env = consumer_env(database, runtime.topology, ANALYTICS_RABBITMQ_BATCH_SIZE="100")
    processes.append(consumer := start_consumer(env, tmp_path / "consumer.log"))
    wait_until(lambda: total_committed(storage, runtime) > 0, 60, "consumption to start")
    assert total_committed(storage, runtime) < len(scenario.lines)
    try:
        subprocess.run([rabbitmqctl, "stop_app"], check=True, capture_output=True, timeout=60)
        time.sleep(2.0)
    finally:
        subprocess.run([rabbitmqctl, "start_app"], check=True, capture_output=True, timeout=120)
        wait_until(lambda: port_open(runtime.address.host, STREAM_PORT), 60,
                   "the stream port to come back")
    wait_until(caught_up(runtime, storage.unit_of_work), 90, "the consumer to finish")
    consumer.send_signal(signal.SIGTERM)
    assert consumer.wait(timeout=30) == 0
    assert_exact(storage.unit_of_work, scenario)


def test_the_publisher_resends_unconfirmed_messages_after_a_broker_outage(
    runtime: StreamRuntime, storage: SqlStorage, database: URL,
) -> None:
    """Connections cut mid-publish: flush() still returns and every message is in a stream."""
    proxy = CuttableProxy((runtime.address.host, STREAM_PORT))
    through_proxy = runtime_for(BrokerAddress(runtime.address.host, proxy.port),
                                runtime.topology, storage.unit_of_work,
                                database.render_as_string(hide_password=False))
    lines = make_scenario(6000, seed=17).lines

    async def publish_with_outage() -> None:
        await through_proxy.declare()
        async with through_proxy.publisher(batch_size=100) as publisher:
            for i, line in enumerate(lines):
                await publisher.send(line)
                if i == len(lines) // 2:
                    proxy.cut()
                    asyncio.get_running_loop().call_later(1.0, proxy.restore)

    asyncio.run(publish_with_outage())
    proxy.cut()
    assert {b for bodies in stream_bodies(runtime).values() for b in bodies} == set(lines)

