"""In-memory repositories for events, rollups, dead letters, freshness, offsets, audit and keys."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Protocol

import attrs

from analytics_adapters.memory.state import InMemoryStorage, Journal
from analytics_core.errors import Conflict
from analytics_core.events import UsageEvent
from analytics_core.freshness import FreshnessMarker
from analytics_core.ports import EventKey
from analytics_core.prices import PriceVersion
from analytics_core.records import (
    ApiKeyRecord,
    AuditEntry,
    AuditFilter,
    DeadLetter,
    DeadLetterFilter,
    DedupeConflict,
)
from analytics_core.registry import ClientName, ModelEntry, label_key, label_owners
from analytics_core.restatements import Restatement, RestatementDelta, RestatementStatus
from analytics_core.rollups import AggregateCell, Rollup, aggregate_rollups


class ActiveUnit(Protocol):
    """The unit of work a repository writes through."""

    def journal(self) -> Journal:
        """The undo journal; raises RuntimeError outside the unit's `with` block."""
        ...


class Repository:
    """Base: a view of the shared storage bound to one unit of work."""

    def __init__(self, storage: InMemoryStorage, unit: ActiveUnit) -> None:
        self._db = storage
        self._unit = unit


class InMemoryEventStore(Repository):
    """Raw events keyed by (org_id, event_id); first accepted version wins."""

    def add_new(
        self, events: Sequence[UsageEvent], price_versions: Sequence[uuid.UUID | None] = (),
    ) -> list[UsageEvent]:
        """Insert events whose key is not stored yet; return exactly those, in input order."""
        journal = self._unit.journal()
        inserted: list[UsageEvent] = []
        for i, event in enumerate(events):
            table = self._db.org_events(event.org_id)
            if event.event_id in table:
                continue
            journal.put(table, event.event_id, event)
            version = price_versions[i] if price_versions else None
            if version is not None:
                journal.put(self._db.event_prices, event.key, version)
            inserted.append(event)
        return inserted

    def priced(
        self, org_id: uuid.UUID, model_id: uuid.UUID, start: datetime, end: datetime, *,
        after: tuple[datetime, uuid.UUID] | None, limit: int,
    ) -> builtins.list[tuple[UsageEvent, uuid.UUID | None]]:
        """A page of one org's model's events with their price versions, in key order."""
        self._unit.journal()
        rows = sorted(
            (e for e in self._db.events.get(org_id, {}).values()
             if e.model_id == model_id and start <= e.occurred_at < end
             and (after is None or (e.occurred_at, e.event_id) > after)),
            key=lambda e: (e.occurred_at, e.event_id),
        )[:limit]
        return [(e, self._db.event_prices.get(e.key)) for e in rows]

    def set_price_versions(
        self, org_id: uuid.UUID,
        changes: Sequence[tuple[datetime, uuid.UUID, uuid.UUID | None]],
    ) -> None:
        """Store new price versions of stored events."""
        journal = self._unit.journal()
        for _, event_id, version in changes:
            if version is None:
                journal.delete(self._db.event_prices, (org_id, event_id))
            else:
                journal.put(self._db.event_prices, (org_id, event_id), version)

    def fingerprints(self, keys: Iterable[EventKey]) -> dict[EventKey, str]:
        """Fingerprints of the stored events among `keys`."""
        self._unit.journal()
        found: dict[EventKey, str] = {}
        for org_id, event_id in keys:
            stored = self._db.events.get(org_id, {}).get(event_id)
            if stored is not None:
                found[(org_id, event_id)] = stored.fingerprint()
        return found

    def scan(
        self, org_id: uuid.UUID, start: datetime, end: datetime,
        model_ids: Sequence[uuid.UUID] = (),
    ) -> Iterator[UsageEvent]:
        """Events of one org in [start, end), ordered by (occurred_at, event_id)."""
        self._unit.journal()
        wanted = frozenset(model_ids)
        rows = [
            e for e in self._db.events.get(org_id, {}).values()
            if start <= e.occurred_at < end and (not wanted or e.model_id in wanted)
        ]
        rows.sort(key=lambda e: (e.occurred_at, e.event_id))
        return iter(rows)


class InMemoryRollupStore(Repository):
    """15-minute rollups merged additively under the storage lock."""

    def add(self, rollups: Sequence[Rollup]) -> None:
        """Merge deltas into stored rollups, creating missing ones."""
        journal = self._unit.journal()
        for rollup in rollups:
            table = self._db.org_rollups(rollup.key.org_id)
            stored = table.get(rollup.key)
            merged = rollup.stats if stored is None else stored.merge(rollup.stats)
            journal.put(table, rollup.key, merged)

    def query(
        self, org_id: uuid.UUID, start: datetime, end: datetime,
        model_ids: Sequence[uuid.UUID] = (), client_ids: Sequence[str] = (),
    ) -> list[Rollup]:
        """Rollups of one org in [start, end), filtered, ordered by (bucket, model, client)."""
        self._unit.journal()
        models, clients = frozenset(model_ids), frozenset(client_ids)
        found = [
            Rollup(key, stats) for key, stats in self._db.rollups.get(org_id, {}).items()
            if start <= key.bucket_start < end
            and (not models or key.model_id in models)
            and (not clients or key.client_id in clients)
        ]
        found.sort(key=lambda r: (r.key.bucket_start, r.key.model_id, r.key.client_id))
        return found

    def aggregate(
        self, org_id: uuid.UUID, boundaries: Sequence[datetime], *, group_by: str = "model",
        model_ids: Sequence[uuid.UUID] = (), client_ids: Sequence[str] = (),
        latency: bool = True,
    ) -> list[AggregateCell]:
        """Stats merged per (period, group) with the core's reference aggregation."""
        if len(boundaries) < 2:
            return []
        rollups = self.query(org_id, boundaries[0], boundaries[-1], model_ids, client_ids)
        return aggregate_rollups(rollups, boundaries, group_by, latency)

    def active_orgs(self, start: datetime, end: datetime) -> list[uuid.UUID]:
        """Orgs with at least one rollup in [start, end), sorted."""
        self._unit.journal()
        return sorted(
            org_id for org_id, table in self._db.rollups.items()
            if any(start <= key.bucket_start < end for key in table)
        )


class InMemoryDeadLetterStore(Repository):
    """Dead letters by id (first wins) and dedupe conflicts (by id when they have one)."""

    def add(self, letters: Sequence[DeadLetter]) -> None:
        """Store dead letters; an id already stored is left as it is."""
        journal = self._unit.journal()
        for letter in letters:
            if letter.dead_letter_id not in self._db.dead_letters:
                journal.put(self._db.dead_letters, letter.dead_letter_id, letter)

    def add_conflicts(self, conflicts: Sequence[DedupeConflict]) -> None:
        """Store dedupe conflict records; re-adding a conflict id is a no-op."""
        journal = self._unit.journal()
        for conflict in conflicts:
            if conflict.conflict_id is not None and any(
                c.conflict_id == conflict.conflict_id for c in self._db.conflicts
            ):
                continue
            journal.append(self._db.conflicts, conflict)

    def recent(self, org_id: uuid.UUID | None = None, limit: int = 100) -> list[DeadLetter]:
        """Newest first; `org_id` None lists every dead letter."""
        self._unit.journal()
        letters = [
            d for d in reversed(self._db.dead_letters.values())
            if org_id is None or d.org_id == org_id
        ]
        letters.sort(key=lambda d: d.received_at, reverse=True)
        return letters[:max(limit, 0)]

    def conflicts(self, org_id: uuid.UUID, limit: int = 100) -> list[DedupeConflict]:
        """Conflicts of one org, newest first."""
        self._unit.journal()
        found = [c for c in reversed(self._db.conflicts) if c.org_id == org_id]
        found.sort(key=lambda c: c.detected_at, reverse=True)
        return found[:max(limit, 0)]

    def count(self) -> int:
        """Number of dead letters stored."""
        self._unit.journal()
        return len(self._db.dead_letters)

    def page(self, org_id: uuid.UUID | None, where: DeadLetterFilter, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None) -> list[DeadLetter]:
        """Matching letters, newest first by (received_at, id), strictly before `before`."""
        self._unit.journal()
        needle = None if where.reason is None else where.reason.casefold()
        found = [
            d for d in self._db.dead_letters.values()
            if (org_id is None or d.org_id == org_id)
            and (needle is None or needle in d.reason.casefold())
            and (where.source is None or d.source == where.source)
            and (where.since is None or d.received_at >= where.since)
            and (where.until is None or d.received_at < where.until)
            and (where.redriven is None or (d.redriven_at is not None) == where.redriven)
            and (before is None or (d.received_at, d.dead_letter_id) < before)
        ]
        found.sort(key=lambda d: (d.received_at, d.dead_letter_id), reverse=True)
        return found[:max(limit, 0)]

    def get(self, dead_letter_id: uuid.UUID) -> DeadLetter | None:
        """One letter by id."""
        self._unit.journal()
        return self._db.dead_letters.get(dead_letter_id)

    def mark_redriven(self, dead_letter_id: uuid.UUID, at: datetime, by: str,
                      outcome: str) -> bool:
        """Record a re-drive once."""
        journal = self._unit.journal()
        letter = self._db.dead_letters.get(dead_letter_id)
        if letter is None or letter.redriven_at is not None:
            return False
        journal.put(self._db.dead_letters, dead_letter_id, attrs.evolve(
            letter, redriven_at=at, redriven_by=by, redrive_outcome=outcome))
        return True


class InMemoryFreshnessStore(Repository):
    """Per (org, model) markers whose times only move forward."""

    def touch(self, markers: Sequence[FreshnessMarker]) -> None:
        """Merge markers, keeping the later of each time."""
        journal = self._unit.journal()
        for marker in markers:
            key = (marker.org_id, marker.model_id)
            stored = self._db.freshness.get(key)
            journal.put(self._db.freshness, key, marker if stored is None else stored.merge(marker))

    def markers(self, org_id: uuid.UUID) -> list[FreshnessMarker]:
        """Markers of one org sorted by model_id."""
        self._unit.journal()
        found = [m for (org, _), m in self._db.freshness.items() if org == org_id]
        found.sort(key=lambda m: m.model_id)
        return found

    def revise_history(self, org_ids: Iterable[uuid.UUID]) -> None:
        """Count one more history change per org."""
        journal = self._unit.journal()
        for org_id in set(org_ids):
            journal.put(self._db.history, org_id, self._db.history.get(org_id, 0) + 1)

    def history_revisions(self) -> dict[uuid.UUID, int]:
        """Each org's count of history changes."""
        self._unit.journal()
        return dict(self._db.history)


class InMemoryOffsetStore(Repository):
    """Last processed offset per (consumer, stream); it never moves backwards."""

    def get(self, consumer: str, stream: str) -> int | None:
        """Last committed offset, or None."""
        self._unit.journal()
        return self._db.offsets.get((consumer, stream))

    def save(self, consumer: str, stream: str, offset: int) -> None:
        """Record `offset` unless a later one is already stored."""
        journal = self._unit.journal()
        key = (consumer, stream)
        stored = self._db.offsets.get(key)
        if stored is None or offset > stored:
            journal.put(self._db.offsets, key, offset)


class InMemoryAuditLog(Repository):
    """Append-only audit entries."""

    def record(self, entry: AuditEntry) -> None:
        """Append one entry."""
        self._unit.journal().append(self._db.audit, entry)

    def recent(self, org_id: uuid.UUID, limit: int = 100) -> list[AuditEntry]:
        """Entries about one org, newest first."""
        self._unit.journal()
        found = [e for e in reversed(self._db.audit) if e.org_id == org_id]
        found.sort(key=lambda e: e.at, reverse=True)
        return found[:max(limit, 0)]

    def page(self, org_id: uuid.UUID, where: AuditFilter, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None) -> list[AuditEntry]:
        """Matching entries, newest first by (at, audit_id), strictly before `before`."""
        self._unit.journal()
        found = [
            e for e in self._db.audit
            if e.org_id == org_id
            and (where.actor is None or e.actor == where.actor)
            and (where.action is None or e.action == where.action)
            and (where.outcome is None or e.outcome is where.outcome)
            and (where.since is None or e.at >= where.since)
            and (where.until is None or e.at < where.until)
            and (before is None or (e.at, e.audit_id) < before)
        ]
        found.sort(key=lambda e: (e.at, e.audit_id), reverse=True)
        return found[:max(limit, 0)]


class InMemoryApiKeyStore(Repository):
    """API key records by key id."""

    def add(self, record: ApiKeyRecord) -> None:
        """Store a new key; Conflict when the key id exists."""
        journal = self._unit.journal()
        if record.key_id in self._db.api_keys:
            raise Conflict(f"API key id {record.key_id!r} already exists")
        journal.put(self._db.api_keys, record.key_id, record)

    def find(self, key_id: str) -> ApiKeyRecord | None:
        """The record for a key id, or None."""
        self._unit.journal()
        return self._db.api_keys.get(key_id)

    def list(self, org_id: uuid.UUID | None) -> builtins.list[ApiKeyRecord]:
        """Keys of one org (None: every key), ordered by (created_at, key_id)."""
        self._unit.journal()
        found = [r for r in self._db.api_keys.values() if org_id is None or r.org_id == org_id]
        found.sort(key=lambda r: (r.created_at, r.key_id))
        return found

    def revoke(self, key_id: str) -> bool:
        """Mark a key revoked; False when unknown, True (and no change) when already revoked."""
        journal = self._unit.journal()
        stored = self._db.api_keys.get(key_id)
        if stored is None:
            return False
        if not stored.revoked:
            journal.put(self._db.api_keys, key_id, attrs.evolve(stored, revoked=True))
        return True


class InMemoryModelRegistry(Repository):
    """Model entries by id; labels unique across models (by `label_key`)."""

    def all(self) -> builtins.list[ModelEntry]:
        """Every entry, ordered by model id."""
        self._unit.journal()
        return sorted(self._db.models.values(), key=lambda e: e.model_id)

    def get(self, model_id: uuid.UUID) -> ModelEntry | None:
        """One model's entry, or None."""
        self._unit.journal()
        return self._db.models.get(model_id)

    def find(self, label: str) -> ModelEntry | None:
        """The model named or aliased `label`, or None."""
        self._unit.journal()
        owner = label_owners(self._db.models.values()).get(label_key(label))
        return None if owner is None else self._db.models[owner]

    def put(self, entry: ModelEntry) -> ModelEntry | None:
        """Insert or replace, returning the replaced entry; Conflict when a label names
        another model."""
        journal = self._unit.journal()
        previous = self._db.models.get(entry.model_id)
        owners = label_owners(e for e in self._db.models.values() if e.model_id != entry.model_id)
        for label in entry.labels:
            owner = owners.get(label_key(label))
            if owner is not None:
                raise Conflict(f"{label!r} already names model {owner}")
        journal.put(self._db.models, entry.model_id, entry)
        return previous

    def delete(self, model_id: uuid.UUID) -> bool:
        """Remove the entry; False when there was none."""
        journal = self._unit.journal()
        found = model_id in self._db.models
        journal.delete(self._db.models, model_id)
        return found


class InMemoryClientNameStore(Repository):
    """Client names by (org, client id)."""

    def list(self, org_id: uuid.UUID) -> builtins.list[ClientName]:
        """The org's names, ordered by client id."""
        self._unit.journal()
        found = [n for (org, _), n in self._db.client_names.items() if org == org_id]
        return sorted(found, key=lambda n: n.client_id)

    def put(self, entry: ClientName) -> None:
        """Insert or replace."""
        journal = self._unit.journal()
        journal.put(self._db.client_names, (entry.org_id, entry.client_id), entry)

    def delete(self, org_id: uuid.UUID, client_id: str) -> bool:
        """Remove the name; False when there was none."""
        journal = self._unit.journal()
        found = (org_id, client_id) in self._db.client_names
        journal.delete(self._db.client_names, (org_id, client_id))
        return found


class InMemoryPriceCatalog(Repository):
    """Price versions, append-only."""

    def all(self) -> builtins.list[PriceVersion]:
        """Every version in the order added."""
        self._unit.journal()
        return list(self._db.prices)

    def add(self, versions: Sequence[PriceVersion]) -> None:
        """Append; Conflict on a known version id."""
        journal = self._unit.journal()
        known = {v.version_id for v in self._db.prices}
        for v in versions:
            if v.version_id in known:
                raise Conflict(f"price version {v.version_id} already exists")
            known.add(v.version_id)
        for v in versions:
            journal.append(self._db.prices, v)

    def revision(self) -> int:
        """The number of versions."""
        self._unit.journal()
        return len(self._db.prices)


class InMemoryRestatementStore(Repository):
    """Restatement records and their deltas."""

    def create(self, restatement: Restatement) -> None:
        """Store a new record."""
        journal = self._unit.journal()
        if restatement.restatement_id in self._db.restatements:
            raise Conflict(f"restatement {restatement.restatement_id} already exists")
        journal.put(self._db.restatements, restatement.restatement_id, restatement)

    def get(self, restatement_id: uuid.UUID) -> Restatement | None:
        """One record, or None."""
        self._unit.journal()
        return self._db.restatements.get(restatement_id)

    def save(self, restatement: Restatement) -> None:
        """Replace a stored record."""
        journal = self._unit.journal()
        journal.put(self._db.restatements, restatement.restatement_id, restatement)

    def open(self) -> builtins.list[Restatement]:
        """Records not yet succeeded, oldest first."""
        self._unit.journal()
        return sorted((r for r in self._db.restatements.values()
                       if r.status is not RestatementStatus.SUCCEEDED),
                      key=lambda r: (r.created_at, r.restatement_id))

    def for_org(self, org_id: uuid.UUID) -> builtins.list[Restatement]:
        """The org's own records and every global one, newest first."""
        self._unit.journal()
        return sorted((r for r in self._db.restatements.values()
                       if r.org_id is None or r.org_id == org_id),
                      key=lambda r: (r.created_at, r.restatement_id), reverse=True)

    def add_deltas(self, deltas: Sequence[RestatementDelta]) -> None:
        """Add to each (restatement, org, model, day) delta."""
        journal = self._unit.journal()
        table = self._db.restatement_deltas
        for d in deltas:
            key = (d.restatement_id, d.org_id, d.model_id, d.day)
            old = table.get(key)
            journal.put(table, key, d if old is None else attrs.evolve(
                d, events=old.events + d.events, before_units=old.before_units + d.before_units,
                after_units=old.after_units + d.after_units))

    def deltas(self, restatement_id: uuid.UUID,
               org_id: uuid.UUID) -> builtins.list[RestatementDelta]:
        """One org's deltas of one restatement, by (model, day)."""
        self._unit.journal()
        return sorted((d for k, d in self._db.restatement_deltas.items()
                       if k[0] == restatement_id and k[1] == org_id),
                      key=lambda d: (d.model_id, d.day))
