"""The price catalog and restatement records on SQL."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from analytics_adapters.sql.errors import translated
from analytics_adapters.sql.records import SqlRecordRepository
from analytics_adapters.sql.schema import price_versions, restatement_deltas, restatements
from analytics_core.errors import Conflict
from analytics_core.prices import PriceCategory, PriceVersion
from analytics_core.restatements import (
    Restatement,
    RestatementCursor,
    RestatementDelta,
    RestatementStatus,
)


def _version(row: Any) -> PriceVersion:
    return PriceVersion(
        row.version_id, row.model_id, row.org_id, row.effective_from,
        {PriceCategory(k): int(v) for k, v in row.prices.items()}, row.created_at,
        row.created_by, row.supersedes, row.note,
    )


class SqlPriceCatalog(SqlRecordRepository):
    """Price versions, append-only; `seq` orders them and is the catalog's revision."""

    @translated
    def all(self) -> builtins.list[PriceVersion]:
        """Every version in the order added."""
        rows = self._read().execute(sa.select(price_versions).order_by(price_versions.c.seq))
        return [_version(r) for r in rows]

    @translated
    def add(self, versions: Sequence[PriceVersion]) -> None:
        """Append; Conflict on a known version id."""
        if not versions:
            return
        write = self._write()
        ids = [v.version_id for v in versions]
        known = write.execute(sa.select(price_versions.c.version_id).where(
            price_versions.c.version_id.in_(ids))).first()
        if known is not None or len(set(ids)) < len(ids):
            raise Conflict("a price version with one of these ids already exists")
        write.execute(price_versions.insert(), [
            {"version_id": v.version_id, "model_id": v.model_id, "org_id": v.org_id,
             "effective_from": v.effective_from,
             "prices": {c.value: n for c, n in v.prices.items()}, "created_at": v.created_at,
             "created_by": v.created_by, "supersedes": v.supersedes, "note": v.note}
            for v in versions
        ])

    @translated
    def revision(self) -> int:
        """The highest seq (0 when empty). On the write connection: the ingest reads it first
        in its unit, and on SQLite a unit that will write must begin with the write lock."""
        found = self._write().execute(sa.select(sa.func.max(price_versions.c.seq))).scalar()
        return int(found or 0)


def _restatement(row: Any) -> Restatement:
    cursor = None
    if row.cursor_org is not None:
        cursor = RestatementCursor(row.cursor_org, row.cursor_at, row.cursor_event)
    return Restatement(
        row.restatement_id, row.created_at, row.created_by, row.version_id, row.supersedes,
        row.model_id, row.org_id, row.window_start, row.window_end,
        RestatementStatus(row.status), cursor, int(row.events_repriced), row.completed_at,
    )


def _restatement_row(r: Restatement) -> dict[str, Any]:
    c = r.cursor
    return {
        "restatement_id": r.restatement_id, "created_at": r.created_at,
        "created_by": r.created_by, "version_id": r.version_id, "supersedes": r.supersedes,
        "model_id": r.model_id, "org_id": r.org_id, "window_start": r.window_start,
        "window_end": r.window_end, "status": r.status.value,
        "cursor_org": c.org_id if c else None, "cursor_at": c.occurred_at if c else None,
        "cursor_event": c.event_id if c else None, "events_repriced": r.events_repriced,
        "completed_at": r.completed_at,
    }


class SqlRestatementStore(SqlRecordRepository):
    """Restatement records and their deltas (additive upserts)."""

    @translated
    def create(self, restatement: Restatement) -> None:
        """Store a new record."""
        self._write().execute(restatements.insert(), [_restatement_row(restatement)])

    @translated
    def get(self, restatement_id: uuid.UUID) -> Restatement | None:
        """One record, or None."""
        row = self._read().execute(sa.select(restatements).where(
            restatements.c.restatement_id == restatement_id)).one_or_none()
        return None if row is None else _restatement(row)

    @translated
    def save(self, restatement: Restatement) -> None:
        """Replace a stored record."""
        row = _restatement_row(restatement)
        self._write().execute(restatements.update().where(
            restatements.c.restatement_id == restatement.restatement_id).values(row))

    @translated
    def open(self) -> builtins.list[Restatement]:
        """Records not yet succeeded, oldest first."""
        t = restatements.c
        rows = self._read().execute(sa.select(restatements).where(
            t.status != RestatementStatus.SUCCEEDED.value).order_by(t.created_at,
                                                                    t.restatement_id))
        return [_restatement(r) for r in rows]

    @translated
    def for_org(self, org_id: uuid.UUID) -> builtins.list[Restatement]:
        """The org's own records and every global one, newest first."""
        t = restatements.c
        rows = self._read().execute(sa.select(restatements).where(
            sa.or_(t.org_id.is_(None), t.org_id == org_id)).order_by(
            t.created_at.desc(), t.restatement_id.desc()))
        return [_restatement(r) for r in rows]

    @translated
    def add_deltas(self, deltas: Sequence[RestatementDelta]) -> None:
        """Add to each (org, restatement, model, day) delta, in key order."""
        if not deltas:
            return
        stmt = self._insert(restatement_deltas)
        t, ex = restatement_deltas.c, stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=["org_id", "restatement_id", "model_id", "day"],
            set_={"events": t.events + ex.events,
                  "before_units": t.before_units + ex.before_units,
                  "after_units": t.after_units + ex.after_units},
        )
        rows = sorted(
            ({"org_id": d.org_id, "restatement_id": d.restatement_id, "model_id": d.model_id,
              "day": d.day, "events": d.events, "before_units": d.before_units,
              "after_units": d.after_units} for d in deltas),
            key=lambda r: (r["org_id"], r["model_id"], r["day"]),
        )
        write = self._write()
        for row in rows:  # one statement may touch a row only once
            write.execute(stmt, row)

    @translated
    def deltas(self, restatement_id: uuid.UUID,
               org_id: uuid.UUID) -> builtins.list[RestatementDelta]:
        """One org's deltas of one restatement, by (model, day)."""
        t = restatement_deltas.c
        rows = self._read().execute(sa.select(restatement_deltas).where(
            t.org_id == org_id, t.restatement_id == restatement_id).order_by(t.model_id, t.day))
        return [RestatementDelta(r.restatement_id, r.org_id, r.model_id, r.day, int(r.events),
                                 int(r.before_units), int(r.after_units)) for r in rows]
