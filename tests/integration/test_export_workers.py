"""Several export workers at once on PostgreSQL: every job runs once, expiry and the monthly
schedule stay exact (SPEC §7, §10).

The object store is the real local-directory store behind a thin wrapper that counts puts and
deletes per key (it forwards every call unchanged).
"""

from __future__ import annotations

import functools
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from analytics_adapters.localfs.object_store import LocalDirectoryObjectStore
from analytics_adapters.memory import ManualClock, SynchronousPipeline
from analytics_adapters.system import RandomIds
from analytics_app.workers.export import ExportWorker, WorkerTiming
from analytics_core.events import Status, UsageEvent
from analytics_core.exports import ExportGranularity, ExportJob, ExportRequest, ExportStatus
from analytics_core.money import Cents
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.rollups import build_rollups
from analytics_core.usecases.export_runner import (
    ExportRunner,
    ExportSettings,
    schedule_monthly_exports,
)
from analytics_core.usecases.exports import create_export, list_exports
from tests.integration.export_support import uow_factory_of

pytestmark = pytest.mark.postgres

WORKERS = 3
ORGS = 6
JOBS_PER_ORG = 5
MARCH = datetime(2025, 3, 1, tzinfo=UTC)
NOW = datetime(2025, 4, 2, 10, 0, tzinfo=UTC)
SETTINGS = ExportSettings()
FAST = WorkerTiming(poll_seconds=0.02, housekeeping_every=timedelta(0), error_backoff_seconds=0.05)


class CountingStore:
    """The real local-directory store, counting puts and deletes per key (thread-safe)."""

    def __init__(self, root: Path) -> None:
        self.inner = LocalDirectoryObjectStore(root)
        self.puts: Counter[str] = Counter()
        self.deletes: Counter[str] = Counter()
        self._lock = threading.Lock()

    def put(self, key: str, chunks: Iterable[bytes], *,
            metadata: Mapping[str, str] | Callable[[], Mapping[str, str]],
            content_type: str) -> int:
        """Count, then store."""
        with self._lock:
            self.puts[key] += 1
        return self.inner.put(key, chunks, metadata=metadata, content_type=content_type)

    def open(self, key: str) -> Iterator[bytes]:
        """Delegate."""
        return self.inner.open(key)

    def signed_url(self, key: str, ttl: timedelta) -> str | None:
        """Delegate."""
        return self.inner.signed_url(key, ttl)

    def delete(self, key: str) -> None:
        """Count, then delete."""
        with self._lock:
            self.deletes[key] += 1
        self.inner.delete(key)

    def exists(self, key: str) -> bool:
        """Delegate."""
        return self.inner.exists(key)

    def metadata(self, key: str) -> dict[str, str]:
        """Delegate."""
        return self.inner.metadata(key)


@pytest.fixture
def uow_factory() -> Iterator[UnitOfWorkFactory]:
    """A fresh migrated PostgreSQL database of this test."""
    with uow_factory_of("postgres") as factory:
        yield factory


@pytest.fixture
def objects(tmp_path: Path) -> CountingStore:
    """The counted local store."""
    return CountingStore(tmp_path / "objects")


def seed_march(uow_factory: UnitOfWorkFactory, orgs: list[uuid.UUID]) -> None:
    """A few dozen March events per org, with rollups."""
    rng = random.Random(7)
    events = [
        UsageEvent(uuid.uuid4(), org, uuid.UUID(int=rng.randrange(3) + 1),
                   MARCH + timedelta(minutes=rng.randrange(31 * 24 * 60)), Status.SUCCESS,
                   rng.randrange(1, 900), 10, 5, Cents(rng.randrange(10**5)), client_id="app")
        for org in orgs for _ in range(40)
    ]
    with uow_factory() as uow:
        uow.events.add_new(events)
        uow.rollups.add(build_rollups(events))
        uow.commit()


def user_jobs(uow_factory: UnitOfWorkFactory, clock: ManualClock,
              orgs: list[uuid.UUID]) -> list[ExportJob]:
    """JOBS_PER_ORG pending exports per org over different March windows."""
    jobs = []
    for org in orgs:
        for day in range(JOBS_PER_ORG):
            request = ExportRequest(org, MARCH + timedelta(days=day), MARCH + timedelta(days=20),
                                    ExportGranularity.DAILY, "Europe/Paris")
            job, _ = create_export(request, initiated_by="u", idempotency_key=None,
                                   uow_factory=uow_factory, clock=clock, ids=RandomIds())
            jobs.append(job)
    return jobs


def every_job(uow_factory: UnitOfWorkFactory, orgs: list[uuid.UUID]) -> list[ExportJob]:
    """All jobs of the orgs (pages of 200)."""
    return [j for org in orgs
            for j in list_exports(org, uow_factory=uow_factory, limit=200).jobs]


def workers(uow_factory: UnitOfWorkFactory, objects: CountingStore,
            clock: ManualClock) -> list[ExportWorker]:
    """WORKERS export worker loops, each with its own runner, housekeeping every round."""
    schedule = functools.partial(schedule_monthly_exports, uow_factory=uow_factory,
                                 clock=clock, ids=RandomIds(), tz="UTC")
    return [
        ExportWorker(ExportRunner(f"w{i}", uow_factory, objects, clock, SynchronousPipeline(),
                                  SETTINGS), schedule_monthly=schedule, timing=FAST)
        for i in range(WORKERS)
    ]


def wait_until(predicate: Callable[[], bool], timeout: float = 45.0) -> None:
    """Poll until the predicate holds (fails the test after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def all_in(uow_factory: UnitOfWorkFactory, orgs: list[uuid.UUID], status: ExportStatus,
           count: int) -> Callable[[], bool]:
    """Whether exactly `count` jobs exist and every one has `status`."""
    def check() -> bool:
        jobs = every_job(uow_factory, orgs)
        return len(jobs) == count and all(j.status is status for j in jobs)

    return check


def exported(status: str) -> float:
    """analytics_export_jobs_total{status} so far."""
    return REGISTRY.get_sample_value("analytics_export_jobs_total", {"status": status}) or 0.0


def run_threads(loops: list[ExportWorker]) -> list[threading.Thread]:
    """Start every worker loop on its own thread."""
    threads = [threading.Thread(target=w.run_forever, name=f"worker-{i}", daemon=True)
               for i, w in enumerate(loops)]
    for t in threads:
        t.start()
    return threads


def stop(loops: list[ExportWorker], threads: list[threading.Thread]) -> None:
    """Stop every loop and join its thread."""
    for w in loops:
        w.stop()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)


def test_three_workers_run_every_job_once_schedule_one_monthly_job_per_org_and_expire_once(
    uow_factory: UnitOfWorkFactory, objects: CountingStore,
) -> None:
    """Three workers: each job run once, one March job per org, each job expired once."""
    clock = ManualClock(NOW)
    orgs = sorted(uuid.uuid4() for _ in range(ORGS))
    seed_march(uow_factory, orgs)
    jobs = user_jobs(uow_factory, clock, orgs)
    total = len(jobs) + ORGS
    scheduled_before, expired_before = exported("pending"), exported("expired")
    loops = workers(uow_factory, objects, clock)
    threads = run_threads(loops)
    try:
        wait_until(all_in(uow_factory, orgs, ExportStatus.SUCCEEDED, total))
        done = every_job(uow_factory, orgs)
        monthly = [j for j in done if j.scheduled]
        assert sorted(j.org_id for j in monthly) == orgs
        assert {j.idempotency_key for j in monthly} == {"monthly:202503"}
        assert all(j.attempts == 1 for j in done)
        keys = {k for j in done for k in _files(j)}
        assert len(keys) == 2 * total
        assert objects.puts == Counter(dict.fromkeys(keys, 1))
        assert exported("pending") - scheduled_before == ORGS
        clock.advance(SETTINGS.retention + timedelta(seconds=1))
        wait_until(all_in(uow_factory, orgs, ExportStatus.EXPIRED, total))
    finally:
        stop(loops, threads)
    assert exported("expired") - expired_before == total
    assert set(objects.deletes) == keys
    assert not any(objects.exists(k) for k in keys)


def _files(job: ExportJob) -> tuple[str, str]:
    """The CSV and manifest keys of a succeeded job."""
    assert job.object_key is not None
    return job.object_key, job.object_key.removesuffix(".csv") + ".manifest.json"


def at_once(targets: list[Callable[[], int]]) -> list[int]:
    """Run the targets on threads released together by a barrier; their results."""
    barrier = threading.Barrier(len(targets))
    results: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(target: Callable[[], int]) -> None:
        try:
            barrier.wait()
            value = target()
        except BaseException as e:
            errors.append(e)
            return
        with lock:
            results.append(value)

    threads = [threading.Thread(target=run, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


def count_created(schedule: Callable[[], list[ExportJob]]) -> int:
    """How many jobs one scheduling call created."""
    return len(schedule())


def test_monthly_scheduling_called_by_every_worker_at_once_creates_one_job_per_org_and_month(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """Three schedulers released together create one job per org; later calls create none."""
    orgs = sorted(uuid.uuid4() for _ in range(ORGS))
    seed_march(uow_factory, orgs)
    created: list[int] = []
    for now in (datetime(2025, 4, 1, 0, 5, tzinfo=UTC), datetime(2025, 4, 20, tzinfo=UTC)):
        schedule = functools.partial(schedule_monthly_exports, uow_factory=uow_factory,
                                     clock=ManualClock(now), ids=RandomIds(), tz="UTC")
        created.append(sum(at_once([functools.partial(count_created, schedule)] * WORKERS)))
    assert created == [ORGS, 0]
    jobs = every_job(uow_factory, orgs)
    assert sorted((j.org_id, j.idempotency_key) for j in jobs) == sorted(
        (org, "monthly:202503") for org in orgs)


def test_expiry_swept_by_every_worker_at_once_expires_each_job_once(
    uow_factory: UnitOfWorkFactory, objects: CountingStore,
) -> None:
    """Released together, three expiry sweeps expire each job exactly once between them."""
    clock = ManualClock(NOW)
    orgs = sorted(uuid.uuid4() for _ in range(ORGS))
    seed_march(uow_factory, orgs)
    jobs = user_jobs(uow_factory, clock, orgs)
    runners = [ExportRunner(f"w{i}", uow_factory, objects, clock, SynchronousPipeline(),
                            SETTINGS) for i in range(WORKERS)]
    while runners[0].run_next() is not None:
        pass
    clock.advance(SETTINGS.retention + timedelta(seconds=1))
    expired = at_once([r.expire_due for r in runners])
    assert sum(expired) == len(jobs)
    assert all(j.status is ExportStatus.EXPIRED for j in every_job(uow_factory, orgs))
