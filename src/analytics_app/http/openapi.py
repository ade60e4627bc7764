"""The OpenAPI 3.1 document of the real API (a test keeps it equal to the route table)."""

from __future__ import annotations

from typing import Any

from analytics_app.http.openapi_schemas import SCHEMAS, UUID, Schema, ref
from analytics_app.http.routes import PREFIX

PROBLEM = "application/problem+json"
_ORG = f"{PREFIX}/orgs/{{orgId}}"
_PUBLIC: list[dict[str, list[str]]] = []
_STATUSES = {
    400: "Invalid request: `errors[]` names each bad field",
    401: "No valid identity (WWW-Authenticate: Bearer)",
    403: "Identity lacks the permission or targets another org (audited)",
    404: "Not found", 409: "Conflict", 410: "Gone (expired)", 413: "Body or batch too large",
    415: "Body is not JSON", 503: "A backing service is unavailable (Retry-After)",
}


def _param(name: str, where: str, schema: Schema, description: str, *, required: bool = False
           ) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path",
            "schema": schema, "description": description}


PARAMETERS: dict[str, dict[str, Any]] = {
    "orgId": _param("orgId", "path", UUID, "Tenant org id."),
    "jobId": _param("jobId", "path", UUID, "Export job id."),
    "modelIdPath": _param("modelId", "path", UUID, "Model id (as events carry it)."),
    "clientIdPath": _param("clientId", "path",
                           {"type": "string", "minLength": 1, "maxLength": 128},
                           "Client id (as events carry it)."),
    "versionIdPath": _param("versionId", "path", UUID, "Price version id."),
    "budgetIdPath": _param("budgetId", "path", UUID, "Budget id."),
    "budgetId": _param("budgetId", "query", UUID, "Only this budget's alerts."),
    "webhookIdPath": _param("webhookId", "path", UUID, "Webhook endpoint id."),
    "ruleIdPath": _param("ruleId", "path", UUID, "Reliability rule id."),
    "ruleId": _param("ruleId", "query", UUID, "Only this rule's transitions."),
    "deliveryIdPath": _param("deliveryId", "path", UUID, "Delivery id."),
    "priceModelId": _param("modelId", "query", UUID, "Only this model's versions."),
    "priceOrgId": _param("orgId", "query", UUID, "Only this org's override versions."),
    "history": _param("history", "query", {"enum": ["true", "false", ""]},
                      "Also superseded versions (the full history)."),
    "start": _param("start", "query", {"type": "string", "format": "date-time"},
                    "Inclusive start, RFC 3339 with offset.", required=True),
    "end": _param("end", "query", {"type": "string", "format": "date-time"},
                  "Exclusive end, RFC 3339 with offset; after start, at most 400 days later.",
                  required=True),
    "granularity": _param(
        "granularity", "query",
        {"enum": ["hour", "day", "month", "hourly", "daily", "monthly"], "default": "day"},
        "Period of each point in `tz` (aliases hourly/daily/monthly accepted)."),
    "tz": _param("tz", "query", {"type": "string", "default": "UTC"}, "IANA time zone."),
    "modelId": _param("modelId", "query", {"type": "array", "items": UUID},
                      "Only these models (repeat or comma-separate)."),
    "clientId": _param("clientId", "query",
                       {"type": "array",
                        "items": {"type": "string", "minLength": 1, "maxLength": 128}},
                       "Only these clients (repeat)."),
    "groupBy": _param("groupBy", "query",
                      {"type": "string", "pattern": "^(model|client|actor|none|tag:.+)$",
                       "default": "model"},
                      "One series per model, client, actor, value of an attribution tag "
                      "(tag:KEY, KEY in ANALYTICS_ATTRIBUTION_KEYS), or none."),
    "top": _param("top", "query", {"type": "integer", "minimum": 1, "maximum": 100},
                  "Only the N largest groups (by reported cost over the window), the rest "
                  "merged per period into one `(other)` point; totals unchanged."),
    "percentile": _param("percentile", "query", {"enum": ["p50", "p95", "p99"],
                                                 "default": "p95"},
                         "Percentile copied into every `latencyMs.highlighted`."),
    "status": _param("status", "query",
                     {"enum": ["pending", "running", "succeeded", "failed", "expired"]},
                     "Only jobs in this status."),
    "limit": _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 200,
                                       "default": 50}, "Page size."),
    "cursor": _param("cursor", "query", {"type": "string", "minLength": 1},
                     "Opaque `nextCursor` of the previous page."),
    "deadLetterIdPath": _param("deadLetterId", "path", UUID, "Dead letter id."),
    "reason": _param("reason", "query", {"type": "string", "minLength": 1, "maxLength": 200},
                     "Only letters whose reason contains this text (any case)."),
    "source": _param("source", "query", {"type": "string", "minLength": 1, "maxLength": 200},
                     "Only letters from this source (http, stream:<name>, redrive)."),
    "since": _param("since", "query", {"type": "string", "format": "date-time"},
                    "Inclusive lower bound, RFC 3339 with offset."),
    "until": _param("until", "query", {"type": "string", "format": "date-time"},
                    "Exclusive upper bound, RFC 3339 with offset; after since."),
    "letterStatus": _param("status", "query", {"enum": ["open", "redriven", "all"],
                                               "default": "all"},
                           "open: not re-driven yet; redriven: re-driven."),
    "actor": _param("actor", "query", {"type": "string", "minLength": 1, "maxLength": 200},
                    "Only this actor's decisions (the subject, e.g. apikey:ab12cd)."),
    "action": _param("action", "query", {"type": "string", "minLength": 1, "maxLength": 200},
                     "Only this action (e.g. analytics:usage:read)."),
    "outcome": _param("outcome", "query", {"enum": ["allowed", "denied"]},
                      "Only allowed or only denied decisions."),
    "reconciliationIdPath": _param("reconciliationId", "path", UUID, "Reconciliation id."),
    "tolerancePercent": _param("tolerancePercent", "query",
                               {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$",
                                "default": "1"},
                               "A line is flagged when |variance| exceeds this % of metered."),
    "basis": _param("basis", "query", {"enum": ["catalog", "reported"], "default": "catalog"},
                    "Compare with the price catalog's cost, or the producers' reported cost."),
    "name": _param("name", "query", {"type": "string", "maxLength": 200},
                   "A label kept with the run (e.g. the invoice's file name)."),
    "map.day": _param("map.day", "query", {"type": "string"}, "Header of the day column "
                      "(default `day`)."),
    "map.model": _param("map.model", "query", {"type": "string"},
                        "Header of the model or SKU column (default `model`)."),
    "map.cost": _param("map.cost", "query", {"type": "string"},
                       "Header of the cost column (default `cost`)."),
    "map.inputTokens": _param("map.inputTokens", "query", {"type": "string"},
                              "Header of an input-token column (default: none)."),
    "map.outputTokens": _param("map.outputTokens", "query", {"type": "string"},
                               "Header of an output-token column (default: none)."),
    "costUnit": _param("costUnit", "query", {"enum": ["usd", "cents"], "default": "usd"},
                       "Unit of the cost column."),
    "dayFormat": _param("dayFormat", "query", {"type": "string", "default": "iso"},
                        "`iso` (YYYY-MM-DD or an ISO timestamp, date part as written) or a "
                        "strptime pattern such as %m/%d/%Y."),
    "flagged": _param("flagged", "query", {"enum": ["true", "false"], "default": "false"},
                      "Only the flagged lines."),
    "verbose": _param("verbose", "query", {"type": "string"},
                      "Present: JSON report of every check (degraded ones included)."),
    "Idempotency-Key": _param("Idempotency-Key", "header", {"type": "string", "maxLength": 255},
                              "Replays return the first job (200); another body is 409."),
    "X-Request-Id": _param("X-Request-Id", "header", {"type": "string"},
                           "Any value is accepted and never refused: characters other than "
                           "A-Z a-z 0-9 . _ - are dropped and the rest is cut to 128; what is "
                           "left is echoed on the response and logged (a new id is generated "
                           "when nothing is left or the header is absent)."),
}


def _p(*names: str) -> list[dict[str, str]]:
    return [{"$ref": f"#/components/parameters/{n}"} for n in ("X-Request-Id", *names)]


def _json(schema: Schema, description: str, media: str = "application/json") -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(c): {"$ref": f"#/components/responses/Problem{c}"} for c in codes}


_TEXT_OK = {"description": "OK", "content": {"text/plain": {"schema": {"const": "OK"}}}}
_AUTHED = (400, 401, 403, 503)


def _op(summary: str, params: list[dict[str, str]], responses: dict[str, Any], *,
        body: Schema | None = None, public: bool = False, errors: tuple[int, ...] = _AUTHED,
        description: str = "") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "parameters": params,
                          "responses": {**responses, **_errors(*errors)}}
    if description:
        op["description"] = description
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if public:
        op["security"] = _PUBLIC
    return op


def _paths() -> dict[str, Any]:
    return {**_status_paths(), **_analytics_paths(), **_export_paths(), **_registry_paths(),
            **_price_paths(), **_budget_paths(), **_webhook_paths(), **_support_paths(),
            **_reconciliation_paths(),
            **_event_paths()}


_MANAGE = "Needs org_admin (or admin)."


def _reconciliation_paths() -> dict[str, Any]:
    run = f"{_ORG}/reconciliations/{{reconciliationId}}"
    post = {**_RECONCILE, "requestBody": {
        "required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}}
    return {
        f"{_ORG}/reconciliations": {
            "post": post,
            "get": _op(
                "Kept reconciliations, newest first", _p("orgId", "limit", "cursor"),
                {"200": _json(ref("ReconciliationList"), "A page of runs (no lines)")},
                description="Needs analytics:exports:read."),
        },
        run: {"get": _op(
            "One reconciliation with its lines", _p("orgId", "reconciliationIdPath", "flagged"),
            {"200": _json(ref("ReconciliationWithLines"), "The run")},
            errors=(*_AUTHED, 404), description="Needs analytics:exports:read.")},
        f"{run}/csv": {"get": _op(
            "Download a reconciliation as CSV", _p("orgId", "reconciliationIdPath"),
            {"200": {"description": "One row per line (attachment)",
                     "content": {"text/csv": {"schema": {"type": "string"}}}}},
            errors=(*_AUTHED, 404), description="Needs analytics:exports:download.")},
    }


_RECONCILE = _op(
    "Reconcile a provider's cost report",
    _p("orgId", "tz", "tolerancePercent", "basis", "name", "map.day", "map.model", "map.cost",
       "map.inputTokens", "map.outputTokens", "costUnit", "dayFormat"),
    {"201": {**_json(ref("ReconciliationWithLines"), "Kept; every line"),
             "headers": {"Location": {"schema": {"type": "string"}}}}},
    errors=(*_AUTHED, 413, 415),
    description="Needs analytics:exports:create. The body is the report itself (Content-Type: "
                "text/csv): one row per day and model or SKU with a cost, matched by day and "
                "model in `tz` against the usage of those days. Every bad row is a 400 naming "
                "it (`row N: column`). docs/reconciliation.md.")


def _support_paths() -> dict[str, Any]:
    letter = f"{_ORG}/dead-letters/{{deadLetterId}}"
    return {
        f"{_ORG}/dead-letters": {"get": _op(
            "Dead letters, newest first",
            _p("orgId", "reason", "source", "since", "until", "letterStatus", "limit", "cursor"),
            {"200": _json(ref("DeadLetterList"), "A page of letters (no raw bytes)")},
            description=f"{_MANAGE} Rejected events kept with their raw bytes and reason.")},
        letter: {"get": _op(
            "One dead letter with its message", _p("orgId", "deadLetterIdPath"),
            {"200": _json(ref("DeadLetterWithRaw"), "The letter")},
            errors=(*_AUTHED, 404), description=_MANAGE)},
        f"{letter}/raw": {"get": _op(
            "Download a dead letter's message", _p("orgId", "deadLetterIdPath"),
            {"200": {"description": "The bytes as received (attachment)",
                     "content": {"application/octet-stream": {
                         "schema": {"type": "string", "format": "binary"}}}}},
            errors=(*_AUTHED, 404), description=_MANAGE)},
        f"{letter}/redrive": {"post": _op(
            "Ingest a dead letter's message again", _p("orgId", "deadLetterIdPath"),
            {"200": _json(ref("Redrive"), "Stored now (accepted) or already (duplicate)"),
             "422": _json(ref("Problem"), "Still invalid: errors[] names each field; "
                          "nothing is stored", PROBLEM)},
            errors=(*_AUTHED, 404),
            description=f"{_MANAGE} Also needs analytics:events:write for the org the event "
                        "names (403, audited, otherwise). Re-driving a re-driven letter "
                        "returns its first outcome and stores nothing.")},
        f"{_ORG}/settings": {
            "get": _op("The org's settings", _p("orgId"),
                       {"200": _json(ref("OrgSettings"), "Its zone (the default when unset)")},
                       description="Needs analytics:usage:read."),
            "put": _op("Replace the org's settings", _p("orgId"),
                       {"200": _json(ref("OrgSettings"), "Stored")},
                       body=ref("OrgSettingsBody"), errors=(*_AUTHED, 413, 415),
                       description=f"{_MANAGE} `timezone` places the scheduled monthly "
                                   "export's calendar month (docs/exports.md)."),
        },
        f"{_ORG}/audit": {"get": _op(
            "The org's audit log, newest first",
            _p("orgId", "actor", "action", "outcome", "since", "until", "limit", "cursor"),
            {"200": _json(ref("AuditList"), "A page of authorization decisions")},
            description=f"{_MANAGE} Every decision on the org's data (SPEC §6), reading "
                        "this log included.")},
    }


def _webhook_paths() -> dict[str, Any]:
    hook = f"{_ORG}/webhooks/{{webhookId}}"
    return {
        f"{_ORG}/webhooks": {
            "get": _op("The org's webhook endpoints", _p("orgId"),
                       {"200": _json(ref("WebhookList"), "Oldest first; never a secret")},
                       description=_MANAGE),
            "post": _op("Register a webhook endpoint", _p("orgId"),
                        {"201": {**_json(ref("WebhookWithSecret"),
                                         "Created; `secret` is shown only here"),
                                 "headers": {"Location": {"schema": {"type": "string"}}}}},
                        body=ref("WebhookBody"), errors=(*_AUTHED, 413, 415),
                        description=f"{_MANAGE} Audited. Alerts of the org's budgets are "
                                    "delivered to every enabled endpoint."),
        },
        hook: {
            "get": _op("One webhook endpoint", _p("orgId", "webhookIdPath"),
                       {"200": _json(ref("Webhook"), "The endpoint")},
                       errors=(*_AUTHED, 404), description=_MANAGE),
            "patch": _op("Change a webhook endpoint", _p("orgId", "webhookIdPath"),
                         {"200": _json(ref("Webhook"), "The changed endpoint")},
                         body=ref("WebhookChanges"), errors=(*_AUTHED, 404, 413, 415),
                         description=f"{_MANAGE} Audited."),
            "delete": _op("Delete a webhook endpoint", _p("orgId", "webhookIdPath"),
                          {"204": {"description": "Deleted, with its deliveries"}},
                          errors=(*_AUTHED, 404), description=f"{_MANAGE} Audited."),
        },
        f"{hook}/rotate": {"post": _op(
            "Rotate the signing secret", _p("orgId", "webhookIdPath"),
            {"200": _json(ref("WebhookWithSecret"), "The new `secret`, shown only here")},
            errors=(*_AUTHED, 404),
            description=f"{_MANAGE} Audited. The previous secret keeps signing beside the "
                        "new one (two signatures per delivery) for 24 hours.")},
        f"{hook}/deliveries": {"get": _op(
            "The delivery log", _p("orgId", "webhookIdPath", "limit", "cursor"),
            {"200": _json(ref("DeliveryList"), "Newest first, every attempt of each")},
            errors=(*_AUTHED, 404), description=_MANAGE)},
        f"{hook}/deliveries/{{deliveryId}}/redeliver": {"post": _op(
            "Send a delivery again", _p("orgId", "webhookIdPath", "deliveryIdPath"),
            {"202": _json(ref("Delivery"), "Due now, retried for 24 hours")},
            errors=(*_AUTHED, 404),
            description=f"{_MANAGE} Audited. Same webhook-id and payload.")},
    }


def _webhooks() -> dict[str, Any]:
    """The webhooks this API sends (OpenAPI 3.1 `webhooks`)."""
    reliability = {"post": {
        "summary": "A reliability rule fired or resolved",
        "description": "Signed, retried and logged like budget.alert.",
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": ref("ReliabilityWebhook")}}},
        "responses": {"2XX": {"description": "Received (anything else is retried)"}},
        "security": [],
    }}
    return {"reliability.alert": reliability, "budget.alert": {"post": {
        "summary": "A budget threshold or forecast fired",
        "description": "Sent to every enabled endpoint of the org, signed per Standard "
                       "Webhooks; retried with exponential backoff and jitter for 24 hours "
                       "until a 2xx answer. Redirects are not followed. Deduplicate on "
                       "webhook-id: delivery is at least once.",
        "parameters": [
            {"name": "webhook-id", "in": "header", "required": True,
             "schema": {"type": "string"}},
            {"name": "webhook-timestamp", "in": "header", "required": True,
             "schema": {"type": "string"}},
            {"name": "webhook-signature", "in": "header", "required": True,
             "schema": {"type": "string"}},
        ],
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": ref("AlertWebhook")}}},
        "responses": {"2XX": {"description": "Received (anything else is retried)"}},
        "security": [],
    }}}


def _budget_paths() -> dict[str, Any]:
    return {
        f"{_ORG}/budgets": {
            "get": _op("The org's budgets with their status", _p("orgId"),
                       {"200": _json(ref("BudgetList"), "Oldest first")},
                       description="Needs analytics:usage:read. `current` is the period "
                                   "holding now, in the budget's zone."),
            "post": _op("Create a budget", _p("orgId"),
                        {"201": {**_json(ref("Budget"), "Created"),
                                 "headers": {"Location": {"schema": {"type": "string"}}}}},
                        body=ref("BudgetBody"), errors=(*_AUTHED, 413, 415),
                        description="Needs org_admin (or admin). Audited."),
        },
        f"{_ORG}/budgets/{{budgetId}}": {
            "get": _op("One budget with its status", _p("orgId", "budgetIdPath"),
                       {"200": _json(ref("BudgetStatus"), "The budget")},
                       errors=(*_AUTHED, 404), description="Needs analytics:usage:read."),
            "patch": _op("Change a budget", _p("orgId", "budgetIdPath"),
                         {"200": _json(ref("Budget"), "The changed budget")},
                         body=ref("BudgetChanges"), errors=(*_AUTHED, 404, 413, 415),
                         description="Needs org_admin (or admin). Audited."),
            "delete": _op("Delete a budget", _p("orgId", "budgetIdPath"),
                          {"204": {"description": "Deleted; its alerts stay"}},
                          errors=(*_AUTHED, 404),
                          description="Needs org_admin (or admin). Audited."),
        },
        f"{_ORG}/alerts": {"get": _op(
            "Fired alerts, newest first", _p("orgId", "budgetId", "ruleId", "limit", "cursor"),
            {"200": _json(ref("AlertList"), "A page of alerts")},
            description="Needs analytics:usage:read. Budget alerts (`source: budget`: each "
                        "threshold of a budget fires at most once per period; `late` marks "
                        "one fired after its period ended) and reliability rules firing and "
                        "resolving (`source: reliability`, each transition once).")},
        f"{_ORG}/reliability-rules": {
            "get": _op("The org's reliability rules with their state", _p("orgId"),
                       {"200": _json(ref("RuleList"), "Oldest first")},
                       description="Needs analytics:reliability:read."),
            "post": _op("Create a reliability rule", _p("orgId"),
                        {"201": {**_json(ref("Rule"), "Created"),
                                 "headers": {"Location": {"schema": {"type": "string"}}}}},
                        body=ref("RuleBody"), errors=(*_AUTHED, 413, 415),
                        description="Needs org_admin (or admin). Audited."),
        },
        f"{_ORG}/reliability-rules/{{ruleId}}": {
            "get": _op("One reliability rule with its state", _p("orgId", "ruleIdPath"),
                       {"200": _json(ref("RuleStatus"), "The rule")},
                       errors=(*_AUTHED, 404), description="Needs analytics:reliability:read."),
            "patch": _op("Change a reliability rule", _p("orgId", "ruleIdPath"),
                         {"200": _json(ref("Rule"), "The changed rule")},
                         body=ref("RuleChanges"), errors=(*_AUTHED, 404, 413, 415),
                         description="Needs org_admin (or admin). Audited."),
            "delete": _op("Delete a reliability rule", _p("orgId", "ruleIdPath"),
                          {"204": {"description": "Deleted; its transitions stay"}},
                          errors=(*_AUTHED, 404),
                          description="Needs org_admin (or admin). Audited."),
        },
    }


def _price_paths() -> dict[str, Any]:
    return {
        f"{PREFIX}/prices": {
            "get": _op("Price versions", _p("priceModelId", "priceOrgId", "history"),
                       {"200": _json(ref("PriceList"), "By model, org and start")},
                       description="Needs admin. Live versions only unless `history`."),
            "post": _op(
                "Add price versions (all or none)", _p(),
                {"201": _json(ref("PricesAdded"), "Stored, with the restatements started")},
                body=ref("PriceVersionsBody"), errors=(*_AUTHED, 413, 415),
                description="Needs admin. A version starting in the past, or one that "
                            "supersedes another, needs `restate: true` and starts a "
                            "restatement. Every bad field of every version is named."),
        },
        f"{PREFIX}/prices/{{versionId}}": {"get": _op(
            "One price version", _p("versionIdPath"),
            {"200": _json(ref("PriceVersion"), "The version (supersededBy once corrected)")},
            errors=(*_AUTHED, 404), description="Needs admin.")},
        f"{_ORG}/prices": {"get": _op(
            "The prices that apply to the org", _p("orgId"),
            {"200": _json(ref("OrgPriceList"), "Global versions and the org's overrides")},
            description="Needs analytics:usage:read.")},
        f"{_ORG}/restatements": {"get": _op(
            "Restatements that changed the org's numbers", _p("orgId"),
            {"200": _json(ref("RestatementList"), "Newest first, with the org's deltas")},
            description="Needs analytics:usage:read.")},
    }


def _registry_paths() -> dict[str, Any]:
    model = _p("modelIdPath")
    client = _p("orgId", "clientIdPath")
    return {
        f"{PREFIX}/models": {"get": _op(
            "Registered models", _p(), {"200": _json(ref("ModelList"), "Every entry, by id")},
            description="Any authenticated caller (names are platform-wide).")},
        f"{PREFIX}/models/{{modelId}}": {
            "get": _op("One model's names", model, {"200": _json(ref("Model"), "The entry")},
                       errors=(*_AUTHED, 404)),
            "put": _op(
                "Register or rename a model", model,
                {"201": _json(ref("Model"), "Registered"), "200": _json(ref("Model"), "Renamed")},
                body=ref("ModelNames"), errors=(*_AUTHED, 409, 413, 415),
                description="Needs admin. 409 when the name or an alias already names another "
                            "model (compared case-insensitively)."),
            "delete": _op("Forget a model's names (its data stays)", model,
                          {"204": {"description": "Removed"}}, errors=(*_AUTHED, 404),
                          description="Needs admin."),
        },
        f"{_ORG}/clients": {"get": _op(
            "The org's client names", _p("orgId"),
            {"200": _json(ref("ClientList"), "By client id")},
            description="Needs analytics:usage:read or analytics:reliability:read.")},
        f"{_ORG}/clients/{{clientId}}": {
            "put": _op("Name one of the org's clients", client,
                       {"200": _json(ref("Client"), "Named")}, body=ref("ClientNameBody"),
                       errors=(*_AUTHED, 413, 415),
                       description="Needs org_admin (or admin)."),
            "delete": _op("Forget a client's name", client, {"204": {"description": "Removed"}},
                          errors=(*_AUTHED, 404),
                          description="Needs org_admin (or admin)."),
        },
    }


def _status_paths() -> dict[str, Any]:
    return {
        f"{PREFIX}/status/healthz": {"get": _op(
            "Liveness", _p(), {"200": _TEXT_OK}, public=True, errors=())},
        f"{PREFIX}/status/readyz": {"get": _op(
            "Readiness of each configured dependency", _p("verbose"),
            {"200": {"description": "Ready (text OK, or the JSON report with ?verbose)",
                     "content": {"text/plain": {"schema": {"const": "OK"}},
                                 "application/json": {"schema": ref("ReadyReport")}}},
             "503": {"description": "A critical dependency failed (named in the body)",
                     "content": {PROBLEM: {"schema": ref("Problem")},
                                 "application/json": {"schema": ref("ReadyReport")}}}},
            public=True, errors=(400,))},
        "/metrics": {"get": _op(
            "Prometheus metrics", _p(),
            {"200": {"description": "Prometheus text exposition",
                     "content": {"text/plain": {"schema": {"type": "string"}}}}},
            public=True, errors=())},
        f"{PREFIX}/openapi.json": {"get": _op(
            "This document", _p(), {"200": _json({"type": "object"}, "OpenAPI 3.1")},
            public=True, errors=())},
    }


def _analytics_paths() -> dict[str, Any]:
    return {
        f"{_ORG}/usage": {"get": _op(
            "Usage and spend", _p("orgId", "start", "end", "granularity", "tz", "modelId",
                                  "clientId", "groupBy", "top"),
            {"200": _json(ref("UsageReport"), "Series, totals (their exact sum), freshness")},
            description="Needs analytics:usage:read (or org_admin/admin).")},
        f"{_ORG}/reliability": {"get": _op(
            "Errors and latency", _p("orgId", "start", "end", "granularity", "tz", "modelId",
                                     "clientId", "groupBy", "top", "percentile"),
            {"200": _json(ref("ReliabilityReport"), "Series, totals, top error codes")},
            description="Needs analytics:reliability:read.")},
        f"{_ORG}/freshness": {"get": _op(
            "Freshness per model", _p("orgId", "tz", "modelId"),
            {"200": _json(ref("FreshnessReport"), "Pipeline freshness, one entry per model")},
            description="Needs analytics:usage:read or analytics:reliability:read. Models "
                        "without data (e.g. listed with modelId) have null times.")},
    }


def _export_paths() -> dict[str, Any]:
    return {
        f"{_ORG}/exports": {
            "post": _op(
                "Create an export job", _p("orgId", "Idempotency-Key"),
                {"202": _job_response("Created"), "200": _job_response("Idempotent replay")},
                body=ref("ExportRequest"), errors=(*_AUTHED, 409, 413, 415),
                description="Needs analytics:exports:create."),
            "get": _op(
                "List export jobs, newest first", _p("orgId", "status", "limit", "cursor"),
                {"200": _json(ref("ExportList"), "A page of jobs")},
                description="Needs analytics:exports:read."),
        },
        f"{_ORG}/exports/{{jobId}}": {"get": _op(
            "One export job", _p("orgId", "jobId"), {"200": _json(ref("ExportJob"), "The job")},
            errors=(*_AUTHED, 404), description="Needs analytics:exports:read.")},
        f"{_ORG}/exports/{{jobId}}/download": {"get": _op(
            "Download an export", _p("orgId", "jobId"),
            {"302": {"description": "Redirect to a freshly signed URL",
                     "headers": {"Location": {"schema": {"type": "string"}}}},
             "200": {"description": "The CSV itself (stores that cannot sign)",
                     "content": {"text/csv": {"schema": {"type": "string"}}}}},
            errors=(*_AUTHED, 404, 410), description="Needs analytics:exports:download.")},
    }


def _event_paths() -> dict[str, Any]:
    return {
        f"{PREFIX}/events": {"post": _op(
            "Ingest a batch of usage events", _p(),
            {"202": _json(ref("BatchResult"), "One result per input, in order")},
            body=ref("EventBatch"), errors=(*_AUTHED, 413, 415),
            description="Needs analytics:events:write in the caller's org; any event of "
                        "another org makes the whole request 403 (audited) unless the caller "
                        "is admin. More than 5000 events is 413 naming `events`.")},
        f"{PREFIX}/events/validate": {"post": _op(
            "Validate one usage event", _p(), {"204": {"description": "Valid"}},
            body=ref("UsageEvent"), errors=(*_AUTHED, 413, 415),
            description="Needs analytics:events:write; nothing is stored.")},
    }


def _job_response(description: str) -> dict[str, Any]:
    return {**_json(ref("ExportJob"), description),
            "headers": {"Location": {"schema": {"type": "string"}}}}


def build_document() -> dict[str, Any]:
    """The whole document."""
    problem_responses = {
        f"Problem{code}": _json(ref("Problem"), text, PROBLEM) for code, text in _STATUSES.items()
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Inference analytics API", "version": "1.0.0",
                 "description": "Usage, spend, reliability, freshness and finance exports. "
                                "Every error is application/problem+json."},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}, {"apiKeyAuth": []}, {"gatewayHeaders": []}],
        "paths": _paths(),
        "webhooks": _webhooks(),
        "components": {
            "schemas": SCHEMAS,
            "parameters": PARAMETERS,
            "responses": problem_responses,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                               "description": "HS256, RS256 or ES256 as configured; exp "
                                              "required; iss/aud checked when configured."},
                "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key",
                               "description": "Created with `analytics apikey create`."},
                "gatewayHeaders": {
                    "type": "apiKey", "in": "header", "name": "X-Actor-Subject",
                    "description": "Only when trusted gateway headers are enabled: "
                                   "X-Actor-Subject, X-Actor-Roles (comma separated), "
                                   "X-Actor-Org."},
            },
        },
    }
