"""`HttpWebhookSender`: POSTs signed webhooks with the standard library's HTTP client.

Signatures come from `standardwebhooks` (the reference implementation of the Standard Webhooks
specification): `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`, one
`v1,<base64 HMAC-SHA256>` per signing secret, space-separated, over `id.timestamp.body`.

Where a webhook may go is checked twice: when an endpoint is saved (`check_url` resolves the
host; every address must be global), and on every attempt on the connected socket itself (the
peer address), so a DNS answer that changes between the check and the connection (rebinding)
cannot reach an internal address. Redirects are never followed (http.client does not follow
them; a 3xx is a failed attempt). Each socket operation times out after `timeout_seconds` and
at most 64 KiB of the answer is read. Errors name the failure, never the URL's path or query,
which may hold tokens.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from analytics_core.webhooks import SendResult

MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "inference-analytics-webhooks/1"
Resolver = Callable[..., list[tuple[Any, ...]]]


def is_internal(address: str) -> bool:
    """Whether an IP address is anything but global unicast: loopback, private (RFC 1918,
    unique local), link-local, carrier-grade NAT, multicast, reserved, unspecified; IPv4
    mapped into IPv6 is judged as IPv4."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


class RefusedAddress(OSError):
    """The connection reached an address webhooks may not go to."""


class HttpWebhookSender:
    """Signs and sends webhooks; refuses internal addresses unless `allow_private`."""

    def __init__(self, *, allow_private: bool = False, timeout_seconds: float = 10.0,
                 resolve: Resolver = socket.getaddrinfo) -> None:
        self._allow_private = allow_private
        self._timeout = timeout_seconds
        self._resolve = resolve

    def check_url(self, url: str) -> str | None:
        """Why the URL's host may not receive webhooks, or None."""
        host = urlsplit(url).hostname
        if not host:
            return "must name a host"
        try:
            infos = self._resolve(host, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return f"host {host!r} does not resolve"
        addresses = sorted({str(info[4][0]) for info in infos})
        internal = [a for a in addresses if is_internal(a)]
        if internal and not self._allow_private:
            return (f"host {host!r} resolves to an internal address ({internal[0]}): loopback, "
                    "private and link-local addresses are refused unless "
                    "ANALYTICS_WEBHOOK_ALLOW_PRIVATE is set")
        return None

    def send(self, url: str, *, secrets: Sequence[str], message_id: str, timestamp: datetime,
             body: str) -> SendResult:
        """POST the signed body; the status code, or why there is none."""
        started = time.perf_counter()
        headers = {
            "content-type": "application/json", "user-agent": USER_AGENT,
            "webhook-id": message_id, "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": " ".join(Webhook(s).sign(message_id, timestamp, body)
                                          for s in secrets),
        }
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = self._connection(parts.scheme, parts.hostname or "", parts.port)
        try:
            connection.request("POST", target, body=body.encode(), headers=headers)
            answer = connection.getresponse()
            answer.read(MAX_ANSWER_BYTES)
            status = answer.status
            error = None
            if 300 <= status < 400:
                error = "redirect not followed"
            elif not 200 <= status < 300:
                error = f"HTTP {status}"
            return SendResult(status, error, time.perf_counter() - started)
        except RefusedAddress as e:
            return SendResult(None, str(e), time.perf_counter() - started)
        except TimeoutError:
            return SendResult(None, f"timed out after {self._timeout:g} s",
                              time.perf_counter() - started)
        except (OSError, http.client.HTTPException) as e:
            return SendResult(None, f"{type(e).__name__}: {e}"[:300],
                              time.perf_counter() - started)
        finally:
            connection.close()

    def _connection(self, scheme: str, host: str, port: int | None
                    ) -> http.client.HTTPConnection:
        if scheme == "https":
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, port, timeout=self._timeout)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self._timeout)
        connection._create_connection = self._guarded  # type: ignore[attr-defined]
        return connection

    def _guarded(self, address: tuple[str, int], timeout: float,
                 source_address: tuple[str, int] | None = None) -> socket.socket:
        """socket.create_connection, then the peer address must be allowed (before any byte
        of the request, TLS handshake included, is sent)."""
        sock = socket.create_connection(address, timeout, source_address)
        peer = str(sock.getpeername()[0])
        if is_internal(peer) and not self._allow_private:
            sock.close()
            raise RefusedAddress(f"refused: the host connected to an internal address ({peer})")
        return sock
