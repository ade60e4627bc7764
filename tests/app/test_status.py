"""Liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import falcon
import falcon.testing

from analytics_app.bootstrap.application import Application
from analytics_app.bootstrap.ports import Ports
from analytics_app.config import Settings
from analytics_app.http.app import create_app
from analytics_app.http.openapi import build_document
from analytics_app.http.routes import ROUTES
from analytics_core.errors import StoreUnavailable
from tests.wiring import app_for

PREFIX = "/analytics/v1"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@attrs.define
class Probe:
    """A health check that fails on demand."""

    name: str
    healthy: bool = True

    def check(self) -> None:
        """Raise when unhealthy."""
        if not self.healthy:
            raise StoreUnavailable("connection refused to 10.0.0.1 password=hunter2")


def _client(services: Ports, checks: list[Probe], degraded: list[Probe]) -> Any:
    changed = attrs.evolve(services, health_checks=checks, degraded_checks=degraded)
    return falcon.testing.TestClient(app_for(changed))


def test_healthz_is_plain_ok_without_credentials(client: falcon.testing.TestClient) -> None:
    """Liveness answers 200 text/plain OK to anyone."""
    result = client.simulate_get(f"{PREFIX}/status/healthz")
    assert result.status_code == 200
    assert result.text == "OK"
    assert result.headers["content-type"].startswith("text/plain")


def test_readyz_is_ok_when_every_check_passes(services: Ports) -> None:
    """Readiness is 200 OK when all dependencies answer."""
    result = _client(services, [Probe("database"), Probe("cache")], []).simulate_get(
        f"{PREFIX}/status/readyz"
    )
    assert (result.status_code, result.text) == (200, "OK")


def test_readyz_names_the_failed_dependency_with_503(services: Ports, problem: Any) -> None:
    """A failing critical check makes readiness 503 naming it, without its error message."""
    client = _client(services, [Probe("database", healthy=False), Probe("cache")], [])
    body = problem(client.simulate_get(f"{PREFIX}/status/readyz"), 503)
    assert "database" in body["detail"]
    assert "hunter2" not in client.simulate_get(f"{PREFIX}/status/readyz").text


def test_readyz_verbose_reports_each_check_and_degraded_stays_200(services: Ports) -> None:
    """?verbose returns JSON per check; a failing degraded-only check keeps 200."""
    client = _client(services, [Probe("database")], [Probe("redis", healthy=False)])
    result = client.simulate_get(f"{PREFIX}/status/readyz", query_string="verbose")
    assert result.status_code == 200
    assert result.json["status"] == "degraded"
    checks = {c["name"]: c for c in result.json["checks"]}
    assert checks["database"]["status"] == "ok"
    assert checks["redis"]["status"] == "degraded"


def test_readyz_verbose_is_503_when_a_critical_check_fails(services: Ports) -> None:
    """?verbose with a failing critical check is a 503 JSON report."""
    client = _client(services, [Probe("database", healthy=False)], [])
    result = client.simulate_get(f"{PREFIX}/status/readyz", query_string="verbose=1")
    assert result.status_code == 503
    assert result.json["status"] == "unavailable"
    assert result.json["checks"][0] == {
        "name": "database", "critical": True, "status": "failed", "error": "StoreUnavailable"
    }


def test_metrics_expose_http_counters_by_route_template(
    client: falcon.testing.TestClient, org_a: Any, admin_of_a: dict[str, str]
) -> None:
    """/metrics is Prometheus text labelled by route template, never by raw path."""
    client.simulate_get(f"{PREFIX}/orgs/{org_a}/freshness", headers=admin_of_a)
    text = client.simulate_get("/metrics").text
    assert 'route="/analytics/v1/orgs/{orgId}/freshness"' in text
    assert str(org_a) not in text
    for name in (
        "http_requests_total", "http_request_duration_seconds_bucket",
        "analytics_ingestion_events_total", "analytics_ingestion_dedupe_conflicts_total",
        "analytics_ingestion_batch_duration_seconds", "analytics_freshness_lag_seconds",
        "analytics_export_jobs_total",
    ):
        assert name in text


def test_openapi_document_is_served_as_openapi_3_1(client: falcon.testing.TestClient) -> None:
    """The document is public JSON declaring OpenAPI 3.1."""
    result = client.simulate_get(f"{PREFIX}/openapi.json")
    assert result.status_code == 200
    assert result.json["openapi"].startswith("3.1")


def _registered(app: falcon.App[falcon.Request, falcon.Response]) -> set[tuple[str, str]]:
    """(template, method) of every responder the Falcon router really holds."""
    found: set[tuple[str, str]] = set()
    nodes = list(app._router._roots)
    while nodes:
        node = nodes.pop()
        nodes.extend(node.children or [])
        if node.resource is not None:
            found |= {
                (str(node.uri_template), m) for m in METHODS
                if hasattr(node.resource, f"on_{m.lower()}")
            }
    return found


def test_openapi_paths_equal_the_registered_routes(services: Ports) -> None:
    """Every route in the Falcon router is documented, and every documented path is routed."""
    app = app_for(services)
    documented = {
        (path, method.upper())
        for path, operations in build_document()["paths"].items()
        for method in operations
    }
    assert _registered(app) == documented
    assert {r.template for r in ROUTES} == {path for path, _ in documented}


def test_openapi_references_resolve(services: Ports) -> None:
    """Every $ref in the document points at a defined component."""
    document = build_document()

    def refs(value: Any) -> list[str]:
        if isinstance(value, dict):
            own = [value["$ref"]] if "$ref" in value else []
            return own + [r for v in value.values() for r in refs(v)]
        if isinstance(value, list):
            return [r for v in value for r in refs(v)]
        return []

    for reference in refs(document):
        _, section, name = reference.removeprefix("#/").split("/", 2)
        assert name in document["components"][section], reference


def test_readyz_verbose_says_where_the_data_lives_without_credentials(tmp_path: Path) -> None:
    """`data` names the database (password masked) and the export location."""
    settings = Settings(database_url="postgresql+psycopg://svc:s3cret-pw@db.internal:5432/a",
                        export_dir=tmp_path / "exports")
    with Application(Settings(export_dir=tmp_path / "exports")) as app:
        api = attrs.evolve(app.http_api(), data_location=settings.data_location)
        body = falcon.testing.TestClient(create_app(api)).simulate_get(
            "/analytics/v1/status/readyz", params={"verbose": ""}).json
    assert "db.internal:5432/a" in body["data"]
    assert "s3cret-pw" not in body["data"]
    assert body["data"].endswith(f"exports {tmp_path / 'exports'}")
