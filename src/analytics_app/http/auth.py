"""Identity (SPEC §6): JWT bearer, hashed API keys, opt-in trusted gateway headers.

Precedence: an `Authorization` header is always judged on its own (a bad token is 401 even if
an API key is also sent); then `X-API-Key`; then, only when enabled, the gateway headers.
"""

from __future__ import annotations

import math
import time
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import falcon
import jwt

from analytics_app.http.api import Authorize
from analytics_app.http.context import request_id_of
from analytics_app.http.settings import HttpSettings, JwtSettings
from analytics_core.access import Action, Actor, Decision
from analytics_core.errors import Unauthenticated
from analytics_core.events import NIL_ORG_MESSAGE, PLATFORM_ORG

ApiKeyAuthenticator = Callable[[str], Actor]

_JWT_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "bearer token has expired"),
    (jwt.ImmatureSignatureError, "bearer token is not valid yet"),
    (jwt.InvalidAudienceError, "bearer token audience is not accepted"),
    (jwt.InvalidIssuerError, "bearer token issuer is not accepted"),
    (jwt.InvalidAlgorithmError, "bearer token algorithm is not accepted"),
    (jwt.InvalidSignatureError, "bearer token signature is invalid"),
)


def _jwt_reason(e: jwt.PyJWTError) -> str:
    if isinstance(e, jwt.MissingRequiredClaimError):
        return f"bearer token is missing the {e.claim!r} claim"
    for cls, reason in _JWT_REASONS:
        if isinstance(e, cls):
            return reason
    return "bearer token is invalid"


def _org(value: object, source: str) -> uuid.UUID | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise Unauthenticated(f"{source} must be a UUID string")
    try:
        org = uuid.UUID(value)
    except ValueError as e:
        raise Unauthenticated(f"{source} must be a UUID string") from e
    if org == PLATFORM_ORG:
        raise Unauthenticated(f"{source} {NIL_ORG_MESSAGE}")
    return org


# The longest subject accepted: it is stored in every audit entry and shown in the audit log.
MAX_SUBJECT_LENGTH = 256


def _subject(value: object, source: str) -> str:
    """The caller's subject as it is audited: text of at most MAX_SUBJECT_LENGTH characters
    without control characters (a NUL no database stores, a line break that forges log lines)
    or lone surrogates (not encodable)."""
    if not isinstance(value, str) or not value.strip():
        raise Unauthenticated(f"{source} has no subject")
    if len(value) > MAX_SUBJECT_LENGTH:
        raise Unauthenticated(f"{source} subject is longer than {MAX_SUBJECT_LENGTH} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise Unauthenticated(f"{source} subject contains a control character")
    return value


def _roles(value: object, source: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(r for r in value.replace(",", " ").split() if r)
    if isinstance(value, list) and all(isinstance(r, str) for r in value):
        return frozenset(r.strip() for r in value if r.strip())
    raise Unauthenticated(f"{source} must be a list of strings")


def actor_from_claims(claims: Mapping[str, Any], settings: JwtSettings) -> Actor:
    """The actor a verified token describes: `sub`, the org claim and the roles claim."""
    subject = _subject(claims.get("sub"), "bearer token")
    org_id = _org(claims.get(settings.org_claim), f"token claim {settings.org_claim!r}")
    roles = _roles(claims.get(settings.roles_claim), f"token claim {settings.roles_claim!r}")
    return Actor(subject, org_id, roles, "jwt")


def decode_bearer(token: str, settings: JwtSettings) -> Mapping[str, Any]:
    """Verify a JWT with only the configured algorithms (never `none`); `exp` is required."""
    if settings.key is None:
        raise Unauthenticated("bearer tokens are not accepted by this deployment")
    algorithms = [a for a in settings.algorithms if a.lower() != "none"]
    try:
        claims: dict[str, Any] = jwt.decode(
            token, settings.key, algorithms=algorithms, issuer=settings.issuer,
            audience=settings.audience, leeway=settings.leeway_seconds,
            options={"require": ["exp", "sub"], "verify_aud": settings.audience is not None},
        )
    except jwt.PyJWTError as e:
        raise Unauthenticated(_jwt_reason(e)) from e
    except (ValueError, TypeError) as e:  # malformed key material or header values
        raise Unauthenticated("bearer token is invalid") from e
    _check_dates(claims)
    return claims


# The furthest `exp` accepted: a token valid for longer than this is a mistake or an attack.
MAX_TOKEN_LIFETIME_SECONDS = 10 * 366 * 86400


def _check_dates(claims: Mapping[str, Any]) -> None:
    """`exp`, `nbf` and `iat` are JSON numbers (RFC 7519 NumericDate), never strings or
    booleans, and `exp` lies at most ten years ahead."""
    for claim in ("exp", "nbf", "iat"):
        value = claims.get(claim)
        if claim in claims and (isinstance(value, bool) or not isinstance(value, int | float)
                                or not math.isfinite(value)):
            raise Unauthenticated(f"bearer token claim {claim!r} must be a numeric date")
    if claims["exp"] > time.time() + MAX_TOKEN_LIFETIME_SECONDS:
        raise Unauthenticated("bearer token expires too far in the future (at most 10 years)")


@attrs.frozen
class Authenticator:
    """Turns request headers into an Actor or raises Unauthenticated."""

    settings: HttpSettings
    api_keys: ApiKeyAuthenticator

    def identify(self, req: falcon.Request) -> Actor:
        """The caller's identity (see module docstring for precedence)."""
        authorization = req.get_header("Authorization")
        if authorization is not None:
            return self._bearer(authorization)
        api_key = req.get_header("X-API-Key")
        if api_key is not None:
            return self.api_keys(api_key.strip())
        if self.settings.gateway_headers and req.get_header("X-Actor-Subject"):
            return self._gateway(req)
        raise Unauthenticated("send a bearer token (Authorization) or an X-API-Key header")

    def _bearer(self, header: str) -> Actor:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("Authorization must be 'Bearer <token>'")
        claims = decode_bearer(token.strip(), self.settings.jwt)
        return actor_from_claims(claims, self.settings.jwt)

    def _gateway(self, req: falcon.Request) -> Actor:
        subject = _subject((req.get_header("X-Actor-Subject") or "").strip(), "X-Actor-Subject")
        org_id = _org(req.get_header("X-Actor-Org"), "X-Actor-Org")
        roles = _roles(req.get_header("X-Actor-Roles"), "X-Actor-Roles")
        return Actor(subject, org_id, roles, "gateway")


class AuthMiddleware:
    """Authenticates every request to a resource not marked `public = True`."""

    def __init__(self, authenticator: Authenticator) -> None:
        self._authenticator = authenticator

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object,
        params: dict[str, Any],
    ) -> None:
        """Store the actor on `req.context.actor`; unknown routes are left to the 404."""
        if resource is None or getattr(resource, "public", False):
            return
        req.context.actor = self._authenticator.identify(req)


def actor_of(req: falcon.Request) -> Actor:
    """The authenticated actor of a request (Unauthenticated when there is none)."""
    actor = getattr(req.context, "actor", None)
    if not isinstance(actor, Actor):
        raise Unauthenticated("authentication required")
    return actor


@attrs.frozen
class Guard:
    """Every decision on org data goes through the audited `authorize` use case, with the request
    id."""

    authorize: Authorize

    def require(
        self, req: falcon.Request, action: Action, org_id: uuid.UUID, resource: str = ""
    ) -> Decision:
        """Allow or raise Forbidden; the decision is audited either way."""
        return self.authorize(
            actor_of(req), action, org_id, resource=resource, request_id=request_id_of(req)
        )
