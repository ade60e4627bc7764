"""problem+json everywhere, request ids, body limits and structured logs."""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import falcon
import falcon.testing
import pytest

from analytics_app.bootstrap.ports import Ports
from analytics_app.observability.logs import configure_logging
from analytics_core.errors import StoreUnavailable
from tests.wiring import app_for

PREFIX = "/analytics/v1"


class Exploding:
    """A public resource that fails the way a bug or an outage would."""

    public = True

    def __init__(self, error: Exception) -> None:
        self.error = error

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Raise the configured error."""
        raise self.error


@pytest.fixture
def exploding_client(services: Ports) -> falcon.testing.TestClient:
    """The real app plus two routes that raise an internal error and an outage."""
    app = app_for(services)
    app.add_route("/boom", Exploding(RuntimeError("secret internal detail at 0xdeadbeef")))
    app.add_route("/down", Exploding(StoreUnavailable("postgres://user:pw@db refused")))
    return falcon.testing.TestClient(app)


def test_unexpected_error_is_500_with_a_generic_detail(
    exploding_client: falcon.testing.TestClient, problem: Any
) -> None:
    """No internal message or stack trace reaches the body."""
    result = exploding_client.simulate_get("/boom")
    problem(result, 500)
    assert "secret" not in result.text
    assert "Traceback" not in result.text


def test_store_unavailable_is_503_with_retry_after(
    exploding_client: falcon.testing.TestClient, problem: Any
) -> None:
    """An outage is retryable: 503 and Retry-After, without the driver's message."""
    result = exploding_client.simulate_get("/down")
    problem(result, 503)
    assert result.headers["retry-after"] == "5"
    assert "pw@db" not in result.text


def test_unknown_path_and_method_are_problem_json(
    client: falcon.testing.TestClient, admin_of_a: dict[str, str], problem: Any
) -> None:
    """Falcon's own 404 and 405 are re-rendered as problem+json (405 keeps Allow)."""
    problem(client.simulate_get(f"{PREFIX}/nothing-here"), 404)
    result = client.simulate_delete(f"{PREFIX}/events", headers=admin_of_a)
    problem(result, 405)
    assert "POST" in result.headers["allow"]


def test_request_id_is_echoed_when_valid(client: falcon.testing.TestClient) -> None:
    """A well-formed X-Request-Id comes back unchanged."""
    result = client.simulate_get(f"{PREFIX}/status/healthz", headers={"X-Request-Id": "abc.1-2_3"})
    assert result.headers["x-request-id"] == "abc.1-2_3"


def test_request_id_is_sanitised_and_bounded(client: falcon.testing.TestClient) -> None:
    """Disallowed characters are dropped and the id is cut to 128 characters."""
    result = client.simulate_get(
        f"{PREFIX}/status/healthz", headers={"X-Request-Id": "a b<script>" + "x" * 300}
    )
    echoed = result.headers["x-request-id"]
    assert echoed.startswith("abscript")
    assert len(echoed) == 128


def test_request_id_is_generated_and_carried_by_problems(
    client: falcon.testing.TestClient, org_a: uuid.UUID, problem: Any
) -> None:
    """Without a header an id is generated; error bodies quote it."""
    result = client.simulate_get(f"{PREFIX}/orgs/{org_a}/usage")
    body = problem(result, 401)
    assert body["requestId"] == result.headers["x-request-id"]
    assert len(body["requestId"]) >= 16


def test_body_over_the_limit_is_413(
    services: Ports, org_a: uuid.UUID, admin_of_a: dict[str, str], problem: Any
) -> None:
    """max_body_bytes bounds every JSON body."""
    small = attrs.evolve(services, http=attrs.evolve(services.http, max_body_bytes=100))
    client = falcon.testing.TestClient(app_for(small))
    result = client.simulate_post(f"{PREFIX}/events", json={"events": [{"x": "y" * 200}]},
                                  headers=admin_of_a)
    problem(result, 413)


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"events": [', "application/json", 400),
        (b"\xff\xfe", "application/json", 400),
        (b"", "application/json", 400),
        (b'{"events": [NaN]}', "application/json", 400),
        (b"[" * 100_000, "application/json", 400),
        (b'{"events": []}', "text/plain", 415),
        (b'{"events": []}', "", 415),
    ],
)
def test_malformed_bodies_are_4xx_problems(
    client: falcon.testing.TestClient, admin_of_a: dict[str, str], problem: Any, body: bytes,
    content_type: str, status: int,
) -> None:
    """Broken JSON, bad encodings, NaN, deep nesting and wrong content types are 4xx."""
    headers = {**admin_of_a, "Content-Type": content_type}
    problem(client.simulate_post(f"{PREFIX}/events", body=body, headers=headers), status)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Capture JSON log lines from the root logger, restoring its handlers afterwards."""
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    buffer = io.StringIO()
    configure_logging("INFO", stream=buffer)
    yield buffer
    root.handlers[:] = saved
    root.setLevel(level)


def test_log_lines_are_json_with_the_request_id_and_no_credentials(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    make_event: Any, log_lines: io.StringIO,
) -> None:
    """Every line of the request carries its id; the bearer token never appears."""
    client.simulate_post(f"{PREFIX}/events", json={"events": [make_event(org_a)]},
                         headers={**admin_of_a, "X-Request-Id": "rid-42"})
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert lines
    assert {line["request_id"] for line in lines} == {"rid-42"}
    assert any("batch_id" in line for line in lines)
    token = admin_of_a["Authorization"].split()[1]
    assert token not in log_lines.getvalue()


def test_trailing_slash_reaches_the_same_route(client: falcon.testing.TestClient) -> None:
    """`/status/healthz/` is served like `/status/healthz`."""
    assert client.simulate_get(f"{PREFIX}/status/healthz/").status_code == 200


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [("usage", "start=2024-03-14T00:00:00Z&end=2024-03-15T00:00:00Z&timezone=Asia/Kolkata",
      "timezone"),
     ("alerts", "limt=5", "limt"),
     ("dead-letters", "status=open&reasons=x", "reasons")],
)
def test_a_parameter_the_route_does_not_read_is_400_naming_it(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    problem: Any, path: str, query: str, field: str,
) -> None:
    """A misspelt parameter is refused, not silently ignored (a `timezone=` that read as UTC
    would show the wrong day buckets)."""
    body = problem(client.simulate_get(f"/analytics/v1/orgs/{org_a}/{path}", query_string=query,
                                       headers=admin_of_a), 400)
    assert [(e["field"], e["reason"]) for e in body["errors"]] == [
        (field, "is not a parameter of this route")]
