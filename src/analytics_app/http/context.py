"""Per-request context: request id (accepted or generated, echoed), metrics and access log."""

from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from typing import Any

import falcon

from analytics_app.observability import metrics
from analytics_app.observability.logs import request_id_var

MAX_REQUEST_ID = 128
_DISALLOWED = re.compile(r"[^A-Za-z0-9._-]")
UNMATCHED_ROUTE = "(unmatched)"

_access = logging.getLogger("analytics_app.http.access")


def sanitise_request_id(value: str | None) -> str | None:
    """Keep only [A-Za-z0-9._-], at most 128 characters; None when nothing usable is left."""
    if not value:
        return None
    cleaned = _DISALLOWED.sub("", value)[:MAX_REQUEST_ID]
    return cleaned or None


def request_id_of(req: falcon.Request) -> str | None:
    """The request id assigned by the middleware."""
    value = getattr(req.context, "request_id", None)
    return value if isinstance(value, str) else None


class RequestContextMiddleware:
    """First middleware: assigns the request id and, on the way out, echoes it, counts the
    request by route template (never the raw path) and writes one access log line."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Assign the request id and bind it to the logging context."""
        request_id = sanitise_request_id(req.get_header("X-Request-Id")) or uuid.uuid4().hex
        req.context.request_id = request_id
        req.context.started = time.perf_counter()
        req.context.log_token = request_id_var.set(request_id)

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        """Echo the id, record metrics and the access log, then unbind the logging context."""
        request_id = request_id_of(req)
        if request_id is not None:
            resp.set_header("X-Request-Id", request_id)
        started = getattr(req.context, "started", None)
        seconds = time.perf_counter() - started if isinstance(started, float) else 0.0
        route = req.uri_template or UNMATCHED_ROUTE
        status = resp.status_code
        metrics.observe_request(req.method, route, status, seconds)
        _access.info(
            "%s %s %s", req.method, route, status,
            extra={"method": req.method, "route": route, "status": status,
                   "duration_ms": round(seconds * 1000, 3)},
        )
        token = getattr(req.context, "log_token", None)
        if isinstance(token, contextvars.Token):
            request_id_var.reset(token)
