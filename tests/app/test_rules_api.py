"""Reliability rules over the API (SPEC §13): org_admin creates a rule, readers of reliability
see its state and window, a spike fires it into the alerts list (source reliability), bad
bodies name each field, and other orgs get 403s."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import falcon.testing

from analytics_app.bootstrap.ports import Ports
from analytics_app.bootstrap.use_cases import UseCases
from tests.app.conftest import NOW, PREFIX, HeaderFactory


def _rules(org: uuid.UUID) -> str:
    return f"{PREFIX}/orgs/{org}/reliability-rules"


def test_a_spike_fires_a_rule_that_readers_see_in_its_state_and_the_alerts(
    client: falcon.testing.TestClient, auth: HeaderFactory, admin_of_a: dict[str, str],
    org_a: uuid.UUID, make_event: Any, ingest: Any, services: Ports,
) -> None:
    """3 errors in 20 calls reach a 10 % rule: firing, in the alerts list once."""
    created = client.simulate_post(_rules(org_a), headers=admin_of_a, json={
        "name": "5xx", "metric": "errorRate", "threshold": "10", "minVolume": 20,
        "windowMinutes": 30})
    assert created.status_code == 201, created.text
    rule = created.json
    assert (rule["threshold"], rule["resolveThreshold"], rule["unit"], rule["errorClass"]) == (
        "10.00", "8.00", "percent", "any")
    at = (NOW - timedelta(minutes=3)).isoformat()
    ingest([make_event(org_a, occurredAt=at, status="error" if i < 3 else "success",
                       **({"errorCode": "upstream_5xx"} if i < 3 else {}))
            for i in range(20)])
    use_cases = UseCases(services)
    (transition,) = use_cases.evaluate_budgets().transitions
    assert use_cases.evaluate_budgets().transitions == ()
    reader = auth(org_a, "analytics:reliability:read")
    view = client.simulate_get(f"{_rules(org_a)}/{rule['ruleId']}", headers=reader)
    assert view.status_code == 200, view.text
    assert view.json["state"] == "firing"
    assert view.json["current"]["value"] == "15.00"
    assert view.json["lastTransition"]["alertId"] == str(transition.transition_id)
    alerts = client.simulate_get(f"{PREFIX}/orgs/{org_a}/alerts", headers=admin_of_a,
                                 params={"ruleId": rule["ruleId"]}).json["alerts"]
    assert [(a["source"], a["state"], a["value"], a["number"]) for a in alerts] == [
        ("reliability", "firing", "15.00", 1)]
    listed = client.simulate_get(_rules(org_a), headers=reader)
    assert [r["ruleId"] for r in listed.json["rules"]] == [rule["ruleId"]]


def test_a_bad_rule_is_a_400_and_patch_keeps_the_metric(
    client: falcon.testing.TestClient, admin_of_a: dict[str, str], org_a: uuid.UUID,
) -> None:
    """Each bad field named; PATCH changes thresholds, refuses metric; DELETE 204 then 404."""
    bad = client.simulate_post(_rules(org_a), headers=admin_of_a, json={
        "name": "x", "metric": "errorRate", "threshold": "150", "windowMinutes": 7})
    assert bad.status_code == 400
    assert {e["field"] for e in bad.json["errors"]} == {"threshold", "windowMinutes"}
    rule = client.simulate_post(_rules(org_a), headers=admin_of_a, json={
        "name": "slow", "metric": "p95Latency", "threshold": 2000}).json
    path = f"{_rules(org_a)}/{rule['ruleId']}"
    changed = client.simulate_patch(path, headers=admin_of_a,
                                    json={"threshold": 3000, "resolveThreshold": 2500})
    assert (changed.json["threshold"], changed.json["resolveThreshold"]) == ("3000", "2500")
    refused = client.simulate_patch(path, headers=admin_of_a, json={"metric": "errorRate"})
    assert refused.status_code == 400
    assert client.simulate_delete(path, headers=admin_of_a).status_code == 204
    assert client.simulate_get(path, headers=admin_of_a).status_code == 404


def test_other_orgs_and_readers_cannot_manage_rules(
    client: falcon.testing.TestClient, auth: HeaderFactory, admin_of_a: dict[str, str],
    org_a: uuid.UUID, org_b: uuid.UUID, audit: Any,
) -> None:
    """A reliability reader cannot create; org B's admin gets 403 on every route (audited)."""
    body = {"name": "e", "metric": "errorRate", "threshold": 5}
    reader = auth(org_a, "analytics:reliability:read")
    assert client.simulate_post(_rules(org_a), headers=reader, json=body).status_code == 403
    rule = client.simulate_post(_rules(org_a), headers=admin_of_a, json=body).json
    other = auth(org_b, "org_admin")
    path = f"{_rules(org_a)}/{rule['ruleId']}"
    assert client.simulate_get(_rules(org_a), headers=other).status_code == 403
    assert client.simulate_get(path, headers=other).status_code == 403
    assert client.simulate_patch(path, headers=other, json={"threshold": 1}).status_code == 403
    assert client.simulate_delete(path, headers=other).status_code == 403
    assert len([e for e in audit(org_a) if e.outcome.value == "denied"]) == 5
    assert "rules.create" in [e.action for e in audit(org_a)]
