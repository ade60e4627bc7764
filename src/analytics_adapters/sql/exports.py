"""Export jobs: idempotency keys, cursor pages, compare-and-set saves, SKIP LOCKED claims."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from analytics_adapters.sql.base import SqlRepository, lock_each
from analytics_adapters.sql.convert import job_from_row, job_row
from analytics_adapters.sql.errors import translated
from analytics_adapters.sql.schema import export_jobs
from analytics_core.errors import Conflict
from analytics_core.exports import ExportJob, ExportKind, ExportStatus

_T = export_jobs.c
# Claimable jobs a claim considers; more concurrent claimers than this may find none free.
CLAIM_CANDIDATES = 16
_OPEN = (ExportStatus.PENDING.value, ExportStatus.RUNNING.value)
_FINISHED = (ExportStatus.SUCCEEDED.value, ExportStatus.FAILED.value)


def _claimable(now: datetime) -> sa.ColumnElement[bool]:
    pending_due = sa.and_(
        _T.status == ExportStatus.PENDING.value,
        sa.or_(_T.next_attempt_at.is_(None), _T.next_attempt_at <= now),
    )
    lease_expired = sa.and_(
        _T.status == ExportStatus.RUNNING.value, _T.lease_expires_at <= now
    )
    # The redundant IN lets the planner use the partial index on open jobs.
    return sa.and_(_T.status.in_(_OPEN), sa.or_(pending_due, lease_expired))


class SqlExportJobStore(SqlRepository):
    """Export jobs keyed (org_id, job_id)."""

    @translated
    def add(self, job: ExportJob) -> None:
        """Insert a new job; Conflict when its id or (org, idempotency key) is taken."""
        insert = pg_insert if self._postgres else sqlite_insert
        # ON CONFLICT DO NOTHING (any unique constraint) keeps the transaction usable.
        stmt = insert(export_jobs).values(job_row(job)).on_conflict_do_nothing()
        # INSERT results are closed before rowcount is read unless asked to keep it.
        stmt = stmt.execution_options(preserve_rowcount=True)
        if self._write().execute(stmt).rowcount == 0:
            raise Conflict("export job id or Idempotency-Key already used for this org")

    @translated
    def get(self, org_id: uuid.UUID, job_id: uuid.UUID) -> ExportJob | None:
        """One job of one org, or None."""
        stmt = sa.select(export_jobs).where(_T.org_id == org_id, _T.job_id == job_id)
        row = self._read().execute(stmt).mappings().one_or_none()
        return None if row is None else job_from_row(row)

    @translated
    def find_by_idempotency_key(self, org_id: uuid.UUID, key: str) -> ExportJob | None:
        """The job created with this key for this org, or None."""
        stmt = sa.select(export_jobs).where(_T.org_id == org_id, _T.idempotency_key == key)
        # The lookup opens a create: on SQLite it takes the write lock first, so the insert that
        # follows never has to upgrade a read snapshot that another writer has moved past
        # (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out: "database is locked").
        row = self._write().execute(stmt).mappings().one_or_none()
        return None if row is None else job_from_row(row)

    @translated
    def page(
        self, org_id: uuid.UUID, *, status: ExportStatus | None = None, limit: int = 50,
        before: tuple[datetime, uuid.UUID] | None = None,
    ) -> list[ExportJob]:
        """Newest first by (created_at, job_id); `before` is an exclusive cursor."""
        stmt = sa.select(export_jobs).where(_T.org_id == org_id)
        if status is not None:
            stmt = stmt.where(_T.status == status.value)
        if before is not None:
            stmt = stmt.where(sa.tuple_(_T.created_at, _T.job_id) < sa.tuple_(
                sa.literal(before[0], _T.created_at.type), sa.literal(before[1], sa.Uuid())
            ))
        stmt = stmt.order_by(_T.created_at.desc(), _T.job_id.desc()).limit(max(limit, 0))
        return [job_from_row(row) for row in self._read().execute(stmt).mappings()]

    @translated
    def save(self, job: ExportJob) -> bool:
        """Persist `job` iff the stored version is `job.version - 1`."""
        values = job_row(job)
        del values["org_id"], values["job_id"]
        stmt = export_jobs.update().where(
            _T.org_id == job.org_id, _T.job_id == job.job_id, _T.version == job.version - 1
        ).values(values)
        return self._write().execute(stmt).rowcount == 1

    @translated
    def claim_next(self, worker: str, now: datetime, lease: timedelta) -> ExportJob | None:
        """Claim the oldest (created_at, job_id) claimable job that no one else is claiming.

        The oldest few claimable jobs are read without locks, then locked one by one and
        checked again, oldest first (`lock_each`), so concurrent claimers each take a
        different job and never wait on each other. SQLite: the unit holds the write lock.
        """
        conn = self._write()
        candidates = conn.execute(
            sa.select(_T.org_id, _T.job_id).where(_claimable(now))
            .order_by(_T.created_at, _T.job_id).limit(CLAIM_CANDIDATES)).all()
        row = next(lock_each(conn, candidates, lambda org_id, job_id: sa.select(export_jobs)
                             .where(_T.org_id == org_id, _T.job_id == job_id,
                                    _claimable(now))), None)
        if row is None:
            return None
        claimed = job_from_row(row._mapping).claim(worker, now, lease)
        return claimed if self.save(claimed) else None

    @translated
    def expirable(self, now: datetime, limit: int = 100) -> list[ExportJob]:
        """Succeeded or failed jobs whose expires_at <= now, by (expires_at, job_id)."""
        stmt = (
            sa.select(export_jobs)
            .where(_T.status.in_(_FINISHED), _T.expires_at <= now)
            .order_by(_T.expires_at, _T.job_id).limit(max(limit, 0))
        )
        return [job_from_row(row) for row in self._read().execute(stmt).mappings()]

    @translated
    def closes(self, now: datetime, limit: int = 1000) -> list[ExportJob]:
        """Succeeded, unexpired usage closes (not adjustments), oldest first."""
        stmt = (
            sa.select(export_jobs)
            .where(_T.close.is_(True), _T.adjusts.is_(None),
                   _T.status == ExportStatus.SUCCEEDED.value,
                   _T.kind == ExportKind.USAGE.value, _T.expires_at > now)
            .order_by(_T.created_at, _T.job_id).limit(max(limit, 0))
        )
        return [job_from_row(row) for row in self._read().execute(stmt).mappings()]

    @translated
    def adjustments(self, org_id: uuid.UUID, job_id: uuid.UUID) -> list[ExportJob]:
        """The close's adjustment jobs by number."""
        stmt = (sa.select(export_jobs).where(_T.org_id == org_id, _T.adjusts == job_id)
                .order_by(_T.adjustment))
        return [job_from_row(row) for row in self._read().execute(stmt).mappings()]
