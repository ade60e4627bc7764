"""OpenTelemetry tracing: configured from ANALYTICS_OTEL_EXPORTER, a no-op when it is unset.

`configure_tracing()` installs an SDK tracer provider for `console` (spans as JSON on stdout)
or `otlp` (OTLP over HTTP; needs the `opentelemetry-exporter-otlp-proto-http` package and the
standard `OTEL_EXPORTER_OTLP_*` variables). Without it the global provider is OpenTelemetry's
no-op one: spans cost almost nothing and nothing is exported or can fail.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

EXPORTER_ENV = "ANALYTICS_OTEL_EXPORTER"
EXPORTERS = ("none", "console", "otlp")
SERVICE_NAME = "analytics"
TRACER_NAME = "analytics_app"
_OTLP_MODULE = "opentelemetry.exporter.otlp.proto.http.trace_exporter"


class TracingConfigError(ValueError):
    """ANALYTICS_OTEL_EXPORTER names an unknown exporter or one that is not installed."""


def exporter_name(environ: Mapping[str, str] | None = None) -> str:
    """The configured exporter (`none` when unset); raises TracingConfigError when unknown."""
    value = (os.environ if environ is None else environ).get(EXPORTER_ENV, "").strip().lower()
    name = value or "none"
    if name not in EXPORTERS:
        raise TracingConfigError(f"{EXPORTER_ENV}: must be one of {', '.join(EXPORTERS)}")
    return name


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    try:
        module = importlib.import_module(_OTLP_MODULE)
    except ImportError as e:
        raise TracingConfigError(
            f"{EXPORTER_ENV}=otlp needs the opentelemetry-exporter-otlp-proto-http package"
        ) from e
    exporter: SpanExporter = module.OTLPSpanExporter()
    return exporter


def configure_tracing(
    environ: Mapping[str, str] | None = None, *, exporter: SpanExporter | None = None,
) -> TracerProvider | None:
    """Install a tracer provider when an exporter is configured (or passed); None otherwise.

    Call once per process (after a gunicorn fork: the batch processor owns a thread).
    """
    name = exporter_name(environ)
    if exporter is None and name == "none":
        return None
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
    provider.add_span_processor(BatchSpanProcessor(exporter or _exporter(name)))
    trace.set_tracer_provider(provider)
    return provider


def tracer() -> trace.Tracer:
    """The product's tracer (no-op until a provider is configured)."""
    return trace.get_tracer(TRACER_NAME)


def extract_context(carrier: Mapping[str, str]) -> otel_context.Context:
    """The W3C trace context (traceparent/tracestate) carried by headers or event metadata."""
    return propagate.extract(dict(carrier))


def tracing_enabled() -> bool:
    """Whether an SDK tracer provider is installed (spans are recorded and exported)."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


_TRACE_KEYS = ("traceparent", "tracestate")


def _metadata(payload: object) -> object:
    if isinstance(payload, bytes | str):
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        if "traceparent" not in text:
            return None  # the common case costs no JSON parse
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    return payload.get("metadata") if isinstance(payload, Mapping) else None


def event_trace_contexts(payloads: Iterable[object]) -> list[dict[str, str]]:
    """The producer trace contexts (`metadata.traceparent`/`tracestate`) of event payloads
    (mappings, or JSON text/bytes as read from the stream); empty when tracing is off."""
    if not tracing_enabled():
        return []
    carriers = []
    for payload in payloads:
        metadata = _metadata(payload)
        if isinstance(metadata, Mapping) and isinstance(metadata.get("traceparent"), str):
            carriers.append({k: metadata[k] for k in _TRACE_KEYS
                             if isinstance(metadata.get(k), str)})
    return carriers


def _links(carriers: Iterable[Mapping[str, str]]) -> list[trace.Link]:
    links = []
    for carrier in carriers:
        span_context = trace.get_current_span(extract_context(carrier)).get_span_context()
        if span_context.is_valid:
            links.append(trace.Link(span_context))
    return links


@contextlib.contextmanager
def ingest_batch_span(
    source: str, size: int, producer_contexts: Iterable[Mapping[str, str]] = (),
) -> Iterator[trace.Span]:
    """A span around one ingest batch, linked to each producer trace context that was sent."""
    attributes: dict[str, Any] = {"analytics.ingest.source": source,
                                  "analytics.ingest.batch_size": size}
    with tracer().start_as_current_span(
        "ingest batch", kind=trace.SpanKind.CONSUMER, attributes=attributes,
        links=_links(producer_contexts),
    ) as span:
        yield span


def _before_execute(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
    span = tracer().start_span(
        statement.split(None, 1)[0].upper() if statement.strip() else "SQL",
        kind=trace.SpanKind.CLIENT,
        attributes={"db.system": conn.engine.dialect.name, "db.statement": statement[:1000]},
    )
    conn.info.setdefault("analytics_spans", []).append(span)


def _after_execute(conn: Any, *_args: Any) -> None:
    stack = conn.info.get("analytics_spans")
    if stack:
        stack.pop().end()


def _on_error(context: Any) -> None:
    stack = context.connection.info.get("analytics_spans") if context.connection else None
    if stack:
        span = stack.pop()
        span.set_status(trace.Status(trace.StatusCode.ERROR, type(context.original_exception)
                                     .__name__))
        span.end()


def instrument_engine(engine: Any) -> None:
    """One CLIENT span per SQL statement of a SQLAlchemy engine (statement text, no params)."""
    from sqlalchemy import event  # noqa: PLC0415  only the SQL modes need SQLAlchemy

    event.listen(engine, "before_cursor_execute", _before_execute)
    event.listen(engine, "after_cursor_execute", _after_execute)
    event.listen(engine, "handle_error", _on_error)
