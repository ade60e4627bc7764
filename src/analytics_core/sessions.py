"""Dashboard sessions (SPEC §14): a sign-in exchanges an API key or a bearer token for a session
cookie that ends after `idle` without use or `absolute` after sign-in, whichever comes first.

Only the SHA-256 of the session token is stored, so a leaked table opens no session; each
session carries its own CSRF token for the dashboard's forms.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta

import attrs

from analytics_core.access import Actor
from analytics_core.events import as_utc

IDLE = "idle"
ABSOLUTE = "absolute"
_HASH = re.compile(r"[0-9a-f]{64}")


def _positive(_: object, attribute: attrs.Attribute[timedelta], value: timedelta) -> None:
    if value <= timedelta(0):
        raise ValueError(f"{attribute.name} must be positive, got {value}")


def _sha256_hex(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not _HASH.fullmatch(value):
        raise ValueError(f"{attribute.name} must be 64 lowercase hex characters")


def _not_empty(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value:
        raise ValueError(f"{attribute.name} must not be empty")


@attrs.frozen
class SessionPolicy:
    """How long a session lives: `idle` without use, `absolute` at most after sign-in; its
    last use is written at most once per `touch_every` (not on every request)."""

    idle: timedelta = attrs.field(default=timedelta(minutes=30), validator=_positive)
    absolute: timedelta = attrs.field(default=timedelta(hours=12), validator=_positive)
    touch_every: timedelta = attrs.field(default=timedelta(seconds=60), validator=_positive)


@attrs.frozen
class UiSession:
    """A signed-in dashboard session as stored (the token itself never is).

    `expires_at` is the absolute expiry: sign-in plus the policy's `absolute`, capped by the
    bearer token's own expiry. `key_id` names the API key a session was opened with (None for
    a bearer token): revoking that key ends the session.
    """

    session_hash: str = attrs.field(validator=_sha256_hex)
    actor: Actor
    csrf_token: str = attrs.field(validator=_not_empty)
    created_at: datetime = attrs.field(converter=as_utc)
    last_seen_at: datetime = attrs.field(converter=as_utc)
    expires_at: datetime = attrs.field(converter=as_utc)
    key_id: str | None = None

    def expired(self, now: datetime, policy: SessionPolicy) -> str | None:
        """Why the session has ended at `now` ("absolute" or "idle"), or None while it lives."""
        if now >= self.expires_at:
            return ABSOLUTE
        if now >= self.last_seen_at + policy.idle:
            return IDLE
        return None


def session_hash(token: str) -> str:
    """SHA-256 hex of a session token (tokens are high-entropy, so no slow KDF is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()
