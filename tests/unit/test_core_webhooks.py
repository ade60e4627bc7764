"""Webhook rules (SPEC §13): endpoint URLs, the retry schedule with jitter inside 24 hours,
what an attempt leaves a delivery in, rotation overlap, the payload, the outbox."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics_adapters.memory.ids import SequentialIds
from analytics_core.budgets import (
    Alert,
    AlertKind,
    Budget,
    BudgetPeriod,
    BudgetScope,
    Measure,
    ScopeType,
)
from analytics_core.errors import ValidationFailed
from analytics_core.webhooks import (
    MAX_RETRY_DELAY,
    RETRY_WINDOW,
    ROTATION_OVERLAP,
    Delivery,
    DeliveryStatus,
    SendResult,
    WebhookEndpoint,
    after_attempt,
    alert_payload,
    deliveries_for,
    new_secret,
    read_endpoint,
    redelivered,
    retry_delay,
    url_errors,
)

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)


@pytest.mark.parametrize(("url", "allow_http", "reason"), [
    ("https://hooks.example.com/in?x=1", False, None),
    ("http://hooks.example.com/in", False, "must use https"),
    ("http://127.0.0.1:9000/in", True, None),
    ("ftp://hooks.example.com/", True, "must use https or http"),
    ("https://user:pw@hooks.example.com/", False, "must not carry credentials"),
    ("https://hooks.example.com/#frag", False, "must not have a fragment"),
    ("https:///nohost", False, "must name a host"),
    ("https://hooks.example.com/a b", False, "spaces"),
    ("https://hooks.example.com:99999/", False, "not a valid URL"),
    ("https://" + "a" * 2050, False, "at most 2048"),
    (42, False, "at most 2048"),
])
def test_endpoint_urls(url: object, allow_http: bool, reason: str | None) -> None:
    """https only (http where private addresses are allowed), a host, no credentials."""
    errors = url_errors(url, allow_http=allow_http)
    if reason is None:
        assert errors == []
    else:
        (error,) = errors
        assert error.field == "url"
        assert reason in error.reason


def test_a_create_body_names_every_bad_field() -> None:
    """Unknown fields, a bad URL, description and enabled are named together."""
    with pytest.raises(ValidationFailed) as info:
        read_endpoint({"url": "http://x.example/", "description": 5, "enabled": "yes",
                       "secret": "mine"}, allow_http=False)
    assert {e.field for e in info.value.errors} == {"secret", "url", "description", "enabled"}
    assert read_endpoint({"url": "https://x.example/"}, allow_http=False) == {
        "url": "https://x.example/", "description": "", "enabled": True}
    assert read_endpoint({"enabled": False}, allow_http=False, partial=True) == {
        "enabled": False}


@given(st.integers(1, 60), st.floats(0, 1, exclude_max=True))
def test_retry_delays_double_from_5_seconds_up_to_an_hour_with_jitter(
        failed: int, jitter: float) -> None:
    """Between half and all of min(5 s * 2^(n-1), 1 h)."""
    base = min(timedelta(seconds=5) * 2 ** min(failed - 1, 20), MAX_RETRY_DELAY)
    delay = retry_delay(failed, lambda: jitter)
    assert base / 2 <= delay <= base


def _endpoint(**overrides: object) -> WebhookEndpoint:
    fields: dict[str, object] = {
        "endpoint_id": uuid.uuid4(), "org_id": uuid.uuid4(), "url": "https://h.example/",
        "description": "", "secret": "whsec_new", "previous_secret": None,
        "previous_until": None, "enabled": True, "created_at": NOW, "created_by": "k",
        "updated_at": NOW}
    fields.update(overrides)
    return WebhookEndpoint(**fields)  # type: ignore[arg-type]


def test_the_previous_secret_signs_only_during_its_overlap() -> None:
    """Both secrets until previous_until, then only the new one."""
    rotated = _endpoint(previous_secret="whsec_old", previous_until=NOW + ROTATION_OVERLAP)
    assert rotated.signing_secrets(NOW) == ("whsec_new", "whsec_old")
    assert rotated.signing_secrets(NOW + ROTATION_OVERLAP) == ("whsec_new",)


def test_secrets_are_fresh_standard_webhooks_secrets() -> None:
    """whsec_ and base64 of 32 bytes; never the same twice."""
    ids = SequentialIds()
    one, two = new_secret(ids), new_secret(ids)
    assert one.startswith("whsec_")
    assert len(one) == len("whsec_") + 44
    assert one != two


def _alert(**overrides: object) -> tuple[Alert, Budget]:
    org, budget_id = uuid.uuid4(), uuid.uuid4()
    budget = Budget(budget_id, org, "Search «EU»", BudgetScope(ScopeType.TAG, "search", "team"),
                    Measure.CATALOG_COST, BudgetPeriod.MONTH, "Europe/Berlin", 1_000_000,
                    (50, 100), True, NOW, "k", NOW)
    fields: dict[str, object] = {
        "alert_id": uuid.uuid4(), "org_id": org, "budget_id": budget_id,
        "budget_name": budget.name, "measure": budget.measure, "kind": AlertKind.THRESHOLD,
        "threshold": 50, "period_start": NOW - timedelta(days=2), "period_end": NOW +
        timedelta(days=28), "value": 512_345, "amount": 1_000_000, "forecast_value": None,
        "fired_at": NOW, "late": False, "complete_through": NOW - timedelta(seconds=20)}
    fields.update(overrides)
    return Alert(**fields), budget  # type: ignore[arg-type]


def test_the_payload_names_the_budget_value_amount_freshness_and_links() -> None:
    """Money as exact cents; links to the budget and its alerts."""
    alert, budget = _alert()
    body = json.loads(alert_payload(alert, budget, alert.alert_id))
    assert (body["type"], body["id"]) == ("budget.alert", str(alert.alert_id))
    data = body["data"]
    assert data["budget"] == {"budgetId": str(budget.budget_id), "name": "Search «EU»",
                              "measure": "catalogCost", "unit": "cents", "period": "month",
                              "tz": "Europe/Berlin",
                              "scope": {"type": "tag", "key": "team", "value": "search"}}
    assert (data["value"], data["amount"], data["threshold"]) == ("51.2345", "100.0000", 50)
    assert data["freshness"] == {"completeThrough": "2026-12-03T11:59:40Z"}
    assert data["links"]["budget"] == (f"/analytics/v1/orgs/{alert.org_id}/budgets/"
                                       f"{budget.budget_id}")


def test_one_delivery_per_enabled_endpoint() -> None:
    """Disabled endpoints get none; each is due now with a 24-hour window."""
    alert, budget = _alert()
    on, off = _endpoint(org_id=alert.org_id), _endpoint(org_id=alert.org_id, enabled=False)
    (delivery,) = deliveries_for(alert, budget, [on, off], SequentialIds(), NOW)
    assert (delivery.endpoint_id, delivery.status, delivery.next_attempt_at) == (
        on.endpoint_id, DeliveryStatus.PENDING, NOW)
    assert delivery.deadline == NOW + RETRY_WINDOW
    assert delivery.message_id == f"msg_{delivery.delivery_id.hex}"


def _delivery() -> Delivery:
    alert, budget = _alert()
    (d,) = deliveries_for(alert, budget, [_endpoint(org_id=alert.org_id)], SequentialIds(),
                          NOW)
    return d


def test_an_attempt_succeeds_retries_or_gives_up_at_the_deadline() -> None:
    """2xx succeeds; a failure retries after the backoff; past the deadline it fails."""
    d = _delivery()
    ok = after_attempt(d, SendResult(204, None, 0.1), NOW, lambda: 0.0)
    assert (ok.status, ok.attempts, ok.completed_at) == (DeliveryStatus.SUCCEEDED, 1, NOW)
    retry = after_attempt(d, SendResult(503, "HTTP 503", 0.1), NOW, lambda: 0.0)
    assert (retry.status, retry.next_attempt_at, retry.last_status_code) == (
        DeliveryStatus.PENDING, NOW + timedelta(seconds=2.5), 503)
    late = NOW + RETRY_WINDOW - timedelta(seconds=1)
    gone = after_attempt(attrs.evolve(d, attempts=30), SendResult(None, "timed out", 10), late,
                         lambda: 0.0)
    assert (gone.status, gone.completed_at) == (DeliveryStatus.FAILED, late)
    again = redelivered(gone, late)
    assert (again.status, again.next_attempt_at, again.deadline) == (
        DeliveryStatus.PENDING, late, late + RETRY_WINDOW)
