"""In-process freshness cache with TTLs measured on the Clock port."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from analytics_core.freshness import FreshnessMarker
from analytics_core.ports import Clock

DEFAULT_MAX_ENTRIES = 10_000


class InMemoryFreshnessCache:
    """Per-org marker lists that expire `ttl` after `put`; the oldest entry goes when full."""

    def __init__(self, clock: Clock, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._clock = clock
        self._max = max_entries
        self._lock = threading.Lock()
        self._entries: dict[uuid.UUID, tuple[datetime, tuple[FreshnessMarker, ...]]] = {}

    def get(self, org_id: uuid.UUID) -> list[FreshnessMarker] | None:
        """Cached markers, or None on a miss or after expiry."""
        now = self._clock.now()
        with self._lock:
            entry = self._entries.get(org_id)
            if entry is None:
                return None
            if entry[0] <= now:
                del self._entries[org_id]
                return None
            return list(entry[1])

    def put(self, org_id: uuid.UUID, markers: Sequence[FreshnessMarker], ttl: timedelta) -> None:
        """Cache markers for at most `ttl`; a non-positive ttl caches nothing."""
        expires = self._clock.now() + ttl
        with self._lock:
            self._entries.pop(org_id, None)
            if ttl <= timedelta(0) or self._max <= 0:
                return
            while len(self._entries) >= self._max:
                del self._entries[next(iter(self._entries))]
            self._entries[org_id] = (expires, tuple(markers))

    def invalidate(self, org_ids: Iterable[uuid.UUID]) -> None:
        """Drop cached entries."""
        with self._lock:
            for org_id in org_ids:
                self._entries.pop(org_id, None)
