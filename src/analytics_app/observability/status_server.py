"""A small /metrics HTTP endpoint for processes without an API (the export worker)."""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from analytics_app.observability import metrics

log = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, content_type = metrics.render()
            self._reply(200, body, content_type)
        elif path == "/status/healthz":
            self._reply(200, b"OK", "text/plain")
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


def serve_metrics(host: str, port: int, name: str = "metrics") -> ThreadingHTTPServer:
    """Serve this process's registry (aggregated when multi-process) at /metrics, and
    /status/healthz, on a daemon thread; `server.shutdown()` stops it."""
    server = ThreadingHTTPServer((host, port), _Handler)
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    log.info("serving /metrics on %s:%d", host, server.server_address[1])
    return server
