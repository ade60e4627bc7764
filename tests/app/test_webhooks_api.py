"""Webhook endpoints over the API (SPEC §13): org_admin registers an endpoint and sees its
secret once; internal addresses are refused naming url; rotation answers the new secret; the
delivery log shows each delivery with its attempts and can redeliver; nobody else gets in."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import falcon.testing
import pytest

from analytics_app.bootstrap.ports import Ports
from analytics_app.bootstrap.use_cases import UseCases
from tests.app.conftest import NOW, PREFIX, HeaderFactory


def _hooks(org: uuid.UUID) -> str:
    return f"{PREFIX}/orgs/{org}/webhooks"


def test_an_internal_url_is_refused_naming_url(
    client: falcon.testing.TestClient, admin_of_a: dict[str, str], org_a: uuid.UUID,
) -> None:
    """Loopback, link-local (cloud metadata) and plain http are 400s naming url."""
    for url in ("https://127.0.0.1/hook", "https://169.254.169.254/latest",
                "http://hooks.example.com/", "https://u:p@hooks.example.com/"):
        result = client.simulate_post(_hooks(org_a), headers=admin_of_a, json={"url": url})
        assert result.status_code == 400, (url, result.text)
        assert result.json["errors"][0]["field"] == "url"
    assert client.simulate_get(_hooks(org_a), headers=admin_of_a).json["webhooks"] == []


@pytest.fixture
def private_ok(services: Ports, monkeypatch: pytest.MonkeyPatch) -> Ports:
    """The service with ANALYTICS_WEBHOOK_ALLOW_PRIVATE (as in tests, which receive locally)."""
    from analytics_core.usecases.webhooks import WebhookPolicy  # noqa: PLC0415

    object.__setattr__(services, "webhook_policy", WebhookPolicy(allow_private=True))
    return services


def test_the_secret_is_shown_once_and_rotation_shows_the_new_one(
    client: falcon.testing.TestClient, admin_of_a: dict[str, str], org_a: uuid.UUID,
    private_ok: Ports, audit: Any,
) -> None:
    """201 with secret; list and get never show it; rotate answers a new secret and when the
    old one stops signing; changes are audited with the host only."""
    created = client.simulate_post(_hooks(org_a), headers=admin_of_a, json={
        "url": "http://127.0.0.1:9/in?token=abc", "description": "pager"})
    assert created.status_code == 201, created.text
    secret = created.json["secret"]
    assert secret.startswith("whsec_")
    assert created.headers["cache-control"] == "no-store"
    hook = f"{_hooks(org_a)}/{created.json['webhookId']}"
    assert created.headers["location"] == hook
    listed = client.simulate_get(_hooks(org_a), headers=admin_of_a)
    assert secret not in listed.text
    assert "secret" not in listed.json["webhooks"][0]
    assert secret not in client.simulate_get(hook, headers=admin_of_a).text
    rotated = client.simulate_post(f"{hook}/rotate", headers=admin_of_a)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json["secret"] not in (secret, None)
    assert rotated.json["previousSecretValidUntil"] == (NOW + timedelta(hours=24)).isoformat(
        ).replace("+00:00", "Z")
    paused = client.simulate_patch(hook, headers=admin_of_a, json={"enabled": False})
    assert paused.json["enabled"] is False
    entries = [e for e in audit(org_a) if e.action.startswith("webhooks.")]
    assert [e.action for e in entries] == ["webhooks.update", "webhooks.rotate",
                                           "webhooks.create"]
    assert all("token" not in e.reason for e in entries)
    assert client.simulate_delete(hook, headers=admin_of_a).status_code == 204
    assert client.simulate_get(hook, headers=admin_of_a).status_code == 404


def test_the_delivery_log_shows_attempts_and_redelivers(
    client: falcon.testing.TestClient, admin_of_a: dict[str, str], org_a: uuid.UUID,
    private_ok: Ports, make_event: Any, ingest: Any,
) -> None:
    """A fired alert becomes one delivery; an attempt to a closed port fails and is logged;
    redeliver makes it due again with the same messageId."""
    hook = client.simulate_post(_hooks(org_a), headers=admin_of_a,
                                json={"url": "http://127.0.0.1:9/in"}).json
    client.simulate_post(f"{PREFIX}/orgs/{org_a}/budgets", headers=admin_of_a, json={
        "name": "calls", "amount": 1, "measure": "invocations", "thresholds": [100],
        "forecast": False})
    ingest([make_event(org_a, occurredAt=(NOW - timedelta(minutes=5)).isoformat())])
    use_cases = UseCases(private_ok)
    assert len(use_cases.evaluate_budgets().fired) == 1
    done = use_cases.deliver_webhooks()
    assert (done.attempted, done.succeeded) == (1, 0)
    log = client.simulate_get(f"{_hooks(org_a)}/{hook['webhookId']}/deliveries",
                              headers=admin_of_a)
    assert log.status_code == 200, log.text
    (delivery,) = log.json["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("pending", 1)
    assert delivery["payload"]["data"]["budget"]["name"] == "calls"
    (attempt,) = delivery["attemptLog"]
    assert attempt["outcome"] == "failed"
    assert attempt["error"]
    again = client.simulate_post(
        f"{_hooks(org_a)}/{hook['webhookId']}/deliveries/{delivery['deliveryId']}/redeliver",
        headers=admin_of_a)
    assert again.status_code == 202, again.text
    assert again.json["messageId"] == delivery["messageId"]
    assert again.json["nextAttemptAt"] is not None
    missing = client.simulate_post(
        f"{_hooks(org_a)}/{hook['webhookId']}/deliveries/{uuid.uuid4()}/redeliver",
        headers=admin_of_a)
    assert missing.status_code == 404


def test_only_the_orgs_admin_manages_its_webhooks(
    client: falcon.testing.TestClient, auth: HeaderFactory, admin_of_a: dict[str, str],
    org_a: uuid.UUID, org_b: uuid.UUID, private_ok: Ports, audit: Any,
) -> None:
    """A reader of org A and org B's admin get 403 on every webhook route (audited)."""
    hook = client.simulate_post(_hooks(org_a), headers=admin_of_a,
                                json={"url": "http://127.0.0.1:9/in"}).json
    path = f"{_hooks(org_a)}/{hook['webhookId']}"
    for headers in (auth(org_a, "analytics:usage:read"), auth(org_b, "org_admin")):
        assert client.simulate_get(_hooks(org_a), headers=headers).status_code == 403
        assert client.simulate_post(_hooks(org_a), headers=headers,
                                    json={"url": "http://127.0.0.1:9/"}).status_code == 403
        assert client.simulate_get(path, headers=headers).status_code == 403
        assert client.simulate_post(f"{path}/rotate", headers=headers).status_code == 403
        assert client.simulate_get(f"{path}/deliveries", headers=headers).status_code == 403
    denied = [e for e in audit(org_a) if e.outcome.value == "denied"]
    assert len(denied) == 10
