"""Webhook endpoints, their delivery log, and delivering due webhooks (SPEC §13).

Access is checked by the driver (org_admin manages an org's webhooks); every change is audited
here, in the org, in the transaction of the change. Secrets appear only in the return value of
`create_webhook` and `rotate_secret` (shown once); nothing else renders them.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import datetime

import attrs

from analytics_core.access import Actor
from analytics_core.errors import FieldError, NotFound, ValidationFailed
from analytics_core.ports import Clock, IdGenerator, UnitOfWork, UnitOfWorkFactory, WebhookSender
from analytics_core.usecases.access import record_change
from analytics_core.usecases.paging import cut
from analytics_core.webhooks import (
    DELIVERY_LEASE,
    ROTATION_OVERLAP,
    AttemptOutcome,
    Delivery,
    DeliveryAttempt,
    DeliveryStatus,
    WebhookEndpoint,
    after_attempt,
    new_secret,
    read_endpoint,
    redelivered,
)

MAX_DELIVERIES_PAGE = 200
DELIVERIES_PER_CLAIM = 20


@attrs.frozen
class WebhookPolicy:
    """Where webhooks may go: private, loopback and link-local addresses (and plain http) only
    when `allow_private` (ANALYTICS_WEBHOOK_ALLOW_PRIVATE)."""

    allow_private: bool = False


@attrs.frozen
class DeliveryPage:
    """Deliveries newest first, each with its attempts, and the next page's cursor."""

    deliveries: tuple[tuple[Delivery, tuple[DeliveryAttempt, ...]], ...]
    next_cursor: tuple[datetime, uuid.UUID] | None


@attrs.frozen
class DeliveryRound:
    """What one `deliver_due` call did."""

    attempted: int
    succeeded: int
    failed_for_good: int
    results: tuple[tuple[Delivery, DeliveryAttempt], ...]


def _check_url(url: str, sender: WebhookSender, policy: WebhookPolicy) -> None:
    if policy.allow_private:
        return
    reason = sender.check_url(url)
    if reason is not None:
        raise ValidationFailed([FieldError("url", reason)], "invalid webhook")


def create_webhook(actor: Actor, org_id: uuid.UUID, body: object, *,
                   uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator,
                   sender: WebhookSender, policy: WebhookPolicy
                   ) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its signing secret (shown this once); audited."""
    fields = read_endpoint(body, allow_http=policy.allow_private)
    _check_url(fields["url"], sender, policy)
    now = clock.now()
    secret = new_secret(ids)
    endpoint = WebhookEndpoint(ids.new_id(), org_id, fields["url"], fields["description"],
                               secret, None, None, fields["enabled"], now, actor.subject, now)
    with uow_factory() as uow:
        uow.webhooks.add(endpoint)
        record_change(uow, ids, now, actor=actor, org_id=org_id,
                      resource=f"webhook:{endpoint.endpoint_id}",
                      action="webhooks.create", reason=_host(endpoint.url))
        uow.commit()
    return endpoint, secret


def _host(url: str) -> str:
    """The URL without path and query (which may hold tokens), for the audit log."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0]}"


def _stored(uow: UnitOfWork, org_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = uow.webhooks.get(org_id, endpoint_id)
    if endpoint is None:
        raise NotFound(f"webhook {endpoint_id} not found")
    return endpoint


def list_webhooks(org_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory
                  ) -> list[WebhookEndpoint]:
    """The org's endpoints, oldest first."""
    with uow_factory() as uow:
        return uow.webhooks.for_org(org_id)


def get_webhook(org_id: uuid.UUID, endpoint_id: uuid.UUID, *,
                uow_factory: UnitOfWorkFactory) -> WebhookEndpoint:
    """One endpoint of the org; NotFound otherwise."""
    with uow_factory() as uow:
        return _stored(uow, org_id, endpoint_id)


def update_webhook(actor: Actor, org_id: uuid.UUID, endpoint_id: uuid.UUID, body: object, *,
                   uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator,
                   sender: WebhookSender, policy: WebhookPolicy) -> WebhookEndpoint:
    """Change url, description or enabled (disabling pauses deliveries); audited."""
    fields = read_endpoint(body, allow_http=policy.allow_private, partial=True)
    if "url" in fields:
        _check_url(fields["url"], sender, policy)
    now = clock.now()
    with uow_factory() as uow:
        record_change(uow, ids, now, actor=actor, org_id=org_id,
                      resource=f"webhook:{endpoint_id}",
                      action="webhooks.update", reason="changed " + ", ".join(sorted(fields))
                      + (f" (url now {_host(fields['url'])})" if "url" in fields else ""))
        changed = attrs.evolve(_stored(uow, org_id, endpoint_id), **fields, updated_at=now)
        uow.webhooks.save(changed)
        uow.commit()
    return changed


def delete_webhook(actor: Actor, org_id: uuid.UUID, endpoint_id: uuid.UUID, *,
                   uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator) -> None:
    """Remove an endpoint and its deliveries; audited."""
    now = clock.now()
    with uow_factory() as uow:
        record_change(uow, ids, now, actor=actor, org_id=org_id,
                      resource=f"webhook:{endpoint_id}",
                      action="webhooks.delete", reason="deleted with its deliveries")
        if not uow.webhooks.delete(org_id, endpoint_id):
            raise NotFound(f"webhook {endpoint_id} not found")
        uow.commit()


def rotate_secret(actor: Actor, org_id: uuid.UUID, endpoint_id: uuid.UUID, *,
                  uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator
                  ) -> tuple[WebhookEndpoint, str]:
    """A new signing secret (shown this once); the current one keeps signing beside it for
    ROTATION_OVERLAP (24 h). Audited."""
    now = clock.now()
    secret = new_secret(ids)
    with uow_factory() as uow:
        record_change(uow, ids, now, actor=actor, org_id=org_id,
                      resource=f"webhook:{endpoint_id}",
                      action="webhooks.rotate",
                      reason=f"previous secret signs until {now + ROTATION_OVERLAP}")
        endpoint = _stored(uow, org_id, endpoint_id)
        rotated = attrs.evolve(endpoint, secret=secret, previous_secret=endpoint.secret,
                               previous_until=now + ROTATION_OVERLAP, updated_at=now)
        uow.webhooks.save(rotated)
        uow.commit()
    return rotated, secret


def list_deliveries(org_id: uuid.UUID, endpoint_id: uuid.UUID, *,
                    uow_factory: UnitOfWorkFactory, limit: int = 50,
                    before: tuple[datetime, uuid.UUID] | None = None) -> DeliveryPage:
    """An endpoint's deliveries newest first, each with every attempt."""
    limit = max(1, min(limit, MAX_DELIVERIES_PAGE))
    with uow_factory() as uow:
        _stored(uow, org_id, endpoint_id)
        rows = uow.deliveries.page(org_id, endpoint_id, limit=limit + 1, before=before)
        page, cursor = cut(rows, limit, lambda d: (d.created_at, d.delivery_id))
        attempts = uow.deliveries.attempts([d.delivery_id for d in page])
    return DeliveryPage(tuple((d, tuple(attempts.get(d.delivery_id, []))) for d in page),
                        cursor)


def redeliver(actor: Actor, org_id: uuid.UUID, endpoint_id: uuid.UUID,
              delivery_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory, clock: Clock,
              ids: IdGenerator) -> Delivery:
    """Send a delivery again (same webhook-id and payload) with a new 24-hour retry window;
    audited."""
    now = clock.now()
    with uow_factory() as uow:
        record_change(uow, ids, now, actor=actor, org_id=org_id,
                      resource=f"webhook:{endpoint_id}",
                      action="webhooks.redeliver", reason=f"delivery {delivery_id}")
        _stored(uow, org_id, endpoint_id)
        delivery = uow.deliveries.get(org_id, delivery_id)
        if delivery is None or delivery.endpoint_id != endpoint_id:
            raise NotFound(f"delivery {delivery_id} not found")
        again = redelivered(delivery, now)
        uow.deliveries.save(again)
        uow.commit()
    return again


def deliver_due(*, uow_factory: UnitOfWorkFactory, clock: Clock, sender: WebhookSender,
                limit: int = DELIVERIES_PER_CLAIM,
                jitter: Callable[[], float] = random.random) -> DeliveryRound:
    """Claim up to `limit` due deliveries, send each, record each attempt. Safe beside other
    workers (claims are leased); a worker that dies mid-attempt leaves it to the next claim
    once the lease has run out."""
    with uow_factory() as uow:
        claims = uow.deliveries.claim(clock.now(), DELIVERY_LEASE, limit)
        uow.commit()
    results = []
    for claim in claims:
        delivery, endpoint = claim.delivery, claim.endpoint
        started = clock.now()
        result = sender.send(endpoint.url, secrets=endpoint.signing_secrets(started),
                             message_id=delivery.message_id, timestamp=started,
                             body=delivery.payload)
        after = after_attempt(delivery, result, clock.now(), jitter)
        attempt = attrs.evolve(
            claim.attempt, outcome=AttemptOutcome.SUCCEEDED if result.succeeded
            else AttemptOutcome.FAILED, status_code=result.status_code, error=result.error,
            seconds=result.seconds)
        with uow_factory() as uow:
            uow.deliveries.finish(after, attempt)
            uow.commit()
        results.append((after, attempt))
    return DeliveryRound(
        len(results), sum(d.status is DeliveryStatus.SUCCEEDED for d, _ in results),
        sum(d.status is DeliveryStatus.FAILED for d, _ in results), tuple(results))

