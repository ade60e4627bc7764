"""Committed offsets stay contiguous while stream members restart and connections break.

A burst is published while, over and over, the broker's writer process of one partition
stream is killed (the broker restarts it and sends a metadata update to every client of the
stream, which drops their subscriptions) and the consumer's TCP connections are cut. The
consumer must resubscribe where it stopped every time: the totals equal the ground truth,
the dead letters equal the invalid messages, and every committed offset is a stream tail.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from analytics_adapters.rabbitmq import StreamRuntime
from analytics_adapters.sql import SqlStorage
from tests.integration.stream_support import (
    STREAM_PORT,
    CuttableProxy,
    assert_exact,
    caught_up,
    committed,
    consumer_env,
    kill9,
    make_scenario,
    publish,
    start_consumer,
    tails,
    wait_until,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]


def restart_stream_member(stream: str) -> None:
    """Kill the broker's writer process of `stream`; the stream coordinator restarts it."""
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        pytest.skip("rabbitmqctl is not on PATH")
    program = (
        "{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<\"/\">>, queue, <<\""
        + stream + "\">>)), exit(amqqueue:get_pid(Q), kill), ok."
    )
    subprocess.run([rabbitmqctl, "eval", program], check=True, capture_output=True, timeout=60)


@pytest.mark.slow
def test_member_restarts_and_connection_cuts_during_a_burst_lose_and_double_count_nothing(
    runtime: StreamRuntime, storage: SqlStorage, database: URL, tmp_path: Path,
) -> None:
    """Six disruptions (member kills and TCP cuts, alternating) while 24,000 messages arrive."""
    rng = random.Random(41)
    scenario = make_scenario(24_000, seed=41)
    proxy = CuttableProxy((runtime.address.host, STREAM_PORT))
    env = consumer_env(database, runtime.topology, host=runtime.address.host, port=proxy.port,
                       ANALYTICS_RABBITMQ_BATCH_SIZE="300",
                       ANALYTICS_RABBITMQ_BATCH_MAX_WAIT_MS="50")
    log = tmp_path / "consumer.log"
    consumer = start_consumer(env, log)
    try:
        slices = [scenario.lines[i::8] for i in range(8)]
        publish(runtime, slices[0])
        for round_, lines in enumerate(slices[1:7]):
            assert consumer.poll() is None, log.read_text()[-2000:]
            wait_until(lambda: any(v is not None for v in
                                   committed(storage.unit_of_work, runtime.topology.streams)
                                   .values()), 60, "consumption to start")
            if round_ % 2 == 0:
                restart_stream_member(rng.choice(runtime.topology.streams))
            else:
                proxy.cut()
                time.sleep(0.3)
                proxy.restore()
            publish(runtime, lines)
        publish(runtime, slices[7])
        wait_until(caught_up(runtime, storage.unit_of_work), 180, "the consumer to catch up")
        consumer.send_signal(signal.SIGTERM)
        assert consumer.wait(timeout=60) == 0
    finally:
        if consumer.poll() is None:
            kill9(consumer)
        proxy.cut()
    assert committed(storage.unit_of_work, runtime.topology.streams) == tails(runtime)
    assert_exact(storage.unit_of_work, scenario)
    text = log.read_text()
    assert "deleted by retention" not in text, text[-4000:]
