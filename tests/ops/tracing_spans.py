"""One process-wide in-memory span exporter for the tracing tests (a provider is set once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from analytics_app.observability import tracing

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"

_EXPORTER = InMemorySpanExporter()
_PROVIDER: list[TracerProvider] = []


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The process-wide provider (set once: OpenTelemetry refuses a second) with a clean
    in-memory exporter."""
    if not _PROVIDER:
        provider = tracing.configure_tracing({}, exporter=_EXPORTER)
        assert provider is not None
        _PROVIDER.append(provider)
    _PROVIDER[0].force_flush()  # spans of earlier tests still queued go before the clear
    _EXPORTER.clear()
    yield _EXPORTER
    _PROVIDER[0].force_flush()
    _EXPORTER.clear()


def finished(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, ...]:
    """The spans ended so far (after flushing the batch processor)."""
    _PROVIDER[0].force_flush()
    return exporter.get_finished_spans()
