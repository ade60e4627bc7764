"""When the serving worker has read a whole request ahead (analytics_app.http.read_ahead)."""

from __future__ import annotations

import pytest

from analytics_app.http.read_ahead import request_complete, take_expect_continue

HEAD = b"POST /x HTTP/1.1\r\nHost: h\r\n"


@pytest.mark.parametrize(("data", "complete"), [
    (b"GET / HTTP/1.1\r\nHost: h\r\n", False),
    (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", True),
    (HEAD + b"Content-Length: 5\r\n\r\nabc", False),
    (HEAD + b"content-length: 5\r\n\r\nabcde", True),
    (HEAD + b"Content-Length: 999999\r\n\r\n", True),  # over max_body: the app answers 413
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n", False),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n", False),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n", True),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\n5;x=y\r\nabcde\r\n0\r\nT: v\r\n\r\n", True),
    (HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", True),  # malformed: parser says 400
    (b"GET /" + b"a" * 70_000, True),  # a head too large to wait for: parser says 414/431
], ids=repr)
def test_requests_are_handed_over_once_complete(data: bytes, complete: bool) -> None:
    """Whole head and body (by length or last chunk), or something the parser refuses."""
    assert request_complete(data, max_body=1000) is complete


def test_expect_continue_is_taken_from_an_http_1_1_head() -> None:
    """The worker answers 100 Continue itself, so the field leaves the request it forwards."""
    data = HEAD + b"Expect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    assert take_expect_continue(data) == HEAD + b"Content-Length: 2\r\n\r\n"
    assert take_expect_continue(HEAD + b"Content-Length: 2\r\n\r\n") is None
    old = b"POST /x HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"
    assert take_expect_continue(old) is None  # HTTP/1.0 expectations are ignored (RFC 9110)
