"""`create_app(services)`: the Falcon WSGI application of the analytics API."""

from __future__ import annotations

from collections.abc import Mapping

import falcon

from analytics_app.bootstrap.services import AppServices
from analytics_app.http import problems
from analytics_app.http.auth import Authenticator, AuthMiddleware, Guard
from analytics_app.http.context import RequestContextMiddleware
from analytics_app.http.openapi import build_document
from analytics_app.http.resources.analytics import (
    FreshnessResource,
    ReliabilityResource,
    UsageResource,
)
from analytics_app.http.resources.events import EventsResource, ValidateResource
from analytics_app.http.resources.exports import (
    DownloadResource,
    ExportResource,
    ExportsResource,
)
from analytics_app.http.resources.status import (
    HealthResource,
    MetricsResource,
    OpenApiResource,
    ReadyResource,
)
from analytics_app.http.routes import PREFIX, ROUTES
from analytics_app.http.wiring import BoundUseCases
from analytics_app.observability import metrics

App = falcon.App[falcon.Request, falcon.Response]


def _resources(services: AppServices) -> Mapping[str, object]:
    uc = BoundUseCases(services)
    guard = Guard(services.authorizer)
    max_body = services.http.max_body_bytes
    return {
        "health": HealthResource(),
        "ready": ReadyResource(services.health_checks, services.degraded_checks),
        "metrics": MetricsResource(metrics.render),
        "openapi": OpenApiResource(build_document()),
        "usage": UsageResource(guard, uc.usage),
        "reliability": ReliabilityResource(guard, uc.reliability),
        "freshness": FreshnessResource(guard, uc.freshness),
        "exports": ExportsResource(
            guard, uc.create_export, uc.list_exports, max_body_bytes=max_body, prefix=PREFIX
        ),
        "export": ExportResource(guard, uc.get_export, prefix=PREFIX),
        "download": DownloadResource(guard, uc.download),
        "events": EventsResource(guard, uc.ingest, max_body_bytes=max_body),
        "validate": ValidateResource(guard, uc.validate, max_body_bytes=max_body),
    }


def create_app(services: AppServices) -> App:
    """Build the WSGI app: request context, authentication, problem+json errors, every route."""
    authenticator = Authenticator(services.http, BoundUseCases(services).authenticate_api_key)
    app: App = falcon.App(
        middleware=[RequestContextMiddleware(), AuthMiddleware(authenticator)],
    )
    app.req_options.keep_blank_qs_values = True  # `?verbose` carries no value
    app.req_options.strip_url_path_trailing_slash = True
    problems.register(app)
    resources = _resources(services)
    for route in ROUTES:
        app.add_route(route.template, resources[route.resource])
    return app
