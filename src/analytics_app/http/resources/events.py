"""POST /events (batch ingest over HTTP) and POST /events/validate.

Tenancy: the caller needs `analytics:events:write` in its own org, and the org of every parsed
event is authorized (and audited) too, before anything is stored. Each event is decoded once,
by the ingest use case, so the org that is authorized is the org that is stored whatever the
encoding (object or JSON string; a string that decodes to a string is rejected). A non-admin
sending any event of another org gets 403 for the whole request and nothing is stored; an
`admin` may ingest for any org (audited as cross-org). Rejected events are dead-lettered in
the caller's own org (an `admin`'s in the org they name, if any).
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager

import falcon
import msgspec

from analytics_app.http.auth import Guard, actor_of
from analytics_app.http.bodies import json_object, parse_json, read_json, read_json_bytes
from analytics_app.http.problems import problem
from analytics_app.http.render import batch_body
from analytics_app.observability import metrics, tracing
from analytics_core.access import Action
from analytics_core.errors import FieldError, Forbidden, ValidationFailed
from analytics_core.events import UsageEvent
from analytics_core.usecases.ingest import (
    MAX_HTTP_BATCH,
    BatchResult,
    IngestScope,
    RawMessage,
)

IngestFn = Callable[[Sequence[RawMessage], IngestScope], BatchResult]
ValidateFn = Callable[[object], UsageEvent]

_log = logging.getLogger(__name__)


def require_writer(guard: Guard, req: falcon.Request) -> None:
    """Require events:write in the caller's own org (before the body is even read)."""
    actor = actor_of(req)
    if actor.org_id is None:
        if not actor.is_admin:
            raise Forbidden("identity belongs to no org")
        return
    guard.require(req, Action.EVENTS_WRITE, actor.org_id, resource="events")


def authorize_orgs(guard: Guard, req: falcon.Request, orgs: Iterable[uuid.UUID]) -> None:
    """Require events:write in every other org of the parsed events (each one audited)."""
    own = actor_of(req).org_id
    for org in sorted(set(orgs) - {own}):
        guard.require(req, Action.EVENTS_WRITE, org, resource="events")


def ingest_scope(guard: Guard, req: falcon.Request) -> IngestScope:
    """The caller's scope: parsed orgs authorized through the guard, dead letters kept home."""
    actor = actor_of(req)
    return IngestScope(lambda orgs: authorize_orgs(guard, req, orgs), actor.org_id,
                       any_org=actor.is_admin)


def _too_many(limit: int) -> Exception:
    return problem(
        413, "batch-too-large", "Batch too large",
        f"a batch holds at most {limit} events; split it",
        [FieldError("events", f"must hold at most {limit} events")],
    )


def _events(body: object, limit: int) -> list[object]:
    events = json_object(body).get("events")
    if not isinstance(events, list):
        raise ValidationFailed([FieldError("events", "must be a list of events")], "invalid batch")
    if len(events) > limit:
        raise _too_many(limit)
    return events


class _Batch(msgspec.Struct):
    """The envelope, each event left as its own JSON text."""

    events: list[msgspec.Raw]


_BATCH = msgspec.json.Decoder(_Batch)


def batch_payloads(data: bytes, limit: int) -> list[object]:
    """The events of a `{"events": [...]}` body as the stream hands them over: each object's
    own bytes, for the ingest use case's one decoder (the same path, and speed, as a stream
    message). Any other element is decoded here as the API decodes JSON (the use case rejects
    it with its reason). A body msgspec does not take (invalid JSON or UTF-8, no `events`
    list) is decoded the careful way, which names what is wrong."""
    try:
        raws = _BATCH.decode(data).events
    except (msgspec.DecodeError, RecursionError):
        return _events(parse_json(data), limit)
    if len(raws) > limit:
        raise _too_many(limit)
    return [raw if raw[:1] == b"{" else parse_json(raw)
            for raw in (bytes(r) for r in raws)]


class EventsResource:
    """POST /events: `{"events": [...]}` -> 202 with one result per input, in order."""

    def __init__(
        self, guard: Guard, ingest: IngestFn, *, max_body_bytes: int,
        max_events: int = MAX_HTTP_BATCH,
        batch_scope: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        self._guard = guard
        self._ingest = ingest
        self._max_body = max_body_bytes
        self._max_events = max_events
        self._batch_scope = batch_scope

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Ingest exactly once; rejected events are dead-lettered and reported, never dropped."""
        require_writer(self._guard, req)
        with self._batch_scope():  # the body's thousands of objects are a batch's too
            payloads = batch_payloads(read_json_bytes(req, self._max_body), self._max_events)
            scope = ingest_scope(self._guard, req)
            started = time.perf_counter()
            with tracing.ingest_batch_span("http", len(payloads),
                                           tracing.event_trace_contexts(payloads)) as span:
                result = self._ingest([RawMessage(p) for p in payloads], scope)
                span.set_attribute("analytics.ingest.batch_id", str(result.batch_id))
            seconds = time.perf_counter() - started
            metrics.observe_batch(result, seconds)
            _log.info(
                "ingested http batch %s", result.batch_id,
                extra={"batch_id": str(result.batch_id), "accepted": result.accepted,
                       "duplicates": result.duplicates, "rejected": result.rejected,
                       "conflicts": result.conflicts, "duration_ms": round(seconds * 1000, 3)},
            )
            resp.status = 202
            resp.media = batch_body(result)


class ValidateResource:
    """POST /events/validate: one event -> 204, or 400 naming every bad field."""

    def __init__(self, guard: Guard, validate: ValidateFn, *, max_body_bytes: int) -> None:
        self._guard = guard
        self._validate = validate
        self._max_body = max_body_bytes

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Validate without storing anything."""
        require_writer(self._guard, req)
        event = self._validate(read_json(req, self._max_body))
        authorize_orgs(self._guard, req, [event.org_id])
        resp.status = 204
