"""A gunicorn worker in which slow or idle clients cannot hold a thread (SPEC §11).

gunicorn's `gthread` worker hands a connection to a thread as soon as its first byte arrives;
the thread then reads the request head and body with blocking reads. A client that sends its
headers one byte a second (slowloris) pins that thread, and with 2 workers x 4 threads eight
such clients stall the API; idle connections cost each thread five seconds of waiting.

`ReadAheadWorker` reads every request, head and body, in the worker's event loop first: the
socket stays non-blocking in the poller until the head is complete and the body has arrived
(by `Content-Length`, or up to the last chunk of a chunked body), and only then is the complete
request handed to a thread, which parses it from memory. Each request has two deadlines: the
head must arrive within `header_timeout` of the connection's first byte (or of the previous
response, on a kept-alive connection), and the body within `body_timeout` of the head. Past a
deadline the client gets a 408 problem+json and the connection is closed. A body larger than
`max_body` is not read ahead: the application refuses it (413) from its Content-Length. A
client that asks `Expect: 100-continue` is answered `100 Continue` by the worker as soon as the
head is in, so that it sends its body without waiting (curl does so for bodies over 1 KiB).
"""

from __future__ import annotations

import contextlib
import errno
import re
import selectors
import time
from functools import partial
from typing import Any

from analytics_app.http.server_errors import ProblemThreadWorker, problem_response

HEAD_END = b"\r\n\r\n"
_READ = 65536
_HEAD_LIMIT = 64 * 1024  # beyond this the parser refuses the head itself (414/431)
_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)[ \t]*\r\n", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:[^\r\n]*chunked", re.IGNORECASE)
_EXPECT_CONTINUE = re.compile(rb"\r\nexpect:[ \t]*100-continue[ \t]*(?=\r\n)", re.IGNORECASE)
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def take_expect_continue(data: bytes) -> bytes | None:
    """For an HTTP/1.1 head that asks `Expect: 100-continue`, the request without that field
    (the worker answers `100 Continue` itself, so that the client sends its body while the
    request is read ahead); None when the head does not ask it."""
    head_end = data.find(HEAD_END)
    head = data[:head_end + 2]
    if not head.split(b"\r\n", 1)[0].endswith(b"HTTP/1.1") or not _EXPECT_CONTINUE.search(head):
        return None
    return _EXPECT_CONTINUE.sub(b"", head, count=1) + data[head_end + 2:]


def request_complete(data: bytes, max_body: int) -> bool:
    """Whether `data` holds a whole request head and as much of its body as will be read:
    all of it, or more than `max_body` (the application refuses such a body), or a head too
    large or malformed to wait for (the parser answers it)."""
    head_end = data.find(HEAD_END)
    if head_end < 0:
        return len(data) > _HEAD_LIMIT
    head, body = data[: head_end + 2], data[head_end + 4:]
    if _CHUNKED.search(head):
        return len(body) > max_body or _chunks_complete(body)
    length = _LENGTH.search(head)
    if length is None:
        return True
    wanted = int(length.group(1))
    return wanted > max_body or len(body) >= wanted


def _chunks_complete(body: bytes) -> bool:
    """Whether a chunked body has reached its last chunk and final CRLF (or is malformed, in
    which case the parser answers 400 without waiting for more)."""
    position = 0
    while True:
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            return False
        size_text = body[position:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return True
        if size == 0:  # then optional trailer fields and the empty line that ends them
            return body.find(b"\r\n", line_end + 2) >= 0 and body.endswith(b"\r\n")
        position = line_end + 2 + size + 2
        if position > len(body):
            return False


class ReadAheadWorker(ProblemThreadWorker):
    """`gthread` that buffers whole requests in its event loop (see the module docstring)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_body: int = 10 * 1024 * 1024

    def init_process(self) -> None:
        """Start with no connection being read ahead."""
        self._reading: dict[Any, tuple[float, bytearray]] = {}
        super().init_process()

    def accept(self, listener: Any) -> None:
        """Accept a connection and read its first request ahead, holding no thread."""
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = _new_conn(self.cfg, client_sock, client_addr, listener.getsockname())
        self._read_ahead(conn)

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        """A kept-alive connection has its next request coming: read it ahead as well."""
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._read_ahead(conn)

    def _read_ahead(self, conn: Any) -> None:
        conn.sock.setblocking(False)
        self._reading[conn] = (time.monotonic() + self.header_timeout, bytearray())
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._readable, conn))

    def _readable(self, conn: Any, _sock: Any) -> None:
        _deadline, buffer = self._reading[conn]
        try:
            data = conn.sock.recv(_READ)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client left
            self._forget(conn)
            self.nr_conns -= 1
            conn.close()
            return
        had_head = HEAD_END in buffer
        buffer += data
        if not had_head and HEAD_END in buffer:  # the body has its own deadline
            asked = take_expect_continue(bytes(buffer))
            if asked is not None and not request_complete(asked, self.max_body):
                with contextlib.suppress(OSError):
                    conn.sock.send(CONTINUE)  # 25 bytes on a fresh socket: never partial
                buffer[:] = asked
            self._reading[conn] = (time.monotonic() + self.body_timeout, buffer)
        if request_complete(bytes(buffer), self.max_body):
            self._forget(conn)
            self._dispatch(conn, bytes(buffer))

    def _dispatch(self, conn: Any, request: bytes) -> None:
        """Hand the complete request to a thread; its parser reads it from memory first."""
        conn.sock.setblocking(True)
        conn.init()
        conn.parser.unreader.unread(request)
        conn.data_ready = True
        self.enqueue_req(conn)

    def _forget(self, conn: Any) -> None:
        self._reading.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)

    def murder_pending(self) -> None:
        """Also close connections whose request did not arrive by its deadline (408 when the
        client had started one; an idle connection just closes)."""
        super().murder_pending()
        now = time.monotonic()
        late = [(c, buf) for c, (deadline, buf) in self._reading.items() if deadline <= now]
        for conn, buffer in late:
            self._forget(conn)
            if buffer:
                with contextlib.suppress(OSError):
                    conn.sock.sendall(problem_response(
                        408, "Request Timeout", "the request did not arrive in time"))
            self.nr_conns -= 1
            conn.close()


def _new_conn(cfg: Any, sock: Any, client: Any, server: Any) -> Any:
    from gunicorn.workers.gthread import TConn  # noqa: PLC0415  gunicorn ships no types

    return TConn(cfg, sock, client, server)
