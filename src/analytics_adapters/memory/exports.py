"""In-memory export job store: idempotency keys, cursor pages, compare-and-set, atomic claims."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from analytics_adapters.memory.repositories import Repository
from analytics_core.errors import Conflict
from analytics_core.exports import ExportJob, ExportKind, ExportStatus

_FINISHED = frozenset({ExportStatus.SUCCEEDED, ExportStatus.FAILED})


def _newest_first(job: ExportJob) -> tuple[datetime, uuid.UUID]:
    return (job.created_at, job.job_id)


class InMemoryExportJobStore(Repository):
    """Export jobs by id, with an (org, idempotency key) index."""

    def add(self, job: ExportJob) -> None:
        """Insert a new job; Conflict when its id or (org, idempotency key) is taken."""
        journal = self._unit.journal()
        if job.job_id in self._db.jobs:
            raise Conflict(f"export job {job.job_id} already exists")
        if job.idempotency_key is not None:
            index_key = (job.org_id, job.idempotency_key)
            if index_key in self._db.idempotency:
                raise Conflict("Idempotency-Key already used for this org")
            journal.put(self._db.idempotency, index_key, job.job_id)
        journal.put(self._db.jobs, job.job_id, job)

    def get(self, org_id: uuid.UUID, job_id: uuid.UUID) -> ExportJob | None:
        """One job of one org, or None."""
        self._unit.journal()
        job = self._db.jobs.get(job_id)
        return job if job is not None and job.org_id == org_id else None

    def find_by_idempotency_key(self, org_id: uuid.UUID, key: str) -> ExportJob | None:
        """The job created with this key for this org, or None."""
        self._unit.journal()
        job_id = self._db.idempotency.get((org_id, key))
        return None if job_id is None else self._db.jobs.get(job_id)

    def page(
        self, org_id: uuid.UUID, *, status: ExportStatus | None = None, limit: int = 50,
        before: tuple[datetime, uuid.UUID] | None = None,
    ) -> list[ExportJob]:
        """Newest first by (created_at, job_id); `before` is an exclusive cursor."""
        self._unit.journal()
        jobs = [
            j for j in self._db.jobs.values()
            if j.org_id == org_id
            and (status is None or j.status is status)
            and (before is None or _newest_first(j) < before)
        ]
        jobs.sort(key=_newest_first, reverse=True)
        return jobs[:max(limit, 0)]

    def save(self, job: ExportJob) -> bool:
        """Persist `job` iff the stored version is `job.version - 1`."""
        journal = self._unit.journal()
        stored = self._db.jobs.get(job.job_id)
        if stored is None or stored.org_id != job.org_id or stored.version != job.version - 1:
            return False
        journal.put(self._db.jobs, job.job_id, job)
        return True

    def claim_next(self, worker: str, now: datetime, lease: timedelta) -> ExportJob | None:
        """Claim the oldest (created_at, job_id) claimable job; the storage lock makes it atomic."""
        journal = self._unit.journal()
        due = [j for j in self._db.jobs.values() if j.is_claimable(now)]
        if not due:
            return None
        claimed = min(due, key=_newest_first).claim(worker, now, lease)
        journal.put(self._db.jobs, claimed.job_id, claimed)
        return claimed

    def expirable(self, now: datetime, limit: int = 100) -> list[ExportJob]:
        """Succeeded or failed jobs whose expires_at <= now, by (expires_at, job_id)."""
        self._unit.journal()
        jobs = [
            j for j in self._db.jobs.values()
            if j.status in _FINISHED and j.expires_at is not None and j.expires_at <= now
        ]
        jobs.sort(key=lambda j: (j.expires_at, j.job_id))
        return jobs[:max(limit, 0)]

    def closes(self, now: datetime, limit: int = 1000) -> list[ExportJob]:
        """Succeeded, unexpired usage closes (not adjustments), oldest first."""
        self._unit.journal()
        jobs = [
            j for j in self._db.jobs.values()
            if j.close and j.adjusts is None and j.status is ExportStatus.SUCCEEDED
            and j.request.kind is ExportKind.USAGE
            and j.expires_at is not None and j.expires_at > now
        ]
        jobs.sort(key=lambda j: (j.created_at, j.job_id))
        return jobs[:max(limit, 0)]

    def adjustments(self, org_id: uuid.UUID, job_id: uuid.UUID) -> list[ExportJob]:
        """The close's adjustment jobs by number."""
        self._unit.journal()
        found = [j for j in self._db.jobs.values()
                 if j.org_id == org_id and j.adjusts == job_id]
        return sorted(found, key=lambda j: j.adjustment or 0)
