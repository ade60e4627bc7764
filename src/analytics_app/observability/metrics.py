"""Prometheus metrics of the product; multi-process safe under gunicorn.

When `PROMETHEUS_MULTIPROC_DIR` is set before this module is imported (the gunicorn entry does
that), every worker writes its values to that directory and `render()` aggregates them with
a `MultiProcessCollector`; gunicorn's `child_exit` hook must call `mark_process_dead(pid)`.
"""

from __future__ import annotations

import os
import uuid
import weakref
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from analytics_core.errors import StoreUnavailable
from analytics_core.exports import ExportJob, ExportStatus
from analytics_core.freshness import FreshnessMarker
from analytics_core.ports import FreshnessCache
from analytics_core.usecases.ingest import BatchResult

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_CSV_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0)

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds", "Time to produce an HTTP response, by route template.",
    ["method", "route"], buckets=_LATENCY_BUCKETS,
)
INGESTED_EVENTS = Counter(
    "analytics_ingestion_events_total", "Ingested events by result (accepted|duplicate|rejected).",
    ["result"],
)
DEDUPE_CONFLICTS = Counter(
    "analytics_ingestion_dedupe_conflicts_total",
    "Duplicate events whose content differs from the first accepted version.",
)
BATCH_DURATION = Histogram(
    "analytics_ingestion_batch_duration_seconds", "Time to ingest one batch in one transaction.",
    buckets=_BATCH_BUCKETS,
)
FRESHNESS_LAG = Gauge(
    "analytics_freshness_lag_seconds", "Pipeline lag (now - completeThrough) last observed.",
    multiprocess_mode="livemax",
)
EXPORTS_RESTATED = Counter(
    "analytics_exports_restated_total",
    "Closed periods (scheduled monthly files, exports made with close) whose numbers changed "
    "after they were filed: one per adjustment file created (docs/exports.md).",
)
EXPORT_JOBS = Counter(
    "analytics_export_jobs_total",
    "Export jobs entering a status (pending when created; succeeded/failed/expired by workers).",
    ["status"],
)
EXPORT_CSV_DURATION = Histogram(
    "analytics_export_csv_generation_duration_seconds", "Time to generate and upload one export.",
    buckets=_CSV_BUCKETS,
)

EXPORT_ATTEMPTS = Counter(
    "analytics_export_attempts_total", "Export job runs (each claim of a job is one attempt).",
)
EXPORT_CONSECUTIVE_FAILURES = Gauge(
    "analytics_export_consecutive_failures",
    "Export jobs failed for good in a row by this worker since its last success.",
    multiprocess_mode="livemax",
)
DEAD_LETTERS = Counter(
    "analytics_ingestion_dead_letters_total",
    "Rejected events stored as dead letters (each rejected event is one dead letter).",
)
ATTRIBUTION_OVERFLOW = Counter(
    "analytics_attribution_overflow_total",
    "Attribution values counted in (other) because their key had reached its cap of distinct "
    "values for the org and UTC day (ANALYTICS_ATTRIBUTION_VALUE_CAP).",
)
ALERT_EVALUATIONS = Counter(
    "analytics_alert_evaluations_total",
    "Budget evaluation passes by outcome (evaluated|deferred: freshness not fresh|failed).",
    ["outcome"],
)
ALERT_EVALUATION_DURATION = Histogram(
    "analytics_alert_evaluation_seconds", "Duration of one evaluation pass over every budget.",
)
BUDGET_VALUE_READS = Counter(
    "analytics_budget_value_reads_total",
    "Budget value reads of one org and kind of scope by evaluation passes: kept (settled days "
    "from the process's cache, only yesterday and today read) or full (every day read: a "
    "process's first pass, an org whose history changed).",
    ["source"],
)
ALERT_BUDGETS = Gauge(
    "analytics_alert_budgets", "Budgets seen by the last evaluation pass of this process.",
    multiprocess_mode="livemax",
)
ALERTS_FIRED = Counter(
    "analytics_alerts_fired_total",
    "Alerts fired by this process, by kind (threshold|forecast) and late (true|false).",
    ["kind", "late"],
)
RULE_TRANSITIONS = Counter(
    "analytics_rule_transitions_total",
    "Reliability rule transitions recorded by this process, by the state entered "
    "(firing|ok).",
    ["state"],
)
WEBHOOK_DELIVERIES = Counter(
    "analytics_webhook_deliveries_total",
    "Webhook delivery attempts by what they left the delivery in: succeeded, retrying (failed, "
    "retried later) or failed (failed for good: its 24 h of retries are over).",
    ["outcome"],
)
WEBHOOK_ATTEMPT_DURATION = Histogram(
    "analytics_webhook_attempt_seconds", "Duration of one webhook delivery attempt.",
)
CACHE_LOOKUPS = Counter(
    "analytics_freshness_cache_lookups_total",
    "Freshness cache lookups by result (hit|miss|error); misses and errors read the store.",
    ["result"],
)



class DbPoolCollector(Collector):
    """`analytics_db_pool_connections{state}`: connections of this process's SQL pools in use
    (checked out) and idle (checked in), read from the pools when scraped."""

    def __init__(self) -> None:
        self._engines: weakref.WeakSet[object] = weakref.WeakSet()

    def track(self, engine: object) -> None:
        """Report `engine`'s pool from now on (forgotten when the engine is garbage)."""
        self._engines.add(engine)

    def collect(self) -> Iterator[Metric]:
        """One gauge with state in_use and idle, summed over the tracked pools."""
        in_use = idle = 0
        for engine in list(self._engines):
            pool = getattr(engine, "pool", None)
            checked_out = getattr(pool, "checkedout", None)
            checked_in = getattr(pool, "checkedin", None)
            if callable(checked_out) and callable(checked_in):  # pools without counts: skipped
                in_use += int(checked_out())
                idle += int(checked_in())
        gauge = GaugeMetricFamily("analytics_db_pool_connections",
                                  "SQL pool connections of this process by state (in_use|idle).",
                                  labels=["state"])
        gauge.add_metric(["in_use"], in_use)
        gauge.add_metric(["idle"], idle)
        yield gauge


DB_POOL = DbPoolCollector()
REGISTRY.register(DB_POOL)


def track_pool(engine: object) -> None:
    """Expose the pool of a SQLAlchemy engine in `analytics_db_pool_connections`."""
    DB_POOL.track(engine)


EXPORT_STATUSES = ("pending", "succeeded", "failed", "retried", "expired")
INGEST_RESULTS = ("accepted", "duplicate", "rejected")
CACHE_RESULTS = ("hit", "miss", "error")

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one HTTP request; `route` must be a template, never a raw path."""
    label = method if method in KNOWN_METHODS else "OTHER"
    HTTP_REQUESTS.labels(label, route, str(status)).inc()
    HTTP_DURATION.labels(label, route).observe(seconds)


def observe_batch(result: BatchResult, seconds: float) -> None:
    """Count one ingested batch by per-event result, conflicts and duration."""
    for name, count in (
        ("accepted", result.accepted), ("duplicate", result.duplicates),
        ("rejected", result.rejected),
    ):
        if count:
            INGESTED_EVENTS.labels(name).inc(count)
    if result.conflicts:
        DEDUPE_CONFLICTS.inc(result.conflicts)
    if result.rejected:
        DEAD_LETTERS.inc(result.rejected)
    if result.attribution_overflow:
        ATTRIBUTION_OVERFLOW.inc(result.attribution_overflow)
    BATCH_DURATION.observe(seconds)


def observe_export_run(job: ExportJob, seconds: float) -> None:
    """Count one export attempt by what it ended in (a job back in pending is a retry)."""
    EXPORT_ATTEMPTS.inc()
    if job.status is ExportStatus.SUCCEEDED:
        EXPORT_JOBS.labels("succeeded").inc()
        EXPORT_CSV_DURATION.observe(seconds)
        EXPORT_CONSECUTIVE_FAILURES.set(0)
    elif job.status is ExportStatus.FAILED:
        EXPORT_JOBS.labels("failed").inc()
        EXPORT_CONSECUTIVE_FAILURES.inc()
    elif job.status is ExportStatus.PENDING:
        EXPORT_JOBS.labels("retried").inc()


def observe_freshness_lag(seconds: float) -> None:
    """Record the pipeline lag seen by a reader or the consumer."""
    FRESHNESS_LAG.set(seconds)


def observe_evaluation(outcome: str, seconds: float, budgets: int,
                       fired: Iterable[tuple[str, bool]], transitions: Iterable[str] = ()
                       ) -> None:
    """Count one evaluation pass, the alerts it fired ((kind, late) each) and the rule
    transitions it recorded (the state entered, each)."""
    ALERT_EVALUATIONS.labels(outcome).inc()
    ALERT_EVALUATION_DURATION.observe(seconds)
    ALERT_BUDGETS.set(budgets)
    for kind, late in fired:
        ALERTS_FIRED.labels(kind, "true" if late else "false").inc()
    for state in transitions:
        RULE_TRANSITIONS.labels(state).inc()


def observe_budget_reads(kept: int, full: int) -> None:
    """Count one pass's budget value reads by where settled values came from."""
    BUDGET_VALUE_READS.labels("kept").inc(kept)
    BUDGET_VALUE_READS.labels("full").inc(full)


def observe_delivery(outcome: str, seconds: float) -> None:
    """Count one webhook attempt by the state it left its delivery in."""
    WEBHOOK_DELIVERIES.labels(outcome).inc()
    WEBHOOK_ATTEMPT_DURATION.observe(seconds)


def observe_restated_close() -> None:
    """Count a closed period restated after close (an adjustment created)."""
    EXPORTS_RESTATED.inc()


def observe_export_job(status: str) -> None:
    """Count an export job entering `status`."""
    EXPORT_JOBS.labels(status).inc()


class CountingFreshnessCache:
    """A FreshnessCache that counts hits, misses and errors of the cache it wraps."""

    def __init__(self, inner: FreshnessCache) -> None:
        self.inner = inner

    def get(self, org_id: uuid.UUID) -> list[FreshnessMarker] | None:
        """Delegate and count; StoreUnavailable is counted as an error and re-raised."""
        try:
            found = self.inner.get(org_id)
        except StoreUnavailable:
            CACHE_LOOKUPS.labels("error").inc()
            raise
        CACHE_LOOKUPS.labels("miss" if found is None else "hit").inc()
        return found

    def put(self, org_id: uuid.UUID, markers: Sequence[FreshnessMarker], ttl: timedelta) -> None:
        """Delegate."""
        self.inner.put(org_id, markers, ttl)

    def invalidate(self, org_ids: Iterable[uuid.UUID]) -> None:
        """Delegate."""
        self.inner.invalidate(org_ids)

    def __getattr__(self, name: str) -> object:
        # Health probes and close() of the wrapped adapter stay reachable.
        return getattr(self.inner, name)


def _initialise_labels() -> None:
    """Expose every known label value at 0, so rates and alerts see the series from the start."""
    for status in EXPORT_STATUSES:
        EXPORT_JOBS.labels(status)
    for result in INGEST_RESULTS:
        INGESTED_EVENTS.labels(result)
    for result in CACHE_RESULTS:
        CACHE_LOOKUPS.labels(result)
    for outcome in ("evaluated", "deferred", "failed"):
        ALERT_EVALUATIONS.labels(outcome)
    for outcome in ("succeeded", "retrying", "failed"):
        WEBHOOK_DELIVERIES.labels(outcome)
    for source in ("kept", "full"):
        BUDGET_VALUE_READS.labels(source)
    for state in ("firing", "ok"):
        RULE_TRANSITIONS.labels(state)
    for kind in ("threshold", "forecast"):
        for late in ("true", "false"):
            ALERTS_FIRED.labels(kind, late)


_initialise_labels()


def render() -> tuple[bytes, str]:
    """The exposition text and its content type (aggregated across workers when multi-process)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(DB_POOL)  # the pools of the process answering the scrape
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Gunicorn `child_exit` hook: drop a dead worker's live gauges (multi-process mode only)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
