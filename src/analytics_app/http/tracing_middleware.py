"""Falcon middleware: one SERVER span per request, continuing the caller's W3C trace context."""

from __future__ import annotations

from typing import Any

import falcon
from opentelemetry import context as otel_context
from opentelemetry import trace

from analytics_app.http.context import UNMATCHED_ROUTE, request_id_of
from analytics_app.observability import tracing

SERVER_ERROR = 500


class TracingMiddleware:
    """Starts the span in process_request and ends it in process_response (route template,
    status, request id as attributes; never the raw path's ids or any header value)."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Start the request span as a child of an incoming `traceparent`, if any."""
        parent = tracing.extract_context({k.lower(): v for k, v in req.headers.items()})
        span = tracing.tracer().start_span(
            req.method, context=parent, kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": req.method},
        )
        req.context.otel_span = span
        req.context.otel_token = otel_context.attach(trace.set_span_in_context(span, parent))

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        """Name the span by route template, record the status and end it."""
        span = getattr(req.context, "otel_span", None)
        if not isinstance(span, trace.Span):
            return
        route = req.uri_template or UNMATCHED_ROUTE
        span.update_name(f"{req.method} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", resp.status_code)
        request_id = request_id_of(req)
        if request_id is not None:
            span.set_attribute("analytics.request_id", request_id)
        if resp.status_code >= SERVER_ERROR:
            span.set_status(trace.Status(trace.StatusCode.ERROR))
        span.end()
        token = getattr(req.context, "otel_token", None)
        if token is not None:
            otel_context.detach(token)


def install_tracing(app: falcon.App[falcon.Request, falcon.Response]) -> bool:
    """Configure tracing from ANALYTICS_OTEL_EXPORTER and, when on, add the middleware.

    Returns whether tracing is on; with the variable unset the app is left untouched.
    """
    if tracing.configure_tracing() is None:
        return False
    app.add_middleware(TracingMiddleware())
    return True
