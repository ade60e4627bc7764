"""Stream ingestion into the Citus cluster (SPEC §16): exactly once through kill -9 of the
consumer, a peer taking over (advisory locks live on the coordinator), and a worker node that
crashes mid-stream.

The kill -9 and take-over tests are the ones of `test_stream_resilience`, collected again here
with this module's `database`: a fresh database on the cluster instead of single PostgreSQL.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from analytics_adapters.rabbitmq import StreamRuntime
from analytics_adapters.sql import SqlStorage
from tests.contract.citus_backends import fresh_citus_database, require_citus, worker_urls
from tests.integration.stream_support import (
    ConsumerThread,
    assert_exact,
    caught_up,
    make_scenario,
    publish,
    require_broker,
    wait_until,
)
from tests.integration.test_stream_resilience import (
    test_a_peer_takes_over_the_partitions_of_a_consumer_that_died as peer_takes_over,
)
from tests.integration.test_stream_resilience import (
    test_kill_9_at_random_points_loses_nothing_and_counts_nothing_twice as kill_9,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.citus]

CITUS_SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "citus"

test_kill_9_on_citus_loses_nothing_and_counts_nothing_twice = kill_9
test_a_peer_takes_over_on_citus = peer_takes_over


@pytest.fixture
def database() -> Iterator[URL]:
    """A migrated (so distributed) database of this test's own on the cluster."""
    require_broker()
    with fresh_citus_database() as url:
        yield url


@pytest.fixture
def partitions() -> int:
    """Four partition streams: two consumers own two each."""
    return 4


def _citus(*args: str) -> None:
    subprocess.run([str(CITUS_SCRIPT), *args], check=True, capture_output=True, timeout=120)


def _recover_prepared(database: URL) -> None:
    """Finish the two-phase commits a crashed worker left prepared (Citus's maintenance
    daemon does this on its own within citus.recover_2pc_interval, 60 s by default)."""
    engine = sa.create_engine(database, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SELECT recover_prepared_transactions()"))
    finally:
        engine.dispose()


def test_a_worker_crash_mid_stream_pauses_ingest_which_resumes_exactly(
    runtime: StreamRuntime, storage: SqlStorage, database: URL,
) -> None:
    """One worker stops with `pg_ctl stop -m immediate` while events keep arriving: the
    consumer retries (readiness says why), nothing commits half, and when the worker is back
    everything lands exactly once."""
    server = require_citus()
    worker = worker_urls(server)[-1]
    scenario = make_scenario(4000, seed=41)
    half = len(scenario.lines) // 2
    publish(runtime, scenario.lines[:half])
    with ConsumerThread(runtime, storage, batch_size=200) as consumer:
        wait_until(caught_up(runtime, storage.unit_of_work), 90, "the consumer to catch up")
        _citus("crash-node", str(worker.port))
        try:
            publish(runtime, scenario.lines[half:])
            wait_until(lambda: not consumer.consumer.status.readiness()[0], 60,
                       "readiness to report the storage")
            time.sleep(1.0)  # retries with backoff meanwhile; nothing is dropped
            assert not caught_up(runtime, storage.unit_of_work)()
        finally:
            _citus("start-node", str(worker.port))
        wait_until(caught_up(runtime, storage.unit_of_work), 120, "consumption to resume")
        wait_until(lambda: consumer.consumer.status.readiness()[0], 60, "readiness to recover")
        assert consumer.stop() == 0
    _recover_prepared(database)
    assert_exact(storage.unit_of_work, scenario)
