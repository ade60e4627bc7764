"""What the HTTP driver is given: the use cases it calls, bound to their ports, and its settings.

The composition root (`analytics_app.bootstrap`) builds one `HttpApi` per process; `create_app`
hands each resource only the callables it uses. Nothing here knows an adapter.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol

import attrs

from analytics_app.http.settings import HttpSettings
from analytics_core.access import Action, Actor, Decision
from analytics_core.budgets import Budget
from analytics_core.events import UsageEvent
from analytics_core.exports import ExportJob, ExportRequest, ExportStatus
from analytics_core.freshness import FreshnessReport
from analytics_core.org_settings import OrgSettings
from analytics_core.ports import HealthCheck
from analytics_core.prices import PriceVersion
from analytics_core.records import AuditFilter, DeadLetter, DeadLetterFilter
from analytics_core.registry import ClientName, ModelEntry, Names
from analytics_core.rules import ReliabilityRule
from analytics_core.usecases import (
    budgets,
    exports,
    ingest,
    prices,
    queries,
    reconciliations,
    restatements,
    rules,
    support,
    webhooks,
)
from analytics_core.usecases.ingest import IngestScope
from analytics_core.webhooks import Delivery, WebhookEndpoint

Cursor = tuple[datetime, uuid.UUID]


class Authorize(Protocol):
    """Allow or raise Forbidden for one actor, action and org; audited either way."""

    def __call__(
        self, actor: Actor, action: Action, org_id: uuid.UUID, *, resource: str = "",
        request_id: str | None = None,
    ) -> Decision: ...


class CreateExport(Protocol):
    """Create (or replay, for a known Idempotency-Key) an export job; (job, created)."""

    def __call__(
        self, request: ExportRequest, initiated_by: str, idempotency_key: str | None,
    ) -> tuple[ExportJob, bool]: ...


class ListExports(Protocol):
    """A page of an org's export jobs, newest first."""

    def __call__(
        self, org_id: uuid.UUID, status: ExportStatus | None, limit: int, before: Cursor | None,
    ) -> exports.JobPage: ...


@attrs.frozen
class HttpApi:
    """Every use case the API serves, each a plain callable with its ports already bound."""

    settings: HttpSettings
    authenticate_api_key: Callable[[str], Actor]
    authorize: Authorize
    usage: Callable[[queries.AnalyticsQuery], queries.AnalyticsReport]
    reliability: Callable[[queries.AnalyticsQuery], queries.AnalyticsReport]
    freshness: Callable[[uuid.UUID, Sequence[uuid.UUID]], FreshnessReport]
    create_export: CreateExport
    list_exports: ListExports
    get_export: Callable[[uuid.UUID, uuid.UUID], ExportJob]
    download: Callable[[uuid.UUID, uuid.UUID], exports.Download]
    ingest: Callable[[Sequence[ingest.RawMessage], ingest.IngestScope], ingest.BatchResult]
    validate: Callable[[object], UsageEvent]
    names: Callable[[uuid.UUID], Names]
    list_models: Callable[[], list[ModelEntry]]
    get_model: Callable[[uuid.UUID], ModelEntry]
    put_model: Callable[[Actor, ModelEntry], bool]
    delete_model: Callable[[Actor, uuid.UUID], None]
    list_clients: Callable[[uuid.UUID], list[ClientName]]
    put_client: Callable[[ClientName], None]
    delete_client: Callable[[uuid.UUID, str], None]
    add_prices: Callable[[Actor, prices.Drafts], prices.AddedPrices]
    list_prices: Callable[[Actor, uuid.UUID | None, uuid.UUID | None, bool],
                          list[PriceVersion]]
    get_price: Callable[[Actor, uuid.UUID], tuple[PriceVersion, uuid.UUID | None]]
    org_prices: Callable[[uuid.UUID], list[PriceVersion]]
    org_restatements: Callable[[uuid.UUID], list[restatements.RestatementView]]
    create_budget: Callable[[Actor, uuid.UUID, object], Budget]
    update_budget: Callable[[Actor, uuid.UUID, uuid.UUID, object], Budget]
    delete_budget: Callable[[Actor, uuid.UUID, uuid.UUID], None]
    list_budgets: Callable[[uuid.UUID], list[budgets.BudgetView]]
    get_budget: Callable[[uuid.UUID, uuid.UUID], budgets.BudgetView]
    list_alerts: Callable[[uuid.UUID, int, Cursor | None, uuid.UUID | None, uuid.UUID | None],
                          budgets.AlertPage]
    create_rule: Callable[[Actor, uuid.UUID, object], ReliabilityRule]
    update_rule: Callable[[Actor, uuid.UUID, uuid.UUID, object], ReliabilityRule]
    delete_rule: Callable[[Actor, uuid.UUID, uuid.UUID], None]
    list_rules: Callable[[uuid.UUID], list[rules.RuleView]]
    get_rule: Callable[[uuid.UUID, uuid.UUID], rules.RuleView]
    create_webhook: Callable[[Actor, uuid.UUID, object], tuple[WebhookEndpoint, str]]
    list_webhooks: Callable[[uuid.UUID], list[WebhookEndpoint]]
    get_webhook: Callable[[uuid.UUID, uuid.UUID], WebhookEndpoint]
    update_webhook: Callable[[Actor, uuid.UUID, uuid.UUID, object], WebhookEndpoint]
    delete_webhook: Callable[[Actor, uuid.UUID, uuid.UUID], None]
    rotate_webhook_secret: Callable[[Actor, uuid.UUID, uuid.UUID],
                                    tuple[WebhookEndpoint, str]]
    list_deliveries: Callable[[uuid.UUID, uuid.UUID, int, Cursor | None],
                              webhooks.DeliveryPage]
    redeliver: Callable[[Actor, uuid.UUID, uuid.UUID, uuid.UUID], Delivery]
    list_dead_letters: Callable[[uuid.UUID | None, DeadLetterFilter, int, Cursor | None],
                                support.DeadLetterPage]
    get_dead_letter: Callable[[uuid.UUID | None, uuid.UUID], DeadLetter]
    redrive_dead_letter: Callable[[uuid.UUID | None, uuid.UUID, str, IngestScope | None],
                                  support.Redrive]
    list_audit: Callable[[uuid.UUID, AuditFilter, int, Cursor | None], support.AuditPage]
    reconcile_invoice: Callable[[reconciliations.ReconcileRequest, str],
                                reconciliations.KeptReconciliation]
    list_reconciliations: Callable[[uuid.UUID, int, Cursor | None], reconciliations.RunPage]
    get_reconciliation: Callable[[uuid.UUID, uuid.UUID], reconciliations.KeptReconciliation]
    get_org_settings: Callable[[uuid.UUID], OrgSettings]
    put_org_settings: Callable[[uuid.UUID, object, str], OrgSettings]
    health_checks: Sequence[HealthCheck] = ()
    degraded_checks: Sequence[HealthCheck] = ()
    data_location: str = ""  # where the data lives (credentials masked), for readyz?verbose
    # Held around a whole ingest request (reading the body, the use case, the results):
    # the collector tuned for a batch in hand (bootstrap: stream.gc_tuning.batch_collection).
    batch_scope: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext
