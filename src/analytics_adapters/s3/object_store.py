"""ObjectStore on S3 (boto3): encrypted multipart uploads that appear only when complete."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from analytics_core.errors import AnalyticsError, NotFound, StoreUnavailable
from analytics_core.objects import MetadataArg, key_segments, resolve_metadata

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

MIB = 1024 * 1024
MIN_PART_BYTES = 5 * MIB
DEFAULT_PART_BYTES = 8 * MIB
COPY_RANGE_BYTES = 1024 * MIB
READ_CHUNK_BYTES = MIB
MAX_SIGNED_URL_SECONDS = 7 * 24 * 3600
SSE_S3 = "AES256"
SSE_KMS = "aws:kms"
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})

def _checked(key: str) -> str:
    key_segments(key)
    return key


class S3ObjectStore:
    """Objects in one bucket, each written with server-side encryption (SSE-S3 or SSE-KMS).

    Bodies up to one part are sent with a single PutObject. Larger bodies are streamed as
    multipart uploads of `part_size` bytes (memory stays at about one part) and aborted on any
    failure, so no partial object is ever visible. When metadata is a callable (known only
    after the last chunk), the upload goes to a staging key under `staging_prefix` and is then
    copied server-side to its key with the metadata, and the staging object deleted.
    """

    name = "object_store"

    def __init__(
        self, client: S3Client, bucket: str, *, sse: str = SSE_S3, kms_key_id: str | None = None,
        part_size: int = DEFAULT_PART_BYTES, staging_prefix: str = ".staging/",
    ) -> None:
        if sse not in (SSE_S3, SSE_KMS):
            raise ValueError(f"sse must be {SSE_S3!r} or {SSE_KMS!r}, not {sse!r}")
        if kms_key_id is not None and sse != SSE_KMS:
            raise ValueError("kms_key_id requires sse='aws:kms'")
        if part_size < MIN_PART_BYTES:
            raise ValueError(f"part_size must be at least {MIN_PART_BYTES} bytes (S3 minimum)")
        self._client = client
        self._bucket = bucket
        self._sse = sse
        self._kms_key_id = kms_key_id
        self._part_size = part_size
        self._staging_prefix = staging_prefix

    @classmethod
    def connect(
        cls, bucket: str, *, endpoint_url: str | None = None, region: str | None = None,
        access_key_id: str | None = None, secret_access_key: str | None = None,
        session_token: str | None = None, path_style: bool = False,
        connect_timeout: float = 2.0, read_timeout: float = 30.0, max_attempts: int = 3,
        sse: str = SSE_S3, kms_key_id: str | None = None, part_size: int = DEFAULT_PART_BYTES,
    ) -> S3ObjectStore:
        """Build the boto3 client (SigV4, bounded timeouts and retries) and the store.

        Credentials left None come from boto3's usual chain (environment, profile, role).
        """
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if path_style else "auto"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
        )
        client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config,
            aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
            aws_session_token=session_token,
        )
        return cls(client, bucket, sse=sse, kms_key_id=kms_key_id, part_size=part_size)

    @property
    def bucket(self) -> str:
        """The bucket holding every object."""
        return self._bucket

    def put(
        self, key: str, chunks: Iterable[bytes], *, metadata: MetadataArg, content_type: str,
    ) -> int:
        """Store the concatenated chunks under `key`; no partial object is ever visible."""
        _checked(key)
        fixed = None if callable(metadata) else resolve_metadata(metadata)
        blocks = _blocks(chunks, self._part_size)
        first = next(blocks, b"")
        second = next(blocks, None)
        if second is None:
            values = fixed if fixed is not None else resolve_metadata(metadata)
            with _s3_errors(f"put {key!r}"):
                self._client.put_object(
                    Bucket=self._bucket, Key=key, Body=first,
                    **self._write_args(content_type, values),
                )
            return len(first)
        parts = itertools.chain((first, second), blocks)
        if fixed is not None:
            return self._upload(key, parts, content_type, fixed)[0]
        staging = f"{self._staging_prefix}{uuid.uuid4().hex}"
        try:
            size, values = self._upload(staging, parts, content_type, None, metadata)
            self._copy(staging, key, size, content_type, values)
        finally:
            with contextlib.suppress(AnalyticsError):
                self._delete(staging)
        return size

    def open(self, key: str) -> Iterator[bytes]:
        """Stream the object's bytes; NotFound when absent."""
        with _s3_errors(f"open {_checked(key)!r}"):
            response = self._client.get_object(Bucket=self._bucket, Key=key)
        return _stream(response["Body"], key)

    def signed_url(self, key: str, ttl: timedelta) -> str:
        """A presigned GET URL (SigV4) valid for `ttl` (1 s to 7 days)."""
        seconds = int(ttl.total_seconds())
        if not 1 <= seconds <= MAX_SIGNED_URL_SECONDS:
            raise ValueError(f"signed URL ttl must be 1 s to 7 days, not {ttl}")
        with _s3_errors(f"sign {_checked(key)!r}"):
            return self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=seconds,
            )

    def delete(self, key: str) -> None:
        """Remove an object; absent keys are ignored (S3 DeleteObject is idempotent)."""
        self._delete(_checked(key))

    def _delete(self, key: str) -> None:
        with _s3_errors(f"delete {key!r}"):
            self._client.delete_object(Bucket=self._bucket, Key=key)

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        try:
            self.metadata(key)
        except NotFound:
            return False
        return True

    def metadata(self, key: str) -> dict[str, str]:
        """The user metadata stored with an object; NotFound when absent."""
        with _s3_errors(f"head {_checked(key)!r}"):
            response = self._client.head_object(Bucket=self._bucket, Key=key)
        return dict(response.get("Metadata", {}))

    def check(self) -> None:
        """Readiness: the bucket exists and the credentials may use it."""
        try:
            with _s3_errors(f"bucket {self._bucket!r}"):
                self._client.head_bucket(Bucket=self._bucket)
        except NotFound as e:
            raise StoreUnavailable(f"bucket {self._bucket!r} does not exist") from e

    def encryption(self) -> str:
        """Write, inspect and delete a small probe object under the staging prefix with this
        store's upload settings, and return the encryption S3 reports for it (`AES256`, or
        `aws:kms key ...`). StoreUnavailable when the write is refused (a missing KMS key or
        permission) or S3 stores it unencrypted."""
        key = f"{self._staging_prefix}doctor-probe-{uuid.uuid4().hex}"
        with _s3_errors(f"encryption probe in {self._bucket!r}"):
            self._client.put_object(Bucket=self._bucket, Key=key, Body=b"probe",
                                    **self._write_args("text/plain", {}))
            try:
                head = self._client.head_object(Bucket=self._bucket, Key=key)
            finally:
                self._client.delete_object(Bucket=self._bucket, Key=key)
        mode = head.get("ServerSideEncryption")
        if not mode:
            raise StoreUnavailable(f"bucket {self._bucket!r} stored the probe unencrypted")
        key_id = head.get("SSEKMSKeyId")
        return f"{mode} key {key_id}" if key_id else str(mode)

    def ensure_bucket(self) -> None:
        """Create the bucket when missing, with a lifecycle rule that cleans failed uploads."""
        region = self._client.meta.region_name
        args: dict[str, Any] = {"Bucket": self._bucket}
        if region and region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._client.create_bucket(**args)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "BucketAlreadyOwnedByYou":
                return
            raise _translate(e, f"create bucket {self._bucket!r}") from e
        except BotoCoreError as e:
            raise _translate(e, f"create bucket {self._bucket!r}") from e
        with _s3_errors(f"lifecycle of {self._bucket!r}"):
            self._client.put_bucket_lifecycle_configuration(
                Bucket=self._bucket, LifecycleConfiguration={"Rules": [
                    {"ID": "abort-incomplete-uploads", "Status": "Enabled",
                     "Filter": {"Prefix": ""},
                     "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
                    {"ID": "expire-staging", "Status": "Enabled",
                     "Filter": {"Prefix": self._staging_prefix}, "Expiration": {"Days": 1}},
                ]},
            )

    def _write_args(self, content_type: str, values: Mapping[str, str]) -> dict[str, Any]:
        args: dict[str, Any] = {
            "ContentType": content_type, "Metadata": dict(values),
            "ServerSideEncryption": self._sse,
        }
        if self._kms_key_id is not None:
            args["SSEKMSKeyId"] = self._kms_key_id
        return args

    def _upload(
        self, key: str, parts: Iterable[bytes], content_type: str,
        values: Mapping[str, str] | None, deferred: MetadataArg | None = None,
    ) -> tuple[int, dict[str, str]]:
        """Multipart-upload `parts` to `key`; return (size, metadata resolved after the parts)."""
        with _s3_errors(f"start upload of {key!r}"):
            upload_id = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=key, **self._write_args(content_type, values or {}),
            )["UploadId"]
        with self._aborting(key, upload_id):
            done: list[CompletedPartTypeDef] = []
            size = 0
            for number, body in enumerate(parts, start=1):
                with _s3_errors(f"upload part {number} of {key!r}"):
                    etag = self._client.upload_part(
                        Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number,
                        Body=body,
                    )["ETag"]
                done.append({"ETag": etag, "PartNumber": number})
                size += len(body)
            resolved = resolve_metadata(deferred) if deferred is not None else dict(values or {})
            self._complete(key, upload_id, done)
        return size, resolved

    def _copy(
        self, source: str, key: str, size: int, content_type: str, values: Mapping[str, str],
    ) -> None:
        """Server-side multipart copy of `source` to `key`, writing the final metadata."""
        with _s3_errors(f"start copy to {key!r}"):
            upload_id = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=key, **self._write_args(content_type, values),
            )["UploadId"]
        with self._aborting(key, upload_id):
            done: list[CompletedPartTypeDef] = []
            for number, start in enumerate(range(0, size, COPY_RANGE_BYTES), start=1):
                end = min(start + COPY_RANGE_BYTES, size) - 1
                with _s3_errors(f"copy part {number} to {key!r}"):
                    result = self._client.upload_part_copy(
                        Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number,
                        CopySource={"Bucket": self._bucket, "Key": source},
                        CopySourceRange=f"bytes={start}-{end}",
                    )
                done.append({"ETag": result["CopyPartResult"]["ETag"], "PartNumber": number})
            self._complete(key, upload_id, done)

    def _complete(self, key: str, upload_id: str, done: list[CompletedPartTypeDef]) -> None:
        with _s3_errors(f"complete upload of {key!r}"):
            self._client.complete_multipart_upload(
                Bucket=self._bucket, Key=key, UploadId=upload_id,
                MultipartUpload={"Parts": done},
            )

    @contextlib.contextmanager
    def _aborting(self, key: str, upload_id: str) -> Iterator[None]:
        """Abort the multipart upload when the block fails, whatever the reason."""
        try:
            yield
        except BaseException:
            # Best effort: when S3 is down the bucket lifecycle rule aborts it later.
            with contextlib.suppress(BotoCoreError, ClientError):
                self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=key, UploadId=upload_id,
                )
            raise


def _blocks(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """Regroup chunks into blocks of exactly `size` bytes, then the (non-empty) remainder."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            with memoryview(buffer) as view:
                block = bytes(view[:size])
            del buffer[:size]
            yield block
    if buffer:
        yield bytes(buffer)


def _stream(body: StreamingBody, key: str) -> Iterator[bytes]:
    with contextlib.closing(body), _s3_errors(f"read {key!r}"):
        yield from body.iter_chunks(READ_CHUNK_BYTES)


@contextlib.contextmanager
def _s3_errors(what: str) -> Iterator[None]:
    """Translate botocore errors: 404 -> NotFound, anything else -> StoreUnavailable."""
    try:
        yield
    except (BotoCoreError, ClientError) as e:
        raise _translate(e, what) from e


def _translate(error: BotoCoreError | ClientError, what: str) -> AnalyticsError:
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _NOT_FOUND_CODES:
            return NotFound(f"{what}: not found")
        return StoreUnavailable(f"{what}: S3 answered {code or 'an error'} (HTTP {status})")
    return StoreUnavailable(f"{what}: S3 unreachable ({type(error).__name__})")
