"""Authentication (JWT, API keys, gateway headers) and audited tenancy (SPEC §6)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import attrs
import falcon.testing
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from analytics_app.bootstrap.ports import Ports
from analytics_app.http.settings import HttpSettings, JwtSettings
from analytics_core.usecases.access import revoke_api_key
from tests.wiring import app_for

PREFIX = "/analytics/v1"


def _freshness(client: falcon.testing.TestClient, org: uuid.UUID, **headers: str) -> Any:
    return client.simulate_get(f"{PREFIX}/orgs/{org}/freshness", headers=headers)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_no_identity_is_401_problem_with_www_authenticate(
    client: falcon.testing.TestClient, org_a: uuid.UUID, problem: Any
) -> None:
    """A request without credentials gets 401 problem+json and a Bearer challenge."""
    result = _freshness(client, org_a)
    problem(result, 401)
    assert result.headers["www-authenticate"] == 'Bearer realm="analytics"'


def test_valid_hs256_token_is_accepted(
    client: falcon.testing.TestClient, org_a: uuid.UUID, make_token: Any
) -> None:
    """A signed HS256 token with exp, iss and aud identifies the caller."""
    token = make_token(org_a, ["analytics:usage:read"])
    assert client.simulate_get(
        f"{PREFIX}/orgs/{org_a}/freshness", headers=_bearer(token)
    ).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"exp": None}, "'exp'"),
        ({"aud": "someone-else"}, "audience"),
        ({"iss": "https://evil.test/"}, "issuer"),
        ({"sub": None}, "'sub'"),
        ({"exp": str(int(time.time()) + 3600)}, "'exp' must be a numeric date"),
        ({"exp": 10**30}, "too far in the future"),
        ({"nbf": "0"}, "'nbf' must be a numeric date"),
        ({"iat": "1"}, "'iat' must be a numeric date"),
    ],
)
def test_token_with_bad_claims_is_401(
    client: falcon.testing.TestClient, org_a: uuid.UUID, make_token: Any, problem: Any,
    overrides: dict[str, Any], reason: str,
) -> None:
    """Expired, exp-less, wrong-audience, wrong-issuer and subject-less tokens are refused."""
    token = make_token(org_a, ["org_admin"], **overrides)
    body = problem(client.simulate_get(
        f"{PREFIX}/orgs/{org_a}/freshness", headers=_bearer(token)
    ), 401)
    assert reason in body["detail"]


def test_token_signed_with_another_secret_is_401(
    client: falcon.testing.TestClient, org_a: uuid.UUID, problem: Any
) -> None:
    """A token signed with a different key fails signature verification."""
    token = jwt.encode(
        {"sub": "x", "org_id": str(org_a), "roles": ["org_admin"], "exp": time.time() + 60,
         "iss": "https://issuer.test/", "aud": "analytics-api"},
        "another-secret-another-secret-another-secret!", algorithm="HS256",
    )
    problem(client.simulate_get(f"{PREFIX}/orgs/{org_a}/freshness", headers=_bearer(token)), 401)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_token_is_401(
    client: falcon.testing.TestClient, org_a: uuid.UUID, problem: Any
) -> None:
    """An unsigned token (alg none) is never accepted."""
    claims = {"sub": "x", "org_id": str(org_a), "roles": ["admin"], "exp": time.time() + 60,
              "iss": "https://issuer.test/", "aud": "analytics-api"}
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    problem(client.simulate_get(f"{PREFIX}/orgs/{org_a}/freshness", headers=_bearer(token)), 401)


def test_non_bearer_authorization_scheme_is_401(
    client: falcon.testing.TestClient, org_a: uuid.UUID, problem: Any
) -> None:
    """Basic credentials are not an identity here."""
    result = _freshness(client, org_a, Authorization="Basic dXNlcjpwYXNz")
    problem(result, 401)


def _key_pair(kind: str) -> tuple[str, str]:
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private_pem, public_pem


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_asymmetric_tokens_verify_with_the_configured_public_key(
    services: Ports, org_a: uuid.UUID, algorithm: str, problem: Any
) -> None:
    """RS256/ES256 tokens verify against a PEM public key; an HS256 token is then refused."""
    private_pem, public_pem = _key_pair(algorithm)
    settings = HttpSettings(jwt=JwtSettings(algorithms=(algorithm,), key=public_pem))
    client = falcon.testing.TestClient(app_for(attrs.evolve(services, http=settings)))
    claims = {"sub": "svc", "org_id": str(org_a), "roles": "analytics:usage:read",
              "exp": int(time.time()) + 60}
    good = jwt.encode(claims, private_pem, algorithm=algorithm)
    assert _freshness(client, org_a, Authorization=f"Bearer {good}").status_code == 200
    forged = jwt.encode(claims, public_pem.encode().hex(), algorithm="HS256")
    problem(_freshness(client, org_a, Authorization=f"Bearer {forged}"), 401)


def test_api_key_identifies_its_org_and_role(
    client: falcon.testing.TestClient, org_a: uuid.UUID, api_key: Any
) -> None:
    """A key created for org A with a usage role reads org A's freshness."""
    key = api_key(org_a, "analytics:usage:read")
    assert _freshness(client, org_a, **{"X-API-Key": key}).status_code == 200


@pytest.mark.parametrize("key", ["nonsense", "ak_0123456789abcdef_wrongsecret", ""])
def test_unknown_or_malformed_api_key_is_401(
    client: falcon.testing.TestClient, org_a: uuid.UUID, problem: Any, key: str
) -> None:
    """Keys that are not stored, or not shaped like ours, are refused."""
    problem(_freshness(client, org_a, **{"X-API-Key": key}), 401)


def test_api_key_is_401_right_after_it_is_revoked(
    client: falcon.testing.TestClient, services: Ports, org_a: uuid.UUID, api_key: Any,
    problem: Any,
) -> None:
    """A working key is refused (401 problem+json) on the very next request after revoke."""
    key = api_key(org_a, "analytics:usage:read")
    assert _freshness(client, org_a, **{"X-API-Key": key}).status_code == 200
    revoke_api_key(key.split("_")[1], actor="cli", uow_factory=services.uow_factory,
                   clock=services.clock, ids=services.ids)
    body = problem(_freshness(client, org_a, **{"X-API-Key": key}), 401)
    assert body["detail"] == "invalid API key"


def test_gateway_headers_are_ignored_unless_enabled(
    client: falcon.testing.TestClient, org_a: uuid.UUID, problem: Any
) -> None:
    """Without the opt-in, X-Actor-* headers are not an identity."""
    headers = {"X-Actor-Subject": "u", "X-Actor-Org": str(org_a), "X-Actor-Roles": "org_admin"}
    problem(_freshness(client, org_a, **headers), 401)


def test_gateway_headers_identify_the_caller_when_enabled(
    services: Ports, org_a: uuid.UUID, org_b: uuid.UUID, problem: Any
) -> None:
    """With the opt-in, the gateway's subject, roles and org are trusted (and still scoped)."""
    enabled = attrs.evolve(services, http=attrs.evolve(services.http, gateway_headers=True))
    client = falcon.testing.TestClient(app_for(enabled))
    headers = {"X-Actor-Subject": "u", "X-Actor-Org": str(org_a),
               "X-Actor-Roles": "analytics:exports:read, analytics:usage:read"}
    assert _freshness(client, org_a, **headers).status_code == 200
    problem(_freshness(client, org_b, **headers), 403)
    problem(_freshness(client, org_a, **{**headers, "X-Actor-Org": "not-a-uuid"}), 401)


def test_org_a_actor_reading_org_b_is_403_and_audited(
    client: falcon.testing.TestClient, org_b: uuid.UUID, admin_of_a: dict[str, str],
    problem: Any, audit: Any,
) -> None:
    """An org_admin of A gets 403 on B, and the denial is in B's audit log."""
    result = client.simulate_get(
        f"{PREFIX}/orgs/{org_b}/usage", headers={**admin_of_a, "X-Request-Id": "req-403"},
        query_string="start=2024-03-14T00:00:00Z&end=2024-03-15T00:00:00Z",
    )
    problem(result, 403)
    [entry] = audit(org_b)
    assert (entry.outcome.value, entry.action, entry.request_id) == (
        "denied", "analytics:usage:read", "req-403"
    )


def test_admin_reads_any_org_and_the_cross_org_read_is_audited(
    client: falcon.testing.TestClient, org_b: uuid.UUID, auth: Any, audit: Any
) -> None:
    """A platform admin reads org B (200) and the audit entry is marked cross_org."""
    result = client.simulate_get(
        f"{PREFIX}/orgs/{org_b}/reliability", headers=auth(None, "admin"),
        query_string="start=2024-03-14T00:00:00Z&end=2024-03-15T00:00:00Z",
    )
    assert result.status_code == 200
    [entry] = audit(org_b)
    assert entry.cross_org
    assert entry.outcome.value == "allowed"


@pytest.mark.parametrize(
    ("role", "allowed_path"),
    [
        ("analytics:usage:read", "usage"),
        ("analytics:reliability:read", "reliability"),
        ("analytics:exports:read", "exports"),
    ],
)
def test_fine_grained_role_grants_only_its_action(
    client: falcon.testing.TestClient, org_a: uuid.UUID, auth: Any, role: str,
    allowed_path: str,
) -> None:
    """Each read role opens exactly its own endpoint among usage, reliability and exports."""
    window = "start=2024-03-14T00:00:00Z&end=2024-03-15T00:00:00Z"
    statuses = {
        path: client.simulate_get(
            f"{PREFIX}/orgs/{org_a}/{path}", headers=auth(org_a, role),
            query_string=window if path != "exports" else "",
        ).status_code
        for path in ("usage", "reliability", "exports")
    }
    assert statuses == {p: 200 if p == allowed_path else 403 for p in statuses}


def test_usage_reader_cannot_create_exports_or_ingest(
    client: falcon.testing.TestClient, org_a: uuid.UUID, auth: Any, make_event: Any,
    problem: Any,
) -> None:
    """Read grants do not include exports:create or events:write."""
    headers = auth(org_a, "analytics:usage:read")
    request = {"timeRange": {"start": "2024-03-14T00:00:00Z", "end": "2024-03-15T00:00:00Z"}}
    problem(client.simulate_post(f"{PREFIX}/orgs/{org_a}/exports", json=request,
                                 headers=headers), 403)
    problem(client.simulate_post(f"{PREFIX}/events", json={"events": [make_event(org_a)]},
                                 headers=headers), 403)


def test_an_identity_in_the_platform_org_is_refused(
    services: Ports, client: falcon.testing.TestClient, make_token: Any, problem: Any,
) -> None:
    """A token or gateway headers naming the nil UUID as the caller's org are not an
    identity (401): the platform org holds global audit entries and org-less dead letters."""
    nil = uuid.UUID(int=0)
    token = make_token(nil, ["org_admin"])
    problem(_freshness(client, nil, Authorization=f"Bearer {token}"), 401)
    enabled = attrs.evolve(services, http=attrs.evolve(services.http, gateway_headers=True))
    gateway = falcon.testing.TestClient(app_for(enabled))
    headers = {"X-Actor-Subject": "u", "X-Actor-Org": str(nil), "X-Actor-Roles": "org_admin"}
    problem(_freshness(gateway, nil, **headers), 401)


@pytest.mark.parametrize("subject", ["user\x00admin", "line\nbreak", "x" * 257])
def test_a_subject_that_cannot_be_audited_is_refused(
    services: Ports, client: falcon.testing.TestClient, org_a: uuid.UUID, make_token: Any,
    problem: Any, subject: str,
) -> None:
    """A subject with a control character (a NUL the database cannot store, a line break that
    forges log lines) or longer than 256 characters is not an identity: 401 naming the
    subject, never a 500 from the audit write."""
    token = make_token(org_a, ["org_admin"], sub=subject)
    body = problem(_freshness(client, org_a, Authorization=f"Bearer {token}"), 401)
    assert "subject" in body["detail"]
    enabled = attrs.evolve(services, http=attrs.evolve(services.http, gateway_headers=True))
    gateway = falcon.testing.TestClient(app_for(enabled))
    if "\n" not in subject and "\x00" not in subject:  # not sendable as a header value
        headers = {"X-Actor-Subject": subject, "X-Actor-Org": str(org_a),
                   "X-Actor-Roles": "org_admin"}
        problem(_freshness(gateway, org_a, **headers), 401)
