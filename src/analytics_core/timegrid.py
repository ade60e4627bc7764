"""15-minute UTC base buckets and their merges into hour/day/month in any IANA zone (SPEC §3)."""

from __future__ import annotations

import difflib
import zoneinfo
from collections.abc import Hashable
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from analytics_core.errors import FieldError

BUCKET = timedelta(minutes=15)
MAX_ZONE_NAME = 64
_BUCKET_SECONDS = 900


class Grain(StrEnum):
    """Display grains; every one is a merge of 15-minute base buckets."""

    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


# The instants the API serves (SPEC §11): a year's margin inside datetime's range, so that
# flooring to a local month or day, or stepping to the next period, in any zone (offsets,
# including the local mean times that zones use before 1900, reach ±16 h) never leaves it.
# Windows outside are refused with a field error, never a 5xx.
SERVED_FROM = datetime(2, 1, 1, tzinfo=UTC)
SERVED_UNTIL = datetime(9999, 1, 1, tzinfo=UTC)
_SERVED = f"must be between {SERVED_FROM:%Y-%m-%dT%H:%M:%SZ} and {SERVED_UNTIL:%Y-%m-%dT%H:%M:%SZ}"


def served_window_errors(start: datetime, end: datetime, start_field: str,
                         end_field: str) -> list[FieldError]:
    """Field errors for a window that reaches outside the served instants."""
    return [FieldError(field, _SERVED) for field, when in ((start_field, start), (end_field, end))
            if not SERVED_FROM <= when <= SERVED_UNTIL]


def zone_error(name: object) -> str | None:
    """Why `name` is not an IANA zone this server knows, or None when it is one."""
    if not isinstance(name, str) or not name or len(name) > MAX_ZONE_NAME:
        return "must be an IANA time zone name"
    try:
        _zone(name)
    except ValueError:
        return f"unknown IANA time zone {name!r}{_suggestion(name)}"
    return None


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def available_zones() -> list[str]:
    """Every IANA zone name this server knows, sorted."""
    return sorted(_zone_names())


def _suggestion(name: str) -> str:
    """`; did you mean 'Asia/Kolkata'?` for a near miss (case, a typo), else nothing."""
    if len(name) > MAX_ZONE_NAME:
        return ""
    names = _zone_names()
    by_fold = {n.casefold(): n for n in names}
    close = ([by_fold[name.casefold()]] if name.casefold() in by_fold
             else difflib.get_close_matches(name, names, n=3, cutoff=0.75))
    if not close:
        return ""
    return f"; did you mean {' or '.join(repr(c) for c in sorted(close))}?"


def zone(name: str) -> tzinfo:
    """Resolve an IANA zone name; raises ValueError for unknown or malformed names."""
    return _zone(name)


@lru_cache(maxsize=512)
def _zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as e:
        raise ValueError(f"unknown time zone {name!r}") from e


def floor_bucket(when: datetime) -> datetime:
    """Start (UTC) of the 15-minute bucket holding an aware instant."""
    ts = int(when.timestamp() // _BUCKET_SECONDS) * _BUCKET_SECONDS
    return datetime.fromtimestamp(ts, UTC)


def utc_day_start(when: datetime) -> datetime:
    """Start (UTC midnight) of the UTC day holding an aware instant."""
    return when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def ceil_bucket(when: datetime) -> datetime:
    """Smallest bucket boundary at or after an aware instant."""
    start = floor_bucket(when)
    return start if start == when else start + BUCKET


def grain_label(bucket_start: datetime, grain: Grain, tz: tzinfo) -> Hashable:
    """Identity of the zone-local grain period that holds a base bucket.

    Hours carry the UTC offset so that the repeated hour of a DST fall-back stays two hours.
    """
    local = bucket_start.astimezone(tz)
    if grain is Grain.HOUR:
        return (local.year, local.month, local.day, local.hour, local.utcoffset())
    if grain is Grain.DAY:
        return (local.year, local.month, local.day)
    return (local.year, local.month)


def period_start(bucket_start: datetime, grain: Grain, tz: tzinfo) -> datetime:
    """First instant (UTC) of the zone-local grain period holding a base bucket.

    Found by walking back over 15-minute boundaries while the label stays the same, so it is
    exact across DST gaps, midnight transitions and :30/:45 offsets.
    """
    label = grain_label(bucket_start, grain, tz)
    local = bucket_start.astimezone(tz)
    guess = _naive_floor(local, grain)
    # Jump close to the start, then settle on the exact boundary.
    offset = local.utcoffset() or timedelta(0)
    candidate = floor_bucket((guess - offset).replace(tzinfo=UTC))
    candidate = min(candidate, bucket_start)
    while grain_label(candidate, grain, tz) != label:
        candidate += BUCKET
    while grain_label(candidate - BUCKET, grain, tz) == label:
        candidate -= BUCKET
    return candidate


def period_end(start: datetime, grain: Grain, tz: tzinfo) -> datetime:
    """First instant (UTC) after the period that starts at `start`."""
    label = grain_label(start, grain, tz)
    # Hours step from one bucket: zones such as Lord Howe and Chatham have 30- and 15-minute
    # hours at their DST changes. No real day is shorter than 20 h, no month than 27 days.
    step = {Grain.HOUR: BUCKET, Grain.DAY: timedelta(hours=20),
            Grain.MONTH: timedelta(days=27)}[grain]
    candidate = start + step
    while grain_label(candidate, grain, tz) == label:
        candidate += BUCKET
    return candidate


def day_starts(start: datetime, end: datetime, tz: tzinfo) -> list[datetime]:
    """The instants (UTC) where a local day of `tz` starts, start <= instant <= end; exact
    across DST changes and :30/:45 offsets (from `period_start` and `period_end`)."""
    if end < start:
        return []
    first = period_start(ceil_bucket(start), Grain.DAY, tz)
    if first < start:
        first = period_end(first, Grain.DAY, tz)
    out = []
    while first <= end:
        out.append(first)
        first = period_end(first, Grain.DAY, tz)
    return out


def _naive_floor(local: datetime, grain: Grain) -> datetime:
    naive = local.replace(tzinfo=None)
    if grain is Grain.HOUR:
        return naive.replace(minute=0, second=0, microsecond=0)
    if grain is Grain.DAY:
        return naive.replace(hour=0, minute=0, second=0, microsecond=0)
    return naive.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class PeriodIndex:
    """Memoises the period start of each base bucket for one grain and zone."""

    def __init__(self, grain: Grain, tz: tzinfo) -> None:
        self.grain = grain
        self.tz = tz
        self._starts: dict[datetime, datetime] = {}

    def start_of(self, bucket_start: datetime) -> datetime:
        """Period start (UTC) for a base bucket start."""
        found = self._starts.get(bucket_start)
        if found is None:
            found = period_start(bucket_start, self.grain, self.tz)
            self._starts[bucket_start] = found
        return found

    def local_iso(self, instant: datetime) -> str:
        """RFC 3339 rendering of an instant in the index's zone (Z for UTC)."""
        return isoformat(instant, self.tz)


def isoformat(instant: datetime, tz: tzinfo) -> str:
    """RFC 3339 with offset in the given zone; UTC renders with a trailing Z."""
    text = instant.astimezone(tz).isoformat(timespec="seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") and tz is UTC else text
