"""WebhookStore and DeliveryStore on every backend: endpoints stay in their org; a claim takes
only due deliveries of enabled endpoints, leases them and logs an attempt in flight; a lease
that runs out lets the next claim retry, marking the lost attempt interrupted; concurrent
claimers never share a delivery; the log pages newest first."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import attrs

from analytics_core.ports import UnitOfWorkFactory
from analytics_core.webhooks import (
    AttemptOutcome,
    Delivery,
    DeliveryStatus,
    WebhookEndpoint,
)
from tests.contract.factories import BASE, new_id

LEASE = timedelta(seconds=60)


def _endpoint(org: uuid.UUID | None = None, **overrides: object) -> WebhookEndpoint:
    fields: dict[str, object] = {
        "endpoint_id": new_id(), "org_id": org or new_id(),
        "url": "https://hooks.example.com/in?token=«x»", "description": "ops — pager",
        "secret": "whsec_" + "A" * 44, "previous_secret": None, "previous_until": None,
        "enabled": True, "created_at": BASE, "created_by": "key:1", "updated_at": BASE,
    }
    fields.update(overrides)
    return WebhookEndpoint(**fields)  # type: ignore[arg-type]


def _delivery(endpoint: WebhookEndpoint, **overrides: object) -> Delivery:
    fields: dict[str, object] = {
        "delivery_id": new_id(), "org_id": endpoint.org_id,
        "endpoint_id": endpoint.endpoint_id, "alert_id": new_id(),
        "event_type": "budget.alert", "payload": '{"type":"budget.alert","é":1}',
        "status": DeliveryStatus.PENDING, "attempts": 0, "created_at": BASE,
        "next_attempt_at": BASE, "deadline": BASE + timedelta(hours=24),
    }
    fields.update(overrides)
    return Delivery(**fields)  # type: ignore[arg-type]


def _store(uow_factory: UnitOfWorkFactory, endpoints: list[WebhookEndpoint],
           deliveries: list[Delivery]) -> None:
    with uow_factory() as uow:
        for e in endpoints:
            uow.webhooks.add(e)
        uow.deliveries.add(deliveries)
        uow.commit()


def test_endpoints_read_back_exactly_and_only_in_their_org(uow_factory: UnitOfWorkFactory
                                                           ) -> None:
    """Every field survives; save replaces; delete removes the endpoint and its deliveries."""
    org = new_id()
    first = _endpoint(org)
    second = _endpoint(org, created_at=BASE + timedelta(seconds=1), enabled=False,
                       previous_secret="whsec_old", previous_until=BASE + timedelta(hours=1))
    delivery = _delivery(first)
    _store(uow_factory, [second, first], [delivery])
    with uow_factory() as uow:
        assert uow.webhooks.for_org(org) == [first, second]
        assert uow.webhooks.get(new_id(), first.endpoint_id) is None
        uow.webhooks.save(attrs.evolve(first, url="https://other.example.com/"))
        uow.commit()
    with uow_factory() as uow:
        assert uow.webhooks.get(org, first.endpoint_id).url == "https://other.example.com/"  # type: ignore[union-attr]
        assert not uow.webhooks.delete(new_id(), first.endpoint_id)
        assert uow.webhooks.delete(org, first.endpoint_id)
        uow.commit()
    with uow_factory() as uow:
        assert uow.webhooks.for_org(org) == [second]
        assert uow.deliveries.get(org, delivery.delivery_id) is None


def test_a_claim_takes_due_deliveries_of_enabled_endpoints_and_leases_them(
        uow_factory: UnitOfWorkFactory) -> None:
    """Later, leased, finished and paused ones stay; a second claim gets nothing."""
    org = new_id()
    on, off = _endpoint(org), _endpoint(org, enabled=False)
    due = _delivery(on, next_attempt_at=BASE - timedelta(seconds=5))
    later = _delivery(on, next_attempt_at=BASE + timedelta(minutes=1))
    done = _delivery(on, status=DeliveryStatus.SUCCEEDED)
    paused = _delivery(off)
    _store(uow_factory, [on, off], [due, later, done, paused])
    with uow_factory() as uow:
        claims = [c for c in uow.deliveries.claim(BASE, LEASE, 100) if c.delivery.org_id == org]
        uow.commit()
    (claim,) = claims
    assert claim.delivery.delivery_id == due.delivery_id
    assert claim.delivery.lease_until == BASE + LEASE
    assert claim.endpoint == on
    assert (claim.attempt.number, claim.attempt.outcome) == (1, AttemptOutcome.IN_FLIGHT)
    with uow_factory() as uow:
        assert [c for c in uow.deliveries.claim(BASE + timedelta(seconds=30), LEASE, 100)
                if c.delivery.org_id == org] == []


def test_an_expired_lease_is_claimed_again_and_the_lost_attempt_is_interrupted(
        uow_factory: UnitOfWorkFactory) -> None:
    """The first worker died: the next claim after the lease is attempt 2; finishing it
    stores the delivery and the attempt's outcome."""
    endpoint = _endpoint()
    delivery = _delivery(endpoint)
    _store(uow_factory, [endpoint], [delivery])
    with uow_factory() as uow:
        uow.deliveries.claim(BASE, LEASE, 100)
        uow.commit()
    later = BASE + LEASE + timedelta(seconds=1)
    with uow_factory() as uow:
        (claim,) = [c for c in uow.deliveries.claim(later, LEASE, 100)
                    if c.delivery.delivery_id == delivery.delivery_id]
        uow.commit()
    assert claim.attempt.number == 2
    finished = attrs.evolve(claim.delivery, status=DeliveryStatus.SUCCEEDED, attempts=1,
                            lease_until=None, last_status_code=204, completed_at=later)
    with uow_factory() as uow:
        uow.deliveries.finish(finished, attrs.evolve(
            claim.attempt, outcome=AttemptOutcome.SUCCEEDED, status_code=204, seconds=0.25))
        uow.commit()
    with uow_factory() as uow:
        assert uow.deliveries.get(endpoint.org_id, delivery.delivery_id) == finished
        attempts = uow.deliveries.attempts([delivery.delivery_id])[delivery.delivery_id]
    assert [(a.number, a.outcome, a.status_code) for a in attempts] == [
        (1, AttemptOutcome.INTERRUPTED, None), (2, AttemptOutcome.SUCCEEDED, 204)]
    assert attempts[1].seconds == 0.25


def test_concurrent_claimers_never_share_a_delivery(uow_factory: UnitOfWorkFactory) -> None:
    """Four threads claim 3 at a time from 12 due deliveries: each is claimed once."""
    endpoint = _endpoint()
    deliveries = [_delivery(endpoint, next_attempt_at=BASE - timedelta(seconds=i))
                  for i in range(12)]
    _store(uow_factory, [endpoint], deliveries)
    mine = {d.delivery_id for d in deliveries}
    got: list[uuid.UUID] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def claim() -> None:
        barrier.wait()
        for _ in range(4):
            with uow_factory() as uow:
                claims = uow.deliveries.claim(BASE, LEASE, 3)
                uow.commit()
            with lock:
                got.extend(c.delivery.delivery_id for c in claims
                           if c.delivery.delivery_id in mine)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == sorted(mine)


def test_deliveries_page_newest_first_with_a_cursor(uow_factory: UnitOfWorkFactory) -> None:
    """page: one endpoint's deliveries by (created_at, id) descending, before a cursor."""
    endpoint, other = _endpoint(), _endpoint()
    deliveries = [_delivery(endpoint, created_at=BASE + timedelta(minutes=i)) for i in range(5)]
    _store(uow_factory, [endpoint, other], [*deliveries, _delivery(other)])
    newest = sorted(deliveries, key=lambda d: d.created_at, reverse=True)
    with uow_factory() as uow:
        assert uow.deliveries.page(endpoint.org_id, endpoint.endpoint_id, limit=3) == newest[:3]
        cursor = (newest[2].created_at, newest[2].delivery_id)
        assert uow.deliveries.page(endpoint.org_id, endpoint.endpoint_id, limit=9,
                                   before=cursor) == newest[3:]
        redone = attrs.evolve(newest[0], status=DeliveryStatus.FAILED)
        uow.deliveries.save(redone)
        assert uow.deliveries.get(endpoint.org_id, redone.delivery_id) == redone
        assert uow.deliveries.get(new_id(), redone.delivery_id) is None
