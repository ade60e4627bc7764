"""Helpers for the export integration tests: storages, object stores, HTTP client, CSV reading."""

from __future__ import annotations

import contextlib
import csv
import io
import tempfile
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import falcon.testing

from analytics_adapters.localfs.object_store import LocalDirectoryObjectStore
from analytics_adapters.memory import (
    InMemoryFreshnessCache,
    InMemoryStorage,
    ManualClock,
    SynchronousPipeline,
    unit_of_work_factory,
)
from analytics_adapters.s3.object_store import S3ObjectStore
from analytics_adapters.sql import migrate_to_head
from analytics_adapters.system import RandomIds
from analytics_app.bootstrap.ports import Ports
from analytics_app.http.settings import HttpSettings
from analytics_core.ports import ObjectStore, UnitOfWorkFactory
from analytics_core.usecases.export_runner import ExportRunner, ExportSettings
from tests.contract.sql_backends import fresh_postgres_database, storage_at
from tests.contract.store_backends import MotoServer, drop_bucket, s3_store
from tests.wiring import app_for

PREFIX = "/analytics/v1"


@contextlib.contextmanager
def uow_factory_of(kind: str) -> Iterator[UnitOfWorkFactory]:
    """Units of work on a fresh storage of `kind` (memory, sqlite or postgres), removed after."""
    if kind == "memory":
        yield unit_of_work_factory(InMemoryStorage())
    elif kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="analytics-export-") as tmp:
            sqlite = f"sqlite:///{Path(tmp) / 'analytics.db'}"
            migrate_to_head(sqlite)
            with storage_at(sqlite) as storage:
                yield storage.unit_of_work
    else:
        with fresh_postgres_database() as url, storage_at(url) as storage:
            yield storage.unit_of_work


@contextlib.contextmanager
def object_store_of(kind: str) -> Iterator[ObjectStore]:
    """A fresh local directory, or a fresh bucket on a moto S3 server of its own."""
    if kind == "localfs":
        with tempfile.TemporaryDirectory(prefix="analytics-objects-") as tmp:
            yield LocalDirectoryObjectStore(Path(tmp))
        return
    server = MotoServer()
    server.start()
    bucket = f"export-{uuid.uuid4().hex[:16]}"
    store = s3_store(server.endpoint_url, bucket)
    store.ensure_bucket()
    try:
        yield store
    finally:
        drop_bucket(server.endpoint_url, bucket)
        server.stop()


def gateway_services(
    uow_factory: UnitOfWorkFactory, objects: ObjectStore, clock: ManualClock,
    exports: ExportSettings | None = None,
) -> Ports:
    """Ports whose callers identify through gateway headers (no token minting)."""
    ids = RandomIds()
    return Ports(
        uow_factory=uow_factory, clock=clock, ids=ids, progress=SynchronousPipeline(),
        objects=objects, cache=InMemoryFreshnessCache(clock),
        http=HttpSettings(gateway_headers=True),
        exports=exports or ExportSettings(),
    )


def client_of(services: Ports) -> falcon.testing.TestClient:
    """A test client over app_for(services)."""
    return falcon.testing.TestClient(app_for(services))


def org_admin(org: uuid.UUID) -> dict[str, str]:
    """Gateway headers of an org_admin of `org`."""
    return {"X-Actor-Subject": "finance-1", "X-Actor-Roles": "org_admin", "X-Actor-Org": str(org)}


def runner_of(services: Ports, worker: str = "w") -> ExportRunner:
    """An export runner over the same services."""
    return ExportRunner(worker, services.uow_factory, services.objects, services.clock,
                        services.progress, services.exports)


def run_all(runner: ExportRunner) -> None:
    """Run due jobs until none is left."""
    while runner.run_next() is not None:
        pass


def download(client: falcon.testing.TestClient, url: str, headers: dict[str, str]) -> bytes:
    """The file behind a download endpoint: streamed (local store) or via the 302 signed URL."""
    result = client.simulate_get(url, headers=headers)
    if result.status_code == 302:
        with urllib.request.urlopen(result.headers["location"]) as response:
            body: bytes = response.read()
            return body
    assert result.status_code == 200, result.text
    return result.content


def csv_rows(body: bytes) -> list[dict[str, str]]:
    """CSV rows as dicts (header row consumed)."""
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))


def read_object(objects: ObjectStore, key: str) -> bytes:
    """A whole object's bytes."""
    return b"".join(objects.open(key))


def instant(text: str) -> datetime:
    """Parse an RFC 3339 instant (Z or offset)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def as_s3(objects: ObjectStore) -> S3ObjectStore | None:
    """The store as the S3 adapter, or None."""
    return objects if isinstance(objects, S3ObjectStore) else None


def utc_z(when: datetime) -> str:
    """RFC 3339 UTC with Z."""
    return when.isoformat().replace("+00:00", "Z")


def problem_type(result: falcon.testing.Result) -> Any:
    """The problem+json body of a response."""
    return result.json
