"""Dead letters (list, one, raw bytes, re-drive) and the audit log of an org, for finance and
support. Org admins (in their org) and admins only: both hold other people's payloads and
decisions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import falcon

from analytics_app.http.auth import Guard, actor_of
from analytics_app.http.params import QueryReader, parse_instant, path_uuid
from analytics_app.http.problems import problem
from analytics_app.http.render import audit_entry_body, dead_letter_body
from analytics_app.http.resources.events import ingest_scope
from analytics_app.http.resources.exports import cursor_param, encode_cursor
from analytics_core.access import Action, Outcome
from analytics_core.errors import ValidationFailed
from analytics_core.records import AuditFilter, DeadLetter, DeadLetterFilter
from analytics_core.usecases.ingest import IngestScope
from analytics_core.usecases.support import MAX_PAGE, AuditPage, DeadLetterPage, Redrive

Cursor = tuple[datetime, uuid.UUID]
ListLetters = Callable[[uuid.UUID | None, DeadLetterFilter, int, Cursor | None], DeadLetterPage]
GetLetter = Callable[[uuid.UUID | None, uuid.UUID], DeadLetter]
RedriveFn = Callable[[uuid.UUID | None, uuid.UUID, str, IngestScope | None], Redrive]
ListAudit = Callable[[uuid.UUID, AuditFilter, int, Cursor | None], AuditPage]

DEFAULT_PAGE = 50
MAX_FILTER_TEXT = 200
_STATUSES: dict[str, bool | None] = {"open": False, "redriven": True}
_OUTCOMES = {o.value: o for o in Outcome}


def _since_until(reader: QueryReader) -> tuple[datetime | None, datetime | None]:
    found: list[datetime | None] = []
    for name in ("since", "until"):
        text = reader.one(name)
        value = None
        if text is not None:
            try:
                value = parse_instant(text)
            except ValueError as e:
                reader.fail(name, str(e))
        found.append(value)
    since, until = found
    if since is not None and until is not None and until <= since:
        reader.fail("until", "must be after since")
    return since, until


def _text(reader: QueryReader, name: str) -> str | None:
    value = reader.one(name)
    if value is not None and not 0 < len(value) <= MAX_FILTER_TEXT:
        reader.fail(name, f"must be 1 to {MAX_FILTER_TEXT} characters")
        return None
    return value


def _letter(req: falcon.Request, guard: Guard, path: dict[str, str]) -> tuple[uuid.UUID,
                                                                                 uuid.UUID]:
    org_id = path_uuid(path["orgId"], "orgId")
    letter_id = path_uuid(path["deadLetterId"], "deadLetterId")
    guard.require(req, Action.DEAD_LETTERS_MANAGE, org_id, resource=f"dead-letter:{letter_id}")
    return org_id, letter_id


class DeadLettersResource:
    """GET /orgs/{orgId}/dead-letters: newest first, filtered, with a cursor."""

    def __init__(self, guard: Guard, list_letters: ListLetters) -> None:
        self._guard, self._list = guard, list_letters

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """`reason` (case-insensitive substring), `source`, `since`/`until` (received),
        `status` (open or redriven), `limit` (1-200), `cursor` (from `nextCursor`)."""
        org_id = path_uuid(path["orgId"], "orgId")
        self._guard.require(req, Action.DEAD_LETTERS_MANAGE, org_id,
                            resource=f"dead-letters:{org_id}")
        reader = QueryReader(req.params)
        limit = reader.integer("limit", 1, MAX_PAGE, DEFAULT_PAGE)
        reason, source = _text(reader, "reason"), _text(reader, "source")
        since, until = _since_until(reader)
        redriven = reader.choice("status", {**_STATUSES, "all": None}, None)
        before = cursor_param(reader)
        reader.done()
        page = self._list(org_id, DeadLetterFilter(reason, source, since, until, redriven),
                          limit, before)
        resp.media = {
            "orgId": str(org_id),
            "deadLetters": [dead_letter_body(d) for d in page.letters],
            "nextCursor": encode_cursor(page.next_cursor) if page.next_cursor else None,
        }


class DeadLetterResource:
    """GET /orgs/{orgId}/dead-letters/{deadLetterId}: one letter with its message."""

    def __init__(self, guard: Guard, get_letter: GetLetter) -> None:
        self._guard, self._get = guard, get_letter

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """The letter, its re-drive and its raw message (UTF-8 text, or base64)."""
        org_id, letter_id = _letter(req, self._guard, path)
        QueryReader(req.params).done()
        resp.media = dead_letter_body(self._get(org_id, letter_id), raw=True)


class DeadLetterRawResource:
    """GET /orgs/{orgId}/dead-letters/{deadLetterId}/raw: the message's bytes as received."""

    def __init__(self, guard: Guard, get_letter: GetLetter) -> None:
        self._guard, self._get = guard, get_letter

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """An attachment, byte for byte (`{id}.json` when it is UTF-8, else `{id}.bin`)."""
        org_id, letter_id = _letter(req, self._guard, path)
        QueryReader(req.params).done()
        letter = self._get(org_id, letter_id)
        try:
            letter.raw.decode("utf-8")
            suffix = "json"
        except UnicodeDecodeError:
            suffix = "bin"
        resp.content_type = "application/octet-stream"
        resp.downloadable_as = f"{letter_id}.{suffix}"
        resp.data = letter.raw


class RedriveResource:
    """POST /orgs/{orgId}/dead-letters/{deadLetterId}/redrive: ingest the message again."""

    def __init__(self, guard: Guard, redrive: RedriveFn) -> None:
        self._guard, self._redrive = guard, redrive

    def on_post(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """200 with the outcome (`accepted` or `duplicate`) and the marked letter; 422 naming
        each field while the message is still invalid (nothing stored); 403 when the event
        names an org the caller may not write."""
        org_id, letter_id = _letter(req, self._guard, path)
        QueryReader(req.params).done()
        actor = actor_of(req)
        try:
            done = self._redrive(org_id, letter_id, actor.subject,
                                 ingest_scope(self._guard, req))
        except ValidationFailed as e:
            raise problem(422, "still-invalid", "Message still invalid",
                          "the dead letter's message is still invalid; nothing was stored",
                          e.errors) from None
        resp.media = {"outcome": done.outcome, "alreadyRedriven": done.already,
                      "deadLetter": dead_letter_body(done.letter)}


class AuditResource:
    """GET /orgs/{orgId}/audit: the org's authorization decisions, newest first."""

    def __init__(self, guard: Guard, list_audit: ListAudit) -> None:
        self._guard, self._list = guard, list_audit

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """`actor`, `action`, `outcome` (allowed or denied), `since`/`until`, `limit`
        (1-200), `cursor` (from `nextCursor`)."""
        org_id = path_uuid(path["orgId"], "orgId")
        self._guard.require(req, Action.AUDIT_READ, org_id, resource=f"audit:{org_id}")
        reader = QueryReader(req.params)
        limit = reader.integer("limit", 1, MAX_PAGE, DEFAULT_PAGE)
        actor, action = _text(reader, "actor"), _text(reader, "action")
        outcome = reader.choice("outcome", dict[str, Outcome | None](_OUTCOMES), None)
        since, until = _since_until(reader)
        before = cursor_param(reader)
        reader.done()
        page = self._list(org_id, AuditFilter(actor, action, outcome, since, until), limit,
                          before)
        resp.media = {
            "orgId": str(org_id),
            "entries": [audit_entry_body(e) for e in page.entries],
            "nextCursor": encode_cursor(page.next_cursor) if page.next_cursor else None,
        }

