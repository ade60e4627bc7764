"""The freshness probe keeps the broker's open files bounded while offsets move.

RabbitMQ 3.10 keeps a file of a stream open for every subscription made on a connection until
that connection closes, unsubscribe or not. The probe re-subscribes each partition whenever the
consumer commits, so on one long-lived connection a busy pipeline used to exhaust the broker's
file descriptors (stream connections then crash with `emfile`). It now replaces its connection
after a bounded number of subscriptions; this test counts the broker's open files of the test's
streams (from /proc, on the broker's own machine) through many probe cycles.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from datetime import UTC, datetime

import pytest

from analytics_adapters.memory import InMemoryStorage, unit_of_work_factory
from analytics_adapters.rabbitmq import BrokerAddress, StreamPipelineProgress, StreamTopology
from analytics_adapters.rabbitmq.admin import declare_streams, delete_streams
from tests.integration.stream_support import STREAM_PORT, require_broker

pytestmark = [pytest.mark.rabbitmq]


def broker_pid() -> int:
    """The local broker's process id (skips when it is not readable here)."""
    try:
        found = subprocess.run(["pgrep", "-f", "beam.smp"], capture_output=True, text=True,
                               check=False).stdout.split()
        pid = int(found[0])
        os.listdir(f"/proc/{pid}/fd")
    except (IndexError, ValueError, OSError):
        pytest.skip("the broker's open files are not readable from this process")
    return pid


def open_files(pid: int, marker: str) -> int:
    """Files the broker process holds open whose path contains `marker`."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += marker in os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
    return count


def test_probe_connections_are_replaced_so_broker_files_stay_bounded() -> None:
    """120 commits on each of 2 partitions, probed every 20 ms with at most 8 subscriptions per
    connection: the broker never holds more than ~2 x 8 files of these streams (one dying and
    one new connection), where one connection would have kept one per subscription made."""
    address = require_broker()
    pid = broker_pid()
    base = f"analytics.files.{uuid.uuid4().hex[:10]}"
    topology = StreamTopology(base, 2)
    storage = InMemoryStorage()
    uow_factory = unit_of_work_factory(storage)
    asyncio.run(declare_streams(BrokerAddress(address.host, STREAM_PORT), topology))
    progress = StreamPipelineProgress(address, topology, "g", uow_factory, refresh=0.02,
                                      grace=0.0, max_subscriptions=8)
    peak = 0
    try:
        progress.complete_through(datetime.now(UTC))  # starts the probe
        for offset in range(120):
            with uow_factory() as uow:
                for stream in topology.streams:
                    uow.offsets.save("g", stream, offset)
                uow.commit()
            time.sleep(0.03)
            peak = max(peak, open_files(pid, base))
        made, connections = progress.subscriptions, progress.connections
        assert made > 3 * 8  # one connection would have kept `made` files open
        assert connections >= made // 8  # so the connection was replaced along the way
        assert peak <= 2 * 8 + 4, (peak, made, connections)
    finally:
        progress.close()
        asyncio.run(delete_streams(BrokerAddress(address.host, STREAM_PORT),
                                   topology.streams))
