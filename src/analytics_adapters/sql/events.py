"""Raw events and their dedupe index (`usage_events` + `event_keys`)."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

import sqlalchemy as sa

from analytics_adapters.sql import pg_events
from analytics_adapters.sql.base import SqlRepository
from analytics_adapters.sql.bulk import Columns
from analytics_adapters.sql.convert import EVENT_COLUMNS, event_from_row, event_values
from analytics_adapters.sql.errors import translate_errors, translated
from analytics_adapters.sql.schema import event_keys, usage_events
from analytics_adapters.sql.types import UtcDateTime
from analytics_core.events import UsageEvent
from analytics_core.ports import EventKey

SCAN_BATCH = 2000
_STORED_COLUMNS = (*EVENT_COLUMNS, "price_version_id")
_KEY_COLUMNS = ("org_id", "event_id", "occurred_at", "fingerprint")
_KEY_CHUNK = 400  # (org, event) pairs per IN list: 800 parameters, far below SQLite's limit


def _insert_keys(conn: sa.Connection, events: Sequence[tuple[UsageEvent, uuid.UUID | None]],
                 *, ignore: bool) -> None:
    """The dedupe keys of events (SQLite); with `ignore`, keys already stored are skipped."""
    stmt = event_keys.insert()
    Columns(conn, event_keys, _KEY_COLUMNS, [
        (e.org_id, e.event_id, e.occurred_at, bytes.fromhex(e.fingerprint()))
        for e, _ in events
    ]).execute(stmt.prefix_with("OR IGNORE") if ignore else stmt)


def _chunks(items: Sequence[EventKey], size: int) -> Iterator[Sequence[EventKey]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class SqlEventStore(SqlRepository):
    """Events unique by (org_id, event_id) across all partitions, first version wins."""

    @translated
    def add_new(
        self, events: Sequence[UsageEvent], price_versions: Sequence[uuid.UUID | None] = (),
    ) -> list[UsageEvent]:
        """Insert the events whose key is not stored yet (with their price versions); return
        exactly those, in input order."""
        if not events:
            return []
        conn = self._write()
        if self._postgres:
            # Dedupe inside the batch happens in SQL (DISTINCT ON the key, lowest position).
            return pg_events.insert_new(self._unit, conn, events, price_versions)
        first: dict[EventKey, tuple[UsageEvent, uuid.UUID | None]] = {}
        for i, e in enumerate(events):
            first.setdefault(e.key, (e, price_versions[i] if price_versions else None))
        unique = list(first.values())
        inserted = self._insert_new_generic(conn, unique)
        return [e for e, _ in unique if e.key in inserted]

    def _insert_new_generic(
        self, conn: sa.Connection, events: list[tuple[UsageEvent, uuid.UUID | None]]
    ) -> set[EventKey]:
        # SQLite: the unit holds the write lock (BEGIN IMMEDIATE), so nobody else writes
        # between these statements. The common batch holds only new events: its keys go in
        # with INSERT OR IGNORE inside a savepoint, and when every row was inserted no key
        # was stored before, so no lookup is needed. Otherwise the savepoint is rolled back
        # and the stored keys are read first.
        new = self._insert_keys_if_all_new(conn, events)
        if new is None:
            stored = self._stored_keys(conn, [e.key for e, _ in events])
            new = [(e, v) for e, v in events if e.key not in stored]
            _insert_keys(conn, new, ignore=False)
        Columns(conn, usage_events, _STORED_COLUMNS,
                [(*event_values(e), v) for e, v in new]).execute(usage_events.insert())
        return {e.key for e, _ in new}

    @staticmethod
    def _insert_keys_if_all_new(
        conn: sa.Connection, events: list[tuple[UsageEvent, uuid.UUID | None]]
    ) -> list[tuple[UsageEvent, uuid.UUID | None]] | None:
        """Insert every key when none is stored yet (and return the events); None, with
        nothing inserted, when some key was stored before."""
        raw = conn.connection.driver_connection
        assert isinstance(raw, sqlite3.Connection)
        conn.exec_driver_sql("SAVEPOINT analytics_new_keys")
        before = raw.total_changes
        _insert_keys(conn, events, ignore=True)
        if raw.total_changes - before == len(events):
            conn.exec_driver_sql("RELEASE analytics_new_keys")
            return events
        conn.exec_driver_sql("ROLLBACK TO analytics_new_keys")
        conn.exec_driver_sql("RELEASE analytics_new_keys")
        return None

    @translated
    def priced(
        self, org_id: uuid.UUID, model_id: uuid.UUID, start: datetime, end: datetime, *,
        after: tuple[datetime, uuid.UUID] | None, limit: int,
    ) -> list[tuple[UsageEvent, uuid.UUID | None]]:
        """A page of one org's model's events with their price versions, in key order."""
        t = usage_events.c
        stmt = sa.select(usage_events).where(
            t.org_id == org_id, t.occurred_at >= start, t.occurred_at < end,
            t.model_id == model_id,
        )
        if after is not None:
            stmt = stmt.where(sa.tuple_(t.occurred_at, t.event_id) > sa.tuple_(
                sa.literal(after[0], UtcDateTime()), sa.literal(after[1], sa.Uuid())))
        stmt = stmt.order_by(t.occurred_at, t.event_id).limit(limit)
        return [(event_from_row(row), row.price_version_id)
                for row in self._read().execute(stmt)]

    @translated
    def set_price_versions(
        self, org_id: uuid.UUID,
        changes: Sequence[tuple[datetime, uuid.UUID, uuid.UUID | None]],
    ) -> None:
        """Store new price versions of stored events (keyed by the partition column too)."""
        if not changes:
            return
        t = usage_events.c
        stmt = usage_events.update().where(
            t.org_id == sa.bindparam("b_org"), t.occurred_at == sa.bindparam("b_at"),
            t.event_id == sa.bindparam("b_event"),
        ).values(price_version_id=sa.bindparam("b_version"))
        self._write().execute(stmt, [
            {"b_org": org_id, "b_at": at, "b_event": event_id, "b_version": version}
            for at, event_id, version in changes
        ])

    def _stored_keys(self, conn: sa.Connection, keys: Sequence[EventKey]) -> set[EventKey]:
        return set(self._lookup(conn, keys))

    def _lookup(self, conn: sa.Connection, keys: Sequence[EventKey]) -> dict[EventKey, bytes]:
        found: dict[EventKey, bytes] = {}
        cols = (event_keys.c.org_id, event_keys.c.event_id, event_keys.c.fingerprint)
        if self._postgres and keys:
            return pg_events.fingerprints(self._unit, conn, keys)
        for chunk in _chunks(keys, _KEY_CHUNK):
            stmt = sa.select(*cols).where(
                sa.tuple_(event_keys.c.org_id, event_keys.c.event_id).in_(list(chunk))
            )
            for org_id, event_id, fingerprint in conn.execute(stmt):
                found[(org_id, event_id)] = bytes(fingerprint)
        return found

    @translated
    def fingerprints(self, keys: Iterable[EventKey]) -> dict[EventKey, str]:
        """Content fingerprints of the stored events among `keys` (absent keys are omitted)."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        found = self._lookup(self._read(), wanted)
        return {key: fingerprint.hex() for key, fingerprint in found.items()}

    def scan(
        self, org_id: uuid.UUID, start: datetime, end: datetime,
        model_ids: Sequence[uuid.UUID] = (),
    ) -> Iterator[UsageEvent]:
        """Events of one org in [start, end) by (occurred_at, event_id), streamed in batches."""
        with translate_errors():
            conn = self._read()
            stmt = sa.select(usage_events).where(
                usage_events.c.org_id == org_id,
                usage_events.c.occurred_at >= start,
                usage_events.c.occurred_at < end,
            )
            if model_ids:
                stmt = stmt.where(usage_events.c.model_id.in_(list(model_ids)))
            stmt = stmt.order_by(usage_events.c.occurred_at, usage_events.c.event_id)
            result = conn.execute(stmt.execution_options(yield_per=SCAN_BATCH))
        return self._stream(result)

    @staticmethod
    def _stream(result: sa.CursorResult[sa.Row[object]]) -> Iterator[UsageEvent]:
        try:
            with translate_errors():
                for row in result:
                    yield event_from_row(row)
        finally:
            result.close()
