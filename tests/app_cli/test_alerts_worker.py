"""The alerts worker loop: the first pass re-reads the closed periods of the late lookback,
the next ones only the current periods until five minutes have passed; due webhooks go out
before and right after each pass; a failing pass is counted and never ends the loop."""

from __future__ import annotations

import threading

import pytest

from analytics_app.observability import metrics
from analytics_app.workers import alerts as worker_module
from analytics_app.workers.alerts import AlertWorker
from analytics_core.usecases.budgets import Evaluation
from analytics_core.usecases.webhooks import DeliveryRound


class Recorder:
    """Stands in for the bound use cases (the loop's logic is what is tested here)."""

    def __init__(self) -> None:
        self.passes: list[bool] = []
        self.deliveries = 0

    def evaluate(self, closed: bool) -> Evaluation:
        self.passes.append(closed)
        return Evaluation(1, (), None)

    def deliver(self) -> DeliveryRound:
        self.deliveries += 1
        return DeliveryRound(0, 0, 0, ())


def test_closed_periods_are_reread_every_five_minutes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pass 1 with closed periods, pass 2 without; past the interval, closed again."""
    now = [1000.0]
    monkeypatch.setattr(worker_module.time, "monotonic", lambda: now[0])
    r = Recorder()
    loop = AlertWorker(r.evaluate, deliver=r.deliver, interval_seconds=30)
    loop.tick()
    now[0] += 30
    loop.tick()
    now[0] += 300
    loop.tick()
    assert r.passes == [True, False, True]
    assert r.deliveries == 6  # before and after each pass


def test_a_failing_pass_is_counted_and_the_loop_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception in a pass is logged and retried; stop() ends the loop."""
    calls = []

    def evaluate(closed: bool) -> Evaluation:
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
