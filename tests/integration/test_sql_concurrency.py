"""Concurrent writers on real databases: no lost rollup update, no job run twice, no key twice.

No retries: on PostgreSQL rows are locked in key order and claims skip locked rows, so no
deadlock can happen; on SQLite writers queue on the write lock within the busy timeout.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from analytics_adapters.sql import SqlStorage
from analytics_core.events import Status, UsageEvent
from analytics_core.exports import ExportJob
from analytics_core.rollups import build_rollups, merge_stats, stats_of
from tests.contract.factories import make_job
from tests.integration.sql_support import T0, event, fresh_storage

WORKERS = 4
LEASE = timedelta(minutes=10)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                        pytest.param("citus", marks=pytest.mark.citus)])
def storage(request: pytest.FixtureRequest) -> Iterator[SqlStorage]:
    """A fresh migrated database of each kind."""
    with fresh_storage(request.param) as s:
        yield s


def run_threads(targets: list[Callable[[], None]]) -> None:
    """Start every target at once (barrier), join them, re-raise the first error."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def wrap(target: Callable[[], None]) -> None:
        try:
            barrier.wait()
            target()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=wrap, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def random_events(org: uuid.UUID, models: list[uuid.UUID], n: int, seed: int) -> list[UsageEvent]:
    """Events spread over a few buckets and models, with varied latencies and statuses."""
    rng = random.Random(seed)
    return [
        event(org, T0 + timedelta(minutes=rng.randrange(0, 45)), model_id=rng.choice(models),
              latency_ms=rng.choice([0, 1, 7, 80, 250, 1200, 30_000]),
              status=rng.choice(list(Status)))
        for _ in range(n)
    ]


def test_concurrent_rollup_upserts_lose_no_update(storage: SqlStorage) -> None:
    """Several connections adding deltas to the same buckets add up exactly, sketches too."""
    org, models = uuid.uuid4(), [uuid.uuid4() for _ in range(3)]
    per_worker = [[random_events(org, models, 40, seed=w * 100 + r) for r in range(8)]
                  for w in range(WORKERS)]

    def worker(rounds: list[list[UsageEvent]]) -> Callable[[], None]:
        def run() -> None:
            for events in rounds:
                with storage.unit_of_work() as uow:
                    uow.rollups.add(build_rollups(events))
                    uow.commit()
        return run

    run_threads([worker(rounds) for rounds in per_worker])
    everything = [e for rounds in per_worker for events in rounds for e in events]
    expected = {r.key: r.stats for r in build_rollups(everything)}
    with storage.unit_of_work() as uow:
        stored = {r.key: r.stats for r in uow.rollups.query(org, T0, T0 + timedelta(hours=1))}
    assert stored == expected
    assert merge_stats(stored.values()) == stats_of(everything)


def test_concurrent_export_claims_run_each_job_exactly_once(storage: SqlStorage) -> None:
    """Workers claiming and finishing jobs in parallel: every job succeeds once, never twice."""
    jobs = [make_job(created_at=T0 + timedelta(seconds=i)) for i in range(24)]
    with storage.unit_of_work() as uow:
        for job in jobs:
            uow.exports.add(job)
        uow.commit()
    runs: Counter[uuid.UUID] = Counter()
    lock = threading.Lock()
    now = T0 + timedelta(hours=1)

    def worker(name: str) -> Callable[[], None]:
        def run() -> None:
            while (job := claim(storage, name)) is not None:
                with lock:
                    runs[job.job_id] += 1
                finish(storage, job)
        return run

    def claim(s: SqlStorage, name: str) -> ExportJob | None:
        with s.unit_of_work() as uow:
            job = uow.exports.claim_next(name, now, LEASE)
            uow.commit()
        return job

    def finish(s: SqlStorage, job: ExportJob) -> None:
        done = job.succeed(now, row_count=1, checksum="c", object_key="k",
                           expires_at=now + timedelta(days=90))
        with s.unit_of_work() as uow:
            assert uow.exports.save(done)
            uow.commit()

    run_threads([worker(f"w{i}") for i in range(WORKERS)])
    assert runs == Counter({job.job_id: 1 for job in jobs})


def test_concurrent_ingest_of_overlapping_batches_stores_each_key_once(
    storage: SqlStorage,
) -> None:
    """add_new from several connections with shared keys: each key is new for exactly one."""
    org = uuid.uuid4()
    pool = [event(org, T0 + timedelta(seconds=i)) for i in range(200)]
    rng = random.Random(7)
    batches = [rng.sample(pool, 120) for _ in range(WORKERS)]
    won: list[UsageEvent] = []
    lock = threading.Lock()

    def worker(batch: list[UsageEvent]) -> Callable[[], None]:
        def run() -> None:
            with storage.unit_of_work() as uow:
                inserted = uow.events.add_new(batch)
                uow.commit()
            with lock:
                won.extend(inserted)
        return run

    run_threads([worker(b) for b in batches])
    offered = {e.key for b in batches for e in b}
    assert Counter(e.key for e in won) == Counter(dict.fromkeys(offered, 1))
    with storage.unit_of_work() as uow:
        stored = list(uow.events.scan(org, T0, T0 + timedelta(hours=1)))
    assert {e.key for e in stored} == offered
