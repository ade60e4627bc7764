"""`create_app(api)`: the Falcon WSGI application of the analytics API."""

from __future__ import annotations

from collections.abc import Mapping

import falcon
import msgspec

from analytics_app.http import problems
from analytics_app.http.api import HttpApi
from analytics_app.http.auth import Authenticator, AuthMiddleware, Guard
from analytics_app.http.context import RequestContextMiddleware
from analytics_app.http.openapi import build_document
from analytics_app.http.resources.analytics import (
    FreshnessResource,
    ReliabilityResource,
    UsageResource,
)
from analytics_app.http.resources.budgets import (
    AlertsResource,
    BudgetResource,
    BudgetsResource,
    RuleResource,
    RulesResource,
)
from analytics_app.http.resources.events import EventsResource, ValidateResource
from analytics_app.http.resources.exports import (
    DownloadResource,
    ExportResource,
    ExportsResource,
)
from analytics_app.http.resources.org_settings import OrgSettingsResource
from analytics_app.http.resources.prices import (
    OrgPricesResource,
    PriceResource,
    PricesResource,
    RestatementsResource,
)
from analytics_app.http.resources.reconciliations import (
    ReconciliationCsvResource,
    ReconciliationResource,
    ReconciliationsResource,
)
from analytics_app.http.resources.registry import (
    ClientResource,
    ClientsResource,
    ModelResource,
    ModelsResource,
)
from analytics_app.http.resources.status import (
    HealthResource,
    MetricsResource,
    OpenApiResource,
    ReadyResource,
)
from analytics_app.http.resources.support import (
    AuditResource,
    DeadLetterRawResource,
    DeadLetterResource,
    DeadLettersResource,
    RedriveResource,
)
from analytics_app.http.resources.webhooks import (
    DeliveriesResource,
    RedeliverResource,
    RotateResource,
    WebhookResource,
    WebhooksResource,
)
from analytics_app.http.routes import PREFIX, ROUTES
from analytics_app.observability import metrics

App = falcon.App[falcon.Request, falcon.Response]


def _resources(api: HttpApi) -> Mapping[str, object]:
    guard = Guard(api.authorize)
    max_body = api.settings.max_body_bytes
    return {
        "health": HealthResource(),
        "ready": ReadyResource(api.health_checks, api.degraded_checks, api.data_location),
        "metrics": MetricsResource(metrics.render),
        "openapi": OpenApiResource(build_document()),
        "usage": UsageResource(guard, api.usage, api.names),
        "reliability": ReliabilityResource(guard, api.reliability, api.names),
        "freshness": FreshnessResource(guard, api.freshness, api.names),
        "models": ModelsResource(api.list_models),
        "model": ModelResource(api.get_model, api.put_model, api.delete_model),
        "clients": ClientsResource(guard, api.list_clients),
        "client": ClientResource(guard, api.put_client, api.delete_client),
        "exports": ExportsResource(
            guard, api.create_export, api.list_exports, max_body_bytes=max_body, prefix=PREFIX
        ),
        "export": ExportResource(guard, api.get_export, prefix=PREFIX),
        "download": DownloadResource(guard, api.download),
        "prices": PricesResource(api.add_prices, api.list_prices),
        "price": PriceResource(api.get_price),
        "org_prices": OrgPricesResource(guard, api.org_prices),
        "restatements": RestatementsResource(guard, api.org_restatements),
        "budgets": BudgetsResource(guard, api.create_budget, api.list_budgets),
        "budget": BudgetResource(guard, api.get_budget, api.update_budget, api.delete_budget),
        "alerts": AlertsResource(guard, api.list_alerts),
        "rules": RulesResource(guard, api.create_rule, api.list_rules),
        "rule": RuleResource(guard, api.get_rule, api.update_rule, api.delete_rule),
        "webhooks": WebhooksResource(guard, api.create_webhook, api.list_webhooks),
        "webhook": WebhookResource(guard, api.get_webhook, api.update_webhook,
                                   api.delete_webhook),
        "webhook_rotate": RotateResource(guard, api.rotate_webhook_secret),
        "deliveries": DeliveriesResource(guard, api.list_deliveries),
        "redeliver": RedeliverResource(guard, api.redeliver),
        "dead_letters": DeadLettersResource(guard, api.list_dead_letters),
        "dead_letter": DeadLetterResource(guard, api.get_dead_letter),
        "dead_letter_raw": DeadLetterRawResource(guard, api.get_dead_letter),
        "redrive": RedriveResource(guard, api.redrive_dead_letter),
        "audit": AuditResource(guard, api.list_audit),
        "org_settings": OrgSettingsResource(guard, api.get_org_settings, api.put_org_settings,
                                            max_body_bytes=max_body),
        "reconciliations": ReconciliationsResource(
            guard, api.reconcile_invoice, api.list_reconciliations, max_body_bytes=max_body),
        "reconciliation": ReconciliationResource(guard, api.get_reconciliation),
        "reconciliation_csv": ReconciliationCsvResource(guard, api.get_reconciliation),
        "events": EventsResource(guard, api.ingest, max_body_bytes=max_body,
                                 batch_scope=api.batch_scope),
        "validate": ValidateResource(guard, api.validate, max_body_bytes=max_body),
    }


def create_app(api: HttpApi) -> App:
    """Build the WSGI app: request context, authentication, problem+json errors, every route."""
    authenticator = Authenticator(api.settings, api.authenticate_api_key)
    app: App = falcon.App(
        middleware=[RequestContextMiddleware(), AuthMiddleware(authenticator)],
    )
    # Responses are encoded by msgspec: the same JSON as the standard encoder (UTF-8, key
    # order kept, exact integers of any size), without its spaces, several times faster on
    # the large bodies (5,000 ingest results, long series).
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = falcon.media.JSONHandler(
        dumps=msgspec.json.encode)
    app.req_options.keep_blank_qs_values = True  # `?verbose` carries no value
    app.req_options.strip_url_path_trailing_slash = True
    problems.register(app)
    resources = _resources(api)
    for route in ROUTES:
        app.add_route(route.template, resources[route.resource])
    return app
