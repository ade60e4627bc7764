"""The alerts worker loop: each pass reads every current period and the closed periods of the
late lookback for one org in ten, in turn (a deferred pass keeps its turn); due webhooks go out
before and right after each pass; a failing pass is counted and never ends the loop."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from analytics_app.observability import metrics
from analytics_app.workers import alerts as worker_module
from analytics_app.workers.alerts import AlertWorker
from analytics_core.freshness import Freshness
from analytics_core.usecases.budgets import Evaluation
from analytics_core.usecases.webhooks import DeliveryRound


class Recorder:
    """Stands in for the bound use cases (the loop's logic is what is tested here)."""

    def __init__(self) -> None:
        self.passes: list[object] = []
        self.deliveries = 0
        self.deferred: Freshness | None = None

    def evaluate(self, closed: object) -> Evaluation:
        self.passes.append(closed)
        return Evaluation(1, (), self.deferred)

    def deliver(self) -> DeliveryRound:
        self.deliveries += 1
        return DeliveryRound(0, 0, 0, ())


def test_each_pass_reads_the_closed_periods_of_one_org_in_ten(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Slots 0, 1, 2 in turn, one per pass; a deferred pass does not use up its slot."""
    now = [1000.0]
    monkeypatch.setattr(worker_module.time, "monotonic", lambda: now[0])
    r = Recorder()
    loop = AlertWorker(r.evaluate, deliver=r.deliver, interval_seconds=30)
    loop.tick()
    now[0] += 30
    r.deferred = Freshness.at(datetime(2026, 12, 4, 12, tzinfo=UTC),
                              datetime(2026, 12, 4, 11, 40, tzinfo=UTC))
    loop.tick()
    now[0] += 30
    r.deferred = None
    loop.tick()
    now[0] += 10  # before the interval: webhooks only
    loop.tick()
    assert r.passes == [(0, 10), (1, 10), (1, 10)]
    assert r.deliveries == 7  # before and after each pass, and the tick without one
    assert loop.run_round(closed=True) is not None
    assert r.passes[-1] is True


def test_a_failing_pass_is_counted_and_the_loop_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception in a pass is logged and retried; stop() ends the loop."""
    calls: list[object] = []

    def evaluate(closed: object) -> Evaluation:
        calls.append(closed)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        loop.stop()
        return Evaluation(0, (), None)

    before = metrics.ALERT_EVALUATIONS.labels("failed")._value.get()
    loop = AlertWorker(evaluate, interval_seconds=0.05, poll_seconds=0.01)
    monkeypatch.setattr(worker_module, "MAX_ERROR_BACKOFF_SECONDS", 0.01)
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(calls) == 2
    assert metrics.ALERT_EVALUATIONS.labels("failed")._value.get() == before + 1
