"""A predictable id sequence for tests (random ids are `analytics_adapters.system`)."""

from __future__ import annotations

import itertools
import threading
import uuid


class SequentialIds:
    """UUIDs 00000000-0000-4000-8000-000000000001, …2, … in order; thread-safe."""

    def __init__(self, start: int = 1) -> None:
        self._counter = itertools.count(start)
        self._lock = threading.Lock()

    def new_id(self) -> uuid.UUID:
        """The next id of the sequence (a valid version 4 UUID)."""
        with self._lock:
            n = next(self._counter)
        return uuid.UUID(int=(0x4000 << 64) | (0x8 << 60) | n)
