"""Metrics and readiness of the stream consumer process (served by the status server)."""

from __future__ import annotations

import logging
import threading
from enum import StrEnum

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from analytics_core.usecases.ingest import BatchResult

log = logging.getLogger(__name__)


class PartitionState(StrEnum):
    """What one owned partition is doing."""

    STARTING = "starting"
    CONSUMING = "consuming"
    WAITING_FOR_DATABASE = "waiting_for_database"
    WAITING_FOR_BROKER = "waiting_for_broker"


class ConsumerStatus:
    """Thread-safe view of the consumer for readiness (the status server reads it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._partitions: dict[str, PartitionState] = {}
        self._errors: dict[str, str] = {}
        self.ownership_ok = True

    def set(self, stream: str, state: PartitionState, error: str | None = None) -> None:
        """Record a partition's state (and the error that caused a wait)."""
        with self._lock:
            self._partitions[stream] = state
            if error is None:
                self._errors.pop(stream, None)
            else:
                self._errors[stream] = error

    def forget(self, stream: str) -> None:
        """The partition is no longer owned here."""
        with self._lock:
            self._partitions.pop(stream, None)
            self._errors.pop(stream, None)

    def readiness(self) -> tuple[bool, dict[str, object]]:
        """Ready unless a partition waits for the database or broker, or ownership is lost."""
        with self._lock:
            waiting = {s: str(v) for s, v in self._partitions.items()
                       if v in (PartitionState.WAITING_FOR_DATABASE,
                                PartitionState.WAITING_FOR_BROKER)}
            detail: dict[str, object] = {
                "partitions": {s: str(v) for s, v in sorted(self._partitions.items())},
                "errors": dict(self._errors),
                "ownership": "ok" if self.ownership_ok else "unavailable",
            }
        return (not waiting and self.ownership_ok), detail


class StreamMetrics:
    """Prometheus series of the consumer, in their own registry (served by the status server)."""

    def __init__(self) -> None:
        # The consumer's whole metric catalogue, one declaration each, kept in one place so it
        # reads as the list (docs/operations.md names them; tests/ops checks the names).
        self.registry = CollectorRegistry()
        r = self.registry
        self.events = Counter("analytics_ingestion_events", "Stream events by result",
                              ["result"], registry=r)
        self.conflicts = Counter("analytics_ingestion_dedupe_conflicts",
                                 "Duplicates whose content differs from the first version",
                                 registry=r)
        self.attribution_overflow = Counter(
            "analytics_attribution_overflow",
            "Attribution values counted in (other): their key had reached its daily cap",
            registry=r)
        self.batch_duration = Histogram(
            "analytics_ingestion_batch_duration_seconds", "Time to commit one stream batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r)
        self.batch_size = Histogram("analytics_stream_batch_events", "Events per committed batch",
                                    buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000),
                                    registry=r)
        self.lag_messages = Gauge("analytics_stream_consumer_lag_messages",
                                  "Messages published and not yet committed", ["stream"],
                                  registry=r)
        self.lag_seconds = Gauge("analytics_stream_consumer_lag_seconds",
                                 "now - completeThrough of the pipeline", registry=r)
        self.freshness_lag = Gauge("analytics_freshness_lag_seconds",
                                   "Pipeline freshness lag (SPEC §4)", registry=r)
        self.committed = Gauge("analytics_stream_committed_offset",
                               "Last offset committed with its batch", ["stream"], registry=r)
        self.store_retries = Counter("analytics_stream_store_retries",
                                     "Batch commits retried because storage was unavailable",
                                     registry=r)
        self.offset_gaps = Counter(
            "analytics_stream_offset_gaps",
            "Chunks (where=reader) or batches (where=database) refused because they did not "
            "continue from the last offset; the partition was re-read from there", ["where"],
            registry=r)
        self.retention_skipped = Counter(
            "analytics_stream_retention_skipped_messages",
            "Messages deleted by stream retention before the consumer read them", registry=r)
        self.stalls = Counter(
            "analytics_stream_stalled_subscriptions",
            "Partitions resubscribed because nothing was delivered while the stream held more",
            registry=r)
        self.broker_retries = Counter("analytics_stream_broker_retries",
                                      "Reconnections to the broker", registry=r)
        self.waiting = Gauge("analytics_stream_partitions_waiting",
                             "Owned partitions waiting for the database or broker", ["reason"],
                             registry=r)
        self.owned = Gauge("analytics_stream_partitions_owned", "Partitions owned by this process",
                           registry=r)
        self.buffered = Gauge("analytics_stream_buffered_chunks",
                              "Chunks received and not yet taken (bounded by credit)", ["stream"],
                              registry=r)
        for result in ("accepted", "duplicate", "rejected"):  # series exist before events
            self.events.labels(result)
        for where in ("reader", "database"):
            self.offset_gaps.labels(where)
        for state in (PartitionState.WAITING_FOR_DATABASE, PartitionState.WAITING_FOR_BROKER):
            self.waiting.labels(str(state))

    def record_batch(self, result: BatchResult, seconds: float) -> None:
        """Count one committed batch."""
        self.events.labels("accepted").inc(result.accepted)
        self.events.labels("duplicate").inc(result.duplicates)
        self.events.labels("rejected").inc(result.rejected)
        self.conflicts.inc(result.conflicts)
        self.attribution_overflow.inc(result.attribution_overflow)
        self.batch_duration.observe(seconds)
        self.batch_size.observe(result.size)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)

    def render_page(self) -> tuple[bytes, str]:
        """(the text exposition, its content type), as the status server serves it."""
        return self.render(), CONTENT_TYPE_LATEST

