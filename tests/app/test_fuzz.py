"""Fuzz: any query string or body gets a 2xx/3xx or a 4xx problem+json, never a 5xx."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import falcon.testing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PREFIX = "/analytics/v1"
FUZZ = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])

NAMES = ["start", "end", "granularity", "tz", "modelId", "clientId", "groupBy", "percentile",
         "status", "limit", "cursor", "verbose", "x"]
VALUES = st.one_of(
    st.sampled_from([
        "2024-03-15T00:00:00Z", "2024-03-16T00:00:00Z", "2024-03-15T00:00:00+05:45",
        "2024-03-15T00:00:00 05:45", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-12:00",
        "2024-02-30T00:00:00Z", "2023-01-01T00:00:00Z", "hour", "hourly", "day", "daily",
        "month", "week", "UTC", "America/New_York", "Asia/Kathmandu", "../../etc/passwd",
        "Europe/\x00", "model", "client", "none", "p50", "p99", "p100", "pending", "succeeded",
        "0", "1", "200", "201", "-1", "1e9", "99999999999999999999", str(uuid.uuid4()),
        "not-a-uuid", "", "%", "%zz", "bm90LWEtY3Vyc29y", "MjAyNC0wMy0xNVQwMDowMDowMCswMDowMHx4",
    ]),
    st.text(max_size=40),
)


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    """Raw query strings: structured pairs (sometimes unencoded) or arbitrary text."""
    if draw(st.booleans()):
        return draw(st.text(max_size=80))
    pairs = draw(st.lists(st.tuples(st.sampled_from(NAMES), VALUES), max_size=8))
    encode = draw(st.booleans())
    return "&".join(
        f"{k}={quote(v, safe='') if encode else v}" for k, v in pairs
    )


JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.decimals(allow_nan=False, allow_infinity=False, places=6), st.text(max_size=20),
    st.sampled_from(["2024-03-15T10:00:00Z", "success", "timeout", str(uuid.uuid4()), "-1"]),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
EVENT_KEYS = ["eventId", "orgId", "modelId", "occurredAt", "status", "latencyMs", "inputTokens",
              "outputTokens", "costEstimateCents", "actorId", "clientId", "errorCode", "metadata",
              "event_id", "timeRange", "start", "end", "kind", "models", "tz", "granularity"]


def _dump(value: Any) -> bytes:
    return json.dumps(value, default=str).encode()


@st.composite
def bodies(draw: st.DrawFn, org: str) -> bytes:
    """Raw bytes, arbitrary JSON, or event/export-shaped objects with hostile values."""
    kind = draw(st.sampled_from(["bytes", "json", "shaped", "batch"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return _dump(draw(JSON_VALUES))
    shaped = draw(st.dictionaries(st.sampled_from(EVENT_KEYS), JSON_VALUES, max_size=10))
    shaped.setdefault("orgId", org)
    if draw(st.booleans()):
        shaped["timeRange"] = {"start": draw(VALUES), "end": draw(VALUES)}
    if kind == "batch":
        return _dump({"events": [shaped, draw(JSON_VALUES)]})
    return _dump(shaped)


def _check(result: falcon.testing.Result) -> None:
    assert result.status_code < 500, result.text
    if result.status_code >= 400:
        assert result.headers["content-type"] == "application/problem+json", result.text
        body = result.json
        assert body["status"] == result.status_code
        for error in body.get("errors", []):
            assert set(error) == {"field", "reason"}


@pytest.mark.parametrize("path", ["usage", "reliability", "exports", "freshness"])
@FUZZ
@given(query=query_strings())
def test_query_strings_never_cause_a_5xx(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    path: str, query: str,
) -> None:
    """Any raw query string on the org read endpoints is answered without a server error."""
    _check(client.simulate_get(f"{PREFIX}/orgs/{org_a}/{path}", query_string=query.lstrip("?"),
                               headers=admin_of_a))


@FUZZ
@given(query=query_strings())
def test_readyz_query_strings_never_cause_a_5xx(
    client: falcon.testing.TestClient, query: str
) -> None:
    """The public readiness probe tolerates any query string."""
    _check(client.simulate_get(f"{PREFIX}/status/readyz", query_string=query.lstrip("?")))


@pytest.mark.parametrize("path", ["events", "events/validate", "orgs/{org}/exports"])
@FUZZ
@given(data=st.data())
def test_bodies_never_cause_a_5xx(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    path: str, data: st.DataObject,
) -> None:
    """Any raw body posted to the write endpoints is answered without a server error."""
    body = data.draw(bodies(str(org_a)))
    headers = {**admin_of_a, "Content-Type": "application/json"}
    if data.draw(st.booleans()):
        headers["Idempotency-Key"] = data.draw(st.sampled_from(["k", "k2", "\u00e9", "x" * 300]))
    url = f"{PREFIX}/{path.format(org=org_a)}"
    _check(client.simulate_post(url, body=body, headers=headers))


def test_decimal_strategy_values_serialise() -> None:
    """Decimals in generated bodies serialise as JSON numbers-as-strings (sanity of the fuzz)."""
    assert _dump({"x": Decimal("1.5")}) == b'{"x": "1.5"}'
