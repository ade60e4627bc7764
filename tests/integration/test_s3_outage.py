"""S3 down mid-upload: StoreUnavailable, no partial object, and the store works after restart."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator

import pytest

from analytics_adapters.s3.object_store import S3ObjectStore
from analytics_core.errors import NotFound, StoreUnavailable
from tests.contract.store_backends import (
    S3_TEST_PART_BYTES,
    MotoServer,
    drop_bucket,
    raw_s3_client,
    s3_store,
)

pytestmark = pytest.mark.s3

BODY = random.Random(5).randbytes(3 * S3_TEST_PART_BYTES + 1000)
CHUNK = 256 * 1024


@pytest.fixture
def server() -> Iterator[MotoServer]:
    """A moto server of this test's own, so it can be stopped without disturbing others."""
    moto = MotoServer()
    moto.start()
    yield moto
    moto.stop()
    moto.start()  # the bucket is dropped through a running server (moto state is in-process)
    drop_bucket(moto.endpoint_url, bucket_of(moto))
    moto.stop()


def bucket_of(server: MotoServer) -> str:
    """The bucket name this test uses on its server."""
    return f"outage-{server.port}"


@pytest.fixture
def store(server: MotoServer) -> S3ObjectStore:
    """The S3 adapter on the test's server, with its bucket created."""
    s3 = s3_store(server.endpoint_url, bucket_of(server))
    s3.ensure_bucket()
    return s3


def chunks_stopping(server: MotoServer, after_bytes: int) -> Iterator[bytes]:
    """BODY in chunks; the server is stopped once `after_bytes` were handed out."""
    for start in range(0, len(BODY), CHUNK):
        if start == after_bytes:
            server.stop()
        yield BODY[start:start + CHUNK]


def put_stopping(
    store: S3ObjectStore, server: MotoServer, key: str, after_bytes: int,
    metadata: dict[str, str] | Callable[[], dict[str, str]],
) -> None:
    """A put during which the S3 server goes away."""
    store.put(key, chunks_stopping(server, after_bytes), metadata=metadata, content_type="text/csv")


@pytest.mark.parametrize("deferred", [False, True], ids=["metadata", "metadata-callable"])
def test_server_stopped_between_parts_raises_store_unavailable_and_stores_nothing(
    store: S3ObjectStore, server: MotoServer, deferred: bool,
) -> None:
    """Parts uploaded before the outage never become a visible object, even after restart."""
    key = f"exports/{uuid.uuid4()}.csv"
    after = 6 * 1024 * 1024  # past the first part: a multipart upload is in flight
    with pytest.raises(StoreUnavailable):
        put_stopping(store, server, key, after, (lambda: {"a": "b"}) if deferred else {"a": "b"})
    server.start()
    assert not store.exists(key)
    with pytest.raises(NotFound):
        store.open(key)
    listed = raw_s3_client(server.endpoint_url).list_objects_v2(Bucket=bucket_of(server))
    assert listed.get("KeyCount") == 0


def test_server_stopped_as_the_last_chunk_is_consumed_stores_nothing(
    store: S3ObjectStore, server: MotoServer,
) -> None:
    """An outage right before the upload completes leaves no object either."""
    key = f"exports/{uuid.uuid4()}.csv"

    def metadata() -> dict[str, str]:
        server.stop()
        return {"checksum": "x"}

    with pytest.raises(StoreUnavailable):
        store.put(key, [BODY], metadata=metadata, content_type="text/csv")
    server.start()
    assert not store.exists(key)


def test_the_store_works_again_after_the_server_restarts(
    store: S3ObjectStore, server: MotoServer,
) -> None:
    """Once S3 is back, the same put succeeds and the object reads back whole."""
    key = f"exports/{uuid.uuid4()}.csv"
    with pytest.raises(StoreUnavailable):
        put_stopping(store, server, key, 6 * 1024 * 1024, {"attempt": "1"})
    with pytest.raises(StoreUnavailable):
        store.exists(key)
    server.start()
    size = store.put(key, [BODY], metadata={"attempt": "2"}, content_type="text/csv")
    assert (size, b"".join(store.open(key)), store.metadata(key)) == (
        len(BODY), BODY, {"attempt": "2"})
