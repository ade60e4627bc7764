"""Windows at the calendar's edges (SPEC §11): 2xx or 4xx problem+json, never a 5xx."""

from __future__ import annotations

import uuid
import zoneinfo
from datetime import datetime, timedelta

import falcon.testing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_app.bootstrap.ports import Ports
from analytics_core.usecases.export_runner import ExportRunner

PREFIX = "/analytics/v1"
EDGES = [
    "0002-01-01T00:00:00Z", "9998-12-31T00:00:00Z", "9999-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "0001-01-02T00:00:00Z",
    "0001-01-01T23:59:59-12:00", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-12:00",
    "9999-12-30T00:00:00Z", "9999-12-31T00:00:00+14:00", "2024-03-15T00:00:00Z",
]
ZONES = sorted(zoneinfo.available_timezones())


def _plus_days(start: str, days: int) -> str:
    """`start` plus whole days, capped at datetime's last instant."""
    try:
        return (datetime.fromisoformat(start) + timedelta(days=days)).isoformat()
    except OverflowError:
        return "9999-12-31T23:59:59.999999+00:00"


def _assert_no_5xx(result: falcon.testing.Result) -> None:
    assert result.status_code < 500, result.text
    if result.status_code >= 400:
        assert result.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["usage", "reliability"])
@pytest.mark.parametrize(("start", "end", "tz"), [
    ("0001-01-01T00:00:00Z", "0001-01-03T00:00:00Z", "UTC"),
    ("0001-01-01T00:00:00Z", "0001-01-03T00:00:00Z", "America/New_York"),
    ("9999-12-30T00:00:00Z", "9999-12-31T23:59:59Z", "Pacific/Kiritimati"),
    ("9999-12-30T00:00:00Z", "9999-12-31T23:59:59Z", "UTC"),
    ("9999-12-01T00:00:00Z", "9999-12-31T00:00:00Z", "Etc/GMT+12"),
    ("0002-01-01T00:00:00Z", "0002-01-03T00:00:00Z", "Pacific/Kiritimati"),
    ("9998-12-01T00:00:00Z", "9999-01-01T00:00:00Z", "Etc/GMT+12"),
])
def test_usage_and_reliability_at_the_calendar_edges_never_answer_5xx(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    path: str, start: str, end: str, tz: str,
) -> None:
    """Year 1 and year 9999 windows in any zone are served or refused with a 400."""
    for granularity in ("hour", "day"):
        result = client.simulate_get(
            f"{PREFIX}/orgs/{org_a}/{path}", headers=admin_of_a,
            params={"start": start, "end": end, "tz": tz, "granularity": granularity})
        _assert_no_5xx(result)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.sampled_from(EDGES), days=st.sampled_from([1, 2, 31]),
       tz=st.sampled_from(ZONES), path=st.sampled_from(["usage", "reliability"]),
       granularity=st.sampled_from(["hour", "day"]))
def test_any_zone_with_edge_instants_never_answers_5xx(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    start: str, days: int, tz: str, path: str, granularity: str,
) -> None:
    """Every IANA zone combined with instants near year 1 and year 9999."""
    end = _plus_days(start, days)
    result = client.simulate_get(
        f"{PREFIX}/orgs/{org_a}/{path}", headers=admin_of_a,
        params={"start": start, "end": end, "tz": tz, "granularity": granularity})
    _assert_no_5xx(result)


@pytest.mark.parametrize(("start", "end", "tz"), [
    ("0001-01-01T00:00:00Z", "0001-01-03T00:00:00Z", "UTC"),
    ("0001-01-01T00:00:00Z", "0001-01-03T00:00:00Z", "America/New_York"),
    ("9999-12-30T00:00:00Z", "9999-12-31T23:59:59Z", "Pacific/Kiritimati"),
    ("9999-12-01T00:00:00Z", "9999-12-31T00:00:00Z", "UTC"),
    ("0002-01-01T00:00:00Z", "0002-01-03T00:00:00Z", "Pacific/Kiritimati"),
    ("0002-01-01T00:00:00Z", "0002-01-03T00:00:00Z", "Etc/GMT+12"),
    ("9998-12-01T00:00:00Z", "9999-01-01T00:00:00Z", "Pacific/Kiritimati"),
    ("9998-12-01T00:00:00Z", "9999-01-01T00:00:00Z", "Etc/GMT+12"),
])
@pytest.mark.parametrize("granularity", ["hourly", "daily", "monthly"])
def test_export_at_the_calendar_edges_is_refused_or_succeeds(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    services: Ports, start: str, end: str, tz: str, granularity: str,
) -> None:
    """An export window at the calendar's edges is a 400 naming the field, or a job that
    succeeds; never an accepted job that can only fail."""
    result = client.simulate_post(
        f"{PREFIX}/orgs/{org_a}/exports", headers=admin_of_a,
        json={"timeRange": {"start": start, "end": end}, "granularity": granularity, "tz": tz})
    _assert_no_5xx(result)
    if result.status_code == 202:
        ExportRunner("edge-worker", services.uow_factory, services.objects, services.clock,
                     services.progress, services.exports).run_next()
        job = client.simulate_get(f"{PREFIX}/orgs/{org_a}/exports/{result.json['jobId']}",
                                  headers=admin_of_a).json
        assert job["status"] == "succeeded", job
    else:
        assert result.status_code == 400
        assert result.json["errors"][0]["field"].startswith("timeRange")


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.sampled_from(EDGES), days=st.sampled_from([1, 3]), tz=st.sampled_from(ZONES),
       granularity=st.sampled_from(["hourly", "daily", "monthly"]))
def test_any_zone_export_at_the_edges_is_refused_or_succeeds(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    services: Ports, start: str, days: int, tz: str, granularity: str,
) -> None:
    """Every IANA zone: an accepted export near year 2 or 9998 runs to success."""
    end = _plus_days(start, days)
    result = client.simulate_post(
        f"{PREFIX}/orgs/{org_a}/exports", headers=admin_of_a,
        json={"timeRange": {"start": start, "end": end}, "granularity": granularity, "tz": tz})
    _assert_no_5xx(result)
    if result.status_code == 202:
        job = ExportRunner("edge-worker", services.uow_factory, services.objects, services.clock,
                           services.progress, services.exports).run_next()
        assert job is not None
        assert job.status.value == "succeeded", job
