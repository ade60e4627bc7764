"""`analytics alerts` killed with SIGKILL in the middle of a webhook delivery (PostgreSQL, a real
process and a real receiver): the alert fired once; once the lease has run out the next worker
sends the same webhook again and it succeeds; the log shows the interrupted attempt and the
successful one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from analytics_adapters.memory import ManualClock, SequentialIds
from analytics_adapters.memory.pipeline import SynchronousPipeline
from analytics_adapters.webhooks import HttpWebhookSender
from analytics_core.access import ORG_ADMIN, Actor
from analytics_core.attribution import AttributionSettings
from analytics_core.usecases import budgets, webhooks
from analytics_core.usecases.ingest import RawMessage, ingest_batch
from analytics_core.webhooks import DELIVERY_LEASE, AttemptOutcome, DeliveryStatus
from tests.contract.sql_backends import fresh_postgres_database, storage_at
from tests.integration.webhook_receiver import receiver

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
ANALYTICS = str(ROOT / ".venv" / "bin" / "analytics")


def test_a_worker_killed_mid_delivery_leaves_it_to_the_next_one(tmp_path: Path) -> None:
    """The receiver holds the first request until the worker is killed; the retry after the
    lease carries the same webhook-id, verifies, and completes the delivery."""
    now = datetime.now(UTC)
    org, actor = uuid.uuid4(), Actor("key:admin", None, frozenset({ORG_ADMIN}))
    with (receiver([("sleep", 20), 204]) as r, fresh_postgres_database() as url,
          storage_at(url) as storage):
        uow, clock = storage.unit_of_work, ManualClock(now - timedelta(hours=1))
        budgets.create_budget(actor, org, {"name": "b", "amount": 1, "measure": "invocations",
                                           "thresholds": [100], "forecast": False},
                              uow_factory=uow, clock=clock, ids=SequentialIds(),
                              attribution=AttributionSettings())
        _, secret = webhooks.create_webhook(
            actor, org, {"url": r.url}, uow_factory=uow, clock=clock, ids=SequentialIds(50),
            sender=HttpWebhookSender(allow_private=True),
            policy=webhooks.WebhookPolicy(allow_private=True))
        ingest_batch([RawMessage(json.dumps({
            "eventId": str(uuid.uuid4()), "orgId": str(org), "modelId": str(uuid.uuid4()),
            "occurredAt": (now - timedelta(minutes=10)).isoformat(), "status": "success",
            "latencyMs": 5, "inputTokens": 1, "outputTokens": 1, "costEstimateCents": 1,
        }).encode())], source="test", uow_factory=uow, clock=ManualClock(now),
            ids=SequentialIds(100))
        env = {**os.environ, "ANALYTICS_DATABASE_URL": url.render_as_string(
            hide_password=False), "ANALYTICS_WEBHOOK_ALLOW_PRIVATE": "true",
            "ANALYTICS_WEBHOOK_TIMEOUT_SECONDS": "60", "ANALYTICS_DATA_DIR": str(tmp_path)}
        worker = subprocess.Popen([ANALYTICS, "alerts", "--once"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not r.received and time.monotonic() < deadline and worker.poll() is None:
            time.sleep(0.05)
        assert r.received, worker.communicate(timeout=5)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
        later = ManualClock(datetime.now(UTC) + DELIVERY_LEASE + timedelta(seconds=1))
        again = budgets.evaluate_budgets(uow_factory=uow, clock=later,
                                         progress=SynchronousPipeline(), ids=SequentialIds(200))
        assert again.fired == ()  # the killed worker's alert stands, and only it
        done = webhooks.deliver_due(uow_factory=uow, clock=later,
                                    sender=HttpWebhookSender(allow_private=True))
        assert (done.attempted, done.succeeded) == (1, 1)
        page = budgets.list_alerts(org, uow_factory=uow)
        (endpoint,) = webhooks.list_webhooks(org, uow_factory=uow)
        log = webhooks.list_deliveries(org, endpoint.endpoint_id, uow_factory=uow)
        first, second = r.received
    assert [a.threshold for a in page.alerts] == [100]
    ((delivery, attempts),) = log.deliveries
    assert delivery.status is DeliveryStatus.SUCCEEDED
    assert [(a.number, a.outcome) for a in attempts] == [
        (1, AttemptOutcome.INTERRUPTED), (2, AttemptOutcome.SUCCEEDED)]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    Webhook(secret).verify(second.body, second.headers)
