"""Budgets over stream ingestion (SPEC §13): while the consumer is stopped and the published
events wait in the streams (freshness `delayed`), nothing fires and the budget says why; once a
consumer catches up, the crossing fires once."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from analytics_adapters.memory import ManualClock, SequentialIds
from analytics_adapters.rabbitmq import StreamRuntime
from analytics_adapters.sql import SqlStorage
from analytics_core.access import ORG_ADMIN, Actor
from analytics_core.attribution import AttributionSettings
from analytics_core.freshness import FreshnessStatus
from analytics_core.usecases import budgets
from tests.integration.stream_support import consume_all, publish, wait_until


def test_nothing_fires_on_delayed_data_and_the_crossing_fires_once_after(
    runtime: StreamRuntime, storage: SqlStorage,
) -> None:
    """40 events of 5 cents each, published but not consumed, cross a 100-cent day budget."""
    now = datetime.now(UTC)
    org = uuid.uuid4()
    budget = budgets.create_budget(
        Actor("key:admin", org, frozenset({ORG_ADMIN})), org,
        {"name": "day", "amount": 100, "measure": "reportedCost", "period": "day",
         "thresholds": [100], "forecast": False},
        uow_factory=storage.unit_of_work, clock=ManualClock(now - timedelta(minutes=5)),
        ids=SequentialIds(), attribution=AttributionSettings())
    at = max(now - timedelta(minutes=2), now.replace(hour=0, minute=0, second=0,
                                                     microsecond=0))
    publish(runtime, [json.dumps({
        "eventId": str(uuid.uuid4()), "orgId": str(org), "modelId": str(uuid.uuid4()),
        "occurredAt": at.isoformat(), "status": "success", "latencyMs": 20,
        "inputTokens": 10, "outputTokens": 5, "costEstimateCents": 5,
    }).encode() for _ in range(40)])
    published_by = datetime.now(UTC)
    progress = runtime.progress
    wait_until(lambda: progress.complete_through(datetime.now(UTC)) < published_by, 10,
               "progress to see the unconsumed messages")
    later = ManualClock(published_by + timedelta(minutes=11))  # lag past 600 s: delayed

    def evaluate() -> budgets.Evaluation:
        return budgets.evaluate_budgets(uow_factory=storage.unit_of_work, clock=later,
                                        progress=progress, ids=SequentialIds(1000))

    stalled = evaluate()
    assert stalled.fired == ()
    assert stalled.deferred is not None
    assert stalled.deferred.status is FreshnessStatus.DELAYED
    view = budgets.get_budget(org, budget.budget_id, uow_factory=storage.unit_of_work,
                              clock=later, progress=progress)
    assert view.state is budgets.BudgetState.DEFERRED
    consume_all(runtime, storage)
    wait_until(lambda: progress.complete_through(later.now()) == later.now(), 10,
               "progress to catch up")
    (alert,) = evaluate().fired
    assert (alert.threshold, alert.value) == (100, 200 * 10_000)
    assert evaluate().fired == ()
