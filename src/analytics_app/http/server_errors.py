"""Errors that gunicorn answers itself (414, 431, 400 on bad framing) as problem+json (SPEC §11).

Gunicorn rejects some requests before the application sees them: a request line over
`limit_request_line` (414), too many or too large headers (431), a malformed request line,
header or chunked framing (400), an unsupported transfer coding (501). It writes those with
`gunicorn.util.write_error`, as an HTML page. `ProblemThreadWorker` is gunicorn's threaded
worker with that writer replaced, in its own process only, by one that writes the same status
as an RFC 7807 document shaped like every other error of the API.
"""

from __future__ import annotations

import json
import socket

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker

from analytics_app.http.problems import PROBLEM_JSON

_SLUGS = {400: "bad-request", 403: "forbidden", 408: "request-timeout", 414: "uri-too-long",
          417: "expectation-failed", 431: "header-fields-too-large", 500: "internal",
          501: "not-implemented"}
_DETAILS = {
    414: "the request line (method, path and query) is longer than this server accepts",
    431: "the request has too many header fields or one that is too large",
    500: "An unexpected error occurred.",
}


def problem_response(status: int, reason: str, message: str) -> bytes:
    """A complete HTTP/1.1 response carrying a problem+json body; the connection closes."""
    detail = _DETAILS.get(status) or message or reason
    body = json.dumps({
        "type": f"urn:analytics:problem:{_SLUGS.get(status, 'bad-request')}", "title": reason,
        "status": status, "detail": detail, "instance": None,
    }).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: {PROBLEM_JSON}\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def write_problem(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """Drop-in for `gunicorn.util.write_error` that writes problem+json."""
    util.write_nonblock(sock, problem_response(status_int, reason, mesg))


class ProblemThreadWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn's `gthread` worker whose own error responses are problem+json."""

    def init_process(self) -> None:
        """Install the problem+json error writer in this worker process, then run."""
        util.write_error = write_problem
        super().init_process()
