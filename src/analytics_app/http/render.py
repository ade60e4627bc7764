"""JSON shapes of the API responses (SPEC §5); money as rounded int plus exact decimal string."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from analytics_core.attribution import OTHER
from analytics_core.budgets import Alert, Budget, BudgetScope, ScopeType, amount_text, percent
from analytics_core.events import TOKEN_DETAIL_KEYS
from analytics_core.exports import ExportJob, ExportStatus
from analytics_core.freshness import Freshness, FreshnessReport
from analytics_core.money import Cents
from analytics_core.prices import CATEGORIES, PriceVersion, price_text
from analytics_core.reconciliation import ReconciliationLine, usd_text
from analytics_core.reconciliation_runs import ReconciliationRun, mapping_fields
from analytics_core.records import AuditEntry, DeadLetter
from analytics_core.registry import ModelEntry, Names
from analytics_core.restatements import Restatement, RestatementDelta
from analytics_core.rollups import NO_CLIENT, RollupStats
from analytics_core.rules import (
    ReliabilityRule,
    RuleMetric,
    RuleState,
    RuleTransition,
    threshold_text,
)
from analytics_core.timegrid import isoformat, zone, zone_error
from analytics_core.usecases.budgets import BudgetView
from analytics_core.usecases.ingest import BatchResult
from analytics_core.usecases.queries import AnalyticsReport, GroupBy, SeriesPoint
from analytics_core.usecases.rules import RuleView
from analytics_core.webhooks import Delivery, DeliveryAttempt, DeliveryStatus, WebhookEndpoint

PERCENTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
NO_NAMES = Names()
UTC_ZONE = zone("UTC")


def _time(value: datetime | None, tz: tzinfo) -> str | None:
    return None if value is None else isoformat(value, tz)


def freshness_block(f: Freshness, tz: tzinfo) -> dict[str, Any]:
    """`{status, completeThrough, lagSeconds}`."""
    return {
        "status": f.status.value,
        "completeThrough": isoformat(f.complete_through, tz),
        "lagSeconds": round(f.lag_seconds, 3),
    }


_ATTRIBUTED = {GroupBy.ACTOR: "actorId", GroupBy.TAG: "tagValue"}
_KEYS = {GroupBy.MODEL: ("modelId", "modelName"), GroupBy.CLIENT: ("clientId", "clientName"),
         GroupBy.NONE: ()}


def _group(point: SeriesPoint, group_by: GroupBy, names: Names) -> dict[str, Any]:
    """The group key, with its registered name beside it (null when it has none). The
    `(other)` group (top=N, or attribution values past the daily cap) carries `"other": true`:
    its actorId or tagValue is "(other)", its model or client keys null."""
    attributed = _ATTRIBUTED.get(group_by)
    if attributed is not None:
        return ({attributed: OTHER, "other": True} if point.group == OTHER
                else {attributed: point.group or None})
    if point.group == OTHER:
        return {**dict.fromkeys(_KEYS[group_by]), "other": True}
    if group_by is GroupBy.MODEL:
        model = None if point.group is None else uuid.UUID(point.group)
        return {"modelId": point.group, "modelName": names.model(model)}
    if group_by is GroupBy.CLIENT:
        client = point.group if point.group != NO_CLIENT else None
        return {"clientId": client, "clientName": names.client(client)}
    return {}


def token_details_body(s: RollupStats) -> dict[str, int]:
    """`tokenDetails` of a point (SPEC §12): every category, zero when none was reported."""
    return dict(zip(TOKEN_DETAIL_KEYS, s.token_details.as_tuple(), strict=True))


def _usage_fields(s: RollupStats) -> dict[str, Any]:
    return {
        "invocations": s.invocations, "inputTokens": s.input_tokens,
        "outputTokens": s.output_tokens, "tokenDetails": token_details_body(s),
        "costEstimateCents": s.cost.rounded(), "costEstimateCentsExact": s.cost.exact_str(),
        "catalogCostCents": s.catalog_cost.rounded(),
        "catalogCostCentsExact": s.catalog_cost.exact_str(),
        "catalogCostByCategory": {c.value: Cents(n).exact_str()
                                  for c, n in zip(CATEGORIES, s.catalog_costs, strict=True)},
        "pricedInvocations": s.priced, "unpricedInvocations": s.unpriced,
    }


def price_version_body(v: PriceVersion, superseded_by: uuid.UUID | None = None
                       ) -> dict[str, Any]:
    """One price version: prices as exact USD per million tokens (absent categories fall back
    to their side's plain price)."""
    body: dict[str, Any] = {
        "versionId": str(v.version_id), "modelId": str(v.model_id),
        "orgId": None if v.org_id is None else str(v.org_id),
        "effectiveFrom": isoformat(v.effective_from, UTC_ZONE),
        "prices": {c.value: price_text(n) for c, n in v.prices.items()},
        "currency": "USD", "unit": "per million tokens",
        "supersedes": None if v.supersedes is None else str(v.supersedes),
        "createdAt": isoformat(v.created_at, UTC_ZONE), "createdBy": v.created_by,
        "note": v.note,
    }
    if superseded_by is not None:
        body["supersededBy"] = str(superseded_by)
    return body


def _header(report: AnalyticsReport) -> dict[str, Any]:
    q = report.query
    group = f"tag:{q.tag}" if q.group_by is GroupBy.TAG else q.group_by.value
    header: dict[str, Any] = {"orgId": str(q.org_id), "granularity": q.grain.value,
                              "tz": q.tz, "groupBy": group}
    if q.top is not None:
        header["top"] = q.top
    return header


def usage_body(report: AnalyticsReport, names: Names = NO_NAMES) -> dict[str, Any]:
    """`{orgId, granularity, tz, series[], totals, freshness}` for usage and spend."""
    tz = zone(report.query.tz)
    series = [
        {"bucketStart": isoformat(p.bucket_start, tz), "bucketEnd": isoformat(p.bucket_end, tz),
         **_group(p, report.query.group_by, names), **_usage_fields(p.stats)}
        for p in report.series
    ]
    totals = _usage_fields(report.totals)
    # SPEC §5: totals equal the sum of the series exactly, the rounded integer included; the
    # exact decimal string is the authoritative amount (it is the exact sum of the points too).
    totals["costEstimateCents"] = sum(point["costEstimateCents"] for point in series)
    totals["catalogCostCents"] = sum(point["catalogCostCents"] for point in series)
    return {
        **_header(report), "series": series, "totals": totals,
        "priceVersions": [price_version_body(v) for v in report.price_versions],
        "freshness": freshness_block(report.freshness, tz),
    }


def _latency(s: RollupStats, highlighted: str) -> dict[str, float | None]:
    values: dict[str, float | None] = {}
    for name, q in PERCENTILES.items():
        value = s.percentile(q)
        values[name] = None if value is None else round(value, 2)
    values["highlighted"] = values[highlighted]
    return values


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _reliability_fields(s: RollupStats, highlighted: str) -> dict[str, Any]:
    return {
        "invocations": s.invocations, "success": s.success, "errors": s.errors,
        "timeouts": s.timeouts, "throttled": s.throttled,
        "errorRate": _rate(s.failures, s.invocations),
        "rates": {
            "error": _rate(s.errors, s.invocations), "timeout": _rate(s.timeouts, s.invocations),
            "throttled": _rate(s.throttled, s.invocations),
        },
        "latencyMs": _latency(s, highlighted),
    }


def reliability_body(report: AnalyticsReport, percentile: str,
                     names: Names = NO_NAMES) -> dict[str, Any]:
    """Error classes, error rate and latency percentiles per point and over the range."""
    tz = zone(report.query.tz)
    series = [
        {"bucketStart": isoformat(p.bucket_start, tz), "bucketEnd": isoformat(p.bucket_end, tz),
         **_group(p, report.query.group_by, names),
         **_reliability_fields(p.stats, percentile)}
        for p in report.series
    ]
    totals = _reliability_fields(report.totals, percentile)
    totals["topErrorCodes"] = [{"code": c, "count": n} for c, n in report.top_error_codes()]
    return {
        **_header(report), "percentile": percentile, "series": series, "totals": totals,
        "freshness": freshness_block(report.freshness, tz),
    }


def freshness_body(report: FreshnessReport, tz: tzinfo,
                   names: Names = NO_NAMES) -> dict[str, Any]:
    """`{orgId, status, completeThrough, lagSeconds, entries[]}`, one entry per model."""
    return {
        "orgId": str(report.org_id),
        **freshness_block(report.freshness, tz),
        "entries": [
            {"modelId": str(e.model_id), "modelName": names.model(e.model_id),
             "lastEventAt": _time(e.last_event_at, tz),
             "lastRollupAt": _time(e.last_rollup_at, tz), "lagSeconds": round(e.lag_seconds, 3),
             "status": e.status.value}
            for e in report.entries
        ],
    }


def model_body(entry: ModelEntry) -> dict[str, Any]:
    """`{modelId, name, provider, family, aliases[]}`: the API's and `models list --json`'s."""
    return {"modelId": str(entry.model_id), "name": entry.name, "provider": entry.provider,
            "family": entry.family, "aliases": list(entry.aliases)}


def download_path(prefix: str, job: ExportJob) -> str:
    """The API's own download path of a job (never a live signed URL)."""
    return f"{prefix}/orgs/{job.org_id}/exports/{job.job_id}/download"


def job_path(prefix: str, job: ExportJob) -> str:
    """The API path of one job."""
    return f"{prefix}/orgs/{job.org_id}/exports/{job.job_id}"


def job_body(job: ExportJob, prefix: str) -> dict[str, Any]:
    """An export job; `timeRange` in the job's zone, timestamps in UTC."""
    r = job.request
    # A zone the running tzdata no longer knows (a job stored earlier) shows its window in UTC.
    tz = UTC_ZONE if zone_error(r.tz) else zone(r.tz)
    succeeded = job.status is ExportStatus.SUCCEEDED
    return {
        "jobId": str(job.job_id), "orgId": str(job.org_id), "status": job.status.value,
        "kind": r.kind.value, "granularity": r.granularity.value,
        "timeRange": {"start": isoformat(r.start, tz), "end": isoformat(r.end, tz)},
        "tz": r.tz, "models": [str(m) for m in r.models],
        "createdAt": isoformat(job.created_at, UTC_ZONE),
        "completedAt": _time(job.completed_at, UTC_ZONE),
        "initiatedBy": job.initiated_by, "rowCount": job.row_count, "checksum": job.checksum,
        "downloadUrl": download_path(prefix, job) if succeeded else None,
        "error": job.error, "attempts": job.attempts, "close": job.close,
        "adjusts": None if job.adjusts is None else str(job.adjusts),
        "adjustment": job.adjustment,
    }


def batch_body(result: BatchResult) -> dict[str, Any]:
    """`{batchId, accepted, duplicates, rejected, results[]}` in input order."""
    results: list[dict[str, Any]] = []
    for r in result.results:
        item: dict[str, Any] = {"index": r.index, "eventId": r.event_id, "status": r.status.value}
        if r.conflict:
            item["conflict"] = True
        if r.errors:
            item["errors"] = [{"field": e.field, "reason": e.reason} for e in r.errors]
        results.append(item)
    return {
        "batchId": str(result.batch_id), "accepted": result.accepted,
        "duplicates": result.duplicates, "rejected": result.rejected, "results": results,
    }


def restatement_body(r: Restatement, deltas: Sequence[RestatementDelta] | None = None
                     ) -> dict[str, Any]:
    """A restatement record (and, when given, one org's deltas per model and UTC day; money
    as exact cents)."""
    body: dict[str, Any] = {
        "restatementId": str(r.restatement_id), "status": r.status.value,
        "createdAt": isoformat(r.created_at, UTC_ZONE), "createdBy": r.created_by,
        "versionId": str(r.version_id),
        "supersedes": None if r.supersedes is None else str(r.supersedes),
        "modelId": str(r.model_id), "orgId": None if r.org_id is None else str(r.org_id),
        "window": {"start": isoformat(r.window_start, UTC_ZONE),
                   "end": isoformat(r.window_end, UTC_ZONE)},
        "eventsRepriced": r.events_repriced,
        "completedAt": None if r.completed_at is None else isoformat(r.completed_at, UTC_ZONE),
    }
    if deltas is not None:
        body["deltas"] = [
            {"modelId": str(d.model_id), "day": d.day.isoformat(), "events": d.events,
             "catalogCostBeforeCents": Cents(d.before_units).exact_str(),
             "catalogCostAfterCents": Cents(d.after_units).exact_str(),
             "deltaCents": Cents(d.delta_units).exact_str()}
            for d in deltas
        ]
    return body


_SCOPE_FIELD = {ScopeType.MODEL: "modelId", ScopeType.CLIENT: "clientId",
                ScopeType.ACTOR: "actorId"}


def scope_body(scope: BudgetScope) -> dict[str, Any]:
    """`{"type": ...}` with the scope's id, or the tag's key and value."""
    if scope.type is ScopeType.TAG:
        return {"type": scope.type.value, "key": scope.key, "value": scope.value}
    field = _SCOPE_FIELD.get(scope.type)
    return {"type": scope.type.value, **({field: scope.value} if field else {})}


def budget_body(b: Budget) -> dict[str, Any]:
    """A budget as configured; amounts as exact decimal strings in `unit`."""
    return {
        "budgetId": str(b.budget_id), "orgId": str(b.org_id), "name": b.name,
        "scope": scope_body(b.scope), "measure": b.measure.value, "unit": b.measure.unit,
        "period": b.period.value, "tz": b.tz, "amount": amount_text(b.amount, b.measure),
        "thresholds": list(b.thresholds), "forecast": b.forecast,
        "createdAt": isoformat(b.created_at, UTC_ZONE), "createdBy": b.created_by,
        "updatedAt": isoformat(b.updated_at, UTC_ZONE),
    }


def budget_view_body(v: BudgetView) -> dict[str, Any]:
    """A budget with its current period: value, percentage, forecast, status and why."""
    b, tz = v.budget, zone(v.budget.tz)
    return {
        **budget_body(b),
        "current": {
            "periodStart": isoformat(v.period_start, tz),
            "periodEnd": isoformat(v.period_end, tz),
            "value": amount_text(v.value, b.measure),
            "percent": float(percent(v.value, b.amount)),
            "forecastValue": amount_text(v.forecast_value, b.measure),
            "forecastPercent": float(percent(v.forecast_value, b.amount)),
            "status": v.state.value, "statusReason": v.reason,
            "firedThresholds": sorted(a.threshold for a in v.fired
                                      if a.kind.value == "threshold"),
            "forecastFired": any(a.kind.value == "forecast" for a in v.fired),
        },
        "freshness": freshness_block(v.freshness, tz),
    }


def alert_body(a: Alert | RuleTransition) -> dict[str, Any]:
    """A fired budget alert (value and amount in the budget's unit, as exact decimal strings),
    or a reliability rule's transition."""
    if isinstance(a, RuleTransition):
        return transition_body(a)
    return {
        "source": "budget",
        "alertId": str(a.alert_id), "orgId": str(a.org_id), "budgetId": str(a.budget_id),
        "budgetName": a.budget_name, "measure": a.measure.value, "unit": a.measure.unit,
        "kind": a.kind.value, "threshold": a.threshold,
        "periodStart": isoformat(a.period_start, UTC_ZONE),
        "periodEnd": isoformat(a.period_end, UTC_ZONE),
        "value": amount_text(a.value, a.measure), "amount": amount_text(a.amount, a.measure),
        "forecastValue": None if a.forecast_value is None
        else amount_text(a.forecast_value, a.measure),
        "firedAt": isoformat(a.fired_at, UTC_ZONE), "late": a.late,
        "completeThrough": isoformat(a.complete_through, UTC_ZONE),
    }


def webhook_body(e: WebhookEndpoint) -> dict[str, Any]:
    """An endpoint, never its secret: only until when a rotated-out secret still signs."""
    return {
        "webhookId": str(e.endpoint_id), "orgId": str(e.org_id), "url": e.url,
        "description": e.description, "enabled": e.enabled,
        "previousSecretValidUntil": None if e.previous_until is None
        else isoformat(e.previous_until, UTC_ZONE),
        "createdAt": isoformat(e.created_at, UTC_ZONE), "createdBy": e.created_by,
        "updatedAt": isoformat(e.updated_at, UTC_ZONE),
    }


def delivery_body(d: Delivery, attempts: Sequence[DeliveryAttempt]) -> dict[str, Any]:
    """A delivery with its payload (as sent) and its attempts."""
    return {
        "deliveryId": str(d.delivery_id), "webhookId": str(d.endpoint_id),
        "messageId": d.message_id, "alertId": str(d.alert_id), "eventType": d.event_type,
        "status": d.status.value, "attempts": d.attempts,
        "createdAt": isoformat(d.created_at, UTC_ZONE),
        "nextAttemptAt": isoformat(d.next_attempt_at, UTC_ZONE)
        if d.status is DeliveryStatus.PENDING else None,
        "deadline": isoformat(d.deadline, UTC_ZONE),
        "lastStatusCode": d.last_status_code, "lastError": d.last_error,
        "completedAt": None if d.completed_at is None else isoformat(d.completed_at, UTC_ZONE),
        "payload": json.loads(d.payload),
        "attemptLog": [{"number": a.number, "startedAt": isoformat(a.started_at, UTC_ZONE),
                        "outcome": a.outcome.value, "statusCode": a.status_code,
                        "error": a.error,
                        "seconds": None if a.seconds is None else round(a.seconds, 3)}
                       for a in attempts],
    }


def _rule_unit(metric: RuleMetric) -> str:
    return "percent" if metric is RuleMetric.ERROR_RATE else "ms"


def transition_body(t: RuleTransition) -> dict[str, Any]:
    """A reliability rule firing or resolving, in the alerts list."""
    return {
        "source": "reliability", "alertId": str(t.transition_id), "orgId": str(t.org_id),
        "ruleId": str(t.rule_id), "ruleName": t.rule_name, "number": t.number,
        "state": "firing" if t.state is RuleState.FIRING else "resolved",
        "metric": t.metric.value, "unit": _rule_unit(t.metric),
        "value": threshold_text(t.value, t.metric),
        "threshold": threshold_text(t.threshold, t.metric), "volume": t.volume,
        "windowStart": isoformat(t.window_start, UTC_ZONE),
        "windowEnd": isoformat(t.window_end, UTC_ZONE),
        "firedAt": isoformat(t.at, UTC_ZONE),
    }


def rule_body(r: ReliabilityRule) -> dict[str, Any]:
    """A rule as configured; thresholds in `unit` (percent with 2 decimals, or ms)."""
    return {
        "ruleId": str(r.rule_id), "orgId": str(r.org_id), "name": r.name,
        "scope": scope_body(r.scope), "metric": r.metric.value,
        "errorClass": r.error_class.value if r.metric is RuleMetric.ERROR_RATE else None,
        "unit": _rule_unit(r.metric), "windowMinutes": r.window_minutes,
        "threshold": threshold_text(r.threshold, r.metric),
        "resolveThreshold": threshold_text(r.resolve_threshold, r.metric),
        "minVolume": r.min_volume, "createdAt": isoformat(r.created_at, UTC_ZONE),
        "createdBy": r.created_by, "updatedAt": isoformat(r.updated_at, UTC_ZONE),
    }


def rule_view_body(v: RuleView) -> dict[str, Any]:
    """A rule with its state and current window."""
    r = v.rule
    return {
        **rule_body(r),
        "state": v.state.value,
        "current": {"windowStart": isoformat(v.window_start, UTC_ZONE),
                    "windowEnd": isoformat(v.window_end, UTC_ZONE),
                    "value": None if v.value is None else threshold_text(v.value, r.metric),
                    "volume": v.volume},
        "lastTransition": None if v.last is None else transition_body(v.last),
    }


def dead_letter_body(d: DeadLetter, *, raw: bool = False) -> dict[str, Any]:
    """A dead letter: why and when it was kept, its size, its re-drive (null while open); with
    `raw`, the message itself (UTF-8 text as it came, or base64 when it is not UTF-8)."""
    body: dict[str, Any] = {
        "deadLetterId": str(d.dead_letter_id),
        "orgId": None if d.org_id is None else str(d.org_id),
        "receivedAt": isoformat(d.received_at, UTC_ZONE), "source": d.source,
        "reason": d.reason, "streamOffset": d.offset, "sizeBytes": len(d.raw),
        "redrive": None if d.redriven_at is None else {
            "at": isoformat(d.redriven_at, UTC_ZONE), "by": d.redriven_by,
            "outcome": d.redrive_outcome,
        },
    }
    if raw:
        try:
            body["raw"] = {"encoding": "utf-8", "data": d.raw.decode("utf-8")}
        except UnicodeDecodeError:
            body["raw"] = {"encoding": "base64", "data": base64.b64encode(d.raw).decode()}
    return body


def audit_entry_body(e: AuditEntry) -> dict[str, Any]:
    """One authorization decision on org data (SPEC §6)."""
    return {
        "auditId": str(e.audit_id), "at": isoformat(e.at, UTC_ZONE), "actor": e.actor,
        "actorOrgId": None if e.actor_org is None else str(e.actor_org),
        "orgId": str(e.org_id), "action": e.action, "resource": e.resource,
        "outcome": e.outcome.value, "reason": e.reason, "requestId": e.request_id,
        "crossOrg": e.cross_org,
    }


def _usd(amount: Cents | None) -> str | None:
    return None if amount is None else usd_text(amount)


def reconciliation_line_body(line: ReconciliationLine) -> dict[str, Any]:
    """One line of a reconciliation: day and model, both sides, the variance."""
    return {
        "day": line.day.isoformat(),
        "modelId": None if line.model_id is None else str(line.model_id),
        "model": line.model, "status": line.status.value,
        "meteredUsd": _usd(line.metered), "invoicedUsd": _usd(line.invoiced),
        "varianceUsd": usd_text(line.variance),
        "variancePercent": None if line.variance_percent is None
        else f"{line.variance_percent:f}",
        "flagged": line.flagged,
        "metered": {"inputTokens": line.metered_input_tokens,
                    "outputTokens": line.metered_output_tokens,
                    "invocations": line.metered_invocations},
        "invoiced": {"inputTokens": line.invoiced_input_tokens,
                     "outputTokens": line.invoiced_output_tokens},
        "invoiceRows": list(line.rows),
    }


def reconciliation_body(run: ReconciliationRun,
                        lines: Sequence[ReconciliationLine] | None = None) -> dict[str, Any]:
    """A kept reconciliation (amounts in USD as exact decimal strings with six places); with
    `lines`, those lines too."""
    body: dict[str, Any] = {
        "reconciliationId": str(run.reconciliation_id), "orgId": str(run.org_id),
        "createdAt": isoformat(run.created_at, UTC_ZONE), "createdBy": run.created_by,
        "name": run.name, "tz": run.tz, "basis": run.basis.value,
        "tolerancePercent": f"{run.tolerance_percent:f}",
        "mapping": mapping_fields(run.mapping),
        "firstDay": run.first_day.isoformat(), "lastDay": run.last_day.isoformat(),
        "meteredUsd": usd_text(run.metered_total), "invoicedUsd": usd_text(run.invoiced_total),
        "varianceUsd": usd_text(run.variance), "lineCount": run.line_count,
        "flaggedCount": run.flagged_count,
        "completeThrough": isoformat(run.complete_through, UTC_ZONE),
    }
    if lines is not None:
        body["lines"] = [reconciliation_line_body(line) for line in lines]
    return body
