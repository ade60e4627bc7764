"""Create, list, read and download export jobs (SPEC §5, §7)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import attrs

from analytics_core.errors import Conflict, FieldError, Gone, NotFound, ValidationFailed
from analytics_core.exports import ExportJob, ExportRequest, ExportStatus, as_read
from analytics_core.ports import Clock, IdGenerator, ObjectStore, UnitOfWorkFactory
from analytics_core.timegrid import zone_error
from analytics_core.usecases.paging import cut

DEFAULT_SIGNED_URL_TTL = timedelta(minutes=15)
MAX_PAGE = 200


def create_export(
    request: ExportRequest, *, initiated_by: str, idempotency_key: str | None,
    uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator,
) -> tuple[ExportJob, bool]:
    """Create a pending job; returns (job, created). Replaying an Idempotency-Key with the same
    request returns the first job (created False); with a different request raises Conflict."""
    reason = zone_error(request.tz)
    if reason is not None:
        raise ValidationFailed([FieldError("tz", reason)], "invalid export request")
    with uow_factory() as uow:
        if idempotency_key is not None:
            existing = uow.exports.find_by_idempotency_key(request.org_id, idempotency_key)
            if existing is not None:
                return _same_request(existing, request), False
        job = ExportJob(
            job_id=ids.new_id(), request=request, created_at=clock.now(),
            initiated_by=initiated_by, idempotency_key=idempotency_key,
        )
        try:
            uow.exports.add(job)
            uow.commit()
        except Conflict:
            pass
        else:
            return job, True
    # Lost a race with a concurrent request carrying the same key: return the winner.
    with uow_factory() as uow:
        assert idempotency_key is not None
        winner = uow.exports.find_by_idempotency_key(request.org_id, idempotency_key)
    if winner is None:  # pragma: no cover - the conflicting row cannot vanish
        raise Conflict("export job could not be created")
    return _same_request(winner, request), False


def _same_request(job: ExportJob, request: ExportRequest) -> ExportJob:
    if job.request != request:
        raise Conflict("Idempotency-Key was already used with a different export request")
    return job


@attrs.frozen
class JobPage:
    """One page of jobs, newest first, and the cursor of the next page (None at the end)."""

    jobs: tuple[ExportJob, ...]
    next_cursor: tuple[datetime, uuid.UUID] | None


def list_exports(
    org_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory, status: ExportStatus | None = None,
    limit: int = 50, before: tuple[datetime, uuid.UUID] | None = None,
) -> JobPage:
    """A page of an org's jobs, newest first, optionally filtered by status."""
    limit = max(1, min(limit, MAX_PAGE))
    with uow_factory() as uow:
        jobs = uow.exports.page(org_id, status=status, limit=limit + 1, before=before)
    page, cursor = cut(jobs, limit, lambda j: (j.created_at, j.job_id))
    return JobPage(tuple(as_read(job) for job in page), cursor)


def get_export(
    org_id: uuid.UUID, job_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory
) -> ExportJob:
    """One job of the org; NotFound for unknown ids and for other orgs' jobs."""
    with uow_factory() as uow:
        job = uow.exports.get(org_id, job_id)
    if job is None:
        raise NotFound(f"export job {job_id} not found")
    return as_read(job)


@attrs.frozen
class Download:
    """Where to fetch an export: a fresh signed URL, or a byte stream when the store can't sign."""

    filename: str
    url: str | None
    stream: Iterator[bytes] | None = None


def resolve_download(
    org_id: uuid.UUID, job_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory,
    objects: ObjectStore, ttl: timedelta = DEFAULT_SIGNED_URL_TTL,
) -> Download:
    """Sign a new URL at every call (never stored). Gone once expired; NotFound until succeeded."""
    key = _file_of(org_id, job_id, uow_factory)
    filename = key.rsplit("/", 1)[-1]
    url = objects.signed_url(key, ttl)
    if url is not None:
        return Download(filename, url)
    return Download(filename, None, objects.open(key))


def open_export(
    org_id: uuid.UUID, job_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory,
    objects: ObjectStore,
) -> Iterator[bytes]:
    """The CSV of a succeeded job as a byte stream. Gone once expired; NotFound until
    succeeded."""
    return objects.open(_file_of(org_id, job_id, uow_factory))


def _file_of(org_id: uuid.UUID, job_id: uuid.UUID, uow_factory: UnitOfWorkFactory) -> str:
    job = get_export(org_id, job_id, uow_factory=uow_factory)
    if job.status is ExportStatus.EXPIRED:
        raise Gone(f"export job {job_id} has expired")
    if job.status is not ExportStatus.SUCCEEDED or job.object_key is None:
        raise NotFound(f"export job {job_id} has no file yet (status {job.status})")
    return job.object_key
