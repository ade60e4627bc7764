"""Alerts worker: evaluates every budget at least once a minute until stopped (SPEC §13).

Safe to run any number of times at once (`analytics alerts` processes and the loops embedded in
`serve`): a threshold fires once per budget and period whoever evaluates it, because the alert
store keeps one alert per identity.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from analytics_app.observability import metrics
from analytics_core.usecases.budgets import Evaluation

log = logging.getLogger("analytics.alerts")

DEFAULT_INTERVAL_SECONDS = 30.0
MAX_ERROR_BACKOFF_SECONDS = 60.0


class AlertWorker:
    """Runs an evaluation pass every `interval_seconds`; errors are logged, retried with
    backoff, and never end the loop. `stop()` ends it after the pass in hand."""

    def __init__(self, evaluate: Callable[[], Evaluation], *,
                 interval_seconds: float = DEFAULT_INTERVAL_SECONDS) -> None:
        self._evaluate = evaluate
        self._interval = interval_seconds
        self._stopping = threading.Event()

    @property
    def stopping(self) -> bool:
        """Whether stop() was requested."""
        return self._stopping.is_set()

    def stop(self) -> None:
        """Ask the loop to return after the pass in hand (callable from a signal handler)."""
        self._stopping.set()

    def run_round(self) -> Evaluation:
        """One evaluation pass, counted in the metrics and logged when it fires or defers."""
        started = time.perf_counter()
        try:
            result = self._evaluate()
        except Exception:
            metrics.observe_evaluation("failed", time.perf_counter() - started, 0, ())
            raise
        outcome = "deferred" if result.deferred is not None else "evaluated"
        metrics.observe_evaluation(outcome, time.perf_counter() - started, result.budgets,
                                   ((a.kind.value, a.late) for a in result.fired))
        for alert in result.fired:
            log.info("budget %s fired %s %d%% for the period from %s%s", alert.budget_id,
                     alert.kind.value, alert.threshold, alert.period_start.isoformat(),
                     " (late)" if alert.late else "",
                     extra={"org_id": str(alert.org_id), "alert_id": str(alert.alert_id)})
        if result.deferred is not None and result.budgets:
            log.warning("budget evaluation deferred: freshness is %s (complete through %s)",
                        result.deferred.status.value,
                        result.deferred.complete_through.isoformat())
        return result

    def run_forever(self) -> None:
        """Loop until stop(); never raises."""
        backoff = 1.0
        log.info("alerts worker started (every %.0f s)", self._interval)
        while not self.stopping:
            try:
                self.run_round()
            except Exception:
                log.exception("budget evaluation failed; retrying in %.1f s", backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_ERROR_BACKOFF_SECONDS)
                continue
            backoff = 1.0
            self._stopping.wait(self._interval)
        log.info("alerts worker stopped")
