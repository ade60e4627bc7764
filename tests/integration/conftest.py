"""Fixtures of the stream integration tests: a database, its storage and streams of their own.

Other integration modules define their own `storage` (parametrized over SQL backends), which
overrides the one here for them. A stream module that wants another partition count overrides
`partitions`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import URL

from analytics_adapters.rabbitmq import BrokerAddress, StreamRuntime
from analytics_adapters.sql import SqlStorage
from tests.contract.sql_backends import fresh_postgres_database
from tests.integration.stream_support import (
    deleted_afterwards,
    kill9,
    open_storage,
    random_topology,
    require_broker,
    runtime_for,
)


@pytest.fixture
def database() -> Iterator[URL]:
    """A migrated PostgreSQL database of this test's own (skipped first without a broker)."""
    require_broker()
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def storage(database: URL) -> Iterator[SqlStorage]:
    """SQL storage on the test database."""
    storage = open_storage(database)
    yield storage
    storage.close()


@pytest.fixture
def partitions() -> int:
    """How many partition streams `runtime` has."""
    return 3


@pytest.fixture
def broker() -> BrokerAddress:
    """The broker `runtime` uses (the host's RabbitMQ; a module may override it)."""
    return require_broker()


@pytest.fixture
def runtime(storage: SqlStorage, database: URL, partitions: int,
            broker: BrokerAddress) -> Iterator[StreamRuntime]:
    """Partition streams of this test's own, deleted at the end (its probe stopped first)."""
    runtime = runtime_for(broker, random_topology(partitions), storage.unit_of_work,
                          database.render_as_string(hide_password=False))
    with deleted_afterwards(runtime):
        try:
            yield runtime
        finally:
            runtime.close()


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Consumer processes started by a test; any still running are killed at the end."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            kill9(process)
