"""A real HTTP receiver of webhooks for tests: answers by plan, records every request."""

from __future__ import annotations

import contextlib
import http.server
import threading
import time
from collections.abc import Iterator

import attrs


@attrs.define
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes


@attrs.define
class Receiver:
    """Answers the n-th request with plan[n] (the last entry repeats): an HTTP status, or
    ("redirect", location), or ("sleep", seconds) before 204."""

    url: str
    plan: list[object]
    received: list[Received] = attrs.Factory(list)
    lock: threading.Lock = attrs.Factory(threading.Lock)

    def answer(self) -> object:
        with self.lock:
            n = len(self.received) - 1
            return self.plan[min(n, len(self.plan) - 1)]


@contextlib.contextmanager
def receiver(plan: list[object] | None = None) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 (an ephemeral port), stopped on exit."""
    state = Receiver("", plan or [204])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with state.lock:
                state.received.append(Received(self.path, dict(self.headers.items()), body))
            action = state.answer()
            if isinstance(action, tuple) and action[0] == "redirect":
                self.send_response(302)
                self.send_header("Location", str(action[1]))
            elif isinstance(action, tuple) and action[0] == "sleep":
                time.sleep(float(action[1]))  # type: ignore[arg-type]
                self.send_response(204)
            else:
                self.send_response(int(action))  # type: ignore[call-overload]
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/in?token=t0ken"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
