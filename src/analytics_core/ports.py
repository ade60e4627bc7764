"""Ports: the Protocols the use cases need, with the contract every adapter honours.

Storage access goes through a `UnitOfWork`: one transaction, repositories as attributes. Writes
made through a unit of work become visible to others only at `commit()`; leaving the `with`
block without committing rolls them back. Adapters raise `StoreUnavailable` when their backend
cannot be reached and never leak driver exceptions.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

from analytics_core.budgets import Alert, AlertKind, Budget
from analytics_core.events import UsageEvent
from analytics_core.exports import ExportJob, ExportStatus
from analytics_core.freshness import FreshnessMarker
from analytics_core.org_settings import OrgSettings
from analytics_core.prices import PriceVersion
from analytics_core.reconciliation import ReconciliationLine
from analytics_core.reconciliation_runs import ReconciliationRun
from analytics_core.records import (
    ApiKeyRecord,
    AuditEntry,
    AuditFilter,
    DeadLetter,
    DeadLetterFilter,
    DedupeConflict,
)
from analytics_core.registry import ClientName, ModelEntry
from analytics_core.restatements import Restatement, RestatementDelta
from analytics_core.rollups import AggregateCell, Rollup
from analytics_core.rules import ReliabilityRule, RuleTransition
from analytics_core.sessions import UiSession
from analytics_core.webhooks import (
    Claim,
    Delivery,
    DeliveryAttempt,
    SendResult,
    WebhookEndpoint,
)

EventKey = tuple[uuid.UUID, uuid.UUID]


class Clock(Protocol):
    """Source of the current time."""

    def now(self) -> datetime:
        """Current instant, timezone-aware UTC."""
        ...


class IdGenerator(Protocol):
    """Source of fresh unique ids."""

    def new_id(self) -> uuid.UUID:
        """A new random UUID."""
        ...


class EventDecoder(Protocol):
    """Reads a message's bytes straight into an event when it is a plain producer payload: a
    faster edge for the stream's common case (analytics_adapters.msgspec_codec)."""

    def decode(self, data: bytes, earliest: datetime, latest: datetime) -> UsageEvent | None:
        """Exactly the event that `parse_event(decode_payload(data))` returns when its
        occurrence window is [earliest, latest], or None for any payload it does not read that
        way (the use case then reads it carefully). Never raises."""
        ...


class EventStore(Protocol):
    """Raw accepted events, unique by (org_id, event_id) for the whole raw retention."""

    def add_new(
        self, events: Sequence[UsageEvent], price_versions: Sequence[uuid.UUID | None] = (),
    ) -> list[UsageEvent]:
        """Insert the events whose key is not stored yet; return exactly those (the same
        objects, not copies), in input order. `price_versions`, when given, holds one entry
        per event: the version that priced it (None: unpriced), stored with it.

        Within one call the first occurrence of a key wins. Concurrent callers never both
        insert the same key: the loser sees it as already stored.
        """
        ...

    def priced(
        self, org_id: uuid.UUID, model_id: uuid.UUID, start: datetime, end: datetime, *,
        after: tuple[datetime, uuid.UUID] | None, limit: int,
    ) -> builtins.list[tuple[UsageEvent, uuid.UUID | None]]:
        """Up to `limit` events of one org's model with start <= occurred_at < end, after the
        (occurred_at, event_id) position `after` (None: from the start), in that order, each
        with the price version stored with it."""
        ...

    def set_price_versions(
        self, org_id: uuid.UUID,
        changes: Sequence[tuple[datetime, uuid.UUID, uuid.UUID | None]],
    ) -> None:
        """Store new price versions for stored events given as (occurred_at, event_id,
        version)."""
        ...

    def fingerprints(self, keys: Iterable[EventKey]) -> dict[EventKey, str]:
        """Content fingerprints of the stored events among `keys` (absent keys are omitted)."""
        ...

    def scan(
        self, org_id: uuid.UUID, start: datetime, end: datetime,
        model_ids: Sequence[uuid.UUID] = (),
    ) -> Iterator[UsageEvent]:
        """Events of one org with start <= occurred_at < end, ordered by (occurred_at, event_id).

        An empty `model_ids` means every model. Iteration streams; it does not load all rows.
        """
        ...


class RollupStore(Protocol):
    """15-minute rollups keyed (org, model, client, bucket)."""

    def add(self, rollups: Sequence[Rollup]) -> None:
        """Merge deltas into stored rollups (creating missing ones). Additive and atomic:
        concurrent adders never lose an update."""
        ...

    def query(
        self, org_id: uuid.UUID, start: datetime, end: datetime,
        model_ids: Sequence[uuid.UUID] = (), client_ids: Sequence[str] = (),
    ) -> list[Rollup]:
        """Rollups of one org with start <= bucket_start < end, filtered when lists are non-empty,
        ordered by (bucket_start, model_id, client_id)."""
        ...

    def aggregate(
        self, org_id: uuid.UUID, boundaries: Sequence[datetime], *, group_by: str = "model",
        model_ids: Sequence[uuid.UUID] = (), client_ids: Sequence[str] = (),
        latency: bool = True,
    ) -> list[AggregateCell]:
        """Stats merged per (period, group), ordered by (period start, group).

        Period i holds the rollups with boundaries[i] <= bucket_start < boundaries[i + 1]
        (boundaries ascending, on 15-minute edges). `group_by` is "model" (group = model id
        as text), "client" (client id) or "none" (None). Cells without data are omitted.
        With `latency=False` sketches and error codes are left empty (usage needs neither).
        The result equals `analytics_core.rollups.aggregate_rollups` over `query(...)`.
        """
        ...

    def active_orgs(self, start: datetime, end: datetime) -> list[uuid.UUID]:
        """Orgs having at least one rollup with start <= bucket_start < end, sorted."""
        ...


class DeadLetterStore(Protocol):
    """Rejected messages and dedupe conflicts, kept and countable."""

    def add(self, letters: Sequence[DeadLetter]) -> None:
        """Store dead letters (ids are unique; re-adding an id is a no-op)."""
        ...

    def add_conflicts(self, conflicts: Sequence[DedupeConflict]) -> None:
        """Store dedupe conflict records; re-adding a conflict id is a no-op (records without
        an id are always added)."""
        ...

    def recent(self, org_id: uuid.UUID | None = None, limit: int = 100) -> list[DeadLetter]:
        """Newest first; `org_id` None lists every dead letter (including unattributable ones)."""
        ...

    def conflicts(self, org_id: uuid.UUID, limit: int = 100) -> list[DedupeConflict]:
        """Newest first."""
        ...

    def page(self, org_id: uuid.UUID | None, where: DeadLetterFilter, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None) -> list[DeadLetter]:
        """Up to `limit` letters matching `where`, newest first by (received_at, id), strictly
        before the `before` key; `org_id` None pages every org's (and unattributed) letters."""
        ...

    def get(self, dead_letter_id: uuid.UUID) -> DeadLetter | None:
        """One letter by id, whatever its org (callers check the org)."""
        ...

    def mark_redriven(self, dead_letter_id: uuid.UUID, at: datetime, by: str,
                      outcome: str) -> bool:
        """Record a successful re-drive once; False (and nothing changed) when the letter is
        missing or was already marked."""
        ...

    def count(self) -> int:
        """Number of dead letters stored."""
        ...


class FreshnessStore(Protocol):
    """Per (org, model) freshness markers written in the ingest transaction."""

    def touch(self, markers: Sequence[FreshnessMarker]) -> None:
        """Merge markers (each time only moves forward)."""
        ...

    def markers(self, org_id: uuid.UUID) -> list[FreshnessMarker]:
        """Markers of one org sorted by model_id."""
        ...

    def revise_history(self, org_ids: Iterable[uuid.UUID]) -> None:
        """Count one more change to each org's history (data of a UTC day before the writer's
        current one), in the writing transaction. Readers that keep values of past days
        between reads (the budget evaluator) compare these counts to know when to read
        again."""
        ...

    def history_revisions(self) -> dict[uuid.UUID, int]:
        """Each org's count of history changes (orgs never revised are absent: 0)."""
        ...


class OffsetStore(Protocol):
    """Stream offsets, committed in the same transaction as the events they cover."""

    def get(self, consumer: str, stream: str) -> int | None:
        """Last committed offset, or None when the consumer never committed on that stream."""
        ...

    def save(self, consumer: str, stream: str, offset: int) -> None:
        """Record the last processed offset (it must not move backwards)."""
        ...


class ExportJobStore(Protocol):
    """Export jobs with compare-and-set updates on `version`."""

    def add(self, job: ExportJob) -> None:
        """Insert a new job; raises Conflict when (org, idempotency_key) is already used."""
        ...

    def get(self, org_id: uuid.UUID, job_id: uuid.UUID) -> ExportJob | None:
        """One job of one org, or None (another org's job is None too)."""
        ...

    def find_by_idempotency_key(self, org_id: uuid.UUID, key: str) -> ExportJob | None:
        """The job created with this key for this org, or None."""
        ...

    def page(
        self, org_id: uuid.UUID, *, status: ExportStatus | None = None, limit: int = 50,
        before: tuple[datetime, uuid.UUID] | None = None,
    ) -> list[ExportJob]:
        """Newest first by (created_at, job_id); `before` is an exclusive cursor."""
        ...

    def save(self, job: ExportJob) -> bool:
        """Persist `job` iff the stored version is `job.version - 1`; False otherwise."""
        ...

    def claim_next(self, worker: str, now: datetime, lease: timedelta) -> ExportJob | None:
        """Atomically claim the oldest claimable job (pending and due, or lease expired).

        Two concurrent claimers never get the same job.
        """
        ...

    def expirable(self, now: datetime, limit: int = 100) -> list[ExportJob]:
        """Succeeded or failed jobs whose expires_at <= now, oldest first."""
        ...

    def closes(self, now: datetime, limit: int = 1000) -> list[ExportJob]:
        """Succeeded closes (usage, not adjustments) whose files have not expired (expires_at
        > now), oldest first."""
        ...

    def adjustments(self, org_id: uuid.UUID, job_id: uuid.UUID) -> list[ExportJob]:
        """The adjustment jobs of a close, by number."""
        ...


class AuditLog(Protocol):
    """Persistent audit of authorization decisions."""

    def record(self, entry: AuditEntry) -> None:
        """Append one entry."""
        ...

    def recent(self, org_id: uuid.UUID, limit: int = 100) -> list[AuditEntry]:
        """Entries about one org, newest first."""
        ...

    def page(self, org_id: uuid.UUID, where: AuditFilter, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None) -> list[AuditEntry]:
        """Up to `limit` entries about one org matching `where`, newest first by
        (at, audit_id), strictly before the `before` key."""
        ...


class ApiKeyStore(Protocol):
    """API keys stored by hash."""

    def add(self, record: ApiKeyRecord) -> None:
        """Store a new key; raises Conflict on a duplicate key_id."""
        ...

    def find(self, key_id: str) -> ApiKeyRecord | None:
        """The record for a key id, or None."""
        ...

    # `builtins.list`: inside this class body a bare `list` names the method below.
    def list(self, org_id: uuid.UUID | None) -> builtins.list[ApiKeyRecord]:
        """The keys of one org (None: every key, platform-wide admin keys included), ordered
        by (created_at, key_id), key ids compared by code point. Revoked keys are listed."""
        ...

    def revoke(self, key_id: str) -> bool:
        """Mark a key revoked, leaving every other field as it was; False when the key id is
        unknown. Idempotent: revoking a revoked key returns True and changes nothing."""
        ...


class AuditAppender(Protocol):
    """Appends authorization decisions to the audit log durably, outside any unit of work
    (the request's own audit entry, SPEC §6): the entries are committed, all or none, when
    `append` returns. Raises StoreUnavailable when the store is down; then none is kept."""

    def append(self, entries: Sequence[AuditEntry]) -> None:
        """Commit `entries` (in one transaction; nothing for an empty sequence)."""
        ...


class ApiKeyCache(Protocol):
    """API key records a process keeps between requests, dropped as soon as it learns a key
    changed. Only keys found valid are kept; a caller that read a record from storage keeps it
    only if no change was signalled since it started reading (`generation`)."""

    def generation(self) -> int:
        """A number that changes whenever kept records may have gone stale; -1 while the cache
        cannot learn of changes (then it keeps nothing)."""
        ...

    def get(self, key_id: str) -> ApiKeyRecord | None:
        """A kept record, or None."""
        ...

    def put(self, record: ApiKeyRecord, generation: int) -> None:
        """Keep a record read from storage after `generation()` returned `generation`
        (ignored when the generation moved or is -1)."""
        ...


class ModelRegistry(Protocol):
    """Display names and aliases of models, platform-wide (analytics_core.registry)."""

    def all(self) -> builtins.list[ModelEntry]:
        """Every entry, ordered by model id."""
        ...

    def get(self, model_id: uuid.UUID) -> ModelEntry | None:
        """One model's entry, or None."""
        ...

    def find(self, label: str) -> ModelEntry | None:
        """The model whose name or alias is `label` (compared by `label_key`), or None."""
        ...

    def put(self, entry: ModelEntry) -> ModelEntry | None:
        """Insert or replace the entry of `entry.model_id` and return the one it replaced
        (None when new); Conflict when one of its labels already names another model (nothing
        is changed then). Its first statement takes the write lock, so a unit that starts with
        `put` never upgrades a read lock."""
        ...

    def delete(self, model_id: uuid.UUID) -> bool:
        """Remove the entry; False when there was none."""
        ...


class ClientNameStore(Protocol):
    """Per-org display names of client ids; an org never sees another org's names."""

    def list(self, org_id: uuid.UUID) -> builtins.list[ClientName]:
        """The org's names, ordered by client id."""
        ...

    def put(self, entry: ClientName) -> None:
        """Insert or replace the name of (org, client id)."""
        ...

    def delete(self, org_id: uuid.UUID, client_id: str) -> bool:
        """Remove the name; False when there was none."""
        ...


class PriceCatalogStore(Protocol):
    """Price versions (analytics_core.prices): append-only, never changed or removed."""

    def all(self) -> builtins.list[PriceVersion]:
        """Every version, superseded ones too, in the order they were added."""
        ...

    def add(self, versions: Sequence[PriceVersion]) -> None:
        """Append versions; Conflict when a version id is already stored."""
        ...

    def revision(self) -> int:
        """A number that grows whenever versions are added (0 for an empty catalog). Read on
        the unit's write connection: a unit that will write (the ingest, adding versions) reads
        it first, and on SQLite then holds the write lock from its first statement."""
        ...


class RestatementStore(Protocol):
    """Restatement records (analytics_core.restatements) and their deltas."""

    def create(self, restatement: Restatement) -> None:
        """Store a new record."""
        ...

    def get(self, restatement_id: uuid.UUID) -> Restatement | None:
        """One record, or None."""
        ...

    def save(self, restatement: Restatement) -> None:
        """Replace a stored record (status, cursor, counters)."""
        ...

    def open(self) -> builtins.list[Restatement]:
        """Records not yet succeeded, oldest first."""
        ...

    def for_org(self, org_id: uuid.UUID) -> builtins.list[Restatement]:
        """Records that can touch the org (its own, and every global one), newest first."""
        ...

    def add_deltas(self, deltas: Sequence[RestatementDelta]) -> None:
        """Add to the deltas of each (restatement, org, model, day), creating missing ones."""
        ...

    def deltas(self, restatement_id: uuid.UUID,
               org_id: uuid.UUID) -> builtins.list[RestatementDelta]:
        """One org's deltas of one restatement, by (model, day)."""
        ...


class AttributionStore(Protocol):
    """Attribution rollups (analytics_core.attribution): rollups whose `client_id` is the group
    key (dimension and value), and the values admitted under the cap."""

    def admit(self, wanted: Mapping[tuple[uuid.UUID, date, str], set[str]], cap: int
              ) -> dict[tuple[uuid.UUID, date, str], set[str]]:
        """For each (org, UTC day, dimension): the wanted values that are admitted, those
        admitted before and new ones (stored now) while fewer than `cap` are."""
        ...

    def add(self, rollups: Sequence[Rollup]) -> None:
        """Merge deltas into the stored attribution rollups (every tier), like RollupStore."""
        ...

    def aggregate(
        self, org_id: uuid.UUID, boundaries: Sequence[datetime], *, dimension: str,
        model_ids: Sequence[uuid.UUID] = (), latency: bool = True,
    ) -> builtins.list[AggregateCell]:
        """Stats merged per (period, value of `dimension`), ordered by (period start, value);
        the semantics of RollupStore.aggregate with the value as the group."""
        ...

    def adjust_catalog(self, deltas: Sequence[Rollup]) -> None:
        """Add the catalog costs and priced counts of `deltas` (15-minute keys, distinct) to the
        rows that exist, in every tier; a key with no row is left alone (a restatement only
        corrects what ingestion attributed)."""
        ...


class BudgetStore(Protocol):
    """Org budgets (analytics_core.budgets)."""

    def add(self, budget: Budget) -> None:
        """Store a new budget; Conflict when its id exists."""
        ...

    def get(self, org_id: uuid.UUID, budget_id: uuid.UUID) -> Budget | None:
        """One budget of the org (None for unknown ids and other orgs' budgets)."""
        ...

    def for_org(self, org_id: uuid.UUID) -> builtins.list[Budget]:
        """The org's budgets, oldest first."""
        ...

    def save(self, budget: Budget) -> None:
        """Replace a stored budget (same org and id)."""
        ...

    def delete(self, org_id: uuid.UUID, budget_id: uuid.UUID) -> bool:
        """Remove a budget (its alerts stay); False when there was none."""
        ...

    def all(self) -> builtins.list[Budget]:
        """Every budget, by (org, budget id): what the evaluator walks."""
        ...


class AlertStore(Protocol):
    """Fired alerts: at most one per identity (budget, period start, kind, threshold)."""

    def fire(self, alert: Alert) -> bool:
        """Store the alert unless one with its identity exists (committed or not, by any
        writer: concurrent callers wait for each other); True when this call stored it."""
        ...

    def fired(self, org_id: uuid.UUID, since: datetime) -> builtins.list[Alert]:
        """The org's alerts of periods starting at or after `since` (what an evaluation pass
        checks before firing), by (budget, period start, kind, threshold)."""
        ...

    def fired_keys(self, org_id: uuid.UUID, since: datetime
                   ) -> set[tuple[uuid.UUID, datetime, AlertKind, int]]:
        """The identities (budget, period start, kind, threshold) of `fired(org_id, since)`:
        what an evaluation pass checks, without reading whole alerts."""
        ...

    def page(self, org_id: uuid.UUID, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None,
             budget_id: uuid.UUID | None = None) -> builtins.list[Alert]:
        """The org's alerts, newest first by (fired_at, alert_id), strictly before `before`."""
        ...


class OrgSettingsStore(Protocol):
    """Each org's own settings (its zone)."""

    def get(self, org_id: uuid.UUID) -> OrgSettings | None:
        """The org's settings, None when it has none."""
        ...

    def put(self, settings: OrgSettings) -> None:
        """Store (or replace) an org's settings."""
        ...

    def zones(self) -> dict[uuid.UUID, str]:
        """Every org that set a zone, with it."""
        ...


class SessionStore(Protocol):
    """Dashboard sessions (SPEC §14) keyed by the SHA-256 of their token."""

    def add(self, session: UiSession) -> None:
        """Store a new session; Conflict when its hash is already stored."""
        ...

    def find(self, session_hash: str) -> UiSession | None:
        """The session stored under a hash, exactly as added (and touched), or None. Expired
        sessions are returned until deleted: expiry is the caller's decision."""
        ...

    def touch(self, session_hash: str, at: datetime) -> None:
        """Set the session's `last_seen_at` to `at`, leaving every other field as it was; an
        unknown hash does nothing."""
        ...

    def delete(self, session_hash: str) -> bool:
        """Remove a session; True when it existed, False (and no change) when not."""
        ...

    def delete_expired(self, now: datetime, idle: timedelta) -> int:
        """Remove every session with `expires_at <= now` or `last_seen_at + idle <= now`;
        return how many were removed. Live sessions stay."""
        ...


class ReconciliationStore(Protocol):
    """Kept invoice reconciliations (SPEC §15) and their lines."""

    def add(self, run: ReconciliationRun, lines: Sequence[ReconciliationLine]) -> None:
        """Store a new run with its lines (in report order); Conflict when its id exists."""
        ...

    def get(self, org_id: uuid.UUID, reconciliation_id: uuid.UUID
            ) -> ReconciliationRun | None:
        """One run of the org."""
        ...

    def page(self, org_id: uuid.UUID, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None) -> builtins.list[ReconciliationRun]:
        """The org's runs, newest first by (created_at, id), strictly before `before`."""
        ...

    def lines(self, org_id: uuid.UUID, reconciliation_id: uuid.UUID
              ) -> builtins.list[ReconciliationLine]:
        """A run's lines in report order (empty for an unknown run)."""
        ...


class RuleStore(Protocol):
    """Org reliability rules (analytics_core.rules)."""

    def add(self, rule: ReliabilityRule) -> None:
        """Store a new rule; Conflict when its id exists."""
        ...

    def get(self, org_id: uuid.UUID, rule_id: uuid.UUID) -> ReliabilityRule | None:
        """One rule of the org (None for unknown ids and other orgs' rules)."""
        ...

    def for_org(self, org_id: uuid.UUID) -> builtins.list[ReliabilityRule]:
        """The org's rules, oldest first."""
        ...

    def save(self, rule: ReliabilityRule) -> None:
        """Replace a stored rule (same org and id)."""
        ...

    def delete(self, org_id: uuid.UUID, rule_id: uuid.UUID) -> bool:
        """Remove a rule (its transitions stay); False when there was none."""
        ...

    def all(self) -> builtins.list[ReliabilityRule]:
        """Every rule, by (org, rule id)."""
        ...


class TransitionStore(Protocol):
    """Rule transitions: at most one per (rule, number)."""

    def record(self, transition: RuleTransition) -> bool:
        """Store the transition unless its rule has one with its number (committed or not,
        by any writer); True when this call stored it."""
        ...

    def latest(self, org_id: uuid.UUID) -> dict[uuid.UUID, RuleTransition]:
        """The last transition of each of the org's rules that has one."""
        ...

    def page(self, org_id: uuid.UUID, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None,
             rule_id: uuid.UUID | None = None) -> builtins.list[RuleTransition]:
        """The org's transitions, newest first by (at, transition_id), before a cursor."""
        ...


class WebhookStore(Protocol):
    """Org webhook endpoints (analytics_core.webhooks), secrets included."""

    def add(self, endpoint: WebhookEndpoint) -> None:
        """Store a new endpoint; Conflict when its id exists."""
        ...

    def get(self, org_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookEndpoint | None:
        """One endpoint of the org (None for unknown ids and other orgs' endpoints)."""
        ...

    def for_org(self, org_id: uuid.UUID) -> builtins.list[WebhookEndpoint]:
        """The org's endpoints, oldest first."""
        ...

    def save(self, endpoint: WebhookEndpoint) -> None:
        """Replace a stored endpoint (same org and id)."""
        ...

    def delete(self, org_id: uuid.UUID, endpoint_id: uuid.UUID) -> bool:
        """Remove an endpoint and its deliveries; False when there was none."""
        ...


class DeliveryStore(Protocol):
    """Webhook deliveries (an outbox) and the log of their attempts."""

    def add(self, deliveries: Sequence[Delivery]) -> None:
        """Store new deliveries."""
        ...

    def claim(self, now: datetime, lease: timedelta, limit: int) -> builtins.list[Claim]:
        """Up to `limit` due deliveries of enabled endpoints (pending, next attempt and lease
        in the past), earliest due first, each leased until now + lease with a new attempt
        logged as in flight (numbered after the delivery's earlier attempts; one still in
        flight is marked interrupted). Concurrent claimers never get the same delivery while
        its lease runs."""
        ...

    def finish(self, delivery: Delivery, attempt: DeliveryAttempt) -> None:
        """Store the delivery after an attempt and that attempt's outcome (by its number)."""
        ...

    def get(self, org_id: uuid.UUID, delivery_id: uuid.UUID) -> Delivery | None:
        """One delivery of the org."""
        ...

    def save(self, delivery: Delivery) -> None:
        """Replace a stored delivery (redelivery)."""
        ...

    def page(self, org_id: uuid.UUID, endpoint_id: uuid.UUID, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None) -> builtins.list[Delivery]:
        """An endpoint's deliveries, newest first by (created_at, delivery_id)."""
        ...

    def attempts(self, delivery_ids: Sequence[uuid.UUID]
                 ) -> dict[uuid.UUID, builtins.list[DeliveryAttempt]]:
        """The attempts of each delivery, first first."""
        ...


class WebhookSender(Protocol):
    """Sends signed webhooks over HTTP (Standard Webhooks), refusing private addresses unless
    allowed."""

    def check_url(self, url: str) -> str | None:
        """Why the URL's host may not receive webhooks (it resolves to a loopback, private,
        link-local or otherwise internal address, or not at all), or None."""
        ...

    def send(self, url: str, *, secrets: Sequence[str], message_id: str, timestamp: datetime,
             body: str) -> SendResult:
        """POST `body` signed with every secret; never follows redirects; bounded in time."""
        ...


class UnitOfWork(Protocol):
    """One atomic transaction across every repository."""

    events: EventStore
    rollups: RollupStore
    dead_letters: DeadLetterStore
    freshness: FreshnessStore
    offsets: OffsetStore
    exports: ExportJobStore
    audit: AuditLog
    api_keys: ApiKeyStore
    models: ModelRegistry
    clients: ClientNameStore
    prices: PriceCatalogStore
    restatements: RestatementStore
    attribution: AttributionStore
    budgets: BudgetStore
    alerts: AlertStore
    webhooks: WebhookStore
    deliveries: DeliveryStore
    rules: RuleStore
    transitions: TransitionStore
    reconciliations: ReconciliationStore
    org_settings: OrgSettingsStore
    sessions: SessionStore

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back anything not committed."""
        ...

    def commit(self) -> None:
        """Make every write of this unit visible atomically."""
        ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


class PipelineProgress(Protocol):
    """How far ingestion has aggregated what producers published."""

    def complete_through(self, now: datetime) -> datetime:
        """Instant up to which every published event has been aggregated (<= now)."""
        ...


class FreshnessCache(Protocol):
    """Short-lived cache of per-org freshness markers. Never the source of truth:
    a miss or an outage (StoreUnavailable) means "read the store"."""

    def get(self, org_id: uuid.UUID) -> list[FreshnessMarker] | None:
        """Cached markers, or None on a miss."""
        ...

    def put(self, org_id: uuid.UUID, markers: Sequence[FreshnessMarker], ttl: timedelta) -> None:
        """Cache markers for at most `ttl`."""
        ...

    def invalidate(self, org_ids: Iterable[uuid.UUID]) -> None:
        """Drop cached entries (called after a batch commits)."""
        ...


class ObjectStore(Protocol):
    """Blob storage for export files. Every store accepts exactly the keys and metadata that
    `analytics_core.objects` accepts and raises ValueError for the others."""

    def put(
        self, key: str, chunks: Iterable[bytes], *,
        metadata: Mapping[str, str] | Callable[[], Mapping[str, str]], content_type: str,
    ) -> int:
        """Store the concatenated chunks under `key` (replacing it); return the size in bytes.

        `metadata` may be a callable: it is called once, after the last chunk was consumed, so
        values computed while streaming (row count, checksum) can be stored with the object.
        The object becomes visible only when complete: a failure leaves no partial object.
        """
        ...

    def open(self, key: str) -> Iterator[bytes]:
        """Stream an object's bytes; raises NotFound when absent."""
        ...

    def signed_url(self, key: str, ttl: timedelta) -> str | None:
        """A short-lived GET URL, or None when the store cannot sign (serve via `open`)."""
        ...

    def delete(self, key: str) -> None:
        """Remove an object; absent keys are ignored."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        ...

    def metadata(self, key: str) -> dict[str, str]:
        """The metadata stored with an object; raises NotFound when absent."""
        ...


class PartitionOwnership(Protocol):
    """A session deciding which stream partitions this process consumes; peers never own the
    same one. The stream consumer drives it; the broker's single active consumer, PostgreSQL
    advisory locks and a lone process implement it."""

    @property
    def held(self) -> frozenset[str]:
        """Partitions owned right now."""
        ...

    async def connect(self) -> None:
        """Open the session; StoreUnavailable when its backend does not answer."""
        ...

    async def alive(self) -> bool:
        """Whether the session still holds (False once its connection is lost)."""
        ...

    async def fair_share(self, partitions: int) -> int:
        """How many of `partitions` this process should own, given its live peers."""
        ...

    async def try_acquire(self, stream: str) -> bool:
        """True when this process owns `stream` now."""
        ...

    async def release(self, stream: str) -> None:
        """Give a partition back to the peers."""
        ...

    async def close(self) -> None:
        """End the session, releasing everything it holds."""
        ...


class HealthCheck(Protocol):
    """A named dependency probe for readiness."""

    name: str

    def check(self) -> None:
        """Return when healthy; raise StoreUnavailable (or any error) when not."""
        ...
