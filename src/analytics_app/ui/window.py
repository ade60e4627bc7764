"""The zone and range pickers: which window of which zone a page shows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

import attrs

from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.timegrid import Grain, zone, zone_error

RANGES: Mapping[str, str] = {
    "month": "This month", "prev-month": "Previous month", "7d": "Last 7 days",
    "31d": "Last 31 days", "custom": "Custom dates",
}
DEFAULT_RANGE = "month"
MAX_CUSTOM_DAYS = 93
EARLIEST, LATEST = date(1970, 1, 1), date(9998, 12, 31)
HOURLY_UP_TO_DAYS = 7  # reliability charts hourly up to a week, daily beyond


@attrs.frozen
class Window:
    """Zone-local days [first, last] as the instants [start, end) in `tz`."""

    tz: str
    range: str
    first: date
    last: date
    chosen_tz: bool  # False: no `tz` was given, the page asks the browser for its zone

    @property
    def start(self) -> datetime:
        """The first day's local midnight."""
        return _midnight(self.first, self.tz)

    @property
    def end(self) -> datetime:
        """The local midnight after the last day."""
        return _midnight(self.last + timedelta(days=1), self.tz)

    @property
    def month_end(self) -> datetime:
        """The local midnight that ends the month of the first day."""
        following = (self.first.replace(day=28) + timedelta(days=4)).replace(day=1)
        return _midnight(following, self.tz)

    @property
    def days(self) -> int:
        """How many local days the window covers."""
        return (self.last - self.first).days + 1

    @property
    def fine_grain(self) -> Grain:
        """Hourly for windows up to a week, daily beyond: for reliability charts."""
        return Grain.HOUR if self.days <= HOURLY_UP_TO_DAYS else Grain.DAY

    @property
    def label(self) -> str:
        """`2026-12-01 to 2026-12-04 (Asia/Kolkata)`, with an en dash."""
        return f"{self.first.isoformat()} \N{EN DASH} {self.last.isoformat()} ({self.tz})"

    def query(self) -> dict[str, str]:
        """The query parameters that select this window again."""
        params = {"tz": self.tz, "range": self.range}
        if self.range == "custom":
            params.update({"from": self.first.isoformat(), "to": self.last.isoformat()})
        return params


def _midnight(day: date, tz: str) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone(tz)).astimezone(UTC)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _date(params: Mapping[str, str], name: str, errors: list[FieldError]) -> date | None:
    text = params.get(name, "")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        errors.append(FieldError(name, "must be a date YYYY-MM-DD"))
        return None
    if not EARLIEST <= day <= LATEST:
        errors.append(FieldError(name, f"must be between {EARLIEST} and {LATEST}"))
        return None
    return day


def resolve_window(params: Mapping[str, str], now: datetime, default_tz: str = "UTC") -> Window:
    """The window the query parameters select (ValidationFailed naming the bad field)."""
    errors: list[FieldError] = []
    tz = params.get("tz") or default_tz
    reason = zone_error(tz)
    if reason is not None:
        raise ValidationFailed([FieldError("tz", reason)], "invalid zone")
    choice = params.get("range") or DEFAULT_RANGE
    if choice not in RANGES:
        raise ValidationFailed([FieldError("range", "must be one of " + ", ".join(RANGES))],
                               "invalid range")
    today = now.astimezone(zone(tz)).date()
    if choice == "month":
        first, last = _month_start(today), today
    elif choice == "prev-month":
        last = _month_start(today) - timedelta(days=1)
        first = _month_start(last)
    elif choice in ("7d", "31d"):
        first, last = today - timedelta(days=int(choice[:-1]) - 1), today
    else:
        first_day, last_day = _date(params, "from", errors), _date(params, "to", errors)
        if first_day is not None and last_day is not None:
            if last_day < first_day:
                errors.append(FieldError("to", "must be on or after from"))
            elif (last_day - first_day).days + 1 > MAX_CUSTOM_DAYS:
                errors.append(FieldError("to", f"at most {MAX_CUSTOM_DAYS} days after from"))
        if errors or first_day is None or last_day is None:
            raise ValidationFailed(errors, "invalid dates")
        first, last = first_day, last_day
    return Window(tz, choice, first, last, chosen_tz=bool(params.get("tz")))
