"""Export jobs against the real S3 adapter while S3 goes down (SPEC §7).

The object store is the real `S3ObjectStore` on a moto server of each test's own, which the
test stops (its socket closes: connections are refused) and restarts. Where an outage must
start at an exact instant, a thin wrapper around the real store stops the server just before
a put reaches it; nothing in the upload path is replaced.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analytics_adapters.memory import ManualClock, SynchronousPipeline
from analytics_adapters.s3.object_store import SSE_S3, S3ObjectStore
from analytics_adapters.system import RandomIds
from analytics_app.workers.export import ExportWorker
from analytics_core.events import Status, UsageEvent
from analytics_core.exports import (
    ExportGranularity,
    ExportJob,
    ExportKind,
    ExportRequest,
    ExportStatus,
)
from analytics_core.money import Cents
from analytics_core.ports import ObjectStore, UnitOfWorkFactory
from analytics_core.rollups import build_rollups
from analytics_core.usecases.export_runner import USER_SAFE_ERROR, ExportRunner, ExportSettings
from analytics_core.usecases.exports import create_export, get_export
from tests.contract.store_backends import (
    S3_TEST_PART_BYTES,
    MotoServer,
    drop_bucket,
    raw_s3_client,
    s3_store,
)
from tests.integration.export_support import uow_factory_of

pytestmark = pytest.mark.s3

NOW = datetime(2025, 3, 12, 9, 0, tzinfo=UTC)
DAY_START = datetime(2025, 3, 10, tzinfo=UTC)
SETTINGS = ExportSettings(max_attempts=3, lease=timedelta(minutes=5),
                          backoff=timedelta(seconds=10))
Put = Callable[[Iterable[bytes]], int]
Intercept = Callable[[str, Iterable[bytes], Put], int]


class InterceptedStore:
    """The real store; each put goes through `intercept(key, chunks, put)` first."""

    def __init__(self, inner: S3ObjectStore, intercept: Intercept) -> None:
        self.inner = inner
        self._intercept = intercept

    def put(self, key: str, chunks: Iterable[bytes], *,
            metadata: Mapping[str, str] | Callable[[], Mapping[str, str]],
            content_type: str) -> int:
        """Hand the put to the intercept, which calls the real put (or not yet)."""
        def put(body: Iterable[bytes]) -> int:
            return self.inner.put(key, body, metadata=metadata, content_type=content_type)

        return self._intercept(key, chunks, put)

    def open(self, key: str) -> Iterator[bytes]:
        """Delegate."""
        return self.inner.open(key)

    def signed_url(self, key: str, ttl: timedelta) -> str | None:
        """Delegate."""
        return self.inner.signed_url(key, ttl)

    def delete(self, key: str) -> None:
        """Delegate."""
        self.inner.delete(key)

    def exists(self, key: str) -> bool:
        """Delegate."""
        return self.inner.exists(key)

    def metadata(self, key: str) -> dict[str, str]:
        """Delegate."""
        return self.inner.metadata(key)


class Outage:
    """A moto server and a bucket of one test."""

    def __init__(self) -> None:
        self.server = MotoServer()
        self.server.start()
        self.bucket = f"outage-{uuid.uuid4().hex[:12]}"
        self.store = s3_store(self.server.endpoint_url, self.bucket)
        self.store.ensure_bucket()

    def keys(self) -> list[str]:
        """Every object key in the bucket (staging keys included)."""
        listed = raw_s3_client(self.server.endpoint_url).list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def head(self, key: str) -> Any:
        """HeadObject through a plain boto3 client (SSE and metadata as S3 reports them)."""
        return raw_s3_client(self.server.endpoint_url).head_object(Bucket=self.bucket, Key=key)

    def body(self, key: str) -> bytes:
        """An object's bytes through a plain boto3 client."""
        client = raw_s3_client(self.server.endpoint_url)
        data: bytes = client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return data

    def down_at(self, suffix: str, *, back_after: bool) -> Intercept:
        """An intercept stopping the server as the first put of a key ending with `suffix`
        starts, and (when `back_after`) restarting it once that put has failed."""
        fired: list[str] = []

        def intercept(key: str, chunks: Iterable[bytes], put: Put) -> int:
            if fired or not key.endswith(suffix):
                return put(chunks)
            fired.append(key)
            self.server.stop()
            try:
                return put(chunks)
            finally:
                if back_after:
                    self.server.start()

        return intercept


@pytest.fixture
def outage() -> Iterator[Outage]:
    """A moto server of the test's own with an empty bucket; dropped afterwards."""
    o = Outage()
    yield o
    o.server.stop()
    o.server.start()
    drop_bucket(o.server.endpoint_url, o.bucket)
    o.server.stop()


@pytest.fixture
def uow_factory() -> Iterator[UnitOfWorkFactory]:
    """In-memory storage (the store under test here is S3)."""
    with uow_factory_of("memory") as factory:
        yield factory


@pytest.fixture
def clock() -> ManualClock:
    """A clock the test moves."""
    return ManualClock(NOW)


def seed(uow_factory: UnitOfWorkFactory, org: uuid.UUID, count: int = 300) -> None:
    """`count` events of `org` over one day, stored with their rollups."""
    rng = random.Random(count)
    models = [uuid.uuid4(), uuid.uuid4()]
    events = [
        UsageEvent(uuid.uuid4(), org, rng.choice(models),
                   DAY_START + timedelta(seconds=i * 86_400 // count), rng.choice(list(Status)),
                   rng.randrange(1, 5000), rng.randrange(0, 9000), rng.randrange(0, 900),
                   Cents(rng.randrange(0, 10**6)), client_id=rng.choice(["web", "=cmd()"]))
        for i in range(count)
    ]
    with uow_factory() as uow:
        uow.events.add_new(events)
        uow.rollups.add(build_rollups(events))
        uow.commit()


def new_job(uow_factory: UnitOfWorkFactory, clock: ManualClock, org: uuid.UUID,
            kind: ExportKind = ExportKind.USAGE) -> ExportJob:
    """A pending export of the seeded day."""
    request = ExportRequest(org, DAY_START, DAY_START + timedelta(days=1),
                            ExportGranularity.HOURLY, "America/New_York", kind=kind)
    job, _ = create_export(request, initiated_by="finance", idempotency_key=None,
                           uow_factory=uow_factory, clock=clock, ids=RandomIds())
    return job


def runner(uow_factory: UnitOfWorkFactory, objects: ObjectStore, clock: ManualClock,
           worker: str = "w1", settings: ExportSettings = SETTINGS) -> ExportRunner:
    """An export runner on the given object store."""
    return ExportRunner(worker, uow_factory, objects, clock, SynchronousPipeline(), settings)


def stored(uow_factory: UnitOfWorkFactory, job: ExportJob) -> ExportJob:
    """The job as stored now."""
    return get_export(job.org_id, job.job_id, uow_factory=uow_factory)


def file_keys(job: ExportJob) -> list[str]:
    """The CSV and manifest keys of a job, sorted."""
    base = f"analytics/exports/{job.org_id}/{job.job_id}"
    return [f"{base}.csv", f"{base}.manifest.json"]


def check_complete(outage: Outage, job: ExportJob) -> None:
    """Exactly the CSV and the manifest; checksums agree; SSE and metadata on both objects."""
    assert job.status is ExportStatus.SUCCEEDED
    csv_key, manifest_key = file_keys(job)
    assert outage.keys() == [csv_key, manifest_key]
    body = outage.body(csv_key)
    manifest = json.loads(outage.body(manifest_key))
    assert manifest["checksum"] == hashlib.sha256(body).hexdigest() == job.checksum
    assert manifest["rowCount"] == job.row_count == body.count(b"\r\n") - 1
    for key in (csv_key, manifest_key):
        head = outage.head(key)
        assert head["ServerSideEncryption"] == SSE_S3
        meta = head["Metadata"]
        assert (meta["org-id"], meta["job-id"], meta["checksum-sha256"]) == (
            str(job.org_id), str(job.job_id), job.checksum)
        assert datetime.fromisoformat(meta["generated-at"].replace("Z", "+00:00")) <= (
            job.completed_at or NOW)


def test_a_job_run_while_s3_is_down_goes_back_to_pending_with_backoff_and_stores_nothing(
    outage: Outage, uow_factory: UnitOfWorkFactory, clock: ManualClock,
) -> None:
    """S3 down: the attempt is counted, the job is pending until now + backoff, no object."""
    org = uuid.uuid4()
    seed(uow_factory, org)
    job = new_job(uow_factory, clock, org)
    outage.server.stop()
    ran = runner(uow_factory, outage.store, clock).run_next()
    assert ran is not None
    assert (ran.status, ran.attempts, ran.next_attempt_at) == (
        ExportStatus.PENDING, 1, NOW + SETTINGS.backoff)
    assert ran.error is not None
    assert ran.error.startswith("temporary storage failure")
    assert stored(uow_factory, job) == ran
    assert runner(uow_factory, outage.store, clock).run_next() is None  # not due yet
    outage.server.start()
    assert outage.keys() == []


def test_once_s3_is_back_the_worker_completes_the_job_with_one_csv_and_manifest(
    outage: Outage, uow_factory: UnitOfWorkFactory, clock: ManualClock,
) -> None:
    """After two attempts with S3 down, the worker's next round stores one CSV and manifest."""
    org = uuid.uuid4()
    seed(uow_factory, org)
    job = new_job(uow_factory, clock, org)
    worker = ExportWorker(runner(uow_factory, outage.store, clock), schedule_monthly=list)
    outage.server.stop()
    for attempt in (1, 2):
        assert worker.run_round() == 1
        assert stored(uow_factory, job).attempts == attempt
        clock.advance(SETTINGS.delay(attempt))
    outage.server.start()
    assert worker.run_round() == 1
    done = stored(uow_factory, job)
    assert (done.status, done.attempts, done.error) == (ExportStatus.SUCCEEDED, 3, None)
    check_complete(outage, done)


def test_s3_lost_between_the_csv_and_the_manifest_leaves_no_file_and_the_retry_completes(
    outage: Outage, uow_factory: UnitOfWorkFactory, clock: ManualClock,
) -> None:
    """A CSV stored before its manifest failed is removed; the retry writes both."""
    org = uuid.uuid4()
    seed(uow_factory, org)
    new_job(uow_factory, clock, org)
    flaky = InterceptedStore(outage.store, outage.down_at(".manifest.json", back_after=True))
    first = runner(uow_factory, flaky, clock).run_next()
    assert first is not None
    assert first.status is ExportStatus.PENDING
    assert outage.keys() == []
    clock.advance(SETTINGS.backoff)
    done = runner(uow_factory, flaky, clock).run_next()
    assert done is not None
    check_complete(outage, done)


def test_s3_lost_in_the_middle_of_a_multipart_csv_leaves_no_object_and_the_retry_completes(
    outage: Outage, uow_factory: UnitOfWorkFactory, clock: ManualClock,
) -> None:
    """S3 stopping after the first part of a multipart CSV leaves no object; the retry stores it."""
    org = uuid.uuid4()
    seed(uow_factory, org, count=40_000)
    new_job(uow_factory, clock, org, ExportKind.EVENTS)
    stopped: list[bool] = []

    def stop_mid_body(key: str, chunks: Iterable[bytes], put: Put) -> int:
        def body() -> Iterator[bytes]:
            handed = 0
            for chunk in chunks:
                if handed > S3_TEST_PART_BYTES + 1024 * 1024 and not stopped:
                    outage.server.stop()  # the first part is uploaded, the second in flight
                    stopped.append(True)
                handed += len(chunk)
                yield chunk

        return put(chunks if stopped or not key.endswith(".csv") else body())

    failed = runner(uow_factory, InterceptedStore(outage.store, stop_mid_body), clock).run_next()
    assert failed is not None
    assert failed.status is ExportStatus.PENDING
    outage.server.start()
    assert outage.keys() == []
    clock.advance(SETTINGS.backoff)
    done = runner(uow_factory, outage.store, clock).run_next()
    assert done is not None
    assert done.row_count == 40_000
    check_complete(outage, done)
    assert stopped
    assert outage.head(file_keys(done)[0])["ContentLength"] > S3_TEST_PART_BYTES


def test_after_max_attempts_the_job_fails_with_the_user_safe_message(
    outage: Outage, uow_factory: UnitOfWorkFactory, clock: ManualClock,
) -> None:
    """With S3 down for every attempt the job ends failed, user-safe message, nothing stored."""
    org = uuid.uuid4()
    seed(uow_factory, org)
    job = new_job(uow_factory, clock, org)
    run = runner(uow_factory, outage.store, clock)
    outage.server.stop()
    for attempt in range(1, SETTINGS.max_attempts + 1):
        ran = run.run_next()
        assert ran is not None
        assert ran.attempts == attempt
        clock.advance(SETTINGS.max_backoff)
    final = stored(uow_factory, job)
    assert (final.status, final.error, final.attempts) == (
        ExportStatus.FAILED, USER_SAFE_ERROR, SETTINGS.max_attempts)
    assert final.completed_at is not None
    assert final.object_key is None
    assert run.run_next() is None
    outage.server.start()
    assert outage.keys() == []


def test_a_csv_left_by_a_final_failure_during_an_outage_is_deleted_at_expiry(
    outage: Outage, uow_factory: UnitOfWorkFactory, clock: ManualClock,
) -> None:
    """A CSV that an outage kept from being removed is deleted by the expiry sweep."""
    org = uuid.uuid4()
    seed(uow_factory, org)
    job = new_job(uow_factory, clock, org)
    once = ExportSettings(max_attempts=1)
    flaky = InterceptedStore(outage.store, outage.down_at(".manifest.json", back_after=False))
    failed = runner(uow_factory, flaky, clock, settings=once).run_next()
    assert failed is not None
    assert failed.status is ExportStatus.FAILED
    outage.server.start()
    assert outage.keys() == [file_keys(job)[0]]
    clock.advance(once.retention + timedelta(seconds=1))
    assert runner(uow_factory, outage.store, clock, settings=once).expire_due() == 1
    assert stored(uow_factory, job).status is ExportStatus.EXPIRED
    assert outage.keys() == []


@pytest.mark.parametrize("attempts", [1, 3], ids=["final-failure", "retryable-failure"])
def test_a_late_failure_after_the_lease_expired_never_overwrites_the_success(
    outage: Outage, uow_factory: UnitOfWorkFactory, clock: ManualClock, attempts: int,
) -> None:
    """A's upload fails after B reclaimed and succeeded: A saves nothing, B's files stay."""
    org = uuid.uuid4()
    seed(uow_factory, org)
    job = new_job(uow_factory, clock, org)
    settings = ExportSettings(max_attempts=attempts, lease=timedelta(minutes=5))
    b = runner(uow_factory, outage.store, clock, worker="b", settings=settings)
    won: list[ExportJob | None] = []

    def lose_the_lease(key: str, chunks: Iterable[bytes], put: Put) -> int:
        if won or not key.endswith(".csv"):
            return put(chunks)
        clock.advance(settings.lease + timedelta(seconds=1))
        won.append(b.run_next())
        outage.server.stop()
        try:
            return put(chunks)
        finally:
            outage.server.start()

    late = InterceptedStore(outage.store, lose_the_lease)
    a_result = runner(uow_factory, late, clock, worker="a", settings=settings).run_next()
    assert a_result is not None
    assert a_result.lease_owner == "a"
    assert won[0] is not None
    assert won[0].status is ExportStatus.SUCCEEDED
    final = stored(uow_factory, job)
    assert final == won[0]
    assert final.attempts == 2
    check_complete(outage, final)
