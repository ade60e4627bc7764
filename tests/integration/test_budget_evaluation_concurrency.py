"""Budget evaluation on PostgreSQL with several evaluators at once (SPEC §13): three alerts
workers evaluate while 200 late events cross the thresholds of a closed day concurrently;
every threshold fires exactly once, marked late."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from analytics_adapters.memory.clock import ManualClock
from analytics_adapters.memory.pipeline import SynchronousPipeline
from analytics_adapters.system import RandomIds
from analytics_core.access import ORG_ADMIN, Actor
from analytics_core.attribution import AttributionSettings
from analytics_core.usecases import budgets
from analytics_core.usecases.ingest import RawMessage, ingest_batch
from tests.integration.sql_support import fresh_storage

pytestmark = pytest.mark.postgres


def test_three_evaluators_and_200_late_events_fire_each_threshold_once() -> None:
    """Yesterday's 100-cent day budget: 200 late events of 1 cent arrive in 20 batches while
    three threads evaluate in a loop; 25/50/100/150/200 % fire once each, all late."""
    clock = ManualClock(datetime(2026, 12, 2, 23, 0, tzinfo=UTC))
    org, model = uuid.uuid4(), uuid.uuid4()
    with fresh_storage("postgres") as storage:
        budget = budgets.create_budget(
            Actor("key:x", org, frozenset({ORG_ADMIN})), org,
            {"name": "day", "amount": 100, "measure": "reportedCost", "period": "day",
             "thresholds": [25, 50, 100, 150, 200], "forecast": False},
            uow_factory=storage.unit_of_work, clock=clock, ids=RandomIds(),
            attribution=AttributionSettings())
        clock.set(datetime(2026, 12, 3, 0, 30, tzinfo=UTC))
        done = threading.Event()
        fired: list[budgets.Alert] = []
        lock = threading.Lock()

        def evaluate() -> None:
            while True:
                last = done.is_set()
                result = budgets.evaluate_budgets(
                    uow_factory=storage.unit_of_work, clock=clock,
                    progress=SynchronousPipeline(), ids=RandomIds())
                with lock:
                    fired.extend(result.fired)
                if last:
                    return

        threads = [threading.Thread(target=evaluate) for _ in range(3)]
        for t in threads:
            t.start()
        late = datetime(2026, 12, 2, 12, tzinfo=UTC)
        for batch in range(20):
            ingest_batch([RawMessage(json.dumps({
                "eventId": str(uuid.uuid4()), "orgId": str(org), "modelId": str(model),
                "occurredAt": (late + timedelta(seconds=batch * 10 + i)).isoformat(),
                "status": "success", "latencyMs": 5, "inputTokens": 1, "outputTokens": 1,
                "costEstimateCents": 1}).encode()) for i in range(10)],
                source="test", uow_factory=storage.unit_of_work, clock=clock, ids=RandomIds())
        done.set()
        for t in threads:
            t.join()
        assert sorted(a.threshold for a in fired) == [25, 50, 100, 150, 200]
        assert all(a.late for a in fired)
        page = budgets.list_alerts(org, uow_factory=storage.unit_of_work)
        assert sorted(a.threshold for a in page.alerts) == [25, 50, 100, 150, 200]
        assert {a.budget_id for a in page.alerts} == {budget.budget_id}
