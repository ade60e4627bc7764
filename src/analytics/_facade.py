"""`Analytics`: the product as a library, built by the composition root (see `analytics`)."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from analytics_app.bootstrap.application import Application
from analytics_app.config import Settings, load_settings
from analytics_core.access import ORG_ADMIN, Actor, Outcome
from analytics_core.budgets import Alert, Budget
from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.events import UsageEvent
from analytics_core.exports import (
    ExportGranularity,
    ExportJob,
    ExportKind,
    ExportRequest,
    ExportStatus,
)
from analytics_core.freshness import FreshnessReport
from analytics_core.reconciliation import ColumnMapping
from analytics_core.reconciliation_runs import Basis, ReconciliationRun
from analytics_core.records import AuditEntry, AuditFilter, DeadLetter, DeadLetterFilter
from analytics_core.registry import ClientName, ModelEntry, client_name, model_entry
from analytics_core.rules import ReliabilityRule, RuleTransition
from analytics_core.timegrid import Grain
from analytics_core.usecases.budgets import BudgetView, Evaluation
from analytics_core.usecases.ingest import BatchResult, RawMessage
from analytics_core.usecases.queries import AnalyticsQuery, AnalyticsReport, parse_group_by
from analytics_core.usecases.reconciliations import KeptReconciliation, ReconcileRequest
from analytics_core.usecases.rules import RuleView
from analytics_core.usecases.support import Redrive

T = TypeVar("T")
OrgId = uuid.UUID | str
"""An org id: a UUID, or its text."""

_GRAINS = {"hour": Grain.HOUR, "hourly": Grain.HOUR, "day": Grain.DAY, "daily": Grain.DAY,
           "month": Grain.MONTH, "monthly": Grain.MONTH}


def _uuid(value: uuid.UUID | str, field: str = "id") -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(value)
    except (TypeError, ValueError):
        raise ValidationFailed([FieldError(field, f"must be a UUID, got {value!r}")]) from None


def _decimal(value: str | int | Decimal, field: str) -> Decimal:
    try:
        return Decimal(value)
    except (ArithmeticError, TypeError, ValueError):
        raise ValidationFailed([FieldError(field, f"must be a decimal number, got {value!r}")]
                               ) from None


def _choice(value: str, choices: Mapping[str, T], field: str) -> T:
    if value not in choices:
        raise ValidationFailed([FieldError(field, f"must be one of {', '.join(choices)}, "
                                                  f"got {value!r}")])
    return choices[value]


class Analytics:
    """Usage, spend and reliability analytics inside your service.

    Build one with `Analytics.in_memory()`, `Analytics.from_env()` or
    `Analytics.from_settings(...)` and use it as a context manager (or call `close()`): it
    opens connection pools on first use and closes them once. Methods take and return the
    value objects exported by `analytics` (attrs classes), never sessions or ports. Every
    method is thread-safe; `aio` offers the same methods to asyncio code.

    The caller is trusted: `ingest` stores events of any org (authorization is the HTTP API's
    job). Bad input raises `ValidationFailed` naming each field; an unreachable database
    raises `StoreUnavailable`.
    """

    def __init__(self, application: Application) -> None:
        """Internal: use `in_memory`, `from_env` or `from_settings`."""
        self._app = application

    @classmethod
    def in_memory(cls, *, export_dir: str | Path | None = None) -> Analytics:
        """Everything in this process (tests, notebooks, demos); export files go to
        `export_dir` (default `data/exports`)."""
        settings = Settings() if export_dir is None else Settings(export_dir=Path(export_dir))
        return cls(Application(settings))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Analytics:
        """Configured by the ANALYTICS_* variables, as the service is (README,
        "Configuration"); ConfigError names each bad value."""
        return cls(Application(load_settings(environ)))

    @classmethod
    def from_settings(cls, settings: Settings) -> Analytics:
        """Configured by a `Settings` value."""
        return cls(Application(settings))

    def __enter__(self) -> Analytics:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close every pool and client opened so far (safe to call twice)."""
        self._app.shutdown()

    @property
    def aio(self) -> AsyncAnalytics:
        """The same methods as coroutines that run in a worker thread (never block the loop)."""
        return AsyncAnalytics(self)

    # -- storage ---------------------------------------------------------------------------

    def migrate(self) -> str:
        """Bring a SQLite or PostgreSQL schema to this version; returns the revision."""
        return self._app.migrate()

    # -- ingestion -------------------------------------------------------------------------

    def ingest(self, events: Iterable[object], *, source: str = "library") -> BatchResult:
        """Store a batch exactly once: each event (a dict, or its JSON as str or bytes) is
        accepted, a duplicate of one already stored, or rejected with reasons and kept as a
        dead letter. `BatchResult.results` has one entry per event, in order."""
        messages = [RawMessage(e) for e in events]
        return self._app.use_cases.ingest_trusted(messages, source=source)

    def validate(self, event: object) -> UsageEvent:
        """The parsed event, or ValidationFailed naming each bad field (nothing is stored)."""
        return self._app.use_cases.validate(event)

    # -- queries ---------------------------------------------------------------------------

    def usage(self, org_id: OrgId, start: datetime, end: datetime, *,
              granularity: str = "day", tz: str = "UTC",
              model_ids: Sequence[uuid.UUID | str] = (), client_ids: Sequence[str] = (),
              group_by: str = "model", top: int | None = None) -> AnalyticsReport:
        """Usage and spend per period of `granularity` (hour, day, month) in `tz`, one series
        per `group_by` (model, client, actor, none, or tag:KEY for an attribution key); with
        `top`, the N largest groups and one `(other)` group; totals equal the sum of the
        series."""
        query = self._query(org_id, start, end, granularity, tz, model_ids, client_ids,
                            group_by, top)
        return self._app.use_cases.usage(query)

    def reliability(self, org_id: OrgId, start: datetime, end: datetime, *,
                    granularity: str = "day", tz: str = "UTC",
                    model_ids: Sequence[uuid.UUID | str] = (), client_ids: Sequence[str] = (),
                    group_by: str = "model", top: int | None = None) -> AnalyticsReport:
        """Errors and latency percentiles (`RollupStats.percentile`) per period and group
        (the groupings and `top` of `usage`)."""
        query = self._query(org_id, start, end, granularity, tz, model_ids, client_ids,
                            group_by, top)
        return self._app.use_cases.reliability(query)

    def freshness(self, org_id: OrgId,
                  model_ids: Sequence[uuid.UUID | str] = ()) -> FreshnessReport:
        """How far behind the data of one org is, per model."""
        models = [_uuid(m, "model_ids") for m in model_ids]
        return self._app.use_cases.freshness(_uuid(org_id, "org_id"), models)

    @staticmethod
    def _query(org_id: OrgId, start: datetime, end: datetime, granularity: str, tz: str,  # noqa: PLR0917  private, mirrors the public signature
               model_ids: Sequence[uuid.UUID | str], client_ids: Sequence[str],
               group_by: str, top: int | None) -> AnalyticsQuery:
        try:
            grouping, tag = parse_group_by(group_by)
        except ValueError as e:
            raise ValidationFailed([FieldError("group_by", str(e))]) from None
        return AnalyticsQuery(
            _uuid(org_id, "org_id"), start, end, _choice(granularity, _GRAINS, "granularity"),
            tz, tuple(_uuid(m, "model_ids") for m in model_ids), tuple(client_ids),
            grouping, tag, top,
        )

    # -- exports ---------------------------------------------------------------------------

    def create_export(self, org_id: OrgId, start: datetime, end: datetime, *,
                      granularity: str = "daily", tz: str = "UTC",
                      model_ids: Sequence[uuid.UUID | str] = (), kind: str = "usage",
                      idempotency_key: str | None = None,
                      initiated_by: str = "library", close: bool = False) -> ExportJob:
        """A pending export job (`run_exports` or a worker runs it); with an
        `idempotency_key` used before, the first job. A `close` (usage only) is watched:
        later changes to its period's numbers get adjustment jobs (docs/exports.md)."""
        request = ExportRequest(
            _uuid(org_id, "org_id"), start, end,
            _choice(granularity, {g.value: g for g in ExportGranularity}, "granularity"), tz,
            tuple(_uuid(m, "model_ids") for m in model_ids),
            _choice(kind, {k.value: k for k in ExportKind}, "kind"), close)
        job, _ = self._app.use_cases.create_export(request, initiated_by, idempotency_key)
        return job

    def export(self, org_id: OrgId, job_id: uuid.UUID | str) -> ExportJob:
        """One job of the org (NotFound otherwise)."""
        return self._app.use_cases.get_export(_uuid(org_id, "org_id"), _uuid(job_id, "job_id"))

    def exports(self, org_id: OrgId, *, status: str | None = None,
                limit: int = 50) -> list[ExportJob]:
        """The org's most recent jobs, newest first."""
        page = self._app.use_cases.list_exports(
            _uuid(org_id, "org_id"),
            None if status is None else _choice(status, {s.value: s for s in ExportStatus},
                                                "status"), limit, None)
        return list(page.jobs)

    def run_exports(self) -> int:
        """Run the due export jobs in this process now; returns how many ran."""
        return self._app.export_worker().run_round()

    def read_export(self, org_id: OrgId, job_id: uuid.UUID | str) -> bytes:
        """The CSV of a succeeded job (NotFound before, Gone once expired)."""
        stream = self._app.use_cases.open_export(_uuid(org_id, "org_id"), _uuid(job_id, "job_id"))
        return b"".join(stream)

    # -- names -----------------------------------------------------------------------------

    def models(self) -> list[ModelEntry]:
        """Every registered model, by id."""
        return self._app.use_cases.list_models()

    def name_model(self, model_id: uuid.UUID | str, name: str, *, provider: str = "",
                   family: str = "", aliases: Sequence[str] = ()) -> ModelEntry:
        """Register a model, or replace its names (name, provider, family and the whole alias
        list); Conflict when the name or an alias already names another model."""
        entry = model_entry(_uuid(model_id, "model_id"), {"name": name, "provider": provider,
                                              "family": family, "aliases": list(aliases)})
        self._app.use_cases.register_model(entry)
        return entry

    def client_names(self, org_id: OrgId) -> list[ClientName]:
        """The org's client names."""
        return self._app.use_cases.list_clients(_uuid(org_id, "org_id"))

    def name_client(self, org_id: OrgId, client_id: str, name: str) -> ClientName:
        """Name (or rename) one of an org's clients."""
        entry = client_name(_uuid(org_id, "org_id"), client_id, name)
        self._app.use_cases.put_client(entry)
        return entry

    # -- budgets and alerts ----------------------------------------------------------------

    def create_budget(self, org_id: OrgId, name: str, amount: str | int | Decimal, *,
                      scope: Mapping[str, str] | None = None, measure: str = "catalogCost",
                      period: str = "month", tz: str = "UTC",
                      thresholds: Sequence[int] | None = None, forecast: bool = True,
                      created_by: str = "library") -> Budget:
        """A new budget (docs/budgets.md): `amount` in cents for cost measures, else a whole
        number; `scope` as in the API (`{"type": "tag", "key": "team", "value": "search"}`;
        default the whole org). Audited as `library:{created_by}`."""
        org = _uuid(org_id, "org_id")
        body: dict[str, object] = {"name": name, "amount": amount, "measure": measure,
                                   "period": period, "tz": tz, "forecast": forecast}
        if scope is not None:
            body["scope"] = dict(scope)
        if thresholds is not None:
            body["thresholds"] = list(thresholds)
        actor = Actor(f"library:{created_by}", org, frozenset({ORG_ADMIN}), "library")
        return self._app.use_cases.create_budget(actor, org, body)

    def budgets(self, org_id: OrgId) -> list[BudgetView]:
        """The org's budgets with their current period's value, forecast and status."""
        return self._app.use_cases.list_budgets(_uuid(org_id, "org_id"))

    def delete_budget(self, org_id: OrgId, budget_id: uuid.UUID | str, *,
                      deleted_by: str = "library") -> None:
        """Delete a budget (its alerts stay); NotFound when the org has no such budget."""
        org = _uuid(org_id, "org_id")
        actor = Actor(f"library:{deleted_by}", org, frozenset({ORG_ADMIN}), "library")
        self._app.use_cases.delete_budget(actor, org, _uuid(budget_id, "budget_id"))

    def alerts(self, org_id: OrgId, *, limit: int = 50,
               budget_id: uuid.UUID | str | None = None,
               rule_id: uuid.UUID | str | None = None) -> list[Alert | RuleTransition]:
        """The org's most recent budget alerts and reliability rule transitions, newest
        first (of one budget, or one rule)."""
        budget = None if budget_id is None else _uuid(budget_id, "budget_id")
        rule = None if rule_id is None else _uuid(rule_id, "rule_id")
        return list(self._app.use_cases.list_alerts(_uuid(org_id, "org_id"), limit,
                                                    None, budget, rule).alerts)

    def create_rule(self, org_id: OrgId, name: str, metric: str, threshold: str | int, *,
                    scope: Mapping[str, str] | None = None, error_class: str = "any",
                    window_minutes: int = 15, resolve_threshold: str | int | None = None,
                    min_volume: int = 100, created_by: str = "library") -> ReliabilityRule:
        """A new reliability rule (docs/budgets.md): `metric` errorRate (threshold in
        percent) or p95Latency (milliseconds)."""
        org = _uuid(org_id, "org_id")
        body: dict[str, object] = {"name": name, "metric": metric, "threshold": threshold,
                                   "windowMinutes": window_minutes, "minVolume": min_volume}
        if metric == "errorRate":
            body["errorClass"] = error_class
        if scope is not None:
            body["scope"] = dict(scope)
        if resolve_threshold is not None:
            body["resolveThreshold"] = resolve_threshold
        actor = Actor(f"library:{created_by}", org, frozenset({ORG_ADMIN}), "library")
        return self._app.use_cases.create_rule(actor, org, body)

    def rules(self, org_id: OrgId) -> list[RuleView]:
        """The org's reliability rules with their state and current window."""
        return self._app.use_cases.list_rules(_uuid(org_id, "org_id"))

    def evaluate_budgets(self) -> Evaluation:
        """One evaluation pass over every budget (what the alerts worker runs each round):
        the alerts it fired, or why it was deferred."""
        return self._app.use_cases.evaluate_budgets()

    # -- finance and support -----------------------------------------------------------------

    def reconcile(self, org_id: OrgId, report: bytes | str, *, tz: str = "UTC",
                  tolerance_percent: str | int | Decimal = 1, basis: str = "catalog",
                  mapping: Mapping[str, str] | None = None, name: str = "",
                  created_by: str = "library") -> KeptReconciliation:
        """Reconcile a provider's cost report (CSV) against the org's usage of its days in
        `tz` and keep the result (docs/reconciliation.md). `mapping` names the headers:
        day, model, cost, inputTokens, outputTokens, costUnit (usd or cents), dayFormat."""
        data = report.encode() if isinstance(report, str) else report
        request = ReconcileRequest(
            _uuid(org_id, "org_id"), data, ColumnMapping.from_fields(mapping or {}), tz,
            _decimal(tolerance_percent, "tolerance_percent"),
            _choice(basis, {b.value: b for b in Basis}, "basis"), name)
        return self._app.use_cases.reconcile_invoice(request, f"library:{created_by}")

    def reconciliations(self, org_id: OrgId, *, limit: int = 50) -> list[ReconciliationRun]:
        """The org's kept reconciliations, newest first."""
        return list(self._app.use_cases.list_reconciliations(_uuid(org_id, "org_id"), limit,
                                                             None).runs)

    def reconciliation(self, org_id: OrgId, reconciliation_id: uuid.UUID | str
                       ) -> KeptReconciliation:
        """One kept reconciliation with its lines (`.csv()` renders the report)."""
        return self._app.use_cases.get_reconciliation(
            _uuid(org_id, "org_id"), _uuid(reconciliation_id, "reconciliation_id"))

    def dead_letters(self, org_id: OrgId | None, *, reason: str | None = None,
                     source: str | None = None, since: datetime | None = None,
                     until: datetime | None = None, redriven: bool | None = None,
                     limit: int = 50) -> list[DeadLetter]:
        """Rejected events (raw bytes and reason), newest first; `org_id` None lists every
        org's, unattributed ones included (docs/support.md)."""
        org = None if org_id is None else _uuid(org_id, "org_id")
        where = DeadLetterFilter(reason, source, since, until, redriven)
        return list(self._app.use_cases.list_dead_letters(org, where, limit, None).letters)

    def redrive_dead_letter(self, org_id: OrgId | None, dead_letter_id: uuid.UUID | str, *,
                            redriven_by: str = "library") -> Redrive:
        """Ingest a dead letter's message again after a fix: ValidationFailed (nothing
        stored) while it is still invalid; the outcome (`accepted` or `duplicate`) once."""
        org = None if org_id is None else _uuid(org_id, "org_id")
        return self._app.use_cases.redrive_dead_letter(
            org, _uuid(dead_letter_id, "dead_letter_id"), f"library:{redriven_by}", None)

    def audit(self, org_id: OrgId, *, actor: str | None = None, action: str | None = None,
              outcome: str | None = None, since: datetime | None = None,
              until: datetime | None = None, limit: int = 50) -> list[AuditEntry]:
        """The org's authorization decisions, newest first."""
        decided = None if outcome is None else _choice(
            outcome, {o.value: o for o in Outcome}, "outcome")
        where = AuditFilter(actor, action, decided, since, until)
        return list(self._app.use_cases.list_audit(_uuid(org_id, "org_id"), where, limit,
                                                   None).entries)


class AsyncAnalytics:
    """`Analytics` for asyncio: each coroutine runs the synchronous method in a worker thread
    (`asyncio.to_thread`), so database and file I/O never block the event loop."""

    def __init__(self, sync: Analytics) -> None:
        self._sync = sync

    async def migrate(self) -> str:
        """See `Analytics.migrate`."""
        return await asyncio.to_thread(self._sync.migrate)

    async def ingest(self, events: Iterable[object], *, source: str = "library") -> BatchResult:
        """See `Analytics.ingest`."""
        return await asyncio.to_thread(self._sync.ingest, list(events), source=source)

    async def validate(self, event: object) -> UsageEvent:
        """See `Analytics.validate`."""
        return await asyncio.to_thread(self._sync.validate, event)

    async def usage(self, org_id: OrgId, start: datetime, end: datetime, *,
                    granularity: str = "day", tz: str = "UTC",
                    model_ids: Sequence[uuid.UUID | str] = (), client_ids: Sequence[str] = (),
                    group_by: str = "model", top: int | None = None) -> AnalyticsReport:
        """See `Analytics.usage`."""
        return await asyncio.to_thread(functools.partial(
            self._sync.usage, org_id, start, end, granularity=granularity, tz=tz,
            model_ids=model_ids, client_ids=client_ids, group_by=group_by, top=top))

    async def reliability(self, org_id: OrgId, start: datetime, end: datetime, *,
                          granularity: str = "day", tz: str = "UTC",
                          model_ids: Sequence[uuid.UUID | str] = (),
                          client_ids: Sequence[str] = (),
                          group_by: str = "model", top: int | None = None
                          ) -> AnalyticsReport:
        """See `Analytics.reliability`."""
        return await asyncio.to_thread(functools.partial(
            self._sync.reliability, org_id, start, end, granularity=granularity, tz=tz,
            model_ids=model_ids, client_ids=client_ids, group_by=group_by, top=top))

    async def freshness(self, org_id: OrgId,
                        model_ids: Sequence[uuid.UUID | str] = ()) -> FreshnessReport:
        """See `Analytics.freshness`."""
        return await asyncio.to_thread(self._sync.freshness, org_id, model_ids)

    async def create_export(self, org_id: OrgId, start: datetime, end: datetime, *,
                            granularity: str = "daily", tz: str = "UTC",
                            model_ids: Sequence[uuid.UUID | str] = (), kind: str = "usage",
                            idempotency_key: str | None = None,
                            initiated_by: str = "library", close: bool = False) -> ExportJob:
        """See `Analytics.create_export`."""
        return await asyncio.to_thread(functools.partial(
            self._sync.create_export, org_id, start, end, granularity=granularity, tz=tz,
            model_ids=model_ids, kind=kind, idempotency_key=idempotency_key,
            initiated_by=initiated_by, close=close))

    async def export(self, org_id: OrgId, job_id: uuid.UUID | str) -> ExportJob:
        """See `Analytics.export`."""
        return await asyncio.to_thread(self._sync.export, org_id, job_id)

    async def exports(self, org_id: OrgId, *, status: str | None = None,
                      limit: int = 50) -> list[ExportJob]:
        """See `Analytics.exports`."""
        return await asyncio.to_thread(self._sync.exports, org_id, status=status, limit=limit)

    async def run_exports(self) -> int:
        """See `Analytics.run_exports`."""
        return await asyncio.to_thread(self._sync.run_exports)

    async def read_export(self, org_id: OrgId, job_id: uuid.UUID | str) -> bytes:
        """See `Analytics.read_export`."""
        return await asyncio.to_thread(self._sync.read_export, org_id, job_id)

    async def models(self) -> list[ModelEntry]:
        """See `Analytics.models`."""
        return await asyncio.to_thread(self._sync.models)

    async def name_model(self, model_id: uuid.UUID | str, name: str, *, provider: str = "",
                         family: str = "", aliases: Sequence[str] = ()) -> ModelEntry:
        """See `Analytics.name_model`."""
        return await asyncio.to_thread(functools.partial(
            self._sync.name_model, model_id, name, provider=provider, family=family,
            aliases=aliases))

    async def client_names(self, org_id: OrgId) -> list[ClientName]:
        """See `Analytics.client_names`."""
        return await asyncio.to_thread(self._sync.client_names, org_id)

    async def name_client(self, org_id: OrgId, client_id: str, name: str) -> ClientName:
        """See `Analytics.name_client`."""
        return await asyncio.to_thread(self._sync.name_client, org_id, client_id, name)

    async def create_budget(self, org_id: OrgId, name: str, amount: str | int | Decimal, *,
                            scope: Mapping[str, str] | None = None,
                            measure: str = "catalogCost", period: str = "month",
                            tz: str = "UTC", thresholds: Sequence[int] | None = None,
                            forecast: bool = True, created_by: str = "library") -> Budget:
        """See `Analytics.create_budget`."""
        return await asyncio.to_thread(functools.partial(
            self._sync.create_budget, org_id, name, amount, scope=scope, measure=measure,
            period=period, tz=tz, thresholds=thresholds, forecast=forecast,
            created_by=created_by))

    async def budgets(self, org_id: OrgId) -> list[BudgetView]:
        """See `Analytics.budgets`."""
        return await asyncio.to_thread(self._sync.budgets, org_id)

    async def delete_budget(self, org_id: OrgId, budget_id: uuid.UUID | str, *,
                            deleted_by: str = "library") -> None:
        """See `Analytics.delete_budget`."""
        await asyncio.to_thread(functools.partial(self._sync.delete_budget, org_id, budget_id,
                                                  deleted_by=deleted_by))

    async def alerts(self, org_id: OrgId, *, limit: int = 50,
                     budget_id: uuid.UUID | str | None = None,
                     rule_id: uuid.UUID | str | None = None) -> list[Alert | RuleTransition]:
        """See `Analytics.alerts`."""
        return await asyncio.to_thread(functools.partial(
            self._sync.alerts, org_id, limit=limit, budget_id=budget_id, rule_id=rule_id))

    async def create_rule(self, org_id: OrgId, name: str, metric: str, threshold: str | int,
                          *, scope: Mapping[str, str] | None = None, error_class: str = "any",
                          window_minutes: int = 15, resolve_threshold: str | int | None = None,
                          min_volume: int = 100, created_by: str = "library"
                          ) -> ReliabilityRule:
        """See `Analytics.create_rule`."""
        return await asyncio.to_thread(functools.partial(
            self._sync.create_rule, org_id, name, metric, threshold, scope=scope,
            error_class=error_class, window_minutes=window_minutes,
            resolve_threshold=resolve_threshold, min_volume=min_volume, created_by=created_by))

    async def rules(self, org_id: OrgId) -> list[RuleView]:
        """See `Analytics.rules`."""
        return await asyncio.to_thread(self._sync.rules, org_id)

    async def evaluate_budgets(self) -> Evaluation:
        """See `Analytics.evaluate_budgets`."""
        return await asyncio.to_thread(self._sync.evaluate_budgets)

    async def reconcile(self, org_id: OrgId, report: bytes | str, *, tz: str = "UTC",
                        tolerance_percent: str | int | Decimal = 1, basis: str = "catalog",
                        mapping: Mapping[str, str] | None = None, name: str = "",
                        created_by: str = "library") -> KeptReconciliation:
        """See `Analytics.reconcile`."""
        return await asyncio.to_thread(
            self._sync.reconcile, org_id, report, tz=tz, tolerance_percent=tolerance_percent,
            basis=basis, mapping=mapping, name=name, created_by=created_by)

    async def reconciliations(self, org_id: OrgId, *, limit: int = 50
                              ) -> list[ReconciliationRun]:
        """See `Analytics.reconciliations`."""
        return await asyncio.to_thread(self._sync.reconciliations, org_id, limit=limit)

    async def reconciliation(self, org_id: OrgId, reconciliation_id: uuid.UUID | str
                             ) -> KeptReconciliation:
        """See `Analytics.reconciliation`."""
        return await asyncio.to_thread(self._sync.reconciliation, org_id, reconciliation_id)

    async def dead_letters(self, org_id: OrgId | None, *, reason: str | None = None,
                           source: str | None = None, since: datetime | None = None,
                           until: datetime | None = None, redriven: bool | None = None,
                           limit: int = 50) -> list[DeadLetter]:
        """See `Analytics.dead_letters`."""
        return await asyncio.to_thread(
            self._sync.dead_letters, org_id, reason=reason, source=source, since=since,
            until=until, redriven=redriven, limit=limit)

    async def redrive_dead_letter(self, org_id: OrgId | None,
                                  dead_letter_id: uuid.UUID | str, *,
                                  redriven_by: str = "library") -> Redrive:
        """See `Analytics.redrive_dead_letter`."""
        return await asyncio.to_thread(self._sync.redrive_dead_letter, org_id, dead_letter_id,
                                       redriven_by=redriven_by)

    async def audit(self, org_id: OrgId, *, actor: str | None = None,
                    action: str | None = None, outcome: str | None = None,
                    since: datetime | None = None, until: datetime | None = None,
                    limit: int = 50) -> list[AuditEntry]:
        """See `Analytics.audit`."""
        return await asyncio.to_thread(
            self._sync.audit, org_id, actor=actor, action=action, outcome=outcome, since=since,
            until=until, limit=limit)
