"""In-memory dashboard sessions (SPEC §14), keyed by the hash of their token."""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from analytics_adapters.memory.repositories import Repository
from analytics_core.errors import Conflict
from analytics_core.sessions import UiSession


class InMemorySessionStore(Repository):
    """Sessions by hash."""

    def add(self, session: UiSession) -> None:
        """Store a new session; Conflict when its hash is stored."""
        journal = self._unit.journal()
        if session.session_hash in self._db.ui_sessions:
            raise Conflict("session already exists")
        journal.put(self._db.ui_sessions, session.session_hash, session)

    def find(self, session_hash: str) -> UiSession | None:
        """The session under a hash, or None."""
        self._unit.journal()
        return self._db.ui_sessions.get(session_hash)

    def touch(self, session_hash: str, at: datetime) -> None:
        """Set `last_seen_at`; an unknown hash does nothing."""
        journal = self._unit.journal()
        found = self._db.ui_sessions.get(session_hash)
        if found is not None:
            journal.put(self._db.ui_sessions, session_hash,
                        attrs.evolve(found, last_seen_at=at))

    def delete(self, session_hash: str) -> bool:
        """Remove a session; True when it existed."""
        journal = self._unit.journal()
        existed = session_hash in self._db.ui_sessions
        journal.delete(self._db.ui_sessions, session_hash)
        return existed

    def delete_expired(self, now: datetime, idle: timedelta) -> int:
        """Remove every absolutely or idle-expired session; return how many."""
        journal = self._unit.journal()
        ended = [h for h, s in self._db.ui_sessions.items()
                 if s.expires_at <= now or s.last_seen_at + idle <= now]
        for h in ended:
            journal.delete(self._db.ui_sessions, h)
        return len(ended)
