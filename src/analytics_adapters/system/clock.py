"""The system clock: the real time, timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    """The real time, timezone-aware UTC."""

    def now(self) -> datetime:
        """Current instant (UTC)."""
        return datetime.now(UTC)
