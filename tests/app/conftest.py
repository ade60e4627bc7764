"""Fixtures for the HTTP driver tests: create_app over the in-memory adapters."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import falcon.testing
import jwt
import pytest
from dependency_injector import providers

from analytics_adapters.memory import ManualClock
from analytics_adapters.system import RandomIds
from analytics_app.bootstrap.application import Application
from analytics_app.bootstrap.ports import Ports
from analytics_app.config import Settings
from analytics_app.config.env import Secret
from analytics_app.http.settings import HttpSettings
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.records import AuditEntry
from analytics_core.usecases.access import create_api_key
from tests.wiring import app_for

NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
ISSUER = "https://issuer.test/"
AUDIENCE = "analytics-api"
PREFIX = "/analytics/v1"


@pytest.fixture
def clock() -> ManualClock:
    """A clock fixed at NOW."""
    return ManualClock(NOW)


@pytest.fixture
def application(clock: ManualClock, tmp_path: Path) -> Iterator[Application]:
    """The in-memory composition (a local export directory), on the manual clock."""
    application = Application(Settings(
        export_dir=tmp_path / "exports", jwt_key=Secret(JWT_SECRET), jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
    ))
    application.container.clock.override(providers.Object(clock))
    yield application
    application.shutdown()


@pytest.fixture
def http_settings(application: Application) -> HttpSettings:
    """HS256 with issuer and audience checks; gateway headers off."""
    return application.ports.http


@pytest.fixture
def services(application: Application) -> Ports:
    """The ports the container resolved (tests swap single adapters with attrs.evolve)."""
    return application.ports


@pytest.fixture
def uow_factory(services: Ports) -> UnitOfWorkFactory:
    """Units of work over the in-memory storage."""
    return services.uow_factory


@pytest.fixture
def client(services: Ports) -> falcon.testing.TestClient:
    """A test client over app_for(services)."""
    return falcon.testing.TestClient(app_for(services))


@pytest.fixture
def org_a() -> uuid.UUID:
    """The caller's org."""
    return uuid.uuid4()


@pytest.fixture
def org_b() -> uuid.UUID:
    """Another tenant."""
    return uuid.uuid4()


TokenFactory = Callable[..., str]


@pytest.fixture
def make_token() -> TokenFactory:
    """HS256 token factory: make_token(org, roles, **claim overrides; None drops a claim)."""

    def make(org: uuid.UUID | None, roles: Iterable[str], **overrides: Any) -> str:
        claims: dict[str, Any] = {
            "sub": "user-1", "roles": list(roles), "iss": ISSUER, "aud": AUDIENCE,
            "exp": int(time.time()) + 3600,
        }
        if org is not None:
            claims["org_id"] = str(org)
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, JWT_SECRET, algorithm="HS256")

    return make


HeaderFactory = Callable[..., dict[str, str]]


@pytest.fixture
def auth(make_token: TokenFactory) -> HeaderFactory:
    """Authorization headers for an actor: auth(org, *roles)."""

    def headers(org: uuid.UUID | None, *roles: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {make_token(org, roles)}"}

    return headers


@pytest.fixture
def admin_of_a(auth: HeaderFactory, org_a: uuid.UUID) -> dict[str, str]:
    """An org_admin of org A."""
    return auth(org_a, "org_admin")


EventFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def make_event() -> EventFactory:
    """A valid raw event of `org` (camelCase JSON), with overrides."""

    def make(org: uuid.UUID, model: uuid.UUID | None = None, **overrides: Any) -> dict[str, Any]:
        event: dict[str, Any] = {
            "eventId": str(uuid.uuid4()), "orgId": str(org),
            "modelId": str(model or uuid.uuid4()),
            "occurredAt": (NOW - timedelta(hours=2)).isoformat(), "status": "success",
            "latencyMs": 100, "inputTokens": 10, "outputTokens": 20, "costEstimateCents": "1.5",
        }
        event.update(overrides)
        return event

    return make


@pytest.fixture
def ingest(
    client: falcon.testing.TestClient, admin_of_a: dict[str, str]
) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """POST events of org A as its org_admin and return the 202 body."""

    def post(events: list[dict[str, Any]]) -> dict[str, Any]:
        result = client.simulate_post(f"{PREFIX}/events", json={"events": events},
                                      headers=admin_of_a)
        assert result.status_code == 202, result.text
        body: dict[str, Any] = result.json
        return body

    return post


@pytest.fixture
def audit(uow_factory: UnitOfWorkFactory) -> Callable[[uuid.UUID], list[AuditEntry]]:
    """The audit entries about one org, newest first."""

    def entries(org: uuid.UUID) -> list[AuditEntry]:
        with uow_factory() as uow:
            return uow.audit.recent(org)

    return entries


@pytest.fixture
def api_key(
    uow_factory: UnitOfWorkFactory, clock: ManualClock
) -> Callable[[uuid.UUID | None, str], str]:
    """Create an API key and return its plaintext."""

    def create(org: uuid.UUID | None, role: str) -> str:
        plaintext, _ = create_api_key(
            org_id=org, roles=[role], name="test", uow_factory=uow_factory, clock=clock,
            ids=RandomIds(),
        )
        return plaintext

    return create


def assert_problem(result: falcon.testing.Result, status: int) -> dict[str, Any]:
    """The body of a problem+json response with the expected status."""
    assert result.status_code == status, result.text
    assert result.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = result.json
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == status
    return body


@pytest.fixture
def problem() -> Callable[[falcon.testing.Result, int], dict[str, Any]]:
    """Checks the problem+json shape of a response and returns its body."""
    return assert_problem
