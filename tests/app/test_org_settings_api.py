"""GET and PUT /orgs/{orgId}/settings: defaults until set, validated zones, org_admin writes,
other orgs refused (and audited)."""

from __future__ import annotations

import uuid
from typing import Any

import falcon.testing
import pytest

from tests.app.conftest import PREFIX, HeaderFactory


def url(org: uuid.UUID) -> str:
    """The org's settings."""
    return f"{PREFIX}/orgs/{org}/settings"


def test_defaults_then_a_stored_zone(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    auth: HeaderFactory,
) -> None:
    """UTC with updatedAt null before; the zone, who and when after; readers see it."""
    before = client.simulate_get(url(org_a), headers=admin_of_a)
    assert before.json == {"orgId": str(org_a), "timezone": "UTC", "updatedAt": None,
                           "updatedBy": None}
    put = client.simulate_put(url(org_a), json={"timezone": "Asia/Kolkata"}, headers=admin_of_a)
    assert put.status_code == 200, put.text
    assert put.json["timezone"] == "Asia/Kolkata"
    assert put.json["updatedBy"] == "user-1"
    reader = auth(org_a, "analytics:usage:read")
    assert client.simulate_get(url(org_a), headers=reader).json["timezone"] == "Asia/Kolkata"


@pytest.mark.parametrize(
    ("body", "field"),
    [({"timezone": "Mars/Olympus"}, "timezone"), ({}, "timezone"),
     ({"timezone": "UTC", "currency": "EUR"}, "currency"), ({"timezone": 5}, "timezone")],
)
def test_bad_bodies_are_400_naming_the_field(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    problem: Any, body: Any, field: str,
) -> None:
    """Each bad field is named; nothing is stored."""
    errors = problem(client.simulate_put(url(org_a), json=body, headers=admin_of_a), 400)
    assert field in {e["field"] for e in errors["errors"]}
    assert client.simulate_get(url(org_a), headers=admin_of_a).json["updatedAt"] is None


def test_only_the_orgs_admin_writes(
    client: falcon.testing.TestClient, org_a: uuid.UUID, org_b: uuid.UUID,
    auth: HeaderFactory, problem: Any, audit: Any,
) -> None:
    """A reader and another org's admin get 403 (audited)."""
    body = {"timezone": "Europe/Berlin"}
    problem(client.simulate_put(url(org_a), json=body,
                                headers=auth(org_a, "analytics:usage:read")), 403)
    problem(client.simulate_put(url(org_a), json=body, headers=auth(org_b, "org_admin")), 403)
    problem(client.simulate_get(url(org_a), headers=auth(org_b, "org_admin")), 403)
    assert sum(e.outcome.value == "denied" for e in audit(org_a)) == 3
