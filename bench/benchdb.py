"""Shared helpers for the storage benchmarks: dedicated databases and realistic synthetic events."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from analytics_adapters.sql import migrate_to_head
from analytics_adapters.sql.engine import normalize_url

SERVER_URL = os.environ.get(
    "ANALYTICS_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
STATUSES = ("success",) * 960 + ("error",) * 20 + ("timeout",) * 12 + ("throttled",) * 8
ERROR_CODES = ("rate_limited", "upstream_5xx", "context_length", "bad_request", "overloaded")


def server_url() -> URL:
    """Maintenance database URL of the benchmark server."""
    return normalize_url(SERVER_URL)


def _admin() -> sa.Engine:
    return sa.create_engine(server_url(), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)


def database_exists(name: str) -> bool:
    """Whether a database of that name exists on the server."""
    with _admin().connect() as conn:
        found = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                             {"n": name}).first()
    return found is not None


def create_database(name: str) -> URL:
    """Create and migrate a database; return its URL."""
    with _admin().connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = server_url().set(database=name)
    migrate_to_head(url)
    return url


def drop_database(name: str) -> None:
    """Drop a database, disconnecting its sessions."""
    with _admin().connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def scratch_database(prefix: str, keep: bool = False) -> Iterator[URL]:
    """A fresh migrated database named `{prefix}_{random}`, dropped unless `keep`."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = create_database(name)
    try:
        yield url
    finally:
        if not keep:
            drop_database(name)


def machine() -> str:
    """One line describing the machine the figures come from."""
    cores = os.cpu_count()
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        mem = f", {kib / 2**20:.0f} GiB RAM"
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {cores} cores{mem}, Python {platform.python_version()}"


def postgres_version(url: URL | str) -> str:
    """`server_version` of the database at `url`."""
    engine = sa.create_engine(make_url(url) if isinstance(url, str) else url,
                              poolclass=sa.NullPool)
    with engine.connect() as conn:
        return str(conn.exec_driver_sql("SHOW server_version").scalar())


class EventFactory:
    """Realistic usage events: 250 orgs of skewed size, ~5 models and 3 clients each."""

    def __init__(self, seed: int = 1, orgs: int = 250, models: int = 40) -> None:
        self.rng = random.Random(seed)
        model_ids = [uuid.UUID(int=self.rng.getrandbits(128)) for _ in range(models)]
        self.orgs = [uuid.UUID(int=self.rng.getrandbits(128)) for _ in range(orgs)]
        self.weights = [1 / (rank + 1) ** 1.1 for rank in range(orgs)]
        self.models = {o: self.rng.sample(model_ids, 5) for o in self.orgs}
        self.clients = {o: [f"app-{self.rng.randrange(10**6)}" for _ in range(3)]
                        for o in self.orgs}

    def payloads(self, count: int, start: datetime, span: timedelta) -> list[bytes]:
        """`count` JSON events (bytes, as on the stream) spread over [start, start + span)."""
        orgs = self.rng.choices(self.orgs, weights=self.weights, k=count)
        step = span / count
        return [self._payload(org, start + i * step) for i, org in enumerate(orgs)]

    def _payload(self, org: uuid.UUID, at: datetime) -> bytes:
        rng = self.rng
        status = rng.choice(STATUSES)
        body = {
            "eventId": str(uuid.UUID(int=rng.getrandbits(128))),
            "orgId": str(org),
            "modelId": str(rng.choice(self.models[org])),
            "occurredAt": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "status": status,
            "latencyMs": max(0, int(math.exp(rng.gauss(6.2, 0.7)))),
            "inputTokens": rng.randrange(20, 4000),
            "outputTokens": rng.randrange(1, 1500),
            "costEstimateCents": round(rng.uniform(0.001, 4.0), 4),
            "clientId": rng.choice(self.clients[org]),
            "errorCode": None if status == "success" else rng.choice(ERROR_CODES),
        }
        if rng.random() < 0.2:
            body["metadata"] = {"region": "eu-west-1", "tier": rng.choice(["free", "pro"])}
        return json.dumps(body).encode()
