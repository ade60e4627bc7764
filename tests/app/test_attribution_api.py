"""Attribution over the API (SPEC §12): groupBy=actor and tag:KEY, top=N with (other), clear
errors for unconfigured keys and bad combinations, the overflow metric."""

from __future__ import annotations

import uuid
from typing import Any

import attrs
import falcon.testing
import pytest

from analytics_app.bootstrap.ports import Ports
from analytics_app.observability import metrics
from analytics_core.attribution import AttributionSettings
from tests.app.conftest import PREFIX
from tests.wiring import app_for

WINDOW = {"start": "2024-03-14T00:00:00Z", "end": "2024-03-16T00:00:00Z", "granularity": "day"}


@pytest.fixture
def tagged(services: Ports) -> falcon.testing.TestClient:
    """The API with `team` as an attribution key and a cap of 2 values per day."""
    return falcon.testing.TestClient(app_for(attrs.evolve(
        services, attribution=AttributionSettings(("team",), value_cap=2))))


def _post(client: falcon.testing.TestClient, headers: dict[str, str],
          events: list[dict[str, Any]]) -> None:
    result = client.simulate_post(f"{PREFIX}/events", json={"events": events}, headers=headers)
    assert result.status_code == 202, result.text


def _usage(client: falcon.testing.TestClient, headers: dict[str, str], org: uuid.UUID,
           **params: str) -> falcon.testing.Result:
    return client.simulate_get(f"{PREFIX}/orgs/{org}/usage", headers=headers,
                               params={**WINDOW, **params})


def test_usage_by_team_and_actor_with_top_and_other(
    tagged: falcon.testing.TestClient, admin_of_a: dict[str, str], org_a: uuid.UUID,
    make_event: Any,
) -> None:
    """Each team value sums its events; past the cap of 2 a third team counts in (other)
    (and the overflow metric); top=1 keeps the largest and folds the rest, totals equal."""
    actor = str(uuid.uuid4())
    before = metrics.ATTRIBUTION_OVERFLOW._value.get()
    _post(tagged, admin_of_a, [
        make_event(org_a, metadata={"team": "search"}, costEstimateCents="5", actorId=actor),
        make_event(org_a, metadata={"team": "search"}, costEstimateCents="5", actorId=actor),
        make_event(org_a, metadata={"team": "ads"}, costEstimateCents="1"),
        make_event(org_a, metadata={"team": "zeta"}, costEstimateCents="2"),
        make_event(org_a, costEstimateCents="3"),
    ])
    assert metrics.ATTRIBUTION_OVERFLOW._value.get() - before == 1
    body = _usage(tagged, admin_of_a, org_a, groupBy="tag:team").json
    assert body["groupBy"] == "tag:team"
    by_team = {p["tagValue"]: (p["invocations"], p["costEstimateCentsExact"])
               for p in body["series"]}
    assert by_team == {"ads": (1, "1.0000"), "search": (2, "10.0000"),
                       "(other)": (1, "2.0000"), None: (1, "3.0000")}
    top = _usage(tagged, admin_of_a, org_a, groupBy="tag:team", top="1").json
    assert [(p.get("tagValue"), p.get("other", False), p["invocations"])
            for p in top["series"]] == [("search", False, 2), ("(other)", True, 3)]
    assert top["totals"] == body["totals"]
    actors = _usage(tagged, admin_of_a, org_a, groupBy="actor").json
    assert {p["actorId"]: p["invocations"] for p in actors["series"]} == {actor: 2, None: 3}


@pytest.mark.parametrize(("params", "field"), [
    ({"groupBy": "tag:unknown"}, "groupBy"),
    ({"groupBy": "team"}, "groupBy"),
    ({"groupBy": "tag:team", "clientId": "c"}, "clientId"),
    ({"groupBy": "none", "top": "3"}, "top"),
    ({"top": "0"}, "top"),
    ({"top": "101"}, "top"),
])
def test_bad_groupings_are_field_errors(
    tagged: falcon.testing.TestClient, admin_of_a: dict[str, str], org_a: uuid.UUID,
    params: dict[str, str], field: str,
) -> None:
    """An unconfigured tag, an unknown grouping, a client filter with a tag grouping and a bad
    top are 400s naming the field."""
    result = _usage(tagged, admin_of_a, org_a, **params)
    assert result.status_code == 400, result.text
    assert [e["field"] for e in result.json["errors"]] == [field]


def test_reliability_by_tag_has_latency_per_value(
    tagged: falcon.testing.TestClient, admin_of_a: dict[str, str], org_a: uuid.UUID,
    make_event: Any,
) -> None:
    """The attribution rollups keep sketches: p95 latency per team."""
    _post(tagged, admin_of_a, [make_event(org_a, metadata={"team": "search"}, latencyMs=100),
                               make_event(org_a, metadata={"team": "ads"}, latencyMs=9000,
                                          status="error", errorCode="E1")])
    result = tagged.simulate_get(f"{PREFIX}/orgs/{org_a}/reliability", headers=admin_of_a,
                                 params={**WINDOW, "groupBy": "tag:team"})
    assert result.status_code == 200, result.text
    by_team = {p["tagValue"]: (p["errors"], round(p["latencyMs"]["p95"]))
               for p in result.json["series"]}
    assert by_team["search"][0] == 0
    assert by_team["ads"][0] == 1
    assert abs(by_team["ads"][1] - 9000) <= 90
