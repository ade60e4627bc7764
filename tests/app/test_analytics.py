"""Usage, reliability and freshness endpoints (SPEC §4, §5)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import falcon.testing
import pytest

PREFIX = "/analytics/v1"
DAY = "start=2024-03-15T00:00:00Z&end=2024-03-16T00:00:00Z"


def _get(client: falcon.testing.TestClient, org: uuid.UUID, what: str, query: str,
         headers: dict[str, str]) -> Any:
    return client.simulate_get(f"{PREFIX}/orgs/{org}/{what}", query_string=query,
                               headers=headers)


@pytest.fixture
def two_models(org_a: uuid.UUID, make_event: Any, ingest: Any) -> tuple[uuid.UUID, uuid.UUID]:
    """Org A: model 1 has 3 calls costing 0.00015 + 0.1 + 0.2 cents; model 2 one timeout."""
    m1, m2 = uuid.uuid4(), uuid.uuid4()
    ingest([
        make_event(org_a, m1, occurredAt="2024-03-15T09:05:00Z", costEstimateCents="0.00015",
                   clientId="app-1"),
        make_event(org_a, m1, occurredAt="2024-03-15T09:50:00Z", costEstimateCents=0.1,
                   latencyMs=300, clientId="app-2"),
        make_event(org_a, m1, occurredAt="2024-03-15T10:10:00Z", costEstimateCents=0.2,
                   latencyMs=200),
        make_event(org_a, m2, occurredAt="2024-03-15T10:20:00Z", status="timeout",
                   errorCode="UPSTREAM_TIMEOUT", latencyMs=30000, costEstimateCents=0),
    ])
    return m1, m2


def test_usage_totals_equal_the_sum_of_the_series(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    two_models: Any,
) -> None:
    """Totals come from the same data as the series and equal their exact sum."""
    result = _get(client, org_a, "usage", DAY + "&granularity=hourly", admin_of_a)
    assert result.status_code == 200
    body = result.json
    assert (body["orgId"], body["granularity"], body["tz"]) == (str(org_a), "hour", "UTC")
    series, totals = body["series"], body["totals"]
    assert totals["invocations"] == sum(p["invocations"] for p in series) == 4
    assert totals["inputTokens"] == sum(p["inputTokens"] for p in series)
    assert Decimal(totals["costEstimateCentsExact"]) == sum(
        Decimal(p["costEstimateCentsExact"]) for p in series
    )
    assert totals["costEstimateCentsExact"] == "0.3002"
    assert totals["costEstimateCents"] == 0
    assert {"status", "completeThrough", "lagSeconds"} == set(body["freshness"])


def test_usage_integer_cost_total_is_the_sum_of_the_rounded_points(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    make_event: Any, ingest: Any,
) -> None:
    """Two hours of 0.6 cent each: points round to 1, and the integer total is 2, not round(1.2)."""
    model = uuid.uuid4()
    ingest([
        make_event(org_a, model, occurredAt="2024-03-15T09:05:00Z", costEstimateCents="0.6"),
        make_event(org_a, model, occurredAt="2024-03-15T10:05:00Z", costEstimateCents="0.6"),
    ])
    body = _get(client, org_a, "usage", DAY + "&granularity=hour", admin_of_a).json
    assert [p["costEstimateCents"] for p in body["series"]] == [1, 1]
    assert body["totals"]["costEstimateCents"] == 2
    assert body["totals"]["costEstimateCentsExact"] == "1.2000"


def test_usage_points_render_in_the_requested_zone(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    two_models: Any,
) -> None:
    """Daily points in Asia/Kolkata start at local midnight with a +05:30 offset."""
    result = _get(client, org_a, "usage", DAY + "&granularity=daily&tz=Asia/Kolkata",
                  admin_of_a)
    assert result.status_code == 200
    starts = {p["bucketStart"] for p in result.json["series"]}
    assert starts == {"2024-03-15T00:00:00+05:30"}


def test_usage_group_by_client_and_none(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    two_models: Any,
) -> None:
    """groupBy=client keys points by clientId (null for none); groupBy=none has no key."""
    by_client = _get(client, org_a, "usage", DAY + "&groupBy=client", admin_of_a).json
    assert {p["clientId"] for p in by_client["series"]} == {"app-1", "app-2", None}
    single = _get(client, org_a, "usage", DAY + "&groupBy=none", admin_of_a).json
    [point] = single["series"]
    assert "modelId" not in point
    assert "clientId" not in point
    assert point["invocations"] == 4


def test_usage_filters_by_model(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    two_models: tuple[uuid.UUID, uuid.UUID],
) -> None:
    """modelId narrows the series to that model."""
    _, m2 = two_models
    body = _get(client, org_a, "usage", f"{DAY}&modelId={m2}", admin_of_a).json
    assert {p["modelId"] for p in body["series"]} == {str(m2)}
    assert body["totals"]["invocations"] == 1


def test_reliability_reports_classes_rates_latency_and_top_codes(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    two_models: Any,
) -> None:
    """Totals carry error classes, errorRate, p50/p95/p99 and the top error codes."""
    result = _get(client, org_a, "reliability", DAY + "&percentile=p99", admin_of_a)
    assert result.status_code == 200
    body = result.json
    totals = body["totals"]
    assert body["percentile"] == "p99"
    assert (totals["invocations"], totals["timeouts"], totals["errors"]) == (4, 1, 0)
    assert totals["errorRate"] == 0.25
    assert totals["topErrorCodes"] == [{"code": "UPSTREAM_TIMEOUT", "count": 1}]
    latency = totals["latencyMs"]
    assert latency["highlighted"] == latency["p99"]
    assert abs(latency["p99"] - 30000) <= 300
    assert abs(latency["p50"] - 200) <= 2


def test_reliability_series_sum_to_totals(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    two_models: Any,
) -> None:
    """Counts of the hourly series add up to the totals."""
    body = _get(client, org_a, "reliability", DAY + "&granularity=hour", admin_of_a).json
    for field in ("invocations", "errors", "timeouts", "throttled", "success"):
        assert body["totals"][field] == sum(p[field] for p in body["series"])


def test_empty_range_has_empty_series_and_null_latency(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str]
) -> None:
    """No data: no points, zero totals, null percentiles; nothing fabricated."""
    body = _get(client, org_a, "reliability", DAY, admin_of_a).json
    assert body["series"] == []
    assert body["totals"]["invocations"] == 0
    assert body["totals"]["latencyMs"]["p50"] is None


def test_freshness_lists_models_and_nulls_for_an_unknown_model(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    two_models: tuple[uuid.UUID, uuid.UUID],
) -> None:
    """Known models have lastEventAt; a model without data gets nulls and the pipeline status."""
    m1, _ = two_models
    body = _get(client, org_a, "freshness", "", admin_of_a).json
    assert body["status"] == "fresh"
    assert {e["modelId"] for e in body["entries"]} == {str(m) for m in two_models}
    unknown = uuid.uuid4()
    listed = _get(client, org_a, "freshness", f"modelId={m1}&modelId={unknown}", admin_of_a).json
    entries = {e["modelId"]: e for e in listed["entries"]}
    assert entries[str(m1)]["lastEventAt"] == "2024-03-15T10:10:00Z"
    assert entries[str(unknown)]["lastEventAt"] is None
    assert entries[str(unknown)]["lastRollupAt"] is None
    assert entries[str(unknown)]["status"] == "fresh"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("end=2024-03-16T00:00:00Z", "start"),
        ("start=2024-03-15T00:00:00Z", "end"),
        ("start=yesterday&end=2024-03-16T00:00:00Z", "start"),
        ("start=2024-03-15T00:00:00&end=2024-03-16T00:00:00Z", "start"),
        ("start=2024-03-16T00:00:00Z&end=2024-03-15T00:00:00Z", "end"),
        ("start=2023-01-01T00:00:00Z&end=2024-03-15T00:00:00Z", "end"),
        (DAY + "&granularity=weekly", "granularity"),
        (DAY + "&tz=Mars/Olympus", "tz"),
        (DAY + "&groupBy=org", "groupBy"),
        (DAY + "&modelId=not-a-uuid", "modelId"),
        (DAY + "&granularity=day&granularity=hour", "granularity"),
    ],
)
def test_bad_query_parameters_are_400_naming_the_field(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    problem: Any, query: str, field: str,
) -> None:
    """Missing, malformed, inverted or over-long parameters name the offending field."""
    body = problem(_get(client, org_a, "usage", query, admin_of_a), 400)
    assert field in {e["field"] for e in body["errors"]}


def test_granularity_aliases_and_unencoded_offsets_are_accepted(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str]
) -> None:
    """hourly/daily are aliases; a literal '+05:30' (decoded as a space) still parses."""
    query = "start=2024-03-15T00:00:00+05:30&end=2024-03-16T00:00:00+05:30&granularity=daily"
    result = _get(client, org_a, "usage", query, admin_of_a)
    assert result.status_code == 200
    assert result.json["granularity"] == "day"


def test_reliability_rejects_unknown_percentile(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    problem: Any,
) -> None:
    """percentile must be p50, p95 or p99."""
    body = problem(_get(client, org_a, "reliability", DAY + "&percentile=p90", admin_of_a), 400)
    assert body["errors"][0]["field"] == "percentile"


def test_bad_org_uuid_in_path_is_400_naming_org_id(
    client: falcon.testing.TestClient, admin_of_a: dict[str, str], problem: Any
) -> None:
    """A path org id that is not a UUID is a 400 naming orgId."""
    result = client.simulate_get(f"{PREFIX}/orgs/acme/usage", query_string=DAY,
                                 headers=admin_of_a)
    assert problem(result, 400)["errors"] == [{"field": "orgId", "reason": "must be a UUID"}]
