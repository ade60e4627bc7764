"""The 15-minute UTC grid and its merges into zone-local hours, days and months (SPEC §3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from core_strategies import utc_instants
from hypothesis import given
from hypothesis import strategies as st

from analytics_core.timegrid import (
    BUCKET,
    Grain,
    PeriodIndex,
    ceil_bucket,
    floor_bucket,
    grain_label,
    isoformat,
    period_end,
    period_start,
    zone,
)

ZONES = [
    "UTC",
    "America/New_York",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "America/St_Johns",
    "Pacific/Chatham",
    "Europe/London",
    "America/Santiago",
]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A UTC datetime."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def period(instant: datetime, grain: Grain, zone_name: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC of the zone-local period holding an instant."""
    tz = zone(zone_name)
    start = period_start(floor_bucket(instant), grain, tz)
    return start, period_end(start, grain, tz)


def hour_starts(start: datetime, end: datetime, zone_name: str) -> list[datetime]:
    """Distinct hour-period starts of every base bucket in [start, end)."""
    tz = zone(zone_name)
    found: list[datetime] = []
    bucket = start
    while bucket < end:
        hour = period_start(bucket, Grain.HOUR, tz)
        if hour not in found:
            found.append(hour)
        bucket += BUCKET
    return found


PERIODS = [
    # zone, instant inside, grain, expected start, expected end
    ("UTC", utc(2024, 3, 10, 12, 7), Grain.DAY, utc(2024, 3, 10), utc(2024, 3, 11)),
    ("UTC", utc(2024, 2, 29, 23, 59), Grain.MONTH, utc(2024, 2, 1), utc(2024, 3, 1)),
    ("UTC", utc(2024, 2, 29, 23, 59), Grain.HOUR, utc(2024, 2, 29, 23), utc(2024, 3, 1)),
    # New York spring forward: a 23-hour day.
    (
        "America/New_York",
        utc(2024, 3, 10, 12),
        Grain.DAY,
        utc(2024, 3, 10, 5),
        utc(2024, 3, 11, 4),
    ),
    # New York fall back: a 25-hour day.
    ("America/New_York", utc(2024, 11, 3, 12), Grain.DAY, utc(2024, 11, 3, 4), utc(2024, 11, 4, 5)),
    # The repeated 01:00 hour is two hours: 01:00 EDT (05:00Z) and 01:00 EST (06:00Z).
    (
        "America/New_York",
        utc(2024, 11, 3, 5, 30),
        Grain.HOUR,
        utc(2024, 11, 3, 5),
        utc(2024, 11, 3, 6),
    ),
    (
        "America/New_York",
        utc(2024, 11, 3, 6, 30),
        Grain.HOUR,
        utc(2024, 11, 3, 6),
        utc(2024, 11, 3, 7),
    ),
    ("America/New_York", utc(2024, 3, 20), Grain.MONTH, utc(2024, 3, 1, 5), utc(2024, 4, 1, 4)),
    (
        "Asia/Kolkata",
        utc(2024, 6, 1, 3),
        Grain.DAY,
        utc(2024, 5, 31, 18, 30),
        utc(2024, 6, 1, 18, 30),
    ),
    (
        "Asia/Kolkata",
        utc(2024, 6, 1, 3),
        Grain.HOUR,
        utc(2024, 6, 1, 2, 30),
        utc(2024, 6, 1, 3, 30),
    ),
    (
        "Asia/Kolkata",
        utc(2024, 6, 9),
        Grain.MONTH,
        utc(2024, 5, 31, 18, 30),
        utc(2024, 6, 30, 18, 30),
    ),
    (
        "Asia/Kathmandu",
        utc(2024, 6, 1, 3),
        Grain.DAY,
        utc(2024, 5, 31, 18, 15),
        utc(2024, 6, 1, 18, 15),
    ),
    (
        "Asia/Kathmandu",
        utc(2024, 6, 1, 3),
        Grain.HOUR,
        utc(2024, 6, 1, 2, 15),
        utc(2024, 6, 1, 3, 15),
    ),
    # Lord Howe shifts by 30 minutes: the repeated 01:30-02:00 and the shortened 02:30-03:00
    # are 30-minute hours; their days last 24.5 h and 23.5 h.
    (
        "Australia/Lord_Howe",
        utc(2024, 4, 6, 15, 15),
        Grain.HOUR,
        utc(2024, 4, 6, 15),
        utc(2024, 4, 6, 15, 30),
    ),
    (
        "Australia/Lord_Howe",
        utc(2024, 4, 7),
        Grain.DAY,
        utc(2024, 4, 6, 13),
        utc(2024, 4, 7, 13, 30),
    ),
    (
        "Australia/Lord_Howe",
        utc(2024, 10, 5, 15, 45),
        Grain.HOUR,
        utc(2024, 10, 5, 15, 30),
        utc(2024, 10, 5, 16),
    ),
    (
        "Australia/Lord_Howe",
        utc(2024, 10, 6),
        Grain.DAY,
        utc(2024, 10, 5, 13, 30),
        utc(2024, 10, 6, 13),
    ),
    # Chatham (+12:45/+13:45): the hours around its DST changes last 45 and 15 minutes.
    (
        "Pacific/Chatham",
        utc(2024, 4, 6, 14, 5),
        Grain.HOUR,
        utc(2024, 4, 6, 14),
        utc(2024, 4, 6, 14, 15),
    ),
    (
        "Pacific/Chatham",
        utc(2024, 4, 6, 13, 30),
        Grain.HOUR,
        utc(2024, 4, 6, 13, 15),
        utc(2024, 4, 6, 14),
    ),
    (
        "Pacific/Chatham",
        utc(2024, 9, 28, 14, 10),
        Grain.HOUR,
        utc(2024, 9, 28, 14),
        utc(2024, 9, 28, 14, 15),
    ),
    (
        "America/St_Johns",
        utc(2024, 1, 15, 12),
        Grain.DAY,
        utc(2024, 1, 15, 3, 30),
        utc(2024, 1, 16, 3, 30),
    ),
]


@pytest.mark.parametrize(
    ("zone_name", "instant", "grain", "start", "end"),
    PERIODS,
    ids=[f"{z}-{g}-{i:%Y%m%dT%H%M}" for z, i, g, _, _ in PERIODS],
)
def test_period_bounds_are_exact(
    zone_name: str, instant: datetime, grain: Grain, start: datetime, end: datetime
) -> None:
    """The zone-local period holding an instant has the exact UTC start and end."""
    assert period(instant, grain, zone_name) == (start, end)


def test_new_york_spring_forward_day_has_23_hour_periods() -> None:
    """The day clocks jump from 02:00 to 03:00 lasts 23 h and holds 23 hours."""
    start, end = period(utc(2024, 3, 10, 12), Grain.DAY, "America/New_York")
    assert end - start == timedelta(hours=23)
    assert len(hour_starts(start, end, "America/New_York")) == 23


def test_new_york_fall_back_day_has_25_hour_periods() -> None:
    """The day 01:00 repeats lasts 25 h and holds 25 hours (both 01:00s kept apart)."""
    start, end = period(utc(2024, 11, 3, 12), Grain.DAY, "America/New_York")
    assert end - start == timedelta(hours=25)
    hours = hour_starts(start, end, "America/New_York")
    assert len(hours) == 25
    assert utc(2024, 11, 3, 5) in hours
    assert utc(2024, 11, 3, 6) in hours


def test_repeated_hour_labels_differ_by_offset() -> None:
    """01:00 EDT and 01:00 EST have different hour labels but the same day label."""
    tz = zone("America/New_York")
    first, second = utc(2024, 11, 3, 5), utc(2024, 11, 3, 6)
    assert grain_label(first, Grain.HOUR, tz) != grain_label(second, Grain.HOUR, tz)
    assert grain_label(first, Grain.DAY, tz) == grain_label(second, Grain.DAY, tz)


@given(
    utc_instants,
    st.sampled_from(ZONES),
    st.sampled_from([Grain.HOUR, Grain.DAY]),
)
def test_period_contains_its_bucket_and_only_buckets_with_its_label(
    instant: datetime, zone_name: str, grain: Grain
) -> None:
    """start <= bucket < end, start on the 15-minute grid, one label inside, others just outside."""
    tz = zone(zone_name)
    bucket = floor_bucket(instant)
    start = period_start(bucket, grain, tz)
    end = period_end(start, grain, tz)
    label = grain_label(bucket, grain, tz)
    assert start <= bucket < end
    assert start.timestamp() % 900 == 0
    assert end.timestamp() % 900 == 0
    cursor = start
    while cursor < end:
        assert grain_label(cursor, grain, tz) == label
        cursor += BUCKET
    assert grain_label(start - BUCKET, grain, tz) != label
    assert grain_label(end, grain, tz) != label


@given(utc_instants, st.sampled_from(ZONES))
def test_month_period_contains_its_bucket_with_the_label_at_both_edges(
    instant: datetime, zone_name: str
) -> None:
    """Month periods: same bounds rules, checked at the edges (a month holds ~3000 buckets)."""
    tz = zone(zone_name)
    bucket = floor_bucket(instant)
    start = period_start(bucket, Grain.MONTH, tz)
    end = period_end(start, Grain.MONTH, tz)
    label = grain_label(bucket, Grain.MONTH, tz)
    assert start <= bucket < end
    assert start.timestamp() % 900 == 0
    for inside in (start, end - BUCKET):
        assert grain_label(inside, Grain.MONTH, tz) == label
    for outside in (start - BUCKET, end):
        assert grain_label(outside, Grain.MONTH, tz) != label
    assert start.astimezone(tz).day == 1


@given(utc_instants, st.sampled_from(ZONES), st.sampled_from(list(Grain)))
def test_consecutive_periods_tile_time_without_gaps(
    instant: datetime, zone_name: str, grain: Grain
) -> None:
    """The period after one starts exactly where the first ends."""
    tz = zone(zone_name)
    start = period_start(floor_bucket(instant), grain, tz)
    end = period_end(start, grain, tz)
    assert period_start(end, grain, tz) == end
    assert period_end(period_start(start - BUCKET, grain, tz), grain, tz) == start


@given(utc_instants)
def test_floor_and_ceil_bucket_bracket_the_instant(instant: datetime) -> None:
    """floor <= t <= ceil, both on the grid, and at most one bucket apart."""
    low, high = floor_bucket(instant), ceil_bucket(instant)
    assert low <= instant < low + BUCKET
    assert low <= instant <= high <= low + BUCKET
    assert low.timestamp() % 900 == 0
    assert high.timestamp() % 900 == 0
    assert (high == low) == (instant == low)


def test_floor_bucket_of_an_offset_instant_is_utc() -> None:
    """An instant with an offset floors to the same UTC bucket as its UTC spelling."""
    local = datetime(2024, 6, 1, 9, 59, tzinfo=timezone(timedelta(hours=5, minutes=45)))
    assert floor_bucket(local) == utc(2024, 6, 1, 4, 0)
    assert floor_bucket(local).tzinfo is UTC


@given(utc_instants, st.sampled_from(ZONES), st.sampled_from(list(Grain)))
def test_period_index_memoises_period_start(
    instant: datetime, zone_name: str, grain: Grain
) -> None:
    """PeriodIndex.start_of answers exactly what period_start does."""
    tz = zone(zone_name)
    index = PeriodIndex(grain, tz)
    bucket = floor_bucket(instant)
    assert index.start_of(bucket) == period_start(bucket, grain, tz) == index.start_of(bucket)


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "../../etc/passwd", "UTC+1", "new york"])
def test_unknown_zone_is_a_value_error(name: str) -> None:
    """Unknown or malformed zone names raise ValueError."""
    with pytest.raises(ValueError):
        zone(name)


def test_utc_in_any_case_is_the_utc_singleton() -> None:
    """'UTC' and 'utc' resolve to datetime.UTC."""
    assert zone("UTC") is UTC
    assert zone("utc") is UTC


def test_isoformat_uses_z_for_utc_and_offsets_elsewhere() -> None:
    """Instants render in the requested zone: Z for UTC, a numeric offset otherwise."""
    instant = utc(2024, 6, 1, 0, 0)
    assert isoformat(instant, UTC) == "2024-06-01T00:00:00Z"
    assert isoformat(instant, zone("Asia/Kathmandu")) == "2024-06-01T05:45:00+05:45"
    assert PeriodIndex(Grain.DAY, zone("America/St_Johns")).local_iso(instant) == (
        "2024-05-31T21:30:00-02:30"
    )
