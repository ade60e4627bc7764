"""Dead letters, dedupe conflicts, freshness markers, stream offsets, audit log and API keys."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from analytics_adapters.sql import pg_rollups
from analytics_adapters.sql.base import SqlRepository
from analytics_adapters.sql.convert import AUDIT_COLUMNS, audit_values
from analytics_adapters.sql.errors import translated
from analytics_adapters.sql.key_cache import CHANNEL as KEY_CHANNEL
from analytics_adapters.sql.schema import (
    api_keys,
    audit_log,
    dead_letters,
    dedupe_conflicts,
    freshness_markers,
    history_revisions,
    stream_offsets,
)
from analytics_core.access import Outcome
from analytics_core.errors import Conflict
from analytics_core.freshness import FreshnessMarker
from analytics_core.records import (
    ApiKeyRecord,
    AuditEntry,
    AuditFilter,
    DeadLetter,
    DeadLetterFilter,
    DedupeConflict,
)

# A dead letter whose org could not be read (migration 0016: org_id is the distribution column
# on Citus, which cannot be NULL).
NO_ORG = uuid.UUID(int=0)


def _later(stored: sa.ColumnElement[Any], new: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The later of two nullable instants, in SQL valid on both engines."""
    return sa.func.max(sa.func.coalesce(stored, new), sa.func.coalesce(new, stored))


class SqlRecordRepository(SqlRepository):
    """Shared helper: the dialect's INSERT with ON CONFLICT support."""

    def _insert(self, table: sa.Table) -> Any:
        return pg_insert(table) if self._postgres else sqlite_insert(table)

    def _later(self, stored: sa.ColumnElement[Any], new: sa.ColumnElement[Any]) -> Any:
        # PostgreSQL's max() is an aggregate only; GREATEST ignores NULLs.
        return sa.func.greatest(stored, new) if self._postgres else _later(stored, new)


class SqlDeadLetterStore(SqlRecordRepository):
    """Rejected messages (unique by id) and dedupe conflicts."""

    @translated
    def add(self, letters: Sequence[DeadLetter]) -> None:
        """Store dead letters; re-adding an id is a no-op."""
        if not letters:
            return
        rows = [
            {"dead_letter_id": d.dead_letter_id, "org_id": d.org_id or NO_ORG,
             "received_at": d.received_at, "source": d.source, "raw": d.raw,
             "reason": d.reason, "stream_offset": d.offset}
            for d in letters
        ]
        stmt = self._insert(dead_letters).on_conflict_do_nothing(
            index_elements=["org_id", "dead_letter_id"]
        )
        self._write().execute(stmt, rows)

    @translated
    def add_conflicts(self, conflicts: Sequence[DedupeConflict]) -> None:
        """Store dedupe conflict records; re-adding a conflict id is a no-op."""
        if not conflicts:
            return
        rows = [
            {"org_id": c.org_id, "event_id": c.event_id, "detected_at": c.detected_at,
             "source": c.source, "first_fingerprint": c.first_fingerprint,
             "new_fingerprint": c.new_fingerprint, "raw": c.raw, "conflict_id": c.conflict_id}
            for c in conflicts
        ]
        stmt = self._insert(dedupe_conflicts).on_conflict_do_nothing(
            index_elements=["org_id", "conflict_id"]
        )
        self._write().execute(stmt, rows)

    @translated
    def recent(self, org_id: uuid.UUID | None = None, limit: int = 100) -> list[DeadLetter]:
        """Newest first (ties: last stored first); `org_id` None lists every dead letter."""
        t = dead_letters.c
        stmt = sa.select(dead_letters)
        if org_id is not None:
            stmt = stmt.where(t.org_id == org_id)
        stmt = stmt.order_by(t.received_at.desc(), t.seq.desc()).limit(max(limit, 0))
        return [_dead_letter(r) for r in self._read().execute(stmt)]

    @translated
    def page(self, org_id: uuid.UUID | None, where: DeadLetterFilter, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None) -> list[DeadLetter]:
        """Matching letters, newest first by (received_at, id), strictly before `before`."""
        t = dead_letters.c
        stmt = sa.select(dead_letters)
        if org_id is not None:
            stmt = stmt.where(t.org_id == org_id)
        if where.reason is not None:
            stmt = stmt.where(sa.func.lower(t.reason).contains(where.reason.lower(),
                                                               autoescape=True))
        if where.source is not None:
            stmt = stmt.where(t.source == where.source)
        if where.since is not None:
            stmt = stmt.where(t.received_at >= where.since)
        if where.until is not None:
            stmt = stmt.where(t.received_at < where.until)
        if where.redriven is not None:
            stmt = stmt.where(t.redriven_at.is_not(None) if where.redriven
                              else t.redriven_at.is_(None))
        if before is not None:
            stmt = stmt.where(sa.tuple_(t.received_at, t.dead_letter_id) < sa.tuple_(
                sa.literal(before[0], t.received_at.type), sa.literal(before[1], sa.Uuid())))
        stmt = stmt.order_by(t.received_at.desc(), t.dead_letter_id.desc()).limit(max(limit, 0))
        return [_dead_letter(r) for r in self._read().execute(stmt)]

    @translated
    def get(self, dead_letter_id: uuid.UUID) -> DeadLetter | None:
        """One letter by id."""
        stmt = sa.select(dead_letters).where(dead_letters.c.dead_letter_id == dead_letter_id)
        row = self._read().execute(stmt).first()
        return None if row is None else _dead_letter(row)

    @translated
    def mark_redriven(self, dead_letter_id: uuid.UUID, at: datetime, by: str,
                      outcome: str) -> bool:
        """Record a re-drive once (the first marking wins)."""
        t = dead_letters.c
        stmt = (
            sa.update(dead_letters)
            .where(t.dead_letter_id == dead_letter_id, t.redriven_at.is_(None))
            .values(redriven_at=at, redriven_by=by, redrive_outcome=outcome)
        )
        return bool(self._write().execute(stmt).rowcount)

    @translated
    def conflicts(self, org_id: uuid.UUID, limit: int = 100) -> list[DedupeConflict]:
        """Conflicts of one org, newest first."""
        t = dedupe_conflicts.c
        stmt = (
            sa.select(dedupe_conflicts).where(t.org_id == org_id)
            .order_by(t.detected_at.desc(), t.seq.desc()).limit(max(limit, 0))
        )
        return [
            DedupeConflict(r.org_id, r.event_id, r.detected_at, r.source,
                           r.first_fingerprint, r.new_fingerprint, bytes(r.raw), r.conflict_id)
            for r in self._read().execute(stmt)
        ]

    @translated
    def count(self) -> int:
        """Number of dead letters stored."""
        stmt = sa.select(sa.func.count()).select_from(dead_letters)
        return int(self._read().execute(stmt).scalar_one())


def revise_history(conn: sa.Connection, org_ids: Iterable[uuid.UUID]) -> None:
    """Count one more history change per org (rows locked in key order), on either engine."""
    orgs = sorted(set(org_ids))
    if not orgs:
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    t = history_revisions.c
    stmt = insert(history_revisions).on_conflict_do_update(
        index_elements=["org_id"], set_={"revision": t.revision + 1})
    conn.execute(stmt, [{"org_id": org, "revision": 1} for org in orgs])


class SqlFreshnessStore(SqlRecordRepository):
    """Per (org, model) markers; each time only moves forward."""

    @translated
    def touch(self, markers: Sequence[FreshnessMarker]) -> None:
        """Merge markers, keeping the later of each time (rows locked in key order)."""
        merged: dict[tuple[uuid.UUID, uuid.UUID], FreshnessMarker] = {}
        for m in markers:
            key = (m.org_id, m.model_id)
            merged[key] = merged[key].merge(m) if key in merged else m
        if not merged:
            return
        if self._postgres:
            pg_rollups.touch_markers(self._unit, self._write(), list(merged.values()))
            return
        stmt = self._insert(freshness_markers)
        t, ex = freshness_markers.c, stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=["org_id", "model_id"],
            set_={"last_event_at": self._later(t.last_event_at, ex.last_event_at),
                  "last_rollup_at": self._later(t.last_rollup_at, ex.last_rollup_at)},
        )
        rows = [
            {"org_id": m.org_id, "model_id": m.model_id, "last_event_at": m.last_event_at,
             "last_rollup_at": m.last_rollup_at}
            for _, m in sorted(merged.items())
        ]
        self._write().execute(stmt, rows)

    @translated
    def markers(self, org_id: uuid.UUID) -> list[FreshnessMarker]:
        """Markers of one org sorted by model_id."""
        t = freshness_markers.c
        stmt = sa.select(freshness_markers).where(t.org_id == org_id).order_by(t.model_id)
        return [
            FreshnessMarker(r.org_id, r.model_id, r.last_event_at, r.last_rollup_at)
            for r in self._read().execute(stmt)
        ]

    @translated
    def revise_history(self, org_ids: Iterable[uuid.UUID]) -> None:
        """Count one more history change per org (rows locked in key order)."""
        revise_history(self._write(), org_ids)

    @translated
    def history_revisions(self) -> dict[uuid.UUID, int]:
        """Each org's count of history changes."""
        t = history_revisions.c
        return {r.org_id: int(r.revision)
                for r in self._read().execute(sa.select(t.org_id, t.revision))}


class SqlOffsetStore(SqlRecordRepository):
    """Last processed offset per (consumer, stream), never moving backwards."""

    @translated
    def get(self, consumer: str, stream: str) -> int | None:
        """Last committed offset, or None."""
        t = stream_offsets.c
        stmt = sa.select(t.last_offset).where(t.consumer == consumer, t.stream == stream)
        found = self._read().execute(stmt).scalar_one_or_none()
        return None if found is None else int(found)

    @translated
    def save(self, consumer: str, stream: str, offset: int) -> None:
        """Record `offset` unless a later one is already stored."""
        stmt = self._insert(stream_offsets).values(
            consumer=consumer, stream=stream, last_offset=offset
        )
        t, ex = stream_offsets.c, stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=["consumer", "stream"],
            set_={"last_offset": self._later(t.last_offset, ex.last_offset)},
        )
        self._write().execute(stmt)


_AUDIT_INSERT = audit_log.insert()


class SqlAuditLog(SqlRecordRepository):
    """Append-only audit of authorization decisions."""

    @translated
    def record(self, entry: AuditEntry) -> None:
        """Append one entry (one statement compiled once per process: every request writes
        one)."""
        self._write().execute(_AUDIT_INSERT, dict(zip(AUDIT_COLUMNS, audit_values(entry),
                                                      strict=True)))

    @translated
    def recent(self, org_id: uuid.UUID, limit: int = 100) -> list[AuditEntry]:
        """Entries about one org, newest first (ties: last recorded first)."""
        t = audit_log.c
        stmt = (
            sa.select(audit_log).where(t.org_id == org_id)
            .order_by(t.at.desc(), t.seq.desc()).limit(max(limit, 0))
        )
        return [_audit_entry(r) for r in self._read().execute(stmt)]

    @translated
    def page(self, org_id: uuid.UUID, where: AuditFilter, *, limit: int,
             before: tuple[datetime, uuid.UUID] | None = None) -> list[AuditEntry]:
        """Matching entries, newest first by (at, audit_id), strictly before `before`."""
        t = audit_log.c
        stmt = sa.select(audit_log).where(t.org_id == org_id)
        if where.actor is not None:
            stmt = stmt.where(t.actor == where.actor)
        if where.action is not None:
            stmt = stmt.where(t.action == where.action)
        if where.outcome is not None:
            stmt = stmt.where(t.outcome == where.outcome.value)
        if where.since is not None:
            stmt = stmt.where(t.at >= where.since)
        if where.until is not None:
            stmt = stmt.where(t.at < where.until)
        if before is not None:
            stmt = stmt.where(sa.tuple_(t.at, t.audit_id) < sa.tuple_(
                sa.literal(before[0], t.at.type), sa.literal(before[1], sa.Uuid())))
        stmt = stmt.order_by(t.at.desc(), t.audit_id.desc()).limit(max(limit, 0))
        return [_audit_entry(r) for r in self._read().execute(stmt)]


class SqlApiKeyStore(SqlRecordRepository):
    """API keys by key id; only the secret's hash is stored."""

    @translated
    def add(self, record: ApiKeyRecord) -> None:
        """Store a new key; Conflict on a duplicate key_id."""
        stmt = self._insert(api_keys).values(
            key_id=record.key_id, org_id=record.org_id, roles=sorted(record.roles),
            secret_hash=record.secret_hash, created_at=record.created_at, name=record.name,
            revoked=record.revoked,
        ).on_conflict_do_nothing(index_elements=["key_id"]).execution_options(
            preserve_rowcount=True
        )
        if self._write().execute(stmt).rowcount == 0:
            raise Conflict(f"API key id {record.key_id!r} already exists")

    @translated
    def find(self, key_id: str) -> ApiKeyRecord | None:
        """The record for a key id, or None."""
        row = self._read().execute(
            sa.select(api_keys).where(api_keys.c.key_id == key_id)
        ).one_or_none()
        return None if row is None else _api_key(row)

    @translated
    def list(self, org_id: uuid.UUID | None) -> builtins.list[ApiKeyRecord]:
        """Keys of one org (None: every key), ordered by (created_at, key_id)."""
        t = api_keys.c
        # Code-point order on PostgreSQL too, whatever the database's default collation.
        key_order = t.key_id.collate("C") if self._postgres else t.key_id
        stmt = sa.select(api_keys).order_by(t.created_at, key_order)
        if org_id is not None:
            stmt = stmt.where(t.org_id == org_id)
        return [_api_key(row) for row in self._read().execute(stmt)]

    @translated
    def revoke(self, key_id: str) -> bool:
        """Mark a key revoked; False when unknown, True (and no change) when already revoked."""
        stmt = (
            sa.update(api_keys).where(api_keys.c.key_id == key_id).values(revoked=True)
            .execution_options(preserve_rowcount=True)
        )
        found = self._write().execute(stmt).rowcount > 0
        if found and self._postgres:  # processes keeping the key drop it at commit
            self._write().execute(sa.text("SELECT pg_notify(:channel, :key)"),
                                  {"channel": KEY_CHANNEL, "key": key_id})
        return found


def _audit_entry(r: sa.Row[Any]) -> AuditEntry:
    return AuditEntry(r.audit_id, r.at, r.actor, r.actor_org, r.org_id, r.action, r.resource,
                      Outcome(r.outcome), r.reason, r.request_id, r.cross_org)


def _dead_letter(r: sa.Row[Any]) -> DeadLetter:
    return DeadLetter(r.dead_letter_id, r.received_at, r.source, bytes(r.raw), r.reason,
                      None if r.org_id == NO_ORG else r.org_id, r.stream_offset,
                      r.redriven_at, r.redriven_by, r.redrive_outcome)


def _api_key(row: sa.Row[Any]) -> ApiKeyRecord:
    return ApiKeyRecord(row.key_id, row.org_id, frozenset(row.roles), row.secret_hash,
                        row.created_at, row.name, row.revoked)
