"""Real backends for the ObjectStore and FreshnessCache contract suites: localfs, moto S3, Redis."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import redis
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from analytics_adapters.localfs.object_store import LocalDirectoryObjectStore
from analytics_adapters.redis.freshness_cache import RedisFreshnessCache
from analytics_adapters.s3.object_store import MIN_PART_BYTES, S3ObjectStore
from tests.conftest import REDIS_URL, port_open, require_service

S3_REGION = "us-east-1"
S3_CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}
# The smallest part S3 accepts keeps "more than two parts" bodies small in tests.
S3_TEST_PART_BYTES = MIN_PART_BYTES


class MotoServer:
    """moto's S3-compatible HTTP server in a thread on 127.0.0.1 (state survives restarts).

    Unlike moto's ThreadedMotoServer, `stop()` also closes the listening socket, so clients see
    a refused connection, as when a real S3 endpoint goes down.
    """

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint_url(self) -> str:
        """Base URL of the running server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen (on the same port as before after a restart) and serve in a daemon thread."""
        app = DomainDispatcherApplication(create_backend_app)
        server = make_server(
            "127.0.0.1", self.port, app, threaded=True, request_handler=MotoRequestHandler,
        )
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None


def s3_store(endpoint_url: str, bucket: str, **options: object) -> S3ObjectStore:
    """The real S3 adapter pointed at a moto server, path-style, with small parts."""
    settings: dict[str, object] = {
        "endpoint_url": endpoint_url, "region": S3_REGION, "path_style": True,
        "part_size": S3_TEST_PART_BYTES, "max_attempts": 1, "connect_timeout": 1.0,
        "read_timeout": 10.0, **S3_CREDENTIALS, **options,
    }
    return S3ObjectStore.connect(bucket, **settings)


def raw_s3_client(endpoint_url: str) -> Any:
    """A plain boto3 client on the moto server, to look behind the adapter."""
    return boto3.client(
        "s3", endpoint_url=endpoint_url, region_name=S3_REGION,
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )


def drop_bucket(endpoint_url: str, bucket: str) -> None:
    """Abort uploads, delete every object, then the bucket."""
    client = raw_s3_client(endpoint_url)
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
    client.delete_bucket(Bucket=bucket)


def free_port() -> int:
    """A TCP port nothing listens on (the OS picked it and it was released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def unused_port() -> int:
    """A closed loopback port: connections to it are refused."""
    return free_port()


@pytest.fixture(scope="session")
def moto_s3_server() -> Iterator[MotoServer]:
    """One moto S3 server for the whole session."""
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def s3_bucket(moto_s3_server: MotoServer) -> Iterator[str]:
    """A random bucket per test module, created through the adapter and dropped afterwards."""
    bucket = f"test-{uuid.uuid4().hex[:20]}"
    s3_store(moto_s3_server.endpoint_url, bucket).ensure_bucket()
    yield bucket
    drop_bucket(moto_s3_server.endpoint_url, bucket)


@pytest.fixture
def s3_object_store(moto_s3_server: MotoServer, s3_bucket: str) -> S3ObjectStore:
    """The boto3 S3 adapter over HTTP against moto."""
    return s3_store(moto_s3_server.endpoint_url, s3_bucket)


@pytest.fixture
def localfs_object_store(tmp_path: Path) -> LocalDirectoryObjectStore:
    """The local-directory adapter on a fresh temporary directory."""
    return LocalDirectoryObjectStore(tmp_path / "objects")


def redis_available() -> bool:
    """Whether the test Redis accepts connections."""
    parts = urlsplit(REDIS_URL)
    return port_open(parts.hostname or "127.0.0.1", parts.port or 6379)


@pytest.fixture
def redis_freshness_cache() -> Iterator[RedisFreshnessCache]:
    """The Redis adapter on the test Redis, under a random key prefix removed afterwards."""
    require_service("Redis", redis_available())
    prefix = f"test:freshness:{uuid.uuid4().hex}:"
    cache = RedisFreshnessCache.from_url(REDIS_URL, prefix=prefix, timeout_seconds=2.0)
    yield cache
    cache.close()
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()
