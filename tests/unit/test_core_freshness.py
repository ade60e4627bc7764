"""Freshness is pipeline lag (SPEC §4): exact thresholds, non-negative lag, marker merges."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import attrs
import pytest
from core_strategies import utc_instants
from hypothesis import given
from hypothesis import strategies as st

from analytics_core.freshness import (
    Freshness,
    FreshnessMarker,
    FreshnessReport,
    FreshnessStatus,
    ModelFreshness,
    classify,
    lag_seconds,
)

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("lag", "status"),
    [
        (0, FreshnessStatus.FRESH),
        (299.999, FreshnessStatus.FRESH),
        (300, FreshnessStatus.STALE),
        (599, FreshnessStatus.STALE),
        (599.999, FreshnessStatus.STALE),
        (600, FreshnessStatus.DELAYED),
        (86_400 * 30, FreshnessStatus.DELAYED),
    ],
)
def test_classify_thresholds_are_exact(lag: float, status: FreshnessStatus) -> None:
    """fresh < 300 s <= stale < 600 s <= delayed."""
    assert classify(lag) is status


@given(utc_instants, utc_instants)
def test_lag_is_never_negative(now: datetime, complete_through: datetime) -> None:
    """Lag is now - completeThrough when behind and 0 when caught up (or ahead)."""
    lag = lag_seconds(now, complete_through)
    assert lag >= 0
    if complete_through < now:
        assert lag == (now - complete_through).total_seconds()
    else:
        assert lag == 0


def test_caught_up_pipeline_is_fresh_with_zero_lag() -> None:
    """completeThrough == now means lag 0 and fresh, however quiet the tenant."""
    freshness = Freshness.at(NOW, NOW)
    assert (freshness.status, freshness.lag_seconds, freshness.complete_through) == (
        FreshnessStatus.FRESH,
        0.0,
        NOW,
    )


def test_behind_pipeline_reports_its_lag_and_status() -> None:
    """Ten minutes behind is delayed with a lag of 600 s."""
    freshness = Freshness.at(NOW, NOW - timedelta(minutes=10))
    assert (freshness.status, freshness.lag_seconds) == (FreshnessStatus.DELAYED, 600.0)


optional_instants = st.none() | utc_instants
markers = st.builds(
    FreshnessMarker,
    org_id=st.just(uuid.UUID(int=1)),
    model_id=st.just(uuid.UUID(int=2)),
    last_event_at=optional_instants,
    last_rollup_at=optional_instants,
)


@given(markers, markers)
def test_marker_merge_keeps_the_later_of_each_time(a: FreshnessMarker, b: FreshnessMarker) -> None:
    """Each time only moves forward; None never replaces a known time."""
    merged = a.merge(b)
    for name in ("last_event_at", "last_rollup_at"):
        known = [t for t in (getattr(a, name), getattr(b, name)) if t is not None]
        assert getattr(merged, name) == (max(known) if known else None)
    assert merged == b.merge(a)


@given(markers, markers, markers)
def test_marker_merge_is_associative(
    a: FreshnessMarker, b: FreshnessMarker, c: FreshnessMarker
) -> None:
    """Grouping of merges does not matter."""
    assert a.merge(b).merge(c) == a.merge(b.merge(c))


@given(markers, utc_instants, utc_instants)
def test_freshness_value_objects_round_trip_through_asdict_and_evolve(
    marker: FreshnessMarker, now: datetime, complete_through: datetime
) -> None:
    """FreshnessMarker, Freshness, ModelFreshness and FreshnessReport rebuild unchanged."""
    freshness = Freshness.at(now, complete_through)
    entry = ModelFreshness(
        marker.model_id,
        marker.last_event_at,
        marker.last_rollup_at,
        freshness.lag_seconds,
        freshness.status,
    )
    report = FreshnessReport(marker.org_id, freshness, (entry,))
    for value in (marker, freshness, entry, report):
        assert type(value)(**attrs.asdict(value, recurse=False)) == value
        assert attrs.evolve(value) == value
