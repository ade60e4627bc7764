"""Credentials for sign-in, the session cookie, and CSRF checks."""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime

import falcon

from analytics_app.http.auth import Authenticator, actor_from_claims, decode_bearer
from analytics_core.access import Actor
from analytics_core.errors import Unauthenticated
from analytics_core.usecases.access import API_KEY_PREFIX

SESSION_COOKIE = "analytics_session"
SIGNIN_COOKIE = "analytics_signin"  # the sign-in form's CSRF token (double submit)
COOKIE_PATH = "/analytics/ui"
MAX_CREDENTIAL = 8192


def identify(credential: str, authenticator: Authenticator
             ) -> tuple[Actor, str | None, datetime | None]:
    """The actor behind an API key or a bearer token, the key's id, and the token's expiry.

    A key is recognised by its `ak_` prefix; anything else is verified as a JWT exactly as an
    `Authorization: Bearer` header would be.
    """
    text = credential.strip()
    if text.lower().startswith("bearer "):
        text = text[7:].strip()
    if not text or len(text) > MAX_CREDENTIAL:
        raise Unauthenticated("paste an API key or a bearer token")
    if text.startswith(f"{API_KEY_PREFIX}_"):
        actor = authenticator.api_keys(text)
        return actor, text.split("_")[1], None
    claims = decode_bearer(text, authenticator.settings.jwt)
    expires = datetime.fromtimestamp(float(claims["exp"]), UTC)
    return actor_from_claims(claims, authenticator.settings.jwt), None, expires


def is_secure(req: falcon.Request, always: bool) -> bool:
    """Whether cookies get `Secure`: always when configured, else when served over https."""
    return always or req.scheme == "https"


def set_cookie(resp: falcon.Response, req: falcon.Request, name: str, value: str, *,
               max_age: int | None, secure: bool) -> None:
    """A host-only, HttpOnly, SameSite=Strict cookie scoped to the dashboard's path."""
    resp.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH,
                    secure=is_secure(req, secure), http_only=True, same_site="Strict")


def clear_cookie(resp: falcon.Response, name: str) -> None:
    """Expire a cookie at once."""
    resp.unset_cookie(name, path=COOKIE_PATH)


def cookie(req: falcon.Request, name: str) -> str | None:
    """The first value of a cookie, or None."""
    values = req.get_cookie_values(name)
    return values[0] if values else None


def new_signin_token() -> str:
    """A fresh token for the sign-in form (there is no session to bind it to yet)."""
    return secrets.token_urlsafe(32)


def same_token(expected: str | None, presented: object) -> bool:
    """Constant-time equality of two non-empty tokens."""
    return (bool(expected) and isinstance(presented, str) and bool(presented)
            and hmac.compare_digest(str(expected).encode(), presented.encode()))
