"""Every use case bound to one process's ports: the callables drivers are given.

`UseCases` is built once per process by the container. Each method is one use-case call with
its ports and settings filled in, so a driver holds `use_cases.usage` (a typed callable) and
never a unit-of-work factory, a clock or the container. `http_api` selects what the HTTP driver
serves.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

import attrs

from analytics_app.bootstrap.ports import Ports
from analytics_app.http.api import Cursor, HttpApi
from analytics_app.observability import metrics
from analytics_app.stream.gc_tuning import batch_collection
from analytics_core.access import Action, Actor, Decision
from analytics_core.attribution import AdmittedCache
from analytics_core.budgets import Budget
from analytics_core.events import UsageEvent
from analytics_core.exports import ExportJob, ExportRequest, ExportStatus
from analytics_core.freshness import Freshness, FreshnessReport
from analytics_core.org_settings import OrgSettings
from analytics_core.prices import PriceVersion
from analytics_core.records import ApiKeyRecord, AuditFilter, DeadLetter, DeadLetterFilter
from analytics_core.registry import ClientName, ModelEntry, Names
from analytics_core.rules import ReliabilityRule
from analytics_core.sessions import SessionPolicy, UiSession
from analytics_core.usecases import (
    access,
    budgets,
    exports,
    ingest,
    org_settings,
    prices,
    queries,
    reconciliations,
    registry,
    restatements,
    rules,
    sessions,
    support,
    webhooks,
)
from analytics_core.usecases.ingest import BatchResult, IngestScope, RawMessage, StreamCheckpoint
from analytics_core.webhooks import Delivery, WebhookEndpoint

AUDIT_WRITERS = 4
"""Audit groups in flight at once on PostgreSQL, each on its own held connection: as many as
an API worker's request threads (cli.server.THREADS_PER_WORKER), so no request waits for
another's flush; the server joins concurrent flushes (its own group commit). make bench,
freshness under gunicorn: 0.32x of bare Falcon with one writer, 0.48x with four."""


@attrs.frozen
class UseCases:
    """One process's use cases, each bound to `ports`."""

    ports: Ports
    session_policy: SessionPolicy = attrs.field(factory=SessionPolicy, kw_only=True)
    authorizer: access.Authorizer = attrs.field(init=False)
    pricing: ingest.CatalogCache = attrs.field(init=False, factory=ingest.CatalogCache)
    admitted: AdmittedCache = attrs.field(init=False, factory=AdmittedCache)
    budget_values: budgets.ValueCache = attrs.field(init=False, factory=budgets.ValueCache)
    names_kept: registry.NamesCache = attrs.field(init=False, factory=registry.NamesCache)

    @authorizer.default
    def _authorizer(self) -> access.Authorizer:
        p = self.ports
        writers = 1 if p.audit is None else AUDIT_WRITERS  # SQLite has one writer anyway
        return access.Authorizer(p.uow_factory, p.clock, p.ids, access.AuditWriter(
            p.uow_factory, appender=p.audit, writers=writers))

    # -- access ---------------------------------------------------------------------------

    def authenticate_api_key(self, presented: str) -> Actor:
        """The actor behind an X-API-Key value."""
        return access.authenticate_api_key(presented, uow_factory=self.ports.uow_factory,
                                           keys=self.ports.keys)

    def authorize(
        self, actor: Actor, action: Action, org_id: uuid.UUID, *, resource: str = "",
        request_id: str | None = None,
    ) -> Decision:
        """Allow or raise Forbidden; the decision is audited either way."""
        return self.authorizer.require(actor, action, org_id, resource=resource,
                                       request_id=request_id)

    def create_api_key(
        self, org_id: uuid.UUID | None, roles: Iterable[str], name: str,
    ) -> tuple[str, ApiKeyRecord]:
        """A new key (plaintext shown once) and its stored record."""
        p = self.ports
        return access.create_api_key(org_id=org_id, roles=roles, name=name,
                                     uow_factory=p.uow_factory, clock=p.clock, ids=p.ids)

    def list_api_keys(self, org_id: uuid.UUID | None) -> list[ApiKeyRecord]:
        """The keys of one org (None: every key), oldest first."""
        return access.list_api_keys(org_id, uow_factory=self.ports.uow_factory)

    def revoke_api_key(self, key_id: str, actor: str) -> access.Revocation:
        """Revoke a key by id (audited in its org)."""
        p = self.ports
        return access.revoke_api_key(key_id, actor=actor, uow_factory=p.uow_factory,
                                     clock=p.clock, ids=p.ids)

    # -- queries --------------------------------------------------------------------------

    def usage(self, query: queries.AnalyticsQuery) -> queries.AnalyticsReport:
        """Usage report (no latency sketches read)."""
        p = self.ports
        return queries.query_analytics(query, uow_factory=p.uow_factory, progress=p.progress,
                                       clock=p.clock, latency=False,
                                       attribution=p.attribution)

    def reliability(self, query: queries.AnalyticsQuery) -> queries.AnalyticsReport:
        """Reliability report (latency sketches and error codes merged)."""
        p = self.ports
        return queries.query_analytics(query, uow_factory=p.uow_factory, progress=p.progress,
                                       clock=p.clock, attribution=p.attribution)

    def freshness(self, org_id: uuid.UUID, model_ids: Sequence[uuid.UUID]) -> FreshnessReport:
        """Per-model freshness of one org."""
        p = self.ports
        return queries.get_freshness(org_id, uow_factory=p.uow_factory, progress=p.progress,
                                     clock=p.clock, cache=p.cache, model_ids=model_ids)

    def has_usage_data(self, days: int = 400) -> bool:
        """Whether any org has usage in the last `days` days."""
        return queries.has_usage_data(uow_factory=self.ports.uow_factory,
                                      clock=self.ports.clock, days=days)

    def complete_through(self, now: datetime) -> datetime:
        """The instant through which every event is aggregated (the pipeline's progress)."""
        return self.ports.progress.complete_through(now)

    def now(self) -> datetime:
        """The current instant on this process's clock."""
        return self.ports.clock.now()

    def pipeline_freshness(self) -> Freshness:
        """The pipeline's freshness now: the status and `completeThrough` every org's
        freshness report carries (no per-org read)."""
        return queries.current_freshness(self.ports.progress, self.ports.clock)

    # -- names registry -------------------------------------------------------------------

    @contextlib.contextmanager
    def _renaming(self) -> Iterator[None]:
        """Around a change of names: the names kept for labels are dropped after it (also
        when it fails part way: what it changed is read again)."""
        try:
            yield
        finally:
            self.names_kept.clear()

    def names(self, org_id: uuid.UUID) -> Names:
        """Model names and the org's client names, to label its documents."""
        return self.names_kept.get(org_id, lambda: registry.names_for(
            org_id, uow_factory=self.ports.uow_factory))

    def list_models(self) -> list[ModelEntry]:
        """Every registered model."""
        return registry.list_models(uow_factory=self.ports.uow_factory)

    def get_model(self, model_id: uuid.UUID) -> ModelEntry:
        """One model's names (NotFound when unregistered)."""
        return registry.get_model(model_id, uow_factory=self.ports.uow_factory)

    def put_model(self, actor: Actor, entry: ModelEntry) -> bool:
        """Register or rename a model (admin only); True when new."""
        registry.require_admin(actor, "registering a model")
        return self.register_model(entry)

    def register_model(self, entry: ModelEntry) -> bool:
        """Register or rename a model for a trusted caller (CLI, library); True when new."""
        with self._renaming():
            return registry.put_model(entry, uow_factory=self.ports.uow_factory)

    def delete_model(self, actor: Actor, model_id: uuid.UUID) -> None:
        """Forget a model's names (admin only)."""
        registry.require_admin(actor, "removing a model")
        with self._renaming():
            registry.delete_model(model_id, uow_factory=self.ports.uow_factory)

    def import_models(self, entries: Sequence[ModelEntry]) -> registry.ImportReport:
        """Register a file of models in one transaction (the CLI runs as the operator)."""
        with self._renaming():
            return registry.import_models(entries, uow_factory=self.ports.uow_factory)

    def preview_models(self, entries: Sequence[ModelEntry]) -> registry.ImportReport:
        """What import_models would change, changing nothing."""
        return registry.import_models(entries, uow_factory=self.ports.uow_factory, dry_run=True)

    def list_clients(self, org_id: uuid.UUID) -> list[ClientName]:
        """The org's client names."""
        return registry.list_client_names(org_id, uow_factory=self.ports.uow_factory)

    def put_client(self, entry: ClientName) -> None:
        """Name one of an org's clients."""
        with self._renaming():
            registry.put_client_name(entry, uow_factory=self.ports.uow_factory)

    def delete_client(self, org_id: uuid.UUID, client_id: str) -> None:
        """Forget a client's name."""
        with self._renaming():
            registry.delete_client_name(org_id, client_id, uow_factory=self.ports.uow_factory)

    # -- exports --------------------------------------------------------------------------

    def create_export(
        self, request: ExportRequest, initiated_by: str, idempotency_key: str | None,
    ) -> tuple[ExportJob, bool]:
        """Create (or replay) an export job."""
        p = self.ports
        return exports.create_export(request, initiated_by=initiated_by,
                                     idempotency_key=idempotency_key, uow_factory=p.uow_factory,
                                     clock=p.clock, ids=p.ids)

    def list_exports(
        self, org_id: uuid.UUID, status: ExportStatus | None, limit: int, before: Cursor | None,
    ) -> exports.JobPage:
        """A page of jobs, newest first."""
        return exports.list_exports(org_id, uow_factory=self.ports.uow_factory, status=status,
                                    limit=limit, before=before)

    def get_export(self, org_id: uuid.UUID, job_id: uuid.UUID) -> ExportJob:
        """One job."""
        return exports.get_export(org_id, job_id, uow_factory=self.ports.uow_factory)

    def download(self, org_id: uuid.UUID, job_id: uuid.UUID) -> exports.Download:
        """A fresh signed URL or a byte stream."""
        p = self.ports
        return exports.resolve_download(org_id, job_id, uow_factory=p.uow_factory,
                                        objects=p.objects, ttl=p.http.signed_url_ttl)

    def open_export(self, org_id: uuid.UUID, job_id: uuid.UUID) -> Iterator[bytes]:
        """The CSV of a succeeded job, streamed from the object store."""
        p = self.ports
        return exports.open_export(org_id, job_id, uow_factory=p.uow_factory, objects=p.objects)

    # -- ingestion ------------------------------------------------------------------------

    def ingest(
        self, messages: Sequence[RawMessage], scope: IngestScope,
    ) -> BatchResult:
        """Ingest one HTTP batch exactly once, storing only in orgs the scope authorizes."""
        return self._ingest(messages, source="http", scope=scope)

    def ingest_stream(
        self, messages: Sequence[RawMessage], *, source: str,
        checkpoint: StreamCheckpoint | None,
    ) -> BatchResult:
        """Ingest a batch read from a partition stream (with its offset checkpoint, if any)."""
        return self._ingest(messages, source=source, checkpoint=checkpoint)

    def ingest_demo(self, messages: Sequence[RawMessage]) -> BatchResult:
        """Ingest a batch of generated demo events."""
        return self.ingest_trusted(messages, source="demo")

    def ingest_trusted(self, messages: Sequence[RawMessage], *, source: str) -> BatchResult:
        """Ingest a batch from a trusted caller (the demo, a service importing the library):
        events may name any org, as a platform admin's may."""
        return self._ingest(messages, source=source)

    def _ingest(self, messages: Sequence[RawMessage], *, source: str,
                scope: IngestScope | None = None,
                checkpoint: StreamCheckpoint | None = None) -> BatchResult:
        """Every driver's one ingest path: the msgspec decoder, the catalog, attribution and
        the collector tuned while the batch is in hand (stream.gc_tuning; `POST /events`
        holds the same scope around its whole request, HttpApi.batch_scope)."""
        p = self.ports
        with batch_collection():
            return ingest.ingest_batch(
                messages, source=source, uow_factory=p.uow_factory, clock=p.clock, ids=p.ids,
                raw_retention=p.http.raw_retention, checkpoint=checkpoint, cache=p.cache,
                decoder=p.decoder, scope=scope, pricing=self.pricing,
                attribution=p.attribution, admitted=self.admitted)

    # -- dead letters and audit -----------------------------------------------------------

    def list_dead_letters(self, org_id: uuid.UUID | None, where: DeadLetterFilter,
                          limit: int = 50, before: Cursor | None = None,
                          ) -> support.DeadLetterPage:
        """A page of dead letters, newest first (`org_id` None: every org's)."""
        return support.list_dead_letters(org_id, where, uow_factory=self.ports.uow_factory,
                                         limit=limit, before=before)

    def get_dead_letter(self, org_id: uuid.UUID | None, dead_letter_id: uuid.UUID
                        ) -> DeadLetter:
        """One dead letter of the org (any org with None), with its raw bytes."""
        return support.get_dead_letter(org_id, dead_letter_id,
                                       uow_factory=self.ports.uow_factory)

    def redrive_dead_letter(self, org_id: uuid.UUID | None, dead_letter_id: uuid.UUID,
                            by: str, scope: IngestScope | None) -> support.Redrive:
        """Ingest a dead letter's message again; `scope` None is a trusted caller (the CLI)."""
        p = self.ports

        def one(message: RawMessage) -> BatchResult:
            return ingest.ingest_batch([message], source="redrive", uow_factory=p.uow_factory,
                                       clock=p.clock, ids=p.ids,
                                       raw_retention=p.http.raw_retention, cache=p.cache,
                                       scope=scope, pricing=self.pricing,
                                       attribution=p.attribution, admitted=self.admitted)

        return support.redrive_dead_letter(org_id, dead_letter_id, by,
                                           uow_factory=p.uow_factory, clock=p.clock,
                                           validate=self.validate, ingest=one)

    def list_audit(self, org_id: uuid.UUID, where: AuditFilter, limit: int = 50,
                   before: Cursor | None = None) -> support.AuditPage:
        """A page of the org's audit entries, newest first."""
        return support.list_audit(org_id, where, uow_factory=self.ports.uow_factory,
                                  limit=limit, before=before)

    # -- dashboard sessions ---------------------------------------------------------------

    def start_session(self, actor: Actor, key_id: str | None, not_after: datetime | None
                      ) -> tuple[str, UiSession]:
        """Sign in: a brand-new session (token shown once as the cookie value)."""
        p = self.ports
        return sessions.start_session(actor, key_id=key_id, not_after=not_after,
                                      policy=self.session_policy, uow_factory=p.uow_factory,
                                      clock=p.clock, ids=p.ids)

    def resume_session(self, token: str) -> UiSession:
        """The live session behind a cookie value; Unauthenticated when it has ended."""
        p = self.ports
        return sessions.resume_session(token, policy=self.session_policy,
                                       uow_factory=p.uow_factory, clock=p.clock)

    def end_session(self, token: str) -> bool:
        """Sign out; True when the session existed."""
        p = self.ports
        return sessions.end_session(token, uow_factory=p.uow_factory, clock=p.clock, ids=p.ids)

    def purge_sessions(self) -> int:
        """Delete every expired session; how many."""
        p = self.ports
        return sessions.purge_sessions(policy=self.session_policy, uow_factory=p.uow_factory,
                                       clock=p.clock)

    # -- org settings ----------------------------------------------------------------------

    def get_org_settings(self, org_id: uuid.UUID) -> OrgSettings:
        """The org's settings, or the defaults."""
        return org_settings.get_org_settings(org_id, self.ports.exports.monthly_tz,
                                             uow_factory=self.ports.uow_factory)

    def put_org_settings(self, org_id: uuid.UUID, body: object, by: str) -> OrgSettings:
        """Change the org's settings (access checked by the driver)."""
        p = self.ports
        return org_settings.put_org_settings(org_id, body, by, uow_factory=p.uow_factory,
                                             clock=p.clock)

    # -- invoice reconciliation -----------------------------------------------------------

    def reconcile_invoice(self, request: reconciliations.ReconcileRequest, created_by: str
                          ) -> reconciliations.KeptReconciliation:
        """Reconcile a provider's report against the org's usage and keep the result."""
        p = self.ports
        return reconciliations.reconcile_invoice(request, created_by,
                                                 uow_factory=p.uow_factory, clock=p.clock,
                                                 ids=p.ids, usage=self.usage)

    def list_reconciliations(self, org_id: uuid.UUID, limit: int = 50,
                             before: Cursor | None = None) -> reconciliations.RunPage:
        """A page of the org's kept reconciliations, newest first."""
        return reconciliations.list_reconciliations(org_id, uow_factory=self.ports.uow_factory,
                                                    limit=limit, before=before)

    def get_reconciliation(self, org_id: uuid.UUID, reconciliation_id: uuid.UUID
                           ) -> reconciliations.KeptReconciliation:
        """One kept reconciliation with its lines."""
        return reconciliations.get_reconciliation(org_id, reconciliation_id,
                                                  uow_factory=self.ports.uow_factory)

    # -- prices and restatements ----------------------------------------------------------

    def add_prices(self, actor: Actor, drafts: prices.Drafts | Sequence[prices.PriceDraft]
                   ) -> prices.AddedPrices:
        """Add price versions (admin), all or none; backdated ones start restatements."""
        p = self.ports
        return prices.add_versions(actor, drafts, uow_factory=p.uow_factory, clock=p.clock,
                                   ids=p.ids)

    def list_prices(self, actor: Actor, model_id: uuid.UUID | None = None,
                    org_id: uuid.UUID | None = None, history: bool = False,
                    ) -> list[PriceVersion]:
        """Price versions (admin); superseded ones too with `history`."""
        return prices.list_versions(actor, uow_factory=self.ports.uow_factory,
                                    model_id=model_id, org_id=org_id, history=history)

    def get_price(self, actor: Actor, version_id: uuid.UUID
                  ) -> tuple[PriceVersion, uuid.UUID | None]:
        """One version (admin) and what superseded it."""
        return prices.get_version(actor, version_id, uow_factory=self.ports.uow_factory)

    def org_prices(self, org_id: uuid.UUID) -> list[PriceVersion]:
        """The live versions that price an org's events (access checked by the driver)."""
        return prices.org_prices(org_id, uow_factory=self.ports.uow_factory)

    def org_restatements(self, org_id: uuid.UUID) -> list[restatements.RestatementView]:
        """Restatements that changed (or may change) an org's numbers, with its deltas."""
        return restatements.org_restatements(org_id, uow_factory=self.ports.uow_factory)

    def run_restatements(self, *, batch: int = restatements.DEFAULT_BATCH,
                         max_batches: int | None = None,
                         progress: restatements.Progress | None = None) -> int:
        """Carry out open restatements in batches; the number of batches run."""
        p = self.ports
        return restatements.run_restatements(uow_factory=p.uow_factory, clock=p.clock,
                                             batch=batch, max_batches=max_batches,
                                             progress=progress, attribution=p.attribution)

    # -- budgets and alerts ----------------------------------------------------------------

    def create_budget(self, actor: Actor, org_id: uuid.UUID, body: object) -> Budget:
        """A new budget of the org from a request body (access checked by the driver)."""
        p = self.ports
        return budgets.create_budget(actor, org_id, body, uow_factory=p.uow_factory,
                                     clock=p.clock, ids=p.ids, attribution=p.attribution)

    def update_budget(self, actor: Actor, org_id: uuid.UUID, budget_id: uuid.UUID,
                      body: object) -> Budget:
        """Change a budget's name, amount, thresholds or forecast."""
        p = self.ports
        return budgets.update_budget(actor, org_id, budget_id, body, uow_factory=p.uow_factory,
                                     clock=p.clock, ids=p.ids)

    def delete_budget(self, actor: Actor, org_id: uuid.UUID, budget_id: uuid.UUID) -> None:
        """Delete a budget (its alerts stay)."""
        p = self.ports
        budgets.delete_budget(actor, org_id, budget_id, uow_factory=p.uow_factory,
                              clock=p.clock, ids=p.ids)

    def list_budgets(self, org_id: uuid.UUID) -> list[budgets.BudgetView]:
        """The org's budgets with their current status."""
        p = self.ports
        return budgets.list_budgets(org_id, uow_factory=p.uow_factory, clock=p.clock,
                                    progress=p.progress)

    def get_budget(self, org_id: uuid.UUID, budget_id: uuid.UUID) -> budgets.BudgetView:
        """One budget with its current status."""
        p = self.ports
        return budgets.get_budget(org_id, budget_id, uow_factory=p.uow_factory, clock=p.clock,
                                  progress=p.progress)

    def list_alerts(self, org_id: uuid.UUID, limit: int = 50, before: Cursor | None = None,
                    budget_id: uuid.UUID | None = None,
                    rule_id: uuid.UUID | None = None) -> budgets.AlertPage:
        """A page of the org's budget alerts and rule transitions, newest first."""
        return budgets.list_alerts(org_id, uow_factory=self.ports.uow_factory, limit=limit,
                                   before=before, budget_id=budget_id, rule_id=rule_id)

    def create_rule(self, actor: Actor, org_id: uuid.UUID, body: object) -> ReliabilityRule:
        """A new reliability rule from a request body (access checked by the driver)."""
        p = self.ports
        return rules.create_rule(actor, org_id, body, uow_factory=p.uow_factory,
                                 clock=p.clock, ids=p.ids)

    def update_rule(self, actor: Actor, org_id: uuid.UUID, rule_id: uuid.UUID,
                    body: object) -> ReliabilityRule:
        """Change a rule's name, thresholds, minimum volume or window."""
        p = self.ports
        return rules.update_rule(actor, org_id, rule_id, body, uow_factory=p.uow_factory,
                                 clock=p.clock, ids=p.ids)

    def delete_rule(self, actor: Actor, org_id: uuid.UUID, rule_id: uuid.UUID) -> None:
        """Delete a rule (its transitions stay)."""
        p = self.ports
        rules.delete_rule(actor, org_id, rule_id, uow_factory=p.uow_factory, clock=p.clock,
                          ids=p.ids)

    def list_rules(self, org_id: uuid.UUID) -> list[rules.RuleView]:
        """The org's rules with their state."""
        return rules.list_rules(org_id, uow_factory=self.ports.uow_factory,
                                clock=self.ports.clock)

    def get_rule(self, org_id: uuid.UUID, rule_id: uuid.UUID) -> rules.RuleView:
        """One rule with its state."""
        return rules.get_rule(org_id, rule_id, uow_factory=self.ports.uow_factory,
                              clock=self.ports.clock)

    def evaluate_budgets(self, closed: budgets.Closed = True) -> budgets.Evaluation:
        """One evaluation pass over every budget and rule (the alerts worker's round);
        `closed` says whose closed periods of the late lookback are read too."""
        p, cache = self.ports, self.budget_values
        hits, misses = cache.hits, cache.misses
        result = budgets.evaluate_budgets(uow_factory=p.uow_factory, clock=p.clock,
                                          progress=p.progress, ids=p.ids, closed=closed,
                                          cache=cache)
        metrics.observe_budget_reads(cache.hits - hits, cache.misses - misses)
        return result

    # -- webhooks ----------------------------------------------------------------------------

    def create_webhook(self, actor: Actor, org_id: uuid.UUID, body: object
                       ) -> tuple[WebhookEndpoint, str]:
        """A new endpoint and its secret (shown once)."""
        p = self.ports
        return webhooks.create_webhook(actor, org_id, body, uow_factory=p.uow_factory,
                                       clock=p.clock, ids=p.ids, sender=p.webhooks,
                                       policy=p.webhook_policy)

    def list_webhooks(self, org_id: uuid.UUID) -> list[WebhookEndpoint]:
        """The org's endpoints."""
        return webhooks.list_webhooks(org_id, uow_factory=self.ports.uow_factory)

    def get_webhook(self, org_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint:
        """One endpoint of the org."""
        return webhooks.get_webhook(org_id, endpoint_id, uow_factory=self.ports.uow_factory)

    def update_webhook(self, actor: Actor, org_id: uuid.UUID, endpoint_id: uuid.UUID,
                       body: object) -> WebhookEndpoint:
        """Change url, description or enabled."""
        p = self.ports
        return webhooks.update_webhook(actor, org_id, endpoint_id, body,
                                       uow_factory=p.uow_factory, clock=p.clock, ids=p.ids,
                                       sender=p.webhooks, policy=p.webhook_policy)

    def delete_webhook(self, actor: Actor, org_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
        """Remove an endpoint and its deliveries."""
        p = self.ports
        webhooks.delete_webhook(actor, org_id, endpoint_id, uow_factory=p.uow_factory,
                                clock=p.clock, ids=p.ids)

    def rotate_webhook_secret(self, actor: Actor, org_id: uuid.UUID, endpoint_id: uuid.UUID
                              ) -> tuple[WebhookEndpoint, str]:
        """A new secret (shown once); the previous one signs beside it for 24 h."""
        p = self.ports
        return webhooks.rotate_secret(actor, org_id, endpoint_id, uow_factory=p.uow_factory,
                                      clock=p.clock, ids=p.ids)

    def list_deliveries(self, org_id: uuid.UUID, endpoint_id: uuid.UUID, limit: int = 50,
                        before: Cursor | None = None) -> webhooks.DeliveryPage:
        """An endpoint's deliveries with their attempts, newest first."""
        return webhooks.list_deliveries(org_id, endpoint_id, uow_factory=self.ports.uow_factory,
                                        limit=limit, before=before)

    def redeliver(self, actor: Actor, org_id: uuid.UUID, endpoint_id: uuid.UUID,
                  delivery_id: uuid.UUID) -> Delivery:
        """Send a delivery again with a new retry window."""
        p = self.ports
        return webhooks.redeliver(actor, org_id, endpoint_id, delivery_id,
                                  uow_factory=p.uow_factory, clock=p.clock, ids=p.ids)

    def deliver_webhooks(self) -> webhooks.DeliveryRound:
        """Send the webhooks that are due (the alerts worker's other half)."""
        p = self.ports
        return webhooks.deliver_due(uow_factory=p.uow_factory, clock=p.clock, sender=p.webhooks)

    def stored_offset(self, group: str, stream: str) -> int | None:
        """The last offset committed for (consumer group, partition stream)."""
        return ingest.stored_offset(group, stream, uow_factory=self.ports.uow_factory)

    def validate(self, payload: object) -> UsageEvent:
        """Validate one event without storing it."""
        return ingest.validate_event(payload, clock=self.ports.clock,
                                     raw_retention=self.ports.http.raw_retention)


def http_api(use_cases: UseCases, data_location: str = "") -> HttpApi:
    """What the HTTP driver serves, bound to this process's ports."""
    uc, ports = use_cases, use_cases.ports
    return HttpApi(
        settings=ports.http, authenticate_api_key=uc.authenticate_api_key,
        authorize=uc.authorize, usage=uc.usage, reliability=uc.reliability,
        freshness=uc.freshness, create_export=uc.create_export, list_exports=uc.list_exports,
        get_export=uc.get_export, download=uc.download, ingest=uc.ingest, validate=uc.validate,
        names=uc.names, list_models=uc.list_models, get_model=uc.get_model,
        put_model=uc.put_model, delete_model=uc.delete_model, list_clients=uc.list_clients,
        put_client=uc.put_client, delete_client=uc.delete_client, add_prices=uc.add_prices,
        list_prices=uc.list_prices, get_price=uc.get_price, org_prices=uc.org_prices,
        org_restatements=uc.org_restatements, create_budget=uc.create_budget,
        update_budget=uc.update_budget, delete_budget=uc.delete_budget,
        list_budgets=uc.list_budgets, get_budget=uc.get_budget, list_alerts=uc.list_alerts,
        create_rule=uc.create_rule, update_rule=uc.update_rule, delete_rule=uc.delete_rule,
        list_rules=uc.list_rules, get_rule=uc.get_rule,
        create_webhook=uc.create_webhook, list_webhooks=uc.list_webhooks,
        get_webhook=uc.get_webhook, update_webhook=uc.update_webhook,
        delete_webhook=uc.delete_webhook, rotate_webhook_secret=uc.rotate_webhook_secret,
        list_deliveries=uc.list_deliveries, redeliver=uc.redeliver,
        list_dead_letters=uc.list_dead_letters, get_dead_letter=uc.get_dead_letter,
        redrive_dead_letter=uc.redrive_dead_letter, list_audit=uc.list_audit,
        reconcile_invoice=uc.reconcile_invoice, list_reconciliations=uc.list_reconciliations,
        get_reconciliation=uc.get_reconciliation, get_org_settings=uc.get_org_settings,
        put_org_settings=uc.put_org_settings,
        health_checks=ports.health_checks, batch_scope=batch_collection,
        degraded_checks=ports.degraded_checks,
        data_location=data_location,
    )
