"""A settable clock for tests and simulations (the real one is `analytics_adapters.system`)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from analytics_core.events import as_utc


class ManualClock:
    """A clock that only moves when told to; thread-safe."""

    def __init__(self, start: datetime) -> None:
        self._lock = threading.Lock()
        self._now = as_utc(start)

    def now(self) -> datetime:
        """The instant last set (UTC)."""
        with self._lock:
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to an aware instant (backwards too)."""
        with self._lock:
            self._now = as_utc(when)

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by `delta` and return the new instant."""
        with self._lock:
            self._now += delta
            return self._now


FixedClock = ManualClock
"""Alias: a `ManualClock` nobody advances is a fixed clock."""
