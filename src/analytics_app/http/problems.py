"""RFC 7807 problem+json for every error, mapped in one place (registered by create_app)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import falcon

from analytics_core import errors

PROBLEM_JSON = "application/problem+json"
WWW_AUTHENTICATE = 'Bearer realm="analytics"'
RETRY_AFTER_SECONDS = "5"
GENERIC_500 = "An unexpected error occurred. Quote the request id when reporting it."
GENERIC_503 = "A backing service is temporarily unavailable; retry later."

_log = logging.getLogger(__name__)
_STATUS_LINE = re.compile(r"^\d{3} ")
_FALCON_DETAILS = {
    404: "no resource matches this path",
    405: "this method is not allowed on this resource (see the Allow header)",
}


@attrs.frozen
class Problem:
    """One problem document plus the headers that go with it."""

    status: int
    title: str
    detail: str
    type: str = "about:blank"
    errors: tuple[errors.FieldError, ...] = ()
    headers: Mapping[str, str] = attrs.field(factory=dict)


class ProblemError(Exception):
    """Raised by the HTTP layer for failures that are not domain errors (413, 415, ...)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


def problem(
    status: int, slug: str, title: str, detail: str,
    field_errors: Sequence[errors.FieldError] = (),
) -> ProblemError:
    """Shorthand for a ProblemError of type `urn:analytics:problem:<slug>`."""
    return ProblemError(Problem(status, title, detail, _type(slug), tuple(field_errors)))


def _type(slug: str) -> str:
    return f"urn:analytics:problem:{slug}"


# Most specific first: the first matching class wins.
_DOMAIN: tuple[tuple[type[errors.AnalyticsError], int, str, str], ...] = (
    (errors.InvalidTimeRange, 400, "invalid-time-range", "Invalid time range"),
    (errors.ValidationFailed, 400, "validation-failed", "Invalid request"),
    (errors.Unauthenticated, 401, "unauthenticated", "Authentication required"),
    (errors.Forbidden, 403, "forbidden", "Forbidden"),
    (errors.NotFound, 404, "not-found", "Not found"),
    (errors.Gone, 410, "gone", "Gone"),
    (errors.Conflict, 409, "conflict", "Conflict"),
    (errors.StoreUnavailable, 503, "unavailable", "Service unavailable"),
)


def domain_problem(ex: errors.AnalyticsError) -> Problem | None:
    """The problem for a domain error, or None when it is an internal failure."""
    for cls, status, slug, title in _DOMAIN:
        if isinstance(ex, cls):
            return _domain(ex, status, slug, title)
    return None


def _domain(ex: errors.AnalyticsError, status: int, slug: str, title: str) -> Problem:
    field_errors = ex.errors if isinstance(ex, errors.ValidationFailed) else ()
    headers: dict[str, str] = {}
    detail = str(ex) or title
    if isinstance(ex, errors.Unauthenticated):
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    if isinstance(ex, errors.StoreUnavailable):
        headers["Retry-After"] = RETRY_AFTER_SECONDS
        detail = GENERIC_503
    return Problem(status, title, detail, _type(slug), field_errors, headers)


def render(req: falcon.Request, resp: falcon.Response, p: Problem) -> None:
    """Write `p` as the response (status, headers and problem+json body)."""
    body: dict[str, Any] = {
        "type": p.type, "title": p.title, "status": p.status, "detail": p.detail,
        "instance": req.path,
    }
    request_id = getattr(req.context, "request_id", None)
    if request_id:
        body["requestId"] = request_id
    if p.errors:
        body["errors"] = [{"field": e.field, "reason": e.reason} for e in p.errors]
    resp.status = p.status
    for name, value in p.headers.items():
        resp.set_header(name, value)
    resp.content_type = PROBLEM_JSON
    resp.text = json.dumps(body, ensure_ascii=False)
    resp.stream = None


def handle_problem(
    req: falcon.Request, resp: falcon.Response, ex: ProblemError, params: dict[str, Any]
) -> None:
    """Error handler for ProblemError."""
    render(req, resp, ex.problem)


def handle_domain(
    req: falcon.Request, resp: falcon.Response, ex: errors.AnalyticsError,
    params: dict[str, Any],
) -> None:
    """Error handler for the core error tree."""
    found = domain_problem(ex)
    if found is None:
        handle_unexpected(req, resp, ex, params)
        return
    if found.status >= 500:
        _log.warning("backing service unavailable: %s", type(ex).__name__, exc_info=ex)
    render(req, resp, found)


def handle_http_error(
    req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: dict[str, Any]
) -> None:
    """Re-render Falcon's own errors (404 route, 405 method, bad headers) as problem+json."""
    status = ex.status_code
    phrase = falcon.code_to_http_status(status)[4:]
    title = _STATUS_LINE.sub("", ex.title or "") or phrase
    detail = ex.description or _FALCON_DETAILS.get(status, title)
    headers = dict(ex.headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", WWW_AUTHENTICATE)
    render(req, resp, Problem(status, title, detail, "about:blank", (), headers))


def handle_unexpected(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    """Anything else is a 500 with a generic detail; the traceback goes to the log only."""
    _log.error("unhandled error serving %s %s", req.method, req.uri_template, exc_info=ex)
    render(req, resp, Problem(500, "Internal server error", GENERIC_500, _type("internal")))


def register(app: falcon.App[falcon.Request, falcon.Response]) -> None:
    """Install every handler; later registrations are more specific."""
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(falcon.HTTPError, handle_http_error)
    app.add_error_handler(errors.AnalyticsError, handle_domain)
    app.add_error_handler(ProblemError, handle_problem)
