"""ObjectStore contract: one suite for every adapter, then what only S3 or a directory can show."""

from __future__ import annotations

import random
import stat
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from analytics_adapters.localfs.object_store import LocalDirectoryObjectStore
from analytics_adapters.s3.object_store import S3ObjectStore
from analytics_core.errors import NotFound, StoreUnavailable
from analytics_core.ports import ObjectStore
from tests.contract.store_backends import S3_TEST_PART_BYTES, MotoServer, raw_s3_client, s3_store

CSV = "text/csv"
LARGE_BYTES = 2 * S3_TEST_PART_BYTES + 123_457  # three parts on S3, the last one short


class Boom(Exception):
    """Raised by a chunk iterator that fails midway."""


def new_key() -> str:
    """A fresh key shaped like an export's."""
    return f"analytics/exports/{uuid.uuid4()}/{uuid.uuid4()}.csv"


def body_of(size: int, seed: int = 7) -> bytes:
    """Deterministic pseudo-random bytes."""
    return random.Random(seed).randbytes(size)


def irregular_chunks(data: bytes, seed: int = 11) -> Iterator[bytes]:
    """Split data into chunks of uneven sizes (including empty ones)."""
    rng = random.Random(seed)
    position = 0
    while position < len(data):
        size = rng.choice([0, 1, 1000, 65_536, 700_001])
        yield data[position:position + size]
        position += size


def failing_chunks(data: bytes) -> Iterator[bytes]:
    """Yield all of data, then fail before the end."""
    yield from irregular_chunks(data)
    raise Boom("the CSV query failed")


def read_all(store: ObjectStore, key: str) -> bytes:
    """Every byte of an object."""
    return b"".join(store.open(key))


@pytest.mark.parametrize(
    "size", [0, 10, 300_000, LARGE_BYTES], ids=["empty", "small", "multi-chunk", "large"],
)
def test_put_then_open_returns_the_exact_bytes(object_store: ObjectStore, size: int) -> None:
    """open streams back exactly what put stored, for every body size."""
    key, data = new_key(), body_of(size)
    object_store.put(key, irregular_chunks(data), metadata={}, content_type=CSV)
    assert read_all(object_store, key) == data


@pytest.mark.parametrize("size", [0, 300_000, LARGE_BYTES], ids=["empty", "small", "large"])
def test_put_returns_the_size_in_bytes(object_store: ObjectStore, size: int) -> None:
    """put returns the number of bytes stored."""
    stored = object_store.put(new_key(), irregular_chunks(body_of(size)), metadata={},
                              content_type=CSV)
    assert stored == size


def test_put_replaces_an_existing_object(object_store: ObjectStore) -> None:
    """A second put under the same key replaces bytes and metadata."""
    key = new_key()
    object_store.put(key, [b"first version"], metadata={"v": "1"}, content_type=CSV)
    object_store.put(key, [b"second"], metadata={"v": "2"}, content_type=CSV)
    assert (read_all(object_store, key), object_store.metadata(key)) == (b"second", {"v": "2"})


@pytest.mark.parametrize("size", [0, 1000, LARGE_BYTES], ids=["at-once", "small", "large"])
def test_a_failing_chunk_iterator_leaves_no_object(object_store: ObjectStore, size: int) -> None:
    """When the chunks fail midway the error propagates and nothing is stored."""
    key = new_key()
    with pytest.raises(Boom):
        object_store.put(key, failing_chunks(body_of(size)), metadata={}, content_type=CSV)
    assert not object_store.exists(key)


def test_a_failing_put_keeps_the_previous_object(object_store: ObjectStore) -> None:
    """A failed replacement leaves the previous object untouched."""
    key, old = new_key(), body_of(1000)
    object_store.put(key, [old], metadata={"v": "1"}, content_type=CSV)
    with pytest.raises(Boom):
        object_store.put(key, failing_chunks(body_of(LARGE_BYTES)), metadata={"v": "2"},
                         content_type=CSV)
    assert (read_all(object_store, key), object_store.metadata(key)) == (old, {"v": "1"})


def test_metadata_round_trips(object_store: ObjectStore) -> None:
    """The metadata given to put is returned by metadata()."""
    key = new_key()
    given = {"org": str(uuid.uuid4()), "job": str(uuid.uuid4()),
             "generated-at": "2024-03-01T00:00:00Z", "checksum": "ab" * 32}
    object_store.put(key, [b"x"], metadata=given, content_type=CSV)
    assert object_store.metadata(key) == given


@pytest.mark.parametrize("size", [10, LARGE_BYTES], ids=["small", "large"])
def test_callable_metadata_is_called_once_after_the_last_chunk(
    object_store: ObjectStore, size: int,
) -> None:
    """A metadata callable runs once, after every chunk was consumed, and its values are stored."""
    key, data, log = new_key(), body_of(size), []

    def chunks() -> Iterator[bytes]:
        for chunk in irregular_chunks(data):
            log.append("chunk")
            yield chunk

    def metadata() -> dict[str, str]:
        log.append("metadata")
        return {"rows": str(log.count("chunk"))}

    object_store.put(key, chunks(), metadata=metadata, content_type=CSV)
    assert (log.count("metadata"), log[-1]) == (1, "metadata")
    assert object_store.metadata(key) == {"rows": str(log.count("chunk"))}
    assert read_all(object_store, key) == data


@pytest.mark.parametrize("name", ["Org", "org_id", "org id", "", "é"])
def test_metadata_names_outside_lowercase_letters_digits_and_dashes_are_rejected(
    object_store: ObjectStore, name: str,
) -> None:
    """Metadata names must survive S3 headers unchanged, so every store rejects other names."""
    key = new_key()
    with pytest.raises(ValueError, match="metadata"):
        object_store.put(key, [b"x"], metadata={name: "v"}, content_type=CSV)
    assert not object_store.exists(key)


def test_delete_removes_the_object(object_store: ObjectStore) -> None:
    """After delete the object is gone."""
    key = new_key()
    object_store.put(key, [b"x"], metadata={"a": "b"}, content_type=CSV)
    object_store.delete(key)
    assert not object_store.exists(key)
    with pytest.raises(NotFound):
        object_store.metadata(key)


def test_delete_is_idempotent(object_store: ObjectStore) -> None:
    """Deleting an absent key (twice) is not an error."""
    key = new_key()
    object_store.delete(key)
    object_store.delete(key)
    assert not object_store.exists(key)


def test_exists_is_true_only_for_stored_keys(object_store: ObjectStore) -> None:
    """exists reports the stored key and not a sibling."""
    key = new_key()
    object_store.put(key, [], metadata={}, content_type=CSV)
    assert (object_store.exists(key), object_store.exists(key + ".other")) == (True, False)


def test_open_of_an_absent_key_raises_not_found(object_store: ObjectStore) -> None:
    """open raises NotFound when nothing is stored under the key."""
    with pytest.raises(NotFound):
        object_store.open(new_key())


def test_a_prefix_of_stored_keys_is_not_an_object(object_store: ObjectStore) -> None:
    """A key that only prefixes stored keys does not exist and cannot be opened."""
    org = str(uuid.uuid4())
    object_store.put(f"{org}/job.csv", [b"x"], metadata={}, content_type=CSV)
    assert not object_store.exists(org)
    with pytest.raises(NotFound):
        object_store.open(org)


def test_metadata_of_an_absent_key_raises_not_found(object_store: ObjectStore) -> None:
    """metadata raises NotFound when nothing is stored under the key."""
    with pytest.raises(NotFound):
        object_store.metadata(new_key())


@pytest.mark.parametrize(
    "key", ["/etc/passwd", "../escape.csv", "a/../../b.csv", "a\\b.csv", "a\x00b", "", "a//b",
            "a/./b", ".staging/x", "a/"],
)
def test_keys_that_could_escape_or_collide_are_rejected(
    object_store: ObjectStore, key: str,
) -> None:
    """Absolute, dot-segment, empty-segment, backslash and NUL keys raise ValueError."""
    with pytest.raises(ValueError, match="key"):
        object_store.put(key, [b"x"], metadata={}, content_type=CSV)
    with pytest.raises(ValueError, match="key"):
        object_store.open(key)


def test_signed_url_is_none_or_downloads_the_same_bytes(object_store: ObjectStore) -> None:
    """A store either cannot sign (None) or its URL serves the object's exact bytes."""
    key, data = new_key(), body_of(200_000)
    object_store.put(key, [data], metadata={}, content_type=CSV)
    url = object_store.signed_url(key, timedelta(minutes=15))
    if url is None:
        return
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == data


# --- What only the local directory can show -------------------------------------------------


def test_localfs_cannot_sign_urls(localfs_object_store: LocalDirectoryObjectStore) -> None:
    """The local store returns None: the API streams the file instead."""
    key = new_key()
    localfs_object_store.put(key, [b"x"], metadata={}, content_type=CSV)
    assert localfs_object_store.signed_url(key, timedelta(minutes=15)) is None


def test_localfs_files_are_readable_by_their_owner_only(
    localfs_object_store: LocalDirectoryObjectStore, tmp_path: Path,
) -> None:
    """Object and metadata files are created with mode 0600."""
    localfs_object_store.put("org/job.csv", [b"x"], metadata={"a": "b"}, content_type=CSV)
    files = [p for p in (tmp_path / "objects").rglob("*") if p.is_file()]
    assert len(files) == 2
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}


def test_localfs_failed_put_leaves_no_temporary_file(
    localfs_object_store: LocalDirectoryObjectStore, tmp_path: Path,
) -> None:
    """A failed put removes its temporary file."""
    with pytest.raises(Boom):
        localfs_object_store.put("org/job.csv", failing_chunks(b"abc"), metadata={},
                                 content_type=CSV)
    assert [p for p in (tmp_path / "objects").rglob("*") if p.is_file()] == []


# --- What only S3 can show --------------------------------------------------------------------


@pytest.mark.s3
@pytest.mark.parametrize(
    ("size", "deferred"), [(10, False), (LARGE_BYTES, False), (LARGE_BYTES, True)],
    ids=["single-put", "multipart", "multipart-then-copy"],
)
def test_s3_objects_are_encrypted_with_sse_s3_by_default(
    s3_object_store: S3ObjectStore, moto_s3_server: MotoServer, size: int, deferred: bool,
) -> None:
    """Every upload path asks for SSE-S3 (AES256) and keeps the content type."""
    key = new_key()
    s3_object_store.put(key, irregular_chunks(body_of(size)),
                        metadata=(lambda: {"a": "b"}) if deferred else {"a": "b"},
                        content_type=CSV)
    head = raw_s3_client(moto_s3_server.endpoint_url).head_object(
        Bucket=s3_object_store.bucket, Key=key)
    assert (head["ServerSideEncryption"], head["ContentType"], head["ContentLength"]) == (
        "AES256", CSV, size)


@pytest.mark.s3
def test_s3_kms_encryption_uses_the_configured_key(
    moto_s3_server: MotoServer, s3_bucket: str,
) -> None:
    """With sse='aws:kms' objects are stored under the configured KMS key id."""
    store = s3_store(moto_s3_server.endpoint_url, s3_bucket, sse="aws:kms", kms_key_id="alias/x")
    key = new_key()
    store.put(key, [b"x"], metadata={}, content_type=CSV)
    head = raw_s3_client(moto_s3_server.endpoint_url).head_object(Bucket=s3_bucket, Key=key)
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", "alias/x")


@pytest.mark.s3
def test_s3_signed_url_expires_after_the_ttl_given(s3_object_store: S3ObjectStore) -> None:
    """The presigned URL is SigV4 with X-Amz-Expires equal to the TTL in seconds."""
    url = s3_object_store.signed_url(new_key(), timedelta(minutes=7))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert (query["X-Amz-Algorithm"], query["X-Amz-Expires"]) == (["AWS4-HMAC-SHA256"], ["420"])


@pytest.mark.s3
@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(days=8)], ids=["zero", "eight-days"])
def test_s3_signed_url_ttl_outside_sigv4_limits_is_rejected(
    s3_object_store: S3ObjectStore, ttl: timedelta,
) -> None:
    """SigV4 URLs live 1 s to 7 days; other TTLs raise ValueError."""
    with pytest.raises(ValueError, match="ttl"):
        s3_object_store.signed_url(new_key(), ttl)


@pytest.mark.s3
@pytest.mark.parametrize("deferred", [False, True], ids=["metadata", "metadata-callable"])
def test_s3_failed_upload_leaves_no_pending_upload_or_staging_object(
    s3_object_store: S3ObjectStore, moto_s3_server: MotoServer, deferred: bool,
) -> None:
    """A failed multipart upload is aborted and any staging object deleted."""
    with pytest.raises(Boom):
        s3_object_store.put(new_key(), failing_chunks(body_of(LARGE_BYTES)),
                            metadata=(dict) if deferred else {}, content_type=CSV)
    client = raw_s3_client(moto_s3_server.endpoint_url)
    uploads = client.list_multipart_uploads(Bucket=s3_object_store.bucket).get("Uploads", [])
    staged = client.list_objects_v2(Bucket=s3_object_store.bucket, Prefix=".staging/")
    assert (uploads, staged.get("KeyCount")) == ([], 0)


@pytest.mark.s3
def test_s3_deferred_metadata_leaves_no_staging_object(
    s3_object_store: S3ObjectStore, moto_s3_server: MotoServer,
) -> None:
    """After a large put with callable metadata only the final object remains."""
    s3_object_store.put(new_key(), irregular_chunks(body_of(LARGE_BYTES)),
                        metadata=lambda: {"rows": "1"}, content_type=CSV)
    staged = raw_s3_client(moto_s3_server.endpoint_url).list_objects_v2(
        Bucket=s3_object_store.bucket, Prefix=".staging/")
    assert staged.get("KeyCount") == 0


@pytest.mark.s3
def test_s3_readiness_fails_for_a_missing_bucket(moto_s3_server: MotoServer) -> None:
    """check() raises StoreUnavailable when the bucket does not exist."""
    store = s3_store(moto_s3_server.endpoint_url, f"absent-{uuid.uuid4().hex[:12]}")
    with pytest.raises(StoreUnavailable, match="does not exist"):
        store.check()


@pytest.mark.s3
def test_s3_readiness_passes_for_an_existing_bucket(s3_object_store: S3ObjectStore) -> None:
    """check() returns when the bucket is reachable."""
    s3_object_store.check()


def test_s3_unreachable_endpoint_raises_store_unavailable(unused_port: int) -> None:
    """Every call against a closed port raises StoreUnavailable, never a botocore error."""
    store = s3_store(f"http://127.0.0.1:{unused_port}", "bucket")
    calls = [
        lambda: store.put(new_key(), [b"x"], metadata={}, content_type=CSV),
        lambda: store.open(new_key()),
        lambda: store.metadata(new_key()),
        lambda: store.exists(new_key()),
        lambda: store.delete(new_key()),
        store.check,
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable):
            call()



@pytest.mark.s3
def test_s3_reports_how_objects_are_encrypted_at_rest(
    moto_s3_server: MotoServer, s3_bucket: str,
) -> None:
    """encryption() writes a probe with the upload settings, reads back the encryption S3
    applied, and leaves nothing behind."""
    store = s3_store(moto_s3_server.endpoint_url, s3_bucket)
    assert store.encryption() == "AES256"
    client = raw_s3_client(moto_s3_server.endpoint_url)
    leftovers = client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])
    assert [o["Key"] for o in leftovers if "doctor-probe" in o["Key"]] == []
