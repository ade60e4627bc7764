"""Helpers for the SQL integration tests: fresh databases of each kind and test data."""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import URL

from analytics_adapters.sql import SqlStorage, migrate_to_head
from analytics_core.events import Status, UsageEvent
from analytics_core.money import Cents
from analytics_core.timegrid import Grain, floor_bucket, period_end, period_start, zone
from tests.contract.citus_backends import fresh_citus_database
from tests.contract.sql_backends import fresh_postgres_database, storage_at

BACKENDS = ("sqlite", "postgres")
T0 = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


@contextlib.contextmanager
def sqlite_url(migrate: bool = True) -> Iterator[URL | str]:
    """A SQLite file under a fresh temporary data directory."""
    with tempfile.TemporaryDirectory(prefix="analytics-sqlite-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'data' / 'analytics.db'}"
        if migrate:
            migrate_to_head(url)
        yield url


@contextlib.contextmanager
def database_url(kind: str, *, migrate: bool = True) -> Iterator[URL | str]:
    """A fresh database of `kind` (`sqlite`, `postgres` or `citus`), removed on exit."""
    if kind == "sqlite":
        with sqlite_url(migrate) as url:
            yield url
    elif kind == "citus":
        with fresh_citus_database(migrate=migrate) as url:
            yield url
    else:
        with fresh_postgres_database(migrate=migrate) as url:
            yield url


@contextlib.contextmanager
def fresh_storage(kind: str, *, migrate: bool = True) -> Iterator[SqlStorage]:
    """A `SqlStorage` on a fresh database of `kind`."""
    with database_url(kind, migrate=migrate) as url, storage_at(url) as storage:
        yield storage


def event(org_id: uuid.UUID, at: datetime, *, latency_ms: int = 120,
          model_id: uuid.UUID | None = None, status: Status = Status.SUCCESS) -> UsageEvent:
    """A valid event of `org_id` at `at`."""
    return UsageEvent(
        event_id=uuid.uuid4(), org_id=org_id, model_id=model_id or uuid.uuid4(),
        occurred_at=at, status=status, latency_ms=latency_ms, input_tokens=10,
        output_tokens=5, cost=Cents.parse("0.0123"), client_id="c",
        error_code=None if status is Status.SUCCESS else "E_TEST",
    )


def events_over(org_id: uuid.UUID, start: datetime, count: int,
                step: timedelta = timedelta(minutes=7)) -> list[UsageEvent]:
    """`count` events of one org and model, `step` apart from `start`."""
    model = uuid.uuid4()
    return [event(org_id, start + i * step, latency_ms=10 + i * 13, model_id=model)
            for i in range(count)]


def boundaries(start: datetime, end: datetime, grain: Grain, tz: str) -> list[datetime]:
    """Period edges covering [start, end) as the core computes them."""
    first = period_start(floor_bucket(start), grain, zone(tz))
    edges = [first]
    while edges[-1] < end:
        edges.append(period_end(edges[-1], grain, zone(tz)))
    return edges
