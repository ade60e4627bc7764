"""Dashboard sessions (SPEC §14): one row per session, keyed by the hash of its token."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from analytics_adapters.sql.errors import translated
from analytics_adapters.sql.records import SqlRecordRepository
from analytics_adapters.sql.schema import ui_sessions
from analytics_core.access import Actor
from analytics_core.errors import Conflict
from analytics_core.sessions import UiSession


class SqlSessionStore(SqlRecordRepository):
    """Sessions by hash; the actor's roles as a sorted JSON list."""

    @translated
    def add(self, session: UiSession) -> None:
        """Store a new session; Conflict when its hash is stored."""
        actor = session.actor
        stmt = self._insert(ui_sessions).values(
            session_hash=session.session_hash, subject=actor.subject, org_id=actor.org_id,
            roles=sorted(actor.roles), method=actor.method, csrf_token=session.csrf_token,
            created_at=session.created_at, last_seen_at=session.last_seen_at,
            expires_at=session.expires_at, key_id=session.key_id,
        ).on_conflict_do_nothing(index_elements=["session_hash"]).execution_options(
            preserve_rowcount=True
        )
        if self._write().execute(stmt).rowcount == 0:
            raise Conflict("session already exists")

    @translated
    def find(self, session_hash: str) -> UiSession | None:
        """The session under a hash, or None."""
        row = self._read().execute(sa.select(ui_sessions).where(
            ui_sessions.c.session_hash == session_hash)).one_or_none()
        return None if row is None else _session(row)

    @translated
    def touch(self, session_hash: str, at: datetime) -> None:
        """Set `last_seen_at`; an unknown hash does nothing."""
        self._write().execute(sa.update(ui_sessions).where(
            ui_sessions.c.session_hash == session_hash).values(last_seen_at=at))

    @translated
    def delete(self, session_hash: str) -> bool:
        """Remove a session; True when it existed."""
        stmt = sa.delete(ui_sessions).where(
            ui_sessions.c.session_hash == session_hash).execution_options(
            preserve_rowcount=True)
        return self._write().execute(stmt).rowcount > 0

    @translated
    def delete_expired(self, now: datetime, idle: timedelta) -> int:
        """Remove every absolutely or idle-expired session; return how many."""
        t = ui_sessions.c
        # `last_seen_at + idle <= now` as a bound instant: no interval arithmetic in SQL,
        # which the two engines (timestamptz, integer microseconds) would do differently.
        stmt = sa.delete(ui_sessions).where(
            sa.or_(t.expires_at <= now, t.last_seen_at <= now - idle)).execution_options(
            preserve_rowcount=True)
        return int(self._write().execute(stmt).rowcount)


def _session(r: sa.Row[Any]) -> UiSession:
    actor = Actor(r.subject, r.org_id, frozenset(r.roles), r.method)
    return UiSession(r.session_hash, actor, r.csrf_token, r.created_at, r.last_seen_at,
                     r.expires_at, r.key_id)
