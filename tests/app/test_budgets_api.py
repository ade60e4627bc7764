"""Budgets and alerts over the API (SPEC §13): org_admin manages an org's budgets, readers see
their status, alerts fire once per threshold and page newest first, bad bodies name each
field, and another org's identity gets a 403 that is audited."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import falcon.testing
from prometheus_client import REGISTRY

from analytics_app.bootstrap.ports import Ports
from analytics_app.bootstrap.use_cases import UseCases
from tests.app.conftest import NOW, PREFIX, HeaderFactory


def _reads(source: str) -> float:
    return REGISTRY.get_sample_value("analytics_budget_value_reads_total",
                                     {"source": source}) or 0.0


def _budgets(org: uuid.UUID) -> str:
    return f"{PREFIX}/orgs/{org}/budgets"


def _create(client: falcon.testing.TestClient, headers: dict[str, str], org: uuid.UUID,
            **body: Any) -> falcon.testing.Result:
    return client.simulate_post(_budgets(org), json={"name": "Daily spend", **body},
                                headers=headers)


def test_org_admin_creates_a_budget_that_readers_see_with_its_status(
    client: falcon.testing.TestClient, auth: HeaderFactory, admin_of_a: dict[str, str],
    org_a: uuid.UUID, make_event: Any, ingest: Any, audit: Any,
) -> None:
    """201 with Location; the list and the budget show value, percent, forecast, status."""
    ingest([make_event(org_a, costEstimateCents="6.25",
                       occurredAt=(NOW - timedelta(minutes=20)).isoformat())])
    created = _create(client, admin_of_a, org_a, amount="10", period="day",
                      measure="reportedCost", tz="Asia/Kathmandu")
    assert created.status_code == 201, created.text
    budget = created.json
    assert created.headers["location"] == f"{_budgets(org_a)}/{budget['budgetId']}"
    assert (budget["amount"], budget["unit"], budget["thresholds"], budget["forecast"]) == (
        "10.0000", "cents", [50, 80, 100], True)
    assert budget["scope"] == {"type": "org"}
    reader = auth(org_a, "analytics:usage:read")
    listed = client.simulate_get(_budgets(org_a), headers=reader)
    assert listed.status_code == 200, listed.text
    (view,) = listed.json["budgets"]
    assert view["current"]["value"] == "6.2500"
    assert view["current"]["percent"] == 62.5
    assert view["current"]["status"] in {"warning", "exceeded"}
    assert view["current"]["periodStart"].endswith("+05:45")
    assert view["freshness"]["status"] == "fresh"
    one = client.simulate_get(f"{_budgets(org_a)}/{budget['budgetId']}", headers=reader)
    assert one.json == view
    assert "budgets.create" in [e.action for e in audit(org_a)]


def test_alerts_fire_once_and_page_newest_first(
    client: falcon.testing.TestClient, admin_of_a: dict[str, str], org_a: uuid.UUID,
    make_event: Any, ingest: Any, services: Ports,
) -> None:
    """Crossing 50/80/100 % fires three alerts; another pass fires none; limit and cursor."""
    _create(client, admin_of_a, org_a, amount="2", period="month", measure="reportedCost",
            forecast=False)
    ingest([make_event(org_a, costEstimateCents="2.5",
                       occurredAt=(NOW - timedelta(minutes=30)).isoformat())])
    use_cases = UseCases(services)
    reads = {source: _reads(source) for source in ("kept", "full")}
    assert len(use_cases.evaluate_budgets().fired) == 3
    assert use_cases.evaluate_budgets().fired == ()
    # the first pass read every day, the second only what is not settled (the process's cache)
    assert {source: _reads(source) - n for source, n in reads.items()} == {"kept": 1, "full": 1}
    alerts = f"{PREFIX}/orgs/{org_a}/alerts"
    first = client.simulate_get(alerts, headers=admin_of_a, params={"limit": "2"})
    assert first.status_code == 200, first.text
    assert len(first.json["alerts"]) == 2
    rest = client.simulate_get(alerts, headers=admin_of_a,
                               params={"cursor": first.json["nextCursor"]})
    thresholds = [a["threshold"] for a in first.json["alerts"] + rest.json["alerts"]]
    assert sorted(thresholds) == [50, 80, 100]
    assert rest.json["nextCursor"] is None
    alert = rest.json["alerts"][0]
    assert (alert["value"], alert["amount"], alert["unit"], alert["late"]) == (
        "2.5000", "2.0000", "cents", False)
    bad = client.simulate_get(alerts, headers=admin_of_a, params={"cursor": "nope"})
    assert bad.status_code == 400
    assert bad.json["errors"][0]["field"] == "cursor"
    nameless = client.simulate_get(alerts, headers=admin_of_a, query_string="=534854")
    assert nameless.status_code == 400
    assert nameless.json["errors"][0]["field"] == "query"


def test_a_bad_budget_is_a_400_naming_each_field(
    client: falcon.testing.TestClient, admin_of_a: dict[str, str], org_a: uuid.UUID,
) -> None:
    """Every bad field is named; a tag key must be an attribution key; nothing is stored."""
    result = client.simulate_post(_budgets(org_a), headers=admin_of_a, json={
        "name": "", "amount": "1.5", "measure": "tokens", "period": "fortnight",
        "scope": {"type": "tag", "key": "nokey", "value": "x"}})
    assert result.status_code == 400
    fields = {e["field"] for e in result.json["errors"]}
    assert fields == {"name", "amount", "period", "scope.key"}
    listed = client.simulate_get(_budgets(org_a), headers=admin_of_a)
    assert listed.json["budgets"] == []


def test_patch_changes_the_amount_not_the_period_and_delete_keeps_alerts(
    client: falcon.testing.TestClient, admin_of_a: dict[str, str], org_a: uuid.UUID,
    make_event: Any, ingest: Any, services: Ports,
) -> None:
    """PATCH amount/thresholds; period is refused; DELETE 204, then 404; alerts remain."""
    budget = _create(client, admin_of_a, org_a, amount=100, measure="invocations").json
    path = f"{_budgets(org_a)}/{budget['budgetId']}"
    changed = client.simulate_patch(path, headers=admin_of_a,
                                    json={"amount": 1, "thresholds": [100]})
    assert changed.status_code == 200, changed.text
    assert (changed.json["amount"], changed.json["thresholds"]) == ("1", [100])
    refused = client.simulate_patch(path, headers=admin_of_a, json={"period": "day"})
    assert refused.status_code == 400
    assert refused.json["errors"][0]["field"] == "period"
    ingest([make_event(org_a, occurredAt=(NOW - timedelta(minutes=5)).isoformat())])
    assert len(UseCases(services).evaluate_budgets().fired) == 1
    assert client.simulate_delete(path, headers=admin_of_a).status_code == 204
    assert client.simulate_get(path, headers=admin_of_a).status_code == 404
    assert client.simulate_delete(path, headers=admin_of_a).status_code == 404
    alerts = client.simulate_get(f"{PREFIX}/orgs/{org_a}/alerts", headers=admin_of_a,
                                 params={"budgetId": budget["budgetId"]})
    assert [a["budgetName"] for a in alerts.json["alerts"]] == ["Daily spend"]


def test_other_orgs_and_readers_cannot_write_and_cross_org_reads_are_403(
    client: falcon.testing.TestClient, auth: HeaderFactory, admin_of_a: dict[str, str],
    org_a: uuid.UUID, org_b: uuid.UUID, audit: Any,
) -> None:
    """A reader cannot create; org B's admin can neither read nor write org A's budgets or
    alerts (403, audited); a platform admin can, audited as cross-org."""
    reader = auth(org_a, "analytics:usage:read")
    assert _create(client, reader, org_a, amount=1).status_code == 403
    budget = _create(client, admin_of_a, org_a, amount=1).json
    other = auth(org_b, "org_admin")
    path = f"{_budgets(org_a)}/{budget['budgetId']}"
    assert client.simulate_get(_budgets(org_a), headers=other).status_code == 403
    assert client.simulate_get(path, headers=other).status_code == 403
    assert client.simulate_patch(path, headers=other, json={"amount": 5}).status_code == 403
    assert client.simulate_delete(path, headers=other).status_code == 403
    assert client.simulate_get(f"{PREFIX}/orgs/{org_a}/alerts",
                               headers=other).status_code == 403
    assert _create(client, other, org_a, amount=1).status_code == 403
    denied = [e for e in audit(org_a) if e.outcome.value == "denied"]
    assert len(denied) == 7
    # org B's own id space does not contain org A's budget
    assert client.simulate_get(f"{_budgets(org_b)}/{budget['budgetId']}",
                               headers=other).status_code == 404
    admin = auth(None, "admin")
    assert client.simulate_get(path, headers=admin).status_code == 200
    assert any(e.cross_org and e.outcome.value == "allowed" for e in audit(org_a))
