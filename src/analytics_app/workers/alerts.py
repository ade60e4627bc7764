"""Alerts worker: evaluates every budget at least once a minute and delivers the webhooks that
are due, until stopped (SPEC §13).

Safe to run any number of times at once (`analytics alerts` processes and the loops embedded in
`serve`): a threshold fires once per budget and period whoever evaluates it, because the alert
store keeps one alert per identity, and a delivery is sent by the worker holding its lease.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from analytics_app.observability import metrics
from analytics_core.usecases.budgets import Closed, Evaluation
from analytics_core.usecases.webhooks import DeliveryRound
from analytics_core.webhooks import DeliveryStatus

log = logging.getLogger("analytics.alerts")

DEFAULT_INTERVAL_SECONDS = 30.0
CLOSED_PERIOD_SLOTS = 10  # each pass re-reads the closed periods of one org in ten
DEFAULT_POLL_SECONDS = 2.0
MAX_ERROR_BACKOFF_SECONDS = 60.0
MAX_DELIVERY_ROUNDS_PER_TICK = 10


def _no_deliveries() -> DeliveryRound:
    return DeliveryRound(0, 0, 0, ())


class AlertWorker:
    """Every `poll_seconds`: deliver due webhooks; every `interval_seconds`: one evaluation
    pass. Errors are logged, retried with backoff, and never end the loop. `stop()` ends it
    after the work in hand."""

    def __init__(self, evaluate: Callable[[Closed], Evaluation], *,
                 deliver: Callable[[], DeliveryRound] = _no_deliveries,
                 interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
                 poll_seconds: float = DEFAULT_POLL_SECONDS) -> None:
        self._evaluate = evaluate
        self._deliver = deliver
        self._interval = interval_seconds
        self._poll = min(poll_seconds, interval_seconds)
        self._stopping = threading.Event()
        self._next_evaluation = 0.0  # monotonic seconds; 0 evaluates at once
        self._passes = 0  # passes so far: which share of orgs reads its closed periods

    @property
    def stopping(self) -> bool:
        """Whether stop() was requested."""
        return self._stopping.is_set()

    def stop(self) -> None:
        """Ask the loop to return after the work in hand (callable from a signal handler)."""
        self._stopping.set()

    def run_round(self, closed: Closed | None = None) -> Evaluation:
        """One evaluation pass, counted in the metrics and logged when it fires or defers.
        Every budget's current period is read; the closed periods of the late lookback of
        the orgs `closed` says, by default one org in CLOSED_PERIOD_SLOTS, in turn (so each
        org's in every 10 passes: 5 minutes at the default interval)."""
        if closed is None:
            closed = (self._passes % CLOSED_PERIOD_SLOTS, CLOSED_PERIOD_SLOTS)
        started = time.perf_counter()
        try:
            result = self._evaluate(closed)
        except Exception:
            metrics.observe_evaluation("failed", time.perf_counter() - started, 0, ())
            raise
        if result.deferred is None:  # a deferred pass read nothing: its share goes next
            self._passes += 1
        outcome = "deferred" if result.deferred is not None else "evaluated"
        metrics.observe_evaluation(outcome, time.perf_counter() - started, result.budgets,
                                   ((a.kind.value, a.late) for a in result.fired),
                                   (t.state.value for t in result.transitions))
        for alert in result.fired:
            log.info("budget %s fired %s %d%% for the period from %s%s", alert.budget_id,
                     alert.kind.value, alert.threshold, alert.period_start.isoformat(),
                     " (late)" if alert.late else "",
                     extra={"org_id": str(alert.org_id), "alert_id": str(alert.alert_id)})
        for t in result.transitions:
            log.info("reliability rule %s %s (transition %d, value %d)", t.rule_id,
                     "fired" if t.state.value == "firing" else "resolved", t.number, t.value,
                     extra={"org_id": str(t.org_id), "alert_id": str(t.transition_id)})
        if result.deferred is not None and (result.budgets or result.rules):
            log.warning("budget evaluation deferred: freshness is %s (complete through %s)",
                        result.deferred.status.value,
                        result.deferred.complete_through.isoformat())
        return result

    def deliver(self) -> int:
        """Deliver due webhooks until none is due (at most 10 claims); how many were sent."""
        sent = 0
        for _ in range(MAX_DELIVERY_ROUNDS_PER_TICK):
            if self.stopping:
                break
            done = self._deliver()
            for delivery, attempt in done.results:
                metrics.observe_delivery(delivery.status.value if delivery.status
                                         is not DeliveryStatus.PENDING else "retrying",
                                         attempt.seconds or 0.0)
                if delivery.status is DeliveryStatus.FAILED:
                    log.warning("webhook delivery %s to endpoint %s failed for good after %d "
                                "attempts: %s", delivery.delivery_id, delivery.endpoint_id,
                                delivery.attempts, delivery.last_error,
                                extra={"org_id": str(delivery.org_id)})
            sent += done.attempted
            if not done.attempted:
                break
        return sent

    def tick(self) -> None:
        """Deliver what is due, then evaluate when the interval has passed."""
        self.deliver()
        if time.monotonic() >= self._next_evaluation and not self.stopping:
            self.run_round()
            self._next_evaluation = time.monotonic() + self._interval
            self.deliver()  # what this pass fired goes out at once

    def run_forever(self) -> None:
        """Loop until stop(); never raises."""
        backoff = 1.0
        log.info("alerts worker started (evaluating every %.0f s)", self._interval)
        while not self.stopping:
            try:
                self.tick()
            except Exception:
                log.exception("alerts worker round failed; retrying in %.1f s", backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_ERROR_BACKOFF_SECONDS)
                continue
            backoff = 1.0
            self._stopping.wait(self._poll)
        log.info("alerts worker stopped")
