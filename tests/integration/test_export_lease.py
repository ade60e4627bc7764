"""A long export keeps its lease alive, and a runner that lost its lease stands down."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from analytics_adapters.localfs.object_store import LocalDirectoryObjectStore
from analytics_adapters.memory import (
    InMemoryStorage,
    ManualClock,
    SynchronousPipeline,
    unit_of_work_factory,
)
from analytics_adapters.system import RandomIds
from analytics_core.exports import ExportJob, ExportKind, ExportRequest, ExportStatus
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.usecases.export_runner import ExportRunner, ExportSettings
from analytics_core.usecases.exports import create_export, get_export
from analytics_core.usecases.ingest import RawMessage, ingest_batch

START = datetime(2026, 3, 2, tzinfo=UTC)
LEASE = timedelta(minutes=5)


class SlowStore(LocalDirectoryObjectStore):
    """The real local store; every chunk it consumes takes two minutes of the manual clock."""

    def __init__(self, root: Path, clock: ManualClock,
                 on_chunk: Callable[[int], None] = lambda _: None) -> None:
        super().__init__(root)
        self.clock = clock
        self.on_chunk = on_chunk

    def put(self, key: str, chunks: Iterable[bytes], *,
            metadata: Mapping[str, str] | Callable[[], Mapping[str, str]],
            content_type: str) -> int:
        def slow() -> Iterable[bytes]:
            for n, chunk in enumerate(chunks):
                yield chunk
                self.clock.advance(timedelta(minutes=2))
                self.on_chunk(n)
        return super().put(key, slow(), metadata=metadata, content_type=content_type)


def _job_with_many_rows(uow: UnitOfWorkFactory, clock: ManualClock) -> ExportJob:
    org, model = uuid.uuid4(), uuid.uuid4()
    events = [
        {"eventId": str(uuid.uuid4()), "orgId": str(org), "modelId": str(model),
         "occurredAt": (START + timedelta(seconds=i)).isoformat(), "status": "success",
         "latencyMs": 100, "inputTokens": 1, "outputTokens": 1, "costEstimateCents": 1}
        for i in range(3000)
    ]
    ingest_batch([RawMessage(e) for e in events], source="test", uow_factory=uow, clock=clock,
                 ids=RandomIds())
    request = ExportRequest(org, START, START + timedelta(days=1), kind=ExportKind.EVENTS)
    job, _ = create_export(request, initiated_by="t", idempotency_key=None, uow_factory=uow,
                           clock=clock, ids=RandomIds())
    return job


def test_an_export_longer_than_its_lease_renews_it_and_succeeds_in_one_attempt(tmp_path: Path):
    """A long upload under a five-minute lease: peers can never claim it; one attempt succeeds."""
    clock = ManualClock(START + timedelta(days=2))
    uow = unit_of_work_factory(InMemoryStorage())
    job = _job_with_many_rows(uow, clock)
    peer_claims: list[ExportJob | None] = []

    def peer_tries_to_claim(_: int) -> None:
        with uow() as u:
            peer_claims.append(u.exports.claim_next("w2", clock.now(), LEASE))
            u.commit()

    store = SlowStore(tmp_path, clock, peer_tries_to_claim)
    runner = ExportRunner("w1", uow, store, clock, SynchronousPipeline(),
                          ExportSettings(lease=LEASE))
    done = runner.run_next()
    assert done is not None
    assert clock.now() - (START + timedelta(days=2)) > 2 * LEASE
    assert len(peer_claims) > 5
    assert peer_claims == [None] * len(peer_claims)
    stored = get_export(job.org_id, job.job_id, uow_factory=uow)
    assert (stored.status, stored.attempts, stored.row_count) == (ExportStatus.SUCCEEDED, 1, 3000)


def test_a_runner_whose_job_was_reclaimed_stands_down_and_leaves_no_file(tmp_path: Path):
    """Another worker reclaims mid-upload: the first stops, saves nothing, stores no object."""
    clock = ManualClock(START + timedelta(days=2))
    uow = unit_of_work_factory(InMemoryStorage())
    job = _job_with_many_rows(uow, clock)

    def reclaim(n: int) -> None:
        if n == 0:  # the first worker stalled past its lease; a peer claims the job
            clock.advance(LEASE + timedelta(minutes=1))
            with uow() as u:
                assert u.exports.claim_next("w2", clock.now(), LEASE) is not None
                u.commit()

    store = SlowStore(tmp_path, clock, reclaim)
    runner = ExportRunner("w1", uow, store, clock, SynchronousPipeline(),
                          ExportSettings(lease=LEASE))
    runner.run_next()
    stored = get_export(job.org_id, job.job_id, uow_factory=uow)
    assert (stored.status, stored.lease_owner, stored.attempts) == (ExportStatus.RUNNING, "w2", 2)
    assert not store.exists(f"analytics/exports/{job.org_id}/{job.job_id}.csv")
