"""Export jobs: create (Idempotency-Key), list (status filter, opaque cursor), get, download."""

from __future__ import annotations

import base64
import binascii
import itertools
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime

import falcon

from analytics_app.http.auth import Guard, actor_of
from analytics_app.http.bodies import export_request, read_json
from analytics_app.http.params import QueryReader, path_uuid
from analytics_app.http.render import job_body, job_path
from analytics_app.observability import metrics
from analytics_core.access import Action
from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.exports import ExportJob, ExportRequest, ExportStatus
from analytics_core.usecases.exports import MAX_PAGE, Download, JobPage

Cursor = tuple[datetime, uuid.UUID]
CreateFn = Callable[[ExportRequest, str, str | None], tuple[ExportJob, bool]]
ListFn = Callable[[uuid.UUID, ExportStatus | None, int, Cursor | None], JobPage]
GetFn = Callable[[uuid.UUID, uuid.UUID], ExportJob]
DownloadFn = Callable[[uuid.UUID, uuid.UUID], Download]

MAX_IDEMPOTENCY_KEY = 255
MAX_CURSOR = 200
DEFAULT_PAGE = 50
_CURSOR_TEXT = re.compile(r"^[A-Za-z0-9_-]+$")
_STATUSES = {s.value: s for s in ExportStatus}


def encode_cursor(cursor: Cursor) -> str:
    """Opaque base64url cursor of (created_at, job_id)."""
    raw = f"{cursor[0].isoformat()}|{cursor[1]}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(text: str) -> Cursor:
    """Inverse of encode_cursor; ValueError for anything it did not produce."""
    if len(text) > MAX_CURSOR or not _CURSOR_TEXT.match(text):
        raise ValueError("malformed cursor")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
        when, _, job = raw.partition("|")
        at = datetime.fromisoformat(when)
        if at.tzinfo is None:
            raise ValueError("naive cursor time")
        return at, uuid.UUID(job)
    except (binascii.Error, UnicodeDecodeError) as e:
        raise ValueError("malformed cursor") from e


def cursor_param(reader: QueryReader) -> Cursor | None:
    """The optional `cursor` parameter (a `nextCursor` this API issued), or a field error."""
    text = reader.one("cursor")
    if text is None:
        return None
    try:
        return decode_cursor(text)
    except ValueError:
        reader.fail("cursor", "is not a cursor returned by this API")
        return None


def _idempotency_key(req: falcon.Request) -> str | None:
    key = req.get_header("Idempotency-Key")
    if key is None:
        return None
    if not 0 < len(key) <= MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        reason = f"must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        raise ValidationFailed([FieldError("Idempotency-Key", reason)], "invalid header")
    return key


class ExportsResource:
    """POST and GET /orgs/{orgId}/exports."""

    def __init__(
        self, guard: Guard, create: CreateFn, list_jobs: ListFn, *, max_body_bytes: int,
        prefix: str,
    ) -> None:
        self._guard = guard
        self._create = create
        self._list = list_jobs
        self._max_body = max_body_bytes
        self._prefix = prefix

    def on_post(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """202 with a new job; a replayed Idempotency-Key returns the same job with 200."""
        org_id = path_uuid(path["orgId"], "orgId")
        self._guard.require(req, Action.EXPORTS_CREATE, org_id, resource=f"exports:{org_id}")
        key = _idempotency_key(req)
        request = export_request(read_json(req, self._max_body), org_id)
        job, created = self._create(request, actor_of(req).subject, key)
        if created:
            metrics.observe_export_job(job.status.value)
        else:
            resp.set_header("Idempotent-Replayed", "true")
        resp.status = 202 if created else 200
        resp.location = job_path(self._prefix, job)
        resp.media = job_body(job, self._prefix)

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Newest first; `status`, `limit` (1-200) and the opaque `cursor`."""
        org_id = path_uuid(path["orgId"], "orgId")
        self._guard.require(req, Action.EXPORTS_READ, org_id, resource=f"exports:{org_id}")
        reader = QueryReader(req.params)
        status = reader.choice("status", _STATUSES, None)
        limit = reader.integer("limit", 1, MAX_PAGE, DEFAULT_PAGE)
        before = cursor_param(reader)
        reader.done()
        page = self._list(org_id, status, limit, before)
        resp.media = {
            "orgId": str(org_id),
            "jobs": [job_body(j, self._prefix) for j in page.jobs],
            "nextCursor": encode_cursor(page.next_cursor) if page.next_cursor else None,
        }


class ExportResource:
    """GET /orgs/{orgId}/exports/{jobId}."""

    def __init__(self, guard: Guard, get: GetFn, *, prefix: str) -> None:
        self._guard = guard
        self._get = get
        self._prefix = prefix

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """One job of the org (404 for unknown ids and other orgs' jobs)."""
        org_id = path_uuid(path["orgId"], "orgId")
        job_id = path_uuid(path["jobId"], "jobId")
        self._guard.require(req, Action.EXPORTS_READ, org_id, resource=f"export:{job_id}")
        resp.media = job_body(self._get(org_id, job_id), self._prefix)


class DownloadResource:
    """GET /orgs/{orgId}/exports/{jobId}/download."""

    def __init__(self, guard: Guard, download: DownloadFn) -> None:
        self._guard = guard
        self._download = download

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """302 to a freshly signed URL, or the file itself when the store cannot sign."""
        org_id = path_uuid(path["orgId"], "orgId")
        job_id = path_uuid(path["jobId"], "jobId")
        self._guard.require(req, Action.EXPORTS_DOWNLOAD, org_id, resource=f"export:{job_id}")
        send_download(resp, self._download(org_id, job_id))


def send_download(resp: falcon.Response, found: Download) -> None:
    """A job's file as the response: 302 to a freshly signed URL, or the file streamed (its
    first chunk read now, so that a storage error is an error response, not a cut body)."""
    resp.cache_control = ["no-store"]
    if found.url is not None:
        resp.status = 302
        resp.location = found.url
        return
    assert found.stream is not None
    resp.content_type = "text/csv; charset=utf-8"
    resp.downloadable_as = found.filename
    resp.stream = _primed(found.stream)


def _primed(stream: Iterator[bytes]) -> Iterator[bytes]:
    """Read the first chunk now so storage errors become a problem response, not a cut body."""
    first = next(stream, b"")
    return itertools.chain([first], stream)
