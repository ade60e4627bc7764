"""The status server of processes without an API (export worker, stream consumer).

One small HTTP server, the same in every such process: `/metrics` (Prometheus text of the
process's registry), `/status/healthz` (the process is up) and, when the process has a
readiness notion, `/status/readyz` (200 ready / 503 with the reason as JSON).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from analytics_app.observability import metrics

log = logging.getLogger(__name__)

Render = Callable[[], tuple[bytes, str]]
"""The metrics page: (body, content type)."""
Readiness = Callable[[], tuple[bool, Mapping[str, object]]]
"""(ready, detail) of the process."""


def _handler(render: Render, readiness: Readiness | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                body, content_type = render()
                self._reply(200, body, content_type)
            elif path == "/status/healthz":
                self._reply(200, b"OK", "text/plain")
            elif path == "/status/readyz" and readiness is not None:
                ready, detail = readiness()
                document = {"status": "ready" if ready else "unavailable", **detail}
                self._reply(200 if ready else 503, json.dumps(document).encode(),
                            "application/json")
            else:
                self._reply(404, b"not found", "text/plain")

        def _reply(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug(format, *args)

    return Handler


def serve_status(
    host: str, port: int, *, name: str = "status", render: Render = metrics.render,
    readiness: Readiness | None = None,
) -> ThreadingHTTPServer:
    """Serve /metrics, /status/healthz (and /status/readyz given `readiness`) on a daemon
    thread; `server.shutdown()` stops it. Port 0 picks a free port."""
    server = ThreadingHTTPServer((host, port), _handler(render, readiness))
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    log.info("serving /metrics and /status on %s:%d", host, server.server_address[1])
    return server


def serve_metrics(host: str, port: int, name: str = "metrics") -> ThreadingHTTPServer:
    """Serve this process's default registry (aggregated when multi-process) at /metrics,
    and /status/healthz."""
    return serve_status(host, port, name=name)
