"""JSON Schemas (OpenAPI 3.1 components) of the API's bodies; see openapi.py for the paths."""

from __future__ import annotations

from typing import Any

from analytics_core.events import (
    MAX_EVENT_COST_CENTS,
    MAX_EVENT_LATENCY_MS,
    MAX_EVENT_TOKENS,
    PLATFORM_ORG,
    TOKEN_DETAIL_KEYS,
)

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    """A `$ref` to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def obj(props: dict[str, Schema], required: list[str] | None = None, **extra: Any) -> Schema:
    """An object schema; every listed property is required unless `required` says otherwise."""
    return {"type": "object", "properties": props,
            "required": list(props) if required is None else required, **extra}


TIME: Schema = {"type": "string", "format": "date-time"}
NULLABLE_TIME: Schema = {"type": ["string", "null"], "format": "date-time"}
UUID: Schema = {"type": "string", "format": "uuid"}
NULLABLE_NAME: Schema = {"type": ["string", "null"]}
_NAME: Schema = {"type": "string", "minLength": 1, "maxLength": 200,
                 "description": "Trimmed; no control characters."}
INT: Schema = {"type": "integer", "minimum": 0}
NULLABLE_NUMBER: Schema = {"type": ["number", "null"]}
MONEY_EXACT: Schema = {"type": "string", "pattern": r"^[0-9]+\.[0-9]{4}$",
               "description": "Exact cents with 4 decimal places."}
MONEY_ROUNDED: Schema = {"type": "integer", "description": "Cents rounded half-even."}

_TOKEN_DETAILS: Schema = obj(
    {key: {**INT, "maximum": MAX_EVENT_TOKENS} for key in TOKEN_DETAIL_KEYS}, [],
    description="Token categories (SPEC §12): cacheReadTokens, cacheWriteTokens and "
    "audioInputTokens are parts of inputTokens (they may add up to at most inputTokens); "
    "reasoningTokens and audioOutputTokens are parts of outputTokens (at most outputTokens). "
    "An absent key counts 0; unknown keys are ignored.",
)
_TOKEN_DETAIL_SUMS: Schema = obj(
    dict.fromkeys(TOKEN_DETAIL_KEYS, INT), list(TOKEN_DETAIL_KEYS),
    description="Tokens per category (parts of inputTokens and outputTokens); 0 for events "
    "that reported no categories.",
)
_CATEGORY_NAMES = ["input", "cacheRead", "cacheWrite", "audioInput", "output", "reasoning",
                   "audioOutput"]
_USAGE_FIELDS: dict[str, Schema] = {
    "invocations": INT, "inputTokens": INT, "outputTokens": INT,
    "tokenDetails": _TOKEN_DETAIL_SUMS,
    "costEstimateCents": MONEY_ROUNDED, "costEstimateCentsExact": MONEY_EXACT,
    "catalogCostCents": {**MONEY_ROUNDED, "description": "Catalog cost of the priced "
                         "invocations, cents rounded half-even."},
    "catalogCostCentsExact": MONEY_EXACT,
    "catalogCostByCategory": obj(dict.fromkeys(_CATEGORY_NAMES, MONEY_EXACT),
                                 description="Catalog cost per price category (input and "
                                 "output are the tokens of no other category)."),
    "pricedInvocations": INT,
    "unpricedInvocations": {**INT, "description": "Invocations no price version covered."},
}
_SIGNED_MONEY: Schema = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{4}$"}
_PRICE: Schema = {"type": ["string", "number"],
                  "description": "USD per million tokens, >= 0, at most 6 decimal places."}
_POINT_KEYS: dict[str, Schema] = {
    "bucketStart": TIME,
    "bucketEnd": {**TIME, "description": "Exclusive end of the period (extension to §5)."},
    "modelId": {**UUID, "description": "Present when groupBy=model."},
    "modelName": {**NULLABLE_NAME, "description": "Present when groupBy=model: the registered "
                                                  "display name (null when unregistered)."},
    "clientId": {"type": ["string", "null"], "description": "Present when groupBy=client."},
    "clientName": {**NULLABLE_NAME, "description": "Present when groupBy=client: the org's "
                                                   "name for the client (null when unnamed)."},
    "actorId": {"type": ["string", "null"], "description": "Present when groupBy=actor (null: "
                "events without an actor; `(other)`: see `other`)."},
    "tagValue": {"type": ["string", "null"], "description": "Present when groupBy=tag:KEY "
                 "(null: events without the tag; `(other)`: values past the daily cap)."},
    "other": {"const": True, "description": "The `(other)` point: with top=N every group "
              "outside the N largest, merged; for actor and tag groupings also the values past "
              "the daily cap. Its model or client keys are null."},
}
_RATE: Schema = {"type": "number", "minimum": 0, "maximum": 1}
_RELIABILITY_FIELDS: dict[str, Schema] = {
    "invocations": INT, "success": INT, "errors": INT, "timeouts": INT, "throttled": INT,
    "errorRate": {**_RATE, "description": "(errors + timeouts + throttled) / invocations"},
    "rates": obj({"error": _RATE, "timeout": _RATE, "throttled": _RATE}),
    "latencyMs": ref("Latency"),
}
_HEADER: dict[str, Schema] = {"orgId": UUID, "granularity": {"enum": ["hour", "day", "month"]},
           "tz": {"type": "string"}, "groupBy": {"type": "string"},
           "top": {"type": "integer", "description": "Present when top=N was asked."}}
_HEADER_REQUIRED = ["orgId", "granularity", "tz", "groupBy"]

SCHEMAS: dict[str, Schema] = {
    "FieldError": obj({"field": {"type": "string"}, "reason": {"type": "string"}}),
    "Problem": obj(
        {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
         "detail": {"type": "string"}, "instance": {"type": "string"},
         "requestId": {"type": "string"},
         "errors": {"type": "array", "items": ref("FieldError")}},
        ["type", "title", "status", "detail", "instance"],
        description="RFC 7807 problem details; `errors` names each bad field.",
    ),
    "Freshness": obj({"status": {"enum": ["fresh", "stale", "delayed"]},
                      "completeThrough": TIME, "lagSeconds": {"type": "number", "minimum": 0}}),
    "UsageTotals": obj(_USAGE_FIELDS),
    "UsagePoint": obj({**_POINT_KEYS, **_USAGE_FIELDS},
                      ["bucketStart", "bucketEnd", *_USAGE_FIELDS]),
    "UsageReport": obj({**_HEADER, "series": {"type": "array", "items": ref("UsagePoint")},
                        "totals": ref("UsageTotals"),
                        "priceVersions": {"type": "array", "items": ref("PriceVersion"),
                                          "description": "Versions in effect for the "
                                          "report's models in the window."},
                        "freshness": ref("Freshness")},
                       [*_HEADER_REQUIRED, "series", "totals", "priceVersions", "freshness"]),
    "PriceVersion": obj(
        {"versionId": UUID, "modelId": UUID, "orgId": {**UUID, "type": ["string", "null"]},
         "effectiveFrom": TIME,
         "prices": {"type": "object", "propertyNames": {"enum": _CATEGORY_NAMES},
                    "additionalProperties": {"type": "string"}},
         "currency": {"const": "USD"}, "unit": {"const": "per million tokens"},
         "supersedes": {**UUID, "type": ["string", "null"]}, "createdAt": TIME,
         "createdBy": {"type": "string"}, "note": {"type": "string"},
         "supersededBy": UUID},
        ["versionId", "modelId", "orgId", "effectiveFrom", "prices", "currency", "unit",
         "supersedes", "createdAt", "createdBy", "note"],
        description="Prices in USD per million tokens; a category left out costs its "
        "side's plain price (cacheRead, cacheWrite, audioInput: input; reasoning, "
        "audioOutput: output).",
    ),
    "PriceList": obj({"versions": {"type": "array", "items": ref("PriceVersion")}}),
    "OrgPriceList": obj({"orgId": UUID,
                         "versions": {"type": "array", "items": ref("PriceVersion")}}),
    "PriceVersionDraft": obj(
        {"modelId": UUID, "model": {"type": "string", "description": "A registered name or "
                                    "alias, instead of modelId."},
         "orgId": {**UUID, "description": "An org's override (negotiated rates)."},
         "effectiveFrom": TIME,
         "prices": {"type": "object", "properties": dict.fromkeys(_CATEGORY_NAMES, _PRICE),
                    "required": ["input", "output"]},
         "supersedes": {**UUID, "description": "The version this one corrects."},
         "note": {"type": "string", "maxLength": 500},
         "restate": {"type": "boolean", "description": "Required true when the version "
                     "reprices stored events (starts in the past or supersedes)."}},
        ["effectiveFrom", "prices"],
    ),
    "PriceVersionsBody": {"oneOf": [
        obj({"versions": {"type": "array", "minItems": 1, "maxItems": 10000,
                          "items": ref("PriceVersionDraft")}}),
        ref("PriceVersionDraft"),
    ]},
    "Restatement": obj(
        {"restatementId": UUID, "status": {"enum": ["pending", "running", "succeeded"]},
         "createdAt": TIME, "createdBy": {"type": "string"}, "versionId": UUID,
         "supersedes": {**UUID, "type": ["string", "null"]}, "modelId": UUID,
         "orgId": {**UUID, "type": ["string", "null"]},
         "window": obj({"start": TIME, "end": TIME}), "eventsRepriced": INT,
         "completedAt": NULLABLE_TIME,
         "deltas": {"type": "array", "items": obj(
             {"modelId": UUID, "day": {"type": "string", "format": "date"}, "events": INT,
              "catalogCostBeforeCents": MONEY_EXACT, "catalogCostAfterCents": MONEY_EXACT,
              "deltaCents": _SIGNED_MONEY})}},
        ["restatementId", "status", "createdAt", "createdBy", "versionId", "supersedes",
         "modelId", "orgId", "window", "eventsRepriced", "completedAt"],
    ),
    "PricesAdded": obj({"versions": {"type": "array", "items": ref("PriceVersion")},
                        "restatements": {"type": "array", "items": ref("Restatement")}}),
    "RestatementList": obj({"orgId": UUID,
                            "restatements": {"type": "array", "items": ref("Restatement")}}),
    "Latency": obj(
        {"p50": NULLABLE_NUMBER, "p95": NULLABLE_NUMBER, "p99": NULLABLE_NUMBER,
         "highlighted": {**NULLABLE_NUMBER,
                         "description": "The value of the requested `percentile`."}},
        description="Milliseconds, rounded to 2 decimals; null when there were no calls.",
    ),
    "ReliabilityPoint": obj({**_POINT_KEYS, **_RELIABILITY_FIELDS},
                            ["bucketStart", "bucketEnd", *_RELIABILITY_FIELDS]),
    "ReliabilityTotals": obj({
        **_RELIABILITY_FIELDS,
        "topErrorCodes": {"type": "array", "items": obj({"code": {"type": "string"},
                                                          "count": INT})},
    }),
    "ReliabilityReport": obj({
        **_HEADER, "percentile": {"enum": ["p50", "p95", "p99"]},
        "series": {"type": "array", "items": ref("ReliabilityPoint")},
        "totals": ref("ReliabilityTotals"), "freshness": ref("Freshness"),
    }, [*_HEADER_REQUIRED, "percentile", "series", "totals", "freshness"]),
    "FreshnessEntry": obj({"modelId": UUID, "modelName": NULLABLE_NAME,
                           "lastEventAt": NULLABLE_TIME,
                           "lastRollupAt": NULLABLE_TIME,
                           "lagSeconds": {"type": "number"},
                           "status": {"enum": ["fresh", "stale", "delayed"]}}),
    "FreshnessReport": obj({"orgId": UUID, "status": {"enum": ["fresh", "stale", "delayed"]},
                            "completeThrough": TIME, "lagSeconds": {"type": "number"},
                            "entries": {"type": "array", "items": ref("FreshnessEntry")}}),
    "ModelNames": obj(
        {"name": _NAME, "provider": {"type": "string", "maxLength": 200},
         "family": {"type": "string", "maxLength": 200},
         "aliases": {"type": "array", "maxItems": 32, "items": _NAME}},
        ["name"], description="Labels (name and aliases) are unique across models."),
    "Model": obj({"modelId": UUID, "name": {"type": "string"}, "provider": {"type": "string"},
                  "family": {"type": "string"},
                  "aliases": {"type": "array", "items": {"type": "string"}}}),
    "ModelList": obj({"models": {"type": "array", "items": ref("Model")}}),
    "ClientNameBody": obj({"name": _NAME}),
    "Client": obj({"orgId": UUID, "clientId": {"type": "string"}, "name": {"type": "string"}}),
    "ClientList": obj({"orgId": UUID, "clients": {"type": "array", "items": obj(
        {"clientId": {"type": "string"}, "name": {"type": "string"}})}}),
    "ExportRequest": obj(
        {"timeRange": obj({"start": TIME, "end": TIME}),
         "granularity": {"enum": ["hourly", "daily", "monthly", None], "default": "daily"},
         "tz": {"type": ["string", "null"], "default": "UTC"},
         "models": {"type": ["array", "null"], "items": UUID, "maxItems": 100},
         "kind": {"enum": ["usage", "events", "focus", None], "default": "usage"},
         "close": {"type": ["boolean", "null"], "default": False,
                   "description": "A close (usage only): later changes to the period's numbers "
                                  "get adjustment files."}},
        ["timeRange"],
        description="Usage and FOCUS exports span at most 31 days, events exports at most "
                    "7. An optional field given as null takes its default.",
    ),
    "ExportJob": obj({
        "jobId": UUID, "orgId": UUID,
        "status": {"enum": ["pending", "running", "succeeded", "failed", "expired"]},
        "kind": {"enum": ["usage", "events", "focus"]},
        "granularity": {"enum": ["hourly", "daily", "monthly"]},
        "timeRange": obj({"start": TIME, "end": TIME}), "tz": {"type": "string"},
        "models": {"type": "array", "items": UUID}, "createdAt": TIME,
        "completedAt": NULLABLE_TIME, "initiatedBy": {"type": "string"},
        "rowCount": {"type": ["integer", "null"]},
        "checksum": {"type": ["string", "null"], "description": "Hex SHA-256 of the CSV."},
        "downloadUrl": {"type": ["string", "null"],
                        "description": "This API's download path, set once succeeded."},
        "error": {"type": ["string", "null"]}, "attempts": INT,
        "close": {"type": "boolean", "description": "A close: watched for later changes."},
        "adjusts": {"type": ["string", "null"], "format": "uuid",
                    "description": "An adjustment file: the close it adjusts."},
        "adjustment": {"type": ["integer", "null"], "minimum": 1,
                       "description": "An adjustment file: its number (1, 2, ...)."},
    }),
    "ExportList": obj({"orgId": UUID, "jobs": {"type": "array", "items": ref("ExportJob")},
                       "nextCursor": {"type": ["string", "null"]}}),
    "UsageEvent": obj(
        {"eventId": UUID,
         "orgId": {**UUID, "not": {"const": str(PLATFORM_ORG)},
                   "description": "The tenant org; never the nil UUID (the platform's)."},
         "modelId": UUID, "occurredAt": TIME,
         "status": {"enum": ["success", "error", "timeout", "throttled"]},
         "latencyMs": {**INT, "maximum": MAX_EVENT_LATENCY_MS},
         "inputTokens": {**INT, "maximum": MAX_EVENT_TOKENS},
         "outputTokens": {**INT, "maximum": MAX_EVENT_TOKENS},
         "costEstimateCents": {"type": ["number", "string"], "minimum": 0,
                               "maximum": MAX_EVENT_COST_CENTS},
         "actorId": {"type": ["string", "null"], "format": "uuid"},
         "clientId": {"type": ["string", "null"], "maxLength": 128},
         "errorCode": {"type": ["string", "null"], "maxLength": 128},
         "metadata": {"type": "object", "additionalProperties": {"type": "string"},
                      "maxProperties": 32},
         "tokenDetails": {**_TOKEN_DETAILS, "type": ["object", "null"]}},
        ["eventId", "orgId", "modelId", "occurredAt", "status", "latencyMs", "inputTokens",
         "outputTokens", "costEstimateCents"],
        description="snake_case spellings of every key are accepted; unknown keys ignored.",
    ),
    "EventBatch": obj({"events": {
        "type": "array", "maxItems": 5000,
        "items": {"description": "Each item is judged on its own: a UsageEvent (or one JSON "
                                 "string of one) is accepted; anything else is `rejected` in "
                                 "its result and dead-lettered, never failing the batch."}}}),
    "EventResult": obj(
        {"index": INT, "eventId": {"type": ["string", "null"]},
         "status": {"enum": ["accepted", "duplicate", "rejected"]},
         "conflict": {"type": "boolean",
                      "description": "A duplicate whose content differs from the first."},
         "errors": {"type": "array", "items": ref("FieldError")}},
        ["index", "eventId", "status"],
    ),
    "BatchResult": obj({"batchId": UUID, "accepted": INT, "duplicates": INT, "rejected": INT,
                        "results": {"type": "array", "items": ref("EventResult")}}),
    "ReadyReport": obj({
        "status": {"enum": ["ok", "degraded", "unavailable"]},
        "checks": {"type": "array", "items": obj(
            {"name": {"type": "string"}, "critical": {"type": "boolean"},
             "status": {"enum": ["ok", "failed", "degraded"]},
             "error": {"type": "string"}}, ["name", "critical", "status"])},
        "data": {"type": "string", "description": "Where the data lives: the database (its "
                                                  "password masked) and the exports."},
    }, ["status", "checks"]),
}

_AMOUNT_TEXT: Schema = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]{4})?$",
                        "description": "Exact, in `unit`: cents with 4 decimal places for "
                                       "cost measures, a whole number otherwise."}
_MEASURE: Schema = {"enum": ["catalogCost", "reportedCost", "tokens", "invocations"]}
_PERIOD: Schema = {"enum": ["day", "week", "month"]}
_THRESHOLDS: Schema = {"type": "array", "maxItems": 10, "uniqueItems": True,
                       "items": {"type": "integer", "minimum": 1, "maximum": 1000},
                       "description": "Percentages of the amount; default [50, 80, 100]."}
_SCOPE_TEXT: Schema = {"type": "string", "minLength": 1, "maxLength": 256}
_SCOPE: Schema = {
    "type": "object", "additionalProperties": False, "required": ["type"],
    "properties": {"type": {"enum": ["org", "model", "client", "actor", "tag"]},
                   "modelId": UUID, "clientId": _SCOPE_TEXT, "actorId": UUID,
                   "key": _SCOPE_TEXT, "value": _SCOPE_TEXT},
    "description": "org; model (modelId); client (clientId); actor (actorId); tag (key, an "
                   "attribution key, and value). Default: the whole org.",
}
_AMOUNT_IN: Schema = {"type": ["string", "number"],
                      "description": "Positive; cents (up to 4 decimal places) for cost "
                                     "measures, a whole number of tokens or invocations."}
_BUDGET_FIELDS: dict[str, Schema] = {
    "budgetId": UUID, "orgId": UUID, "name": {"type": "string"}, "scope": _SCOPE,
    "measure": _MEASURE, "unit": {"enum": ["cents", "tokens", "invocations"]},
    "period": _PERIOD, "tz": {"type": "string"}, "amount": _AMOUNT_TEXT,
    "thresholds": {"type": "array", "items": {"type": "integer"}},
    "forecast": {"type": "boolean"}, "createdAt": TIME, "createdBy": {"type": "string"},
    "updatedAt": TIME,
}
_PERCENT: Schema = {"type": "number", "minimum": 0}
SCHEMAS.update({
    "BudgetBody": obj({
        "name": _NAME, "scope": _SCOPE,
        "measure": {**_MEASURE, "default": "catalogCost"},
        "period": {**_PERIOD, "default": "month"},
        "tz": {"type": "string", "default": "UTC", "description": "IANA zone of the period."},
        "amount": _AMOUNT_IN, "thresholds": _THRESHOLDS,
        "forecast": {"type": "boolean", "default": True,
                     "description": "Also alert when the projected end-of-period value "
                                    "reaches the amount."},
    }, ["name", "amount"], additionalProperties=False),
    "BudgetChanges": obj({"name": _NAME, "amount": _AMOUNT_IN, "thresholds": _THRESHOLDS,
                          "forecast": {"type": "boolean"}}, [], additionalProperties=False,
                         description="Scope, measure, period and tz cannot change."),
    "Budget": obj(_BUDGET_FIELDS),
    "BudgetStatus": obj({
        **_BUDGET_FIELDS,
        "current": obj({
            "periodStart": TIME, "periodEnd": TIME, "value": _AMOUNT_TEXT,
            "percent": _PERCENT, "forecastValue": _AMOUNT_TEXT, "forecastPercent": _PERCENT,
            "status": {"enum": ["ok", "warning", "exceeded", "deferred"]},
            "statusReason": {"type": ["string", "null"],
                             "description": "Why evaluation is deferred (freshness)."},
            "firedThresholds": {"type": "array", "items": {"type": "integer"}},
            "forecastFired": {"type": "boolean"},
        }),
        "freshness": ref("Freshness"),
    }),
    "BudgetList": obj({"orgId": UUID,
                       "budgets": {"type": "array", "items": ref("BudgetStatus")}}),
    "Alert": obj({
        "alertId": UUID, "orgId": UUID, "budgetId": UUID, "budgetName": {"type": "string"},
        "measure": _MEASURE, "unit": {"enum": ["cents", "tokens", "invocations"]},
        "kind": {"enum": ["threshold", "forecast"]},
        "threshold": {"type": "integer", "description": "Percent; 100 for the forecast."},
        "periodStart": TIME, "periodEnd": TIME, "value": _AMOUNT_TEXT,
        "amount": _AMOUNT_TEXT, "forecastValue": {**_AMOUNT_TEXT, "type": ["string", "null"]},
        "firedAt": TIME,
        "late": {"type": "boolean", "description": "Fired after its period ended."},
        "completeThrough": TIME,
    }),
    "AlertList": obj({"orgId": UUID, "alerts": {"type": "array", "items": ref("Alert")},
                      "nextCursor": {"type": ["string", "null"]}}),
})

_URL: Schema = {"type": "string", "minLength": 1, "maxLength": 2048, "pattern": "^https?://",
                "description": "https (http only with ANALYTICS_WEBHOOK_ALLOW_PRIVATE); no "
                               "credentials, no fragment; must not resolve to a loopback, "
                               "private or link-local address unless allowed."}
_DESCRIPTION: Schema = {"type": "string", "maxLength": 200}
_WEBHOOK_FIELDS: dict[str, Schema] = {
    "webhookId": UUID, "orgId": UUID, "url": {"type": "string"},
    "description": {"type": "string"}, "enabled": {"type": "boolean"},
    "previousSecretValidUntil": {**NULLABLE_TIME,
                                 "description": "Until when the secret replaced by the last "
                                                "rotation still signs (beside the new one)."},
    "createdAt": TIME, "createdBy": {"type": "string"}, "updatedAt": TIME,
}
_SECRET: Schema = {"type": "string", "pattern": "^whsec_",
                   "description": "The signing secret (Standard Webhooks), shown only here."}
_NULLABLE_INT: Schema = {"type": ["integer", "null"]}
SCHEMAS.update({
    "WebhookBody": obj({"url": _URL, "description": _DESCRIPTION,
                        "enabled": {"type": "boolean", "default": True}},
                       ["url"], additionalProperties=False),
    "WebhookChanges": obj({"url": _URL, "description": _DESCRIPTION,
                           "enabled": {"type": "boolean",
                                       "description": "false pauses deliveries"}},
                          [], additionalProperties=False),
    "Webhook": obj(_WEBHOOK_FIELDS),
    "WebhookWithSecret": obj({**_WEBHOOK_FIELDS, "secret": _SECRET}),
    "WebhookList": obj({"orgId": UUID, "webhooks": {"type": "array", "items": ref("Webhook")}}),
    "AlertWebhook": obj({
        "type": {"const": "budget.alert"}, "id": UUID, "timestamp": TIME,
        "data": obj({
            "alertId": UUID, "orgId": UUID,
            "budget": obj({"budgetId": UUID, "name": {"type": "string"}, "measure": _MEASURE,
                           "unit": {"enum": ["cents", "tokens", "invocations"]},
                           "period": _PERIOD, "tz": {"type": "string"},
                           "scope": {"type": "object"}},
                          ["budgetId", "name", "measure", "unit"]),
            "kind": {"enum": ["threshold", "forecast"]}, "threshold": {"type": "integer"},
            "periodStart": TIME, "periodEnd": TIME, "value": _AMOUNT_TEXT,
            "amount": _AMOUNT_TEXT, "forecastValue": {**_AMOUNT_TEXT,
                                                      "type": ["string", "null"]},
            "late": {"type": "boolean"}, "firedAt": TIME,
            "freshness": obj({"completeThrough": TIME}),
            "links": obj({"budget": {"type": "string"}, "alerts": {"type": "string"}},
                         description="Paths on this API."),
        }),
    }, description="The body of an alert webhook. Headers: webhook-id (the delivery's "
                   "messageId, the same on every attempt), webhook-timestamp (Unix seconds), "
                   "webhook-signature (v1,<base64 HMAC-SHA256 of id.timestamp.body> per "
                   "signing secret, space-separated): Standard Webhooks."),
    "Delivery": obj({
        "deliveryId": UUID, "webhookId": UUID, "messageId": {"type": "string"},
        "alertId": UUID, "eventType": {"type": "string"},
        "status": {"enum": ["pending", "succeeded", "failed"]}, "attempts": INT,
        "createdAt": TIME, "nextAttemptAt": NULLABLE_TIME, "deadline": TIME,
        "lastStatusCode": _NULLABLE_INT, "lastError": {"type": ["string", "null"]},
        "completedAt": NULLABLE_TIME, "payload": ref("AlertWebhook"),
        "attemptLog": {"type": "array", "items": obj({
            "number": INT, "startedAt": TIME,
            "outcome": {"enum": ["succeeded", "failed", "interrupted", "in_flight"]},
            "statusCode": _NULLABLE_INT, "error": {"type": ["string", "null"]},
            "seconds": NULLABLE_NUMBER})},
    }),
    "DeliveryList": obj({"orgId": UUID, "webhookId": UUID,
                         "deliveries": {"type": "array", "items": ref("Delivery")},
                         "nextCursor": {"type": ["string", "null"]}}),
})

_RULE_SCOPE: Schema = {
    "type": "object", "additionalProperties": False, "required": ["type"],
    "properties": {"type": {"enum": ["org", "model", "client"]}, "modelId": UUID,
                   "clientId": _SCOPE_TEXT},
    "description": "org; model (modelId); client (clientId). Default: the whole org.",
}
_RULE_THRESHOLD: Schema = {"type": ["string", "number"],
                           "description": "Percent (up to 2 decimals, at most 100) for "
                                          "errorRate; whole milliseconds for p95Latency."}
_RULE_WINDOW: Schema = {"type": "integer", "minimum": 15, "maximum": 1440, "multipleOf": 15,
                        "description": "Minutes; whole 15-minute buckets, the current one "
                                       "included."}
_MIN_VOLUME: Schema = {"type": "integer", "minimum": 1, "maximum": 1_000_000_000,
                       "description": "Invocations the window needs before the rule changes "
                                      "state."}
_RULE_FIELDS: dict[str, Schema] = {
    "ruleId": UUID, "orgId": UUID, "name": {"type": "string"}, "scope": _RULE_SCOPE,
    "metric": {"enum": ["errorRate", "p95Latency"]},
    "errorClass": {"enum": ["any", "error", "timeout", "throttled", None]},
    "unit": {"enum": ["percent", "ms"]}, "windowMinutes": {"type": "integer"},
    "threshold": {"type": "string"}, "resolveThreshold": {"type": "string"},
    "minVolume": {"type": "integer"}, "createdAt": TIME, "createdBy": {"type": "string"},
    "updatedAt": TIME,
}
_RULE_ALERT_FIELDS: dict[str, Schema] = {
    "source": {"const": "reliability"}, "alertId": UUID, "orgId": UUID, "ruleId": UUID,
    "ruleName": {"type": "string"}, "number": {"type": "integer", "minimum": 1},
    "state": {"enum": ["firing", "resolved"]}, "metric": {"enum": ["errorRate", "p95Latency"]},
    "unit": {"enum": ["percent", "ms"]}, "value": {"type": "string"},
    "threshold": {"type": "string"}, "volume": INT, "windowStart": TIME, "windowEnd": TIME,
    "firedAt": TIME,
}
SCHEMAS["Alert"]["properties"]["source"] = {"const": "budget"}
SCHEMAS["Alert"]["required"].append("source")
SCHEMAS["AlertList"]["properties"]["alerts"] = {"type": "array", "items": {
    "oneOf": [ref("Alert"), ref("ReliabilityAlert")]}}
SCHEMAS.update({
    "RuleBody": obj({
        "name": _NAME, "scope": _RULE_SCOPE, "metric": {"enum": ["errorRate", "p95Latency"]},
        "errorClass": {"enum": ["any", "error", "timeout", "throttled"], "default": "any",
                       "description": "errorRate only: which failures count."},
        "windowMinutes": {**_RULE_WINDOW, "default": 15}, "threshold": _RULE_THRESHOLD,
        "resolveThreshold": {**_RULE_THRESHOLD,
                             "description": "Resolves below this (at most threshold; "
                                            "default 80 % of it)."},
        "minVolume": {**_MIN_VOLUME, "default": 100},
    }, ["name", "metric", "threshold"], additionalProperties=False),
    "RuleChanges": obj({"name": _NAME, "windowMinutes": _RULE_WINDOW,
                        "threshold": _RULE_THRESHOLD, "resolveThreshold": _RULE_THRESHOLD,
                        "minVolume": _MIN_VOLUME}, [], additionalProperties=False,
                       description="Scope, metric and errorClass cannot change."),
    "Rule": obj(_RULE_FIELDS),
    "RuleStatus": obj({
        **_RULE_FIELDS, "state": {"enum": ["ok", "firing"]},
        "current": obj({"windowStart": TIME, "windowEnd": TIME,
                        "value": {"type": ["string", "null"]}, "volume": INT}),
        "lastTransition": {"oneOf": [ref("ReliabilityAlert"), {"type": "null"}]},
    }),
    "RuleList": obj({"orgId": UUID, "rules": {"type": "array", "items": ref("RuleStatus")}}),
    "ReliabilityAlert": obj(_RULE_ALERT_FIELDS),
    "ReliabilityWebhook": obj({
        "type": {"const": "reliability.alert"}, "id": UUID, "timestamp": TIME,
        "data": {"type": "object", "description": "alertId, orgId, rule {ruleId, name, metric, "
                                                  "unit, errorClass, windowMinutes, scope}, "
                                                  "state (firing|resolved), number, value, "
                                                  "threshold, volume, windowStart, windowEnd, "
                                                  "firedAt, links."},
    }),
})
SCHEMAS["Delivery"]["properties"]["payload"] = {"oneOf": [ref("AlertWebhook"),
                                                          ref("ReliabilityWebhook")]}

_DEAD_LETTER_FIELDS: dict[str, Schema] = {
    "deadLetterId": UUID, "orgId": {"type": ["string", "null"], "format": "uuid"},
    "receivedAt": TIME, "source": {"type": "string",
                                   "description": "http, stream:<name>, demo or redrive."},
    "reason": {"type": "string", "description": "Why it was rejected (each bad field)."},
    "streamOffset": _NULLABLE_INT, "sizeBytes": INT,
    "redrive": {"oneOf": [obj({"at": TIME, "by": {"type": "string"},
                               "outcome": {"enum": ["accepted", "duplicate"]}}),
                          {"type": "null"}],
                "description": "The re-drive that stored its event; null while open."},
}
SCHEMAS.update({
    "DeadLetter": obj(_DEAD_LETTER_FIELDS),
    "DeadLetterWithRaw": obj({
        **_DEAD_LETTER_FIELDS,
        "raw": obj({"encoding": {"enum": ["utf-8", "base64"]}, "data": {"type": "string"}},
                   description="The message as received: its text when it is UTF-8, else "
                               "base64 of its bytes."),
    }),
    "DeadLetterList": obj({"orgId": UUID,
                           "deadLetters": {"type": "array", "items": ref("DeadLetter")},
                           "nextCursor": {"type": ["string", "null"]}}),
    "Redrive": obj({"outcome": {"enum": ["accepted", "duplicate"]},
                    "alreadyRedriven": {"type": "boolean"},
                    "deadLetter": ref("DeadLetter")}),
    "AuditEntry": obj({
        "auditId": UUID, "at": TIME, "actor": {"type": "string"},
        "actorOrgId": {"type": ["string", "null"], "format": "uuid"}, "orgId": UUID,
        "action": {"type": "string"}, "resource": {"type": "string"},
        "outcome": {"enum": ["allowed", "denied"]}, "reason": {"type": "string"},
        "requestId": {"type": ["string", "null"]}, "crossOrg": {"type": "boolean"},
    }),
    "AuditList": obj({"orgId": UUID, "entries": {"type": "array", "items": ref("AuditEntry")},
                      "nextCursor": {"type": ["string", "null"]}}),
})

_USD: Schema = {"type": "string", "pattern": r"^-?[0-9]+\.[0-9]{6}$",
                "description": "Exact USD with 6 decimal places."}
_NULLABLE_USD: Schema = {"type": ["string", "null"], "pattern": r"^-?[0-9]+\.[0-9]{6}$"}
_RECONCILIATION_FIELDS: dict[str, Schema] = {
    "reconciliationId": UUID, "orgId": UUID, "createdAt": TIME,
    "createdBy": {"type": "string"}, "name": {"type": "string"}, "tz": {"type": "string"},
    "basis": {"enum": ["catalog", "reported"]}, "tolerancePercent": {"type": "string"},
    "mapping": obj({"day": {"type": "string"}, "model": {"type": "string"},
                    "cost": {"type": "string"},
                    "inputTokens": {"type": ["string", "null"]},
                    "outputTokens": {"type": ["string", "null"]},
                    "costUnit": {"enum": ["usd", "cents"]}, "dayFormat": {"type": "string"}}),
    "firstDay": {"type": "string", "format": "date"},
    "lastDay": {"type": "string", "format": "date"},
    "meteredUsd": _USD, "invoicedUsd": _USD, "varianceUsd": _USD,
    "lineCount": INT, "flaggedCount": INT, "completeThrough": TIME,
}
SCHEMAS.update({
    "ReconciliationLine": obj({
        "day": {"type": "string", "format": "date"},
        "modelId": {"type": ["string", "null"], "format": "uuid"}, "model": {"type": "string"},
        "status": {"enum": ["matched", "over_tolerance", "invoiced_only", "metered_only"]},
        "meteredUsd": _NULLABLE_USD, "invoicedUsd": _NULLABLE_USD, "varianceUsd": _USD,
        "variancePercent": {"type": ["string", "null"],
                            "description": "variance / metered x 100, 2 places; null when "
                                           "nothing was metered."},
        "flagged": {"type": "boolean"},
        "metered": obj({"inputTokens": _NULLABLE_INT, "outputTokens": _NULLABLE_INT,
                        "invocations": _NULLABLE_INT}),
        "invoiced": obj({"inputTokens": _NULLABLE_INT, "outputTokens": _NULLABLE_INT}),
        "invoiceRows": {"type": "array", "items": INT},
    }),
    "Reconciliation": obj(_RECONCILIATION_FIELDS),
    "ReconciliationWithLines": obj({
        **_RECONCILIATION_FIELDS,
        "lines": {"type": "array", "items": ref("ReconciliationLine")},
    }),
    "ReconciliationList": obj({
        "orgId": UUID, "reconciliations": {"type": "array", "items": ref("Reconciliation")},
        "nextCursor": {"type": ["string", "null"]}}),
})

SCHEMAS.update({
    "OrgSettings": obj({"orgId": UUID, "timezone": {"type": "string"},
                        "updatedAt": NULLABLE_TIME, "updatedBy": {"type": ["string", "null"]}},
                       description="updatedAt null: the org set nothing, the defaults apply."),
    "OrgSettingsBody": obj({"timezone": {"type": "string", "minLength": 1,
                                         "description": "IANA zone"}},
                           additionalProperties=False),
})
