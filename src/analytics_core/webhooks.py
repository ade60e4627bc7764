"""Webhook endpoints and the deliveries of alerts to them (SPEC §13).

An org registers endpoints (an https URL, or http where private addresses are allowed); each
has a signing secret (`whsec_` + base64 of 32 random bytes) shown once, at creation and at
rotation. Rotation keeps the previous secret signing beside the new one for `ROTATION_OVERLAP`,
so receivers can switch at their pace: the `webhook-signature` header then carries both
signatures (Standard Webhooks allows several).

When an alert fires, one delivery per enabled endpoint of the org is created in the same
transaction (an outbox): its id is the `webhook-id`, its payload is fixed then, so every
attempt sends the same bytes. Workers claim due deliveries with a lease, send them and record
each attempt; a failed attempt is retried with exponential backoff and jitter until
`RETRY_WINDOW` after the delivery was created, then the delivery is `failed` (a manual
redelivery starts a new window). A worker killed mid-attempt leaves its attempt `interrupted`
and the lease expires: another worker sends again, with the same `webhook-id` (receivers
deduplicate on it: delivery is at least once).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

from analytics_core.budgets import Alert, Budget, BudgetScope, amount_text
from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.events import as_utc
from analytics_core.rules import (
    ReliabilityRule,
    RuleMetric,
    RuleState,
    RuleTransition,
    threshold_text,
)

if TYPE_CHECKING:
    from analytics_core.ports import IdGenerator

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
ROTATION_OVERLAP = timedelta(hours=24)
RETRY_WINDOW = timedelta(hours=24)
FIRST_RETRY = timedelta(seconds=5)
MAX_RETRY_DELAY = timedelta(hours=1)
DELIVERY_LEASE = timedelta(seconds=60)
MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 200
EVENT_ALERT = "budget.alert"
EVENT_RELIABILITY = "reliability.alert"
API_PREFIX = "/analytics/v1"


class DeliveryStatus(StrEnum):
    """Where a delivery is."""

    PENDING = "pending"  # due now or at next_attempt_at
    SUCCEEDED = "succeeded"  # a 2xx answer
    FAILED = "failed"  # retries exhausted (redeliver to try again)


class AttemptOutcome(StrEnum):
    """How one attempt ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the worker stopped mid-attempt (its lease expired)
    IN_FLIGHT = "in_flight"


@attrs.frozen
class WebhookEndpoint:
    """One org's receiver of alert webhooks."""

    endpoint_id: uuid.UUID
    org_id: uuid.UUID
    url: str
    description: str
    secret: str
    previous_secret: str | None
    previous_until: datetime | None
    enabled: bool
    created_at: datetime = attrs.field(converter=as_utc)
    created_by: str
    updated_at: datetime = attrs.field(converter=as_utc)

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        """The secrets that sign now: the current one, and the previous during its overlap."""
        if (self.previous_secret is not None and self.previous_until is not None
                and now < self.previous_until):
            return (self.secret, self.previous_secret)
        return (self.secret,)


@attrs.frozen
class Delivery:
    """One alert to one endpoint, with its retry state."""

    delivery_id: uuid.UUID  # the webhook-id (msg_<hex>)
    org_id: uuid.UUID
    endpoint_id: uuid.UUID
    alert_id: uuid.UUID
    event_type: str
    payload: str  # the JSON body, fixed at creation
    status: DeliveryStatus
    attempts: int
    created_at: datetime = attrs.field(converter=as_utc)
    next_attempt_at: datetime = attrs.field(converter=as_utc)
    deadline: datetime = attrs.field(converter=as_utc)  # no retry is scheduled after this
    lease_until: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    completed_at: datetime | None = None

    @property
    def message_id(self) -> str:
        """The `webhook-id` header: stable across attempts and redeliveries."""
        return f"msg_{self.delivery_id.hex}"


@attrs.frozen
class DeliveryAttempt:
    """One try of a delivery."""

    delivery_id: uuid.UUID
    number: int  # 1, 2, ...
    started_at: datetime = attrs.field(converter=as_utc)
    outcome: AttemptOutcome
    status_code: int | None = None
    error: str | None = None
    seconds: float | None = None


@attrs.frozen
class Claim:
    """A delivery a worker holds the lease of, its endpoint and the attempt it is making."""

    delivery: Delivery
    endpoint: WebhookEndpoint
    attempt: DeliveryAttempt  # in flight


@attrs.frozen
class SendResult:
    """What the receiver answered (status code) or why nothing usable came back."""

    status_code: int | None
    error: str | None
    seconds: float

    @property
    def succeeded(self) -> bool:
        """A 2xx answer."""
        return self.status_code is not None and 200 <= self.status_code < 300


# -- secrets and URLs -----------------------------------------------------------------------


def new_secret(ids: IdGenerator) -> str:
    """A fresh signing secret: `whsec_` and base64 of 32 random bytes (two UUID4s)."""
    raw = ids.new_id().bytes + ids.new_id().bytes
    return SECRET_PREFIX + base64.b64encode(raw).decode()


def url_errors(url: object, *, allow_http: bool) -> list[FieldError]:
    """Syntax of an endpoint URL: https (http only where private addresses are allowed), a
    host, no credentials, no fragment, at most 2048 characters."""
    reason = _url_problem(url, ("https", "http") if allow_http else ("https",))
    return [] if reason is None else [FieldError("url", reason)]


def _url_problem(url: object, schemes: tuple[str, ...]) -> str | None:
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        return f"must be a URL of at most {MAX_URL_LENGTH} characters"
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    problems = [
        (parts.scheme not in schemes, f"must use {' or '.join(schemes)}"),
        (not parts.hostname, "must name a host"),
        (parts.username is not None or parts.password is not None,
         "must not carry credentials (they would be logged and shown); the signature "
         "authenticates"),
        (bool(parts.fragment), "must not have a fragment"),
        (port == 0, "must not use port 0"),
    ]
    return next((reason for bad, reason in problems if bad), None)


# -- deliveries -----------------------------------------------------------------------------


def alert_payload(alert: Alert, budget: Budget | None, event_id: uuid.UUID) -> str:
    """The JSON body of an alert webhook (documented in the OpenAPI document's `webhooks`)."""
    org = f"{API_PREFIX}/orgs/{alert.org_id}"
    data: dict[str, Any] = {
        "alertId": str(alert.alert_id), "orgId": str(alert.org_id),
        "budget": {
            "budgetId": str(alert.budget_id), "name": alert.budget_name,
            "measure": alert.measure.value, "unit": alert.measure.unit,
            **({"period": budget.period.value, "tz": budget.tz,
                "scope": _scope(budget)} if budget is not None else {}),
        },
        "kind": alert.kind.value, "threshold": alert.threshold,
        "periodStart": _time(alert.period_start), "periodEnd": _time(alert.period_end),
        "value": amount_text(alert.value, alert.measure),
        "amount": amount_text(alert.amount, alert.measure),
        "forecastValue": None if alert.forecast_value is None
        else amount_text(alert.forecast_value, alert.measure),
        "late": alert.late, "firedAt": _time(alert.fired_at),
        "freshness": {"completeThrough": _time(alert.complete_through)},
        "links": {"budget": f"{org}/budgets/{alert.budget_id}",
                  "alerts": f"{org}/alerts?budgetId={alert.budget_id}"},
    }
    return json.dumps({"type": EVENT_ALERT, "id": str(event_id),
                       "timestamp": _time(alert.fired_at), "data": data},
                      separators=(",", ":"), ensure_ascii=False)


def _scope(budget: Budget) -> dict[str, Any]:
    return _scope_of(budget.scope)


def _scope_of(s: BudgetScope) -> dict[str, Any]:
    if s.key is not None:
        return {"type": s.type.value, "key": s.key, "value": s.value}
    return {"type": s.type.value, **({"id": s.value} if s.value is not None else {})}


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def transition_payload(t: RuleTransition, rule: ReliabilityRule | None) -> str:
    """The JSON body of a reliability rule's webhook: it fired or resolved."""
    org = f"{API_PREFIX}/orgs/{t.org_id}"
    unit = "percent" if t.metric is RuleMetric.ERROR_RATE else "ms"
    data: dict[str, Any] = {
        "alertId": str(t.transition_id), "orgId": str(t.org_id),
        "rule": {"ruleId": str(t.rule_id), "name": t.rule_name, "metric": t.metric.value,
                 "unit": unit,
                 **({"errorClass": rule.error_class.value, "windowMinutes": rule.window_minutes,
                     "scope": _scope_of(rule.scope)} if rule is not None else {})},
        "state": "firing" if t.state is RuleState.FIRING else "resolved",
        "number": t.number, "value": threshold_text(t.value, t.metric),
        "threshold": threshold_text(t.threshold, t.metric), "volume": t.volume,
        "windowStart": _time(t.window_start), "windowEnd": _time(t.window_end),
        "firedAt": _time(t.at),
        "links": {"rule": f"{org}/reliability-rules/{t.rule_id}",
                  "alerts": f"{org}/alerts?ruleId={t.rule_id}"},
    }
    return json.dumps({"type": EVENT_RELIABILITY, "id": str(t.transition_id),
                       "timestamp": _time(t.at), "data": data},
                      separators=(",", ":"), ensure_ascii=False)


def deliveries_of(event_id: uuid.UUID, org_id: uuid.UUID, payload: str, *,
                  endpoints: Sequence[WebhookEndpoint], ids: IdGenerator, now: datetime
                  ) -> list[Delivery]:
    """One pending delivery of an event (its JSON body) per enabled endpoint, due now."""
    event_type = json.loads(payload)["type"]
    return [Delivery(ids.new_id(), org_id, e.endpoint_id, event_id, event_type, payload,
                     DeliveryStatus.PENDING, 0, now, now, now + RETRY_WINDOW)
            for e in endpoints if e.enabled]


def deliveries_for(alert: Alert, budget: Budget | None, endpoints: Sequence[WebhookEndpoint],
                   ids: IdGenerator, now: datetime) -> list[Delivery]:
    """One pending delivery of a budget alert per enabled endpoint, due now."""
    return deliveries_of(alert.alert_id, alert.org_id,
                         alert_payload(alert, budget, alert.alert_id), endpoints=endpoints,
                         ids=ids, now=now)


def retry_delay(failed_attempts: int, jitter: Callable[[], float]) -> timedelta:
    """Delay after the n-th failed attempt: 5 s doubling per attempt up to 1 h, times a
    uniform factor in [0.5, 1) ("equal jitter": retries of many deliveries spread out)."""
    base: timedelta = min(FIRST_RETRY * 2 ** min(failed_attempts - 1, 20), MAX_RETRY_DELAY)
    return base * (0.5 + jitter() / 2)


def after_attempt(delivery: Delivery, result: SendResult, now: datetime,
                  jitter: Callable[[], float]) -> Delivery:
    """The delivery once an attempt got `result`: succeeded, retried later, or failed when the
    next try would fall past its deadline."""
    attempts = delivery.attempts + 1
    common: dict[str, Any] = {"attempts": attempts, "lease_until": None,
                              "last_status_code": result.status_code,
                              "last_error": result.error}
    if result.succeeded:
        return attrs.evolve(delivery, status=DeliveryStatus.SUCCEEDED, completed_at=now,
                            **common)
    retry_at = now + retry_delay(attempts, jitter)
    if retry_at > delivery.deadline:
        return attrs.evolve(delivery, status=DeliveryStatus.FAILED, completed_at=now,
                            **common)
    return attrs.evolve(delivery, next_attempt_at=retry_at, **common)


def redelivered(delivery: Delivery, now: datetime) -> Delivery:
    """A delivery sent again on request: due now, with a new retry window (same webhook-id
    and payload)."""
    return attrs.evolve(delivery, status=DeliveryStatus.PENDING, next_attempt_at=now,
                        deadline=now + RETRY_WINDOW, lease_until=None, completed_at=None)


# -- reading requests -----------------------------------------------------------------------

ENDPOINT_FIELDS = frozenset({"url", "description", "enabled"})


def read_endpoint(body: object, *, allow_http: bool, partial: bool = False) -> dict[str, Any]:
    """The fields of a create (all but description and enabled required) or PATCH body;
    ValidationFailed naming every bad field."""
    if not isinstance(body, Mapping):
        raise ValidationFailed([FieldError("body", "must be a JSON object")], "invalid webhook")
    errors = [FieldError(k, f"is not a webhook field; valid: "
                            f"{', '.join(sorted(ENDPOINT_FIELDS))}")
              for k in sorted(set(body) - ENDPOINT_FIELDS)]
    out: dict[str, Any] = {}
    if "url" in body or not partial:
        errors += url_errors(body.get("url"), allow_http=allow_http)
        out["url"] = body.get("url")
    if "description" in body or not partial:
        description = body.get("description", "")
        if (not isinstance(description, str) or len(description) > MAX_DESCRIPTION_LENGTH
                or any(ord(c) < 32 for c in description)):
            errors.append(FieldError("description", f"must be at most "
                                                    f"{MAX_DESCRIPTION_LENGTH} printable "
                                                    "characters"))
        out["description"] = description
    if "enabled" in body or not partial:
        enabled = body.get("enabled", True)
        if not isinstance(enabled, bool):
            errors.append(FieldError("enabled", "must be true or false"))
        out["enabled"] = enabled
    if errors:
        raise ValidationFailed(errors, "invalid webhook")
    return out
