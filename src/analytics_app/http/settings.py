"""How the HTTP driver behaves: bearer-token verification and request limits."""

from __future__ import annotations

from datetime import timedelta

import attrs


@attrs.frozen
class JwtSettings:
    """How bearer tokens are verified. `key` is an HS256 secret or a PEM public key."""

    algorithms: tuple[str, ...] = ("HS256",)
    key: str | None = attrs.field(default=None, repr=False)  # a secret: never printed
    issuer: str | None = None
    audience: str | None = None
    leeway_seconds: int = 30
    org_claim: str = "org_id"
    roles_claim: str = "roles"


@attrs.frozen
class HttpSettings:
    """HTTP driver behaviour."""

    jwt: JwtSettings = attrs.field(factory=JwtSettings)
    gateway_headers: bool = False
    max_body_bytes: int = 10 * 1024 * 1024
    signed_url_ttl: timedelta = timedelta(minutes=15)
    raw_retention: timedelta = timedelta(days=400)
