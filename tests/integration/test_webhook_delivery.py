"""Webhook delivery against a real HTTP receiver (SPEC §13): every signature verifies with the
Standard Webhooks library's own verifier, a tampered or replayed request does not; failures are
retried with backoff until the receiver answers; redirects are not followed; internal
addresses are refused at save time and on the connected socket; rotation signs with both."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from analytics_adapters.memory.clock import ManualClock
from analytics_adapters.memory.ids import SequentialIds
from analytics_adapters.memory.state import InMemoryStorage
from analytics_adapters.memory.uow import unit_of_work_factory
from analytics_adapters.system import SystemClock
from analytics_adapters.webhooks import HttpWebhookSender, is_internal
from analytics_core.access import ORG_ADMIN, Actor
from analytics_core.budgets import Alert, AlertKind, Measure
from analytics_core.errors import ValidationFailed
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.usecases import webhooks as uc
from analytics_core.webhooks import AttemptOutcome, DeliveryStatus, deliveries_for
from tests.integration.webhook_receiver import receiver

ALLOW = uc.WebhookPolicy(allow_private=True)
ACTOR = Actor("key:admin", None, frozenset({ORG_ADMIN}))


@attrs.define
class Setup:
    """A memory store with one endpoint and one pending delivery of a fired alert."""

    uow_factory: UnitOfWorkFactory
    org: uuid.UUID
    endpoint_id: uuid.UUID
    secret: str
    sender: HttpWebhookSender


def _setup(url: str, sender: HttpWebhookSender, now: datetime) -> Setup:
    uow_factory = unit_of_work_factory(InMemoryStorage())
    org = uuid.uuid4()
    endpoint, secret = uc.create_webhook(ACTOR, org, {"url": url}, uow_factory=uow_factory,
                                         clock=ManualClock(now), ids=SequentialIds(),
                                         sender=sender, policy=ALLOW)
    alert = Alert(uuid.uuid4(), org, uuid.uuid4(), "Monthly", Measure.REPORTED_COST,
                  AlertKind.THRESHOLD, 80, now - timedelta(days=3), now + timedelta(days=27),
                  8_000_000, 10_000_000, None, now, False, now)
    with uow_factory() as uow:
        uow.deliveries.add(deliveries_for(alert, None, [endpoint], SequentialIds(), now))
        uow.commit()
    return Setup(uow_factory, org, endpoint.endpoint_id, secret, sender)


def _log(s: Setup) -> list[tuple[object, ...]]:
    page = uc.list_deliveries(s.org, s.endpoint_id, uow_factory=s.uow_factory)
    ((delivery, attempts),) = page.deliveries
    return [(delivery.status, delivery.attempts),
            *((a.number, a.outcome, a.status_code) for a in attempts)]


def test_every_signature_verifies_and_tampering_or_replay_fails() -> None:
    """The receiver's verifier accepts the request as sent; a changed body, another secret
    or a timestamp older than five minutes are refused."""
    with receiver() as r:
        s = _setup(r.url, HttpWebhookSender(allow_private=True), datetime.now(UTC))
        done = uc.deliver_due(uow_factory=s.uow_factory, clock=SystemClock(), sender=s.sender)
        assert (done.attempted, done.succeeded) == (1, 1)
        (request,) = r.received
    assert request.path == "/hooks/in?token=t0ken"
    payload = Webhook(s.secret).verify(request.body, request.headers)
    assert payload["type"] == "budget.alert"
    assert payload["data"]["value"] == "800.0000"
    assert request.headers["webhook-id"].startswith("msg_")
    with pytest.raises(WebhookVerificationError):
        Webhook(s.secret).verify(request.body.replace(b"800.0000", b"8.0000"), request.headers)
    other = "whsec_" + "QUJD" * 11
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(request.body, request.headers)
    replayed = {**request.headers,
                "webhook-timestamp": str(int(time.time()) - 600)}
    with pytest.raises(WebhookVerificationError):
        Webhook(s.secret).verify(request.body, replayed)


def test_failures_are_retried_with_backoff_until_the_receiver_answers() -> None:
    """500, 503, a timeout, then 204: four attempts in the log, each after its backoff, the
    same webhook-id every time."""
    now = datetime.now(UTC)
    clock = ManualClock(now)
    with receiver([500, 503, ("sleep", 1.5), 204]) as r:
        s = _setup(r.url, HttpWebhookSender(allow_private=True, timeout_seconds=0.5), now)
        for _ in range(4):
            done = uc.deliver_due(uow_factory=s.uow_factory, clock=clock, sender=s.sender)
            assert done.attempted == 1
            assert uc.deliver_due(uow_factory=s.uow_factory, clock=clock,
                                  sender=s.sender).attempted == 0  # not due before its backoff
            clock.advance(timedelta(minutes=2))
        ids = {q.headers["webhook-id"] for q in r.received}
        assert len(r.received) == 4
    assert len(ids) == 1
    assert _log(s) == [(DeliveryStatus.SUCCEEDED, 4), (1, AttemptOutcome.FAILED, 500),
                       (2, AttemptOutcome.FAILED, 503), (3, AttemptOutcome.FAILED, None),
                       (4, AttemptOutcome.SUCCEEDED, 204)]
    page = uc.list_deliveries(s.org, s.endpoint_id, uow_factory=s.uow_factory)
    assert page.deliveries[0][1][2].error == "timed out after 0.5 s"


def test_a_redirect_is_not_followed() -> None:
    """A 302 is a failed attempt; its target never gets a request."""
    with receiver() as target, receiver([("redirect", target.url)]) as r:
        s = _setup(r.url, HttpWebhookSender(allow_private=True), datetime.now(UTC))
        done = uc.deliver_due(uow_factory=s.uow_factory, clock=SystemClock(), sender=s.sender)
        assert target.received == []
    ((delivery, attempt),) = done.results
    assert (attempt.status_code, attempt.error) == (302, "redirect not followed")
    assert delivery.status is DeliveryStatus.PENDING


def test_internal_addresses_are_refused_when_saved_and_when_connected() -> None:
    """Without ANALYTICS_WEBHOOK_ALLOW_PRIVATE: saving a loopback URL is a 400 naming url, and
    a host that resolved elsewhere at save time but connects to loopback (DNS rebinding) is
    refused on the socket before any byte is sent."""
    strict = HttpWebhookSender(allow_private=False)
    with receiver() as r:
        with pytest.raises(ValidationFailed) as info:
            uc.create_webhook(ACTOR, uuid.uuid4(), {"url": r.url.replace("http:", "https:")},
                              uow_factory=unit_of_work_factory(InMemoryStorage()),
                              clock=ManualClock(datetime.now(UTC)), ids=SequentialIds(),
                              sender=strict, policy=uc.WebhookPolicy())
        assert info.value.errors[0].field == "url"
        assert "internal address (127.0.0.1)" in info.value.errors[0].reason
        s = _setup(r.url.replace("127.0.0.1", "localhost"), strict, datetime.now(UTC))
        done = uc.deliver_due(uow_factory=s.uow_factory, clock=SystemClock(), sender=strict)
        assert r.received == []
    ((_, attempt),) = done.results
    assert attempt.error is not None
    assert "internal address" in attempt.error


@pytest.mark.parametrize(("address", "internal"), [
    ("127.0.0.1", True), ("10.1.2.3", True), ("172.16.0.1", True), ("192.168.1.1", True),
    ("169.254.169.254", True), ("100.64.0.1", True), ("0.0.0.0", True), ("::1", True),
    ("fe80::1%eth0", True), ("fd00::1", True), ("::ffff:127.0.0.1", True), ("224.0.0.1", True),
    ("8.8.8.8", False), ("2606:4700:4700::1111", False), ("::ffff:8.8.8.8", False),
])
def test_what_counts_as_internal(address: str, internal: bool) -> None:
    """Loopback, RFC 1918, link-local (cloud metadata), CGNAT, unspecified, unique local,
    mapped IPv4 and multicast are internal; public addresses are not."""
    assert is_internal(address) is internal


def test_after_rotation_both_secrets_verify_for_the_overlap() -> None:
    """The rotated endpoint signs with the new and the old secret; receivers on either pass."""
    now = datetime.now(UTC)
    with receiver() as r:
        s = _setup(r.url, HttpWebhookSender(allow_private=True), now)
        rotated, new = uc.rotate_secret(ACTOR, s.org, s.endpoint_id, uow_factory=s.uow_factory,
                                        clock=ManualClock(now), ids=SequentialIds(7))
        assert new != s.secret
        assert rotated.previous_until == now + timedelta(hours=24)
        uc.deliver_due(uow_factory=s.uow_factory, clock=SystemClock(), sender=s.sender)
        (request,) = r.received
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    for secret in (s.secret, new):
        assert json.loads(json.dumps(Webhook(secret).verify(request.body, request.headers)))
