"""Pipeline progress when ingestion commits synchronously (HTTP ingestion, embedded mode)."""

from __future__ import annotations

from datetime import datetime


class SynchronousPipeline:
    """Every accepted event is aggregated before its request returns: never behind."""

    def complete_through(self, now: datetime) -> datetime:
        """`now` itself: nothing published is still waiting to be aggregated."""
        return now
