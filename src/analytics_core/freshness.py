"""Freshness is pipeline lag, never tenant quietness (SPEC §4)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

import attrs

FRESH_BELOW_SECONDS = 300
STALE_BELOW_SECONDS = 600


class FreshnessStatus(StrEnum):
    """fresh < 300 s <= stale < 600 s <= delayed."""

    FRESH = "fresh"
    STALE = "stale"
    DELAYED = "delayed"


def classify(lag_seconds: float) -> FreshnessStatus:
    """Status for a pipeline lag in seconds."""
    if lag_seconds < FRESH_BELOW_SECONDS:
        return FreshnessStatus.FRESH
    if lag_seconds < STALE_BELOW_SECONDS:
        return FreshnessStatus.STALE
    return FreshnessStatus.DELAYED


def lag_seconds(now: datetime, complete_through: datetime) -> float:
    """now - completeThrough when behind, 0 when caught up."""
    return max(0.0, (now - complete_through).total_seconds())


@attrs.frozen
class FreshnessMarker:
    """Per (org, model): newest event time seen and when its rollup was last written."""

    org_id: uuid.UUID
    model_id: uuid.UUID
    last_event_at: datetime | None
    last_rollup_at: datetime | None

    def merge(self, other: FreshnessMarker) -> FreshnessMarker:
        """Keep the later of each time."""
        return FreshnessMarker(
            self.org_id, self.model_id,
            _later(self.last_event_at, other.last_event_at),
            _later(self.last_rollup_at, other.last_rollup_at),
        )


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


@attrs.frozen
class Freshness:
    """Pipeline freshness at one instant."""

    status: FreshnessStatus
    complete_through: datetime
    lag_seconds: float

    @classmethod
    def at(cls, now: datetime, complete_through: datetime) -> Freshness:
        """Freshness given the pipeline's completeThrough."""
        lag = lag_seconds(now, complete_through)
        return cls(classify(lag), complete_through, lag)


@attrs.frozen
class ModelFreshness:
    """One entry of the /freshness response."""

    model_id: uuid.UUID
    last_event_at: datetime | None
    last_rollup_at: datetime | None
    lag_seconds: float
    status: FreshnessStatus


@attrs.frozen
class FreshnessReport:
    """Org-level freshness plus one entry per model seen for the org."""

    org_id: uuid.UUID
    freshness: Freshness
    entries: tuple[ModelFreshness, ...]
