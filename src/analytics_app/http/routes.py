"""The one route table: create_app adds exactly these, and the OpenAPI test checks them."""

from __future__ import annotations

import attrs

PREFIX = "/analytics/v1"


@attrs.frozen
class Route:
    """A URI template and the key of the resource serving it."""

    template: str
    resource: str


ROUTES: tuple[Route, ...] = (
    Route(f"{PREFIX}/status/healthz", "health"),
    Route(f"{PREFIX}/status/readyz", "ready"),
    Route("/metrics", "metrics"),
    Route(f"{PREFIX}/openapi.json", "openapi"),
    Route(f"{PREFIX}/orgs/{{orgId}}/usage", "usage"),
    Route(f"{PREFIX}/orgs/{{orgId}}/reliability", "reliability"),
    Route(f"{PREFIX}/orgs/{{orgId}}/freshness", "freshness"),
    Route(f"{PREFIX}/orgs/{{orgId}}/exports", "exports"),
    Route(f"{PREFIX}/orgs/{{orgId}}/exports/{{jobId}}", "export"),
    Route(f"{PREFIX}/orgs/{{orgId}}/exports/{{jobId}}/download", "download"),
    Route(f"{PREFIX}/models", "models"),
    Route(f"{PREFIX}/models/{{modelId}}", "model"),
    Route(f"{PREFIX}/orgs/{{orgId}}/clients", "clients"),
    Route(f"{PREFIX}/orgs/{{orgId}}/clients/{{clientId}}", "client"),
    Route(f"{PREFIX}/prices", "prices"),
    Route(f"{PREFIX}/prices/{{versionId}}", "price"),
    Route(f"{PREFIX}/orgs/{{orgId}}/prices", "org_prices"),
    Route(f"{PREFIX}/orgs/{{orgId}}/restatements", "restatements"),
    Route(f"{PREFIX}/orgs/{{orgId}}/budgets", "budgets"),
    Route(f"{PREFIX}/orgs/{{orgId}}/budgets/{{budgetId}}", "budget"),
    Route(f"{PREFIX}/orgs/{{orgId}}/alerts", "alerts"),
    Route(f"{PREFIX}/orgs/{{orgId}}/reliability-rules", "rules"),
    Route(f"{PREFIX}/orgs/{{orgId}}/reliability-rules/{{ruleId}}", "rule"),
    Route(f"{PREFIX}/orgs/{{orgId}}/webhooks", "webhooks"),
    Route(f"{PREFIX}/orgs/{{orgId}}/webhooks/{{webhookId}}", "webhook"),
    Route(f"{PREFIX}/orgs/{{orgId}}/webhooks/{{webhookId}}/rotate", "webhook_rotate"),
    Route(f"{PREFIX}/orgs/{{orgId}}/webhooks/{{webhookId}}/deliveries", "deliveries"),
    Route(f"{PREFIX}/orgs/{{orgId}}/webhooks/{{webhookId}}/deliveries/{{deliveryId}}/redeliver",
          "redeliver"),
    Route(f"{PREFIX}/orgs/{{orgId}}/dead-letters", "dead_letters"),
    Route(f"{PREFIX}/orgs/{{orgId}}/dead-letters/{{deadLetterId}}", "dead_letter"),
    Route(f"{PREFIX}/orgs/{{orgId}}/dead-letters/{{deadLetterId}}/raw", "dead_letter_raw"),
    Route(f"{PREFIX}/orgs/{{orgId}}/dead-letters/{{deadLetterId}}/redrive", "redrive"),
    Route(f"{PREFIX}/orgs/{{orgId}}/audit", "audit"),
    Route(f"{PREFIX}/orgs/{{orgId}}/settings", "org_settings"),
    Route(f"{PREFIX}/orgs/{{orgId}}/reconciliations", "reconciliations"),
    Route(f"{PREFIX}/orgs/{{orgId}}/reconciliations/{{reconciliationId}}", "reconciliation"),
    Route(f"{PREFIX}/orgs/{{orgId}}/reconciliations/{{reconciliationId}}/csv",
          "reconciliation_csv"),
    Route(f"{PREFIX}/events", "events"),
    Route(f"{PREFIX}/events/validate", "validate"),
)
