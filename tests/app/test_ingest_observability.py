"""Ingest batches are traced (linked to producers' trace contexts) and logged with their id."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import uuid
from datetime import datetime
from typing import Any

import falcon.testing
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from analytics_adapters.memory import ManualClock
from analytics_adapters.system import RandomIds
from analytics_app.stream.partition import PartitionWorker
from analytics_app.stream.settings import ConsumerSettings
from analytics_app.stream.status import ConsumerStatus, StreamMetrics
from analytics_core.ports import UnitOfWorkFactory
from tests.app.conftest import NOW, PREFIX
from tests.ops.tracing_spans import TRACE_ID, TRACEPARENT, finished, spans
from tests.wiring import stream_ingest

__all__ = ["spans"]  # the shared span fixture


def _ingest_span(exporter: InMemorySpanExporter) -> Any:
    (span,) = [s for s in finished(exporter) if s.name == "ingest batch"]
    return span


def test_http_ingest_span_links_each_events_traceparent(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    make_event: Any, spans: InMemorySpanExporter,
) -> None:
    """POST /events runs in an `ingest batch` span linked to metadata.traceparent, with its id."""
    events = [make_event(org_a, metadata={"traceparent": TRACEPARENT}), make_event(org_a)]
    result = client.simulate_post(f"{PREFIX}/events", json={"events": events},
                                  headers=admin_of_a)
    assert result.status_code == 202
    span = _ingest_span(spans)
    assert [format(link.context.trace_id, "032x") for link in span.links] == [TRACE_ID]
    assert span.attributes["analytics.ingest.source"] == "http"
    assert span.attributes["analytics.ingest.batch_size"] == 2
    assert span.attributes["analytics.ingest.batch_id"] == result.json["batchId"]


def test_http_ingest_log_line_carries_the_batch_id(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    make_event: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    """The `ingested http batch` line has the response's batch id as a structured field."""
    with caplog.at_level(logging.INFO):
        result = client.simulate_post(f"{PREFIX}/events", json={"events": [make_event(org_a)]},
                                      headers=admin_of_a)
    (record,) = [r for r in caplog.records if r.getMessage().startswith("ingested http batch")]
    assert getattr(record, "batch_id") == result.json["batchId"]  # noqa: B009  an extra field


class _Chunk:
    def __init__(self, bodies: tuple[bytes, ...]) -> None:
        self.first_offset, self.timestamp, self.bodies = 0, NOW, bodies
        self.retention_skipped = 0

    timestamp: datetime


class _OneChunkReader:
    """Hands out one chunk, then nothing."""

    def __init__(self, bodies: tuple[bytes, ...]) -> None:
        self._chunks = [_Chunk(bodies)]
        self.buffered = 0

    async def open(self) -> None:
        """Nothing to open."""

    async def next_chunk(self, timeout: float) -> _Chunk | None:
        """The chunk once, then None after a short wait."""
        if self._chunks:
            return self._chunks.pop()
        await asyncio.sleep(min(timeout, 0.01))
        return None

    async def close(self) -> None:
        """Nothing to close."""


def _consume_one_chunk(uow_factory: UnitOfWorkFactory, bodies: tuple[bytes, ...]) -> None:
    worker = PartitionWorker(
        "usage-0", **stream_ingest(uow_factory, ManualClock(NOW), RandomIds()),
        readers=lambda _stream, _offset: _OneChunkReader(bodies),
        settings=ConsumerSettings(batch_size=len(bodies), batch_max_wait=0.01),
        status=ConsumerStatus(), metrics=StreamMetrics(),
    )

    async def run() -> None:
        task = asyncio.create_task(worker.run())
        while worker.committed is None:
            await asyncio.sleep(0.005)
        worker.stop()
        await task

    asyncio.run(run())


def test_stream_batch_span_links_traceparents_and_log_line_has_batch_id(
    uow_factory: UnitOfWorkFactory, org_a: uuid.UUID, make_event: Any,
    spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture,
) -> None:
    """A committed stream batch is one span linked to its events' contexts; its line has the id."""
    bodies = (json.dumps(make_event(org_a, metadata={"traceparent": TRACEPARENT})).encode(),
              json.dumps(make_event(org_a)).encode())
    with caplog.at_level(logging.DEBUG, logger="analytics_app.stream.partition"):
        _consume_one_chunk(uow_factory, bodies)
    span = _ingest_span(spans)
    assert [format(link.context.trace_id, "032x") for link in span.links] == [TRACE_ID]
    assert span.attributes["analytics.ingest.source"] == "stream:usage-0"
    (record,) = [r for r in caplog.records if "committed through offset" in r.getMessage()]
    assert getattr(record, "batch_id") == span.attributes["analytics.ingest.batch_id"]  # noqa: B009


NO_PROVIDER_SCRIPT = f"""
from analytics_app.observability import tracing
payloads = [{{"metadata": {{"traceparent": "{TRACEPARENT}"}}}}]
assert not tracing.tracing_enabled()
assert tracing.event_trace_contexts(payloads) == []
with tracing.ingest_batch_span("http", 1, []) as span:
    assert not span.is_recording()
print("ok")
"""


def test_ingest_spans_are_a_no_op_without_a_configured_exporter() -> None:
    """With no tracer provider, no trace context is even parsed and the span records nothing."""
    out = subprocess.run([sys.executable, "-c", NO_PROVIDER_SCRIPT], capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.strip() == "ok"
