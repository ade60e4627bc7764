"""OpenTelemetry tracing: no-op when unconfigured; HTTP, SQL and ingest-batch spans when on."""

from __future__ import annotations

import falcon
import falcon.testing
import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from analytics_app.http.context import RequestContextMiddleware
from analytics_app.http.tracing_middleware import TracingMiddleware, install_tracing
from analytics_app.observability import tracing
from tests.ops.tracing_spans import PARENT_ID, TRACE_ID, TRACEPARENT, finished, spans

__all__ = ["spans"]  # the fixture, shared with other tracing tests

_finished = finished


class Thing:
    """A resource with a templated route."""

    def on_get(self, req: falcon.Request, resp: falcon.Response, thing_id: str) -> None:
        """Answer 200, or 500 for id `boom`."""
        resp.status = falcon.HTTP_500 if thing_id == "boom" else falcon.HTTP_200


def _app() -> falcon.App[falcon.Request, falcon.Response]:
    app: falcon.App[falcon.Request, falcon.Response] = falcon.App(
        middleware=[RequestContextMiddleware(), TracingMiddleware()])
    app.add_route("/things/{thing_id}", Thing())
    return app


def test_unset_exporter_configures_nothing_and_leaves_the_app_untouched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without ANALYTICS_OTEL_EXPORTER no provider is installed and no middleware is added."""
    monkeypatch.delenv(tracing.EXPORTER_ENV, raising=False)
    assert tracing.exporter_name() == "none"
    assert tracing.configure_tracing() is None
    app: falcon.App[falcon.Request, falcon.Response] = falcon.App()
    assert install_tracing(app) is False


def test_an_unknown_exporter_is_a_clear_configuration_error() -> None:
    """A typo in ANALYTICS_OTEL_EXPORTER names the variable and the allowed values."""
    with pytest.raises(tracing.TracingConfigError, match="ANALYTICS_OTEL_EXPORTER"):
        tracing.exporter_name({tracing.EXPORTER_ENV: "zipkinn"})


def test_a_request_span_continues_the_callers_trace_and_names_the_route(
    spans: InMemorySpanExporter,
) -> None:
    """The server span has the incoming trace id and parent, the route template and status."""
    client = falcon.testing.TestClient(_app())
    result = client.simulate_get("/things/42", headers={"traceparent": TRACEPARENT,
                                                         "X-Request-Id": "trace-req-1"})
    assert result.status_code == 200
    (span,) = _finished(spans)
    assert span.name == "GET /things/{thing_id}"
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/things/{thing_id}"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["analytics.request_id"] == "trace-req-1"


def test_a_server_error_marks_the_request_span_as_error(spans: InMemorySpanExporter) -> None:
    """A 500 response sets the span status to ERROR."""
    falcon.testing.TestClient(_app()).simulate_get("/things/boom")
    (span,) = _finished(spans)
    assert span.status.status_code.name == "ERROR"


def test_sql_statements_become_client_spans_under_the_current_span(
    spans: InMemorySpanExporter,
) -> None:
    """Each statement on an instrumented engine is a span, child of the span around it."""
    engine = sa.create_engine("sqlite://")
    tracing.instrument_engine(engine)
    with tracing.tracer().start_as_current_span("outer"), engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    engine.dispose()
    by_name = {s.name: s for s in _finished(spans)}
    select, outer = by_name["SELECT"], by_name["outer"]
    assert select.parent is not None
    assert select.parent.span_id == outer.context.span_id
    assert select.attributes is not None
    assert select.attributes["db.system"] == "sqlite"


def test_an_ingest_batch_span_links_the_producers_trace_contexts(
    spans: InMemorySpanExporter,
) -> None:
    """Valid producer contexts become links; events without one (or a broken one) are skipped."""
    carriers = [{"traceparent": TRACEPARENT}, {}, {"traceparent": "garbage"}]
    with tracing.ingest_batch_span("stream:analytics.usage.v1-0", 3, carriers):
        pass
    (span,) = _finished(spans)
    assert span.name == "ingest batch"
    assert [format(link.context.trace_id, "032x") for link in span.links] == [TRACE_ID]
    assert span.attributes is not None
    assert span.attributes["analytics.ingest.batch_size"] == 3
