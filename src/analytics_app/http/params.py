"""Reading query parameters and path segments into typed values, naming every bad field."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TypeVar

from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.event_parsing import parse_time
from analytics_core.timegrid import zone_error

T = TypeVar("T")
QueryParams = Mapping[str, str | list[str]]

# An unencoded "+05:30" offset arrives as " 05:30" after query decoding: put the plus back.
_SPACE_OFFSET = re.compile(r"^(.*\d) (\d{2}:\d{2})$")


def path_uuid(value: str, field: str) -> uuid.UUID:
    """A UUID path segment; 400 naming the field otherwise."""
    try:
        return uuid.UUID(value)
    except ValueError as e:
        raise ValidationFailed([FieldError(field, "must be a UUID")], "invalid path") from e


def parse_instant(value: object) -> datetime:
    """An RFC 3339 date-time with offset (an unencoded '+' in a query string is forgiven)."""
    if isinstance(value, str):
        value = _SPACE_OFFSET.sub(r"\1+\2", value)
    return parse_time(value)


class QueryReader:
    """Collects every field error of a query string, then raises them together in `done()`."""

    def __init__(self, params: QueryParams) -> None:
        self._params = params
        self._read: set[str] = set()
        self.errors: list[FieldError] = []

    def fail(self, field: str, reason: str) -> None:
        """Record one bad field."""
        self.errors.append(FieldError(field, reason))

    def one(self, name: str) -> str | None:
        """A single-valued parameter (None when absent)."""
        self._read.add(name)
        value = self._params.get(name)
        if isinstance(value, list):
            self.fail(name, "must be given at most once")
            return None
        return value

    def many(self, name: str) -> list[str]:
        """Every value of a repeatable parameter."""
        self._read.add(name)
        value = self._params.get(name)
        if value is None:
            return []
        return value if isinstance(value, list) else [value]

    def instant(self, name: str) -> datetime | None:
        """A required RFC 3339 date-time."""
        value = self.one(name)
        if value is None:
            if name not in self._params:
                self.fail(name, "is required")
            return None
        try:
            return parse_instant(value)
        except ValueError as e:
            self.fail(name, str(e))
            return None

    def choice(self, name: str, choices: Mapping[str, T], default: T) -> T:
        """One of a fixed set of values (aliases map to the same value)."""
        value = self.one(name)
        if value is None:
            return default
        if value not in choices:
            self.fail(name, "must be one of " + ", ".join(choices))
            return default
        return choices[value]

    def tz(self, name: str = "tz") -> str:
        """An IANA zone name, default UTC."""
        value = self.one(name)
        if value is None:
            return "UTC"
        reason = zone_error(value)
        if reason is not None:
            self.fail(name, reason)
            return "UTC"
        return value

    def uuids(self, name: str) -> tuple[uuid.UUID, ...]:
        """UUIDs given repeatedly and/or comma-separated."""
        found: list[uuid.UUID] = []
        for value in self.many(name):
            for part in value.split(","):
                try:
                    found.append(uuid.UUID(part.strip()))
                except ValueError:
                    self.fail(name, "must be a UUID (repeat or comma-separate for several)")
                    return ()
        return tuple(dict.fromkeys(found))

    def texts(self, name: str, max_length: int) -> tuple[str, ...]:
        """Strings given repeatedly, each at most `max_length` characters."""
        values = self.many(name)
        if any(not v or len(v) > max_length for v in values):
            self.fail(name, f"must be 1 to {max_length} characters")
            return ()
        return tuple(dict.fromkeys(values))

    def integer(self, name: str, low: int, high: int, default: int) -> int:
        """An integer within [low, high]."""
        value = self.one(name)
        if value is None:
            return default
        if not value.isascii() or not value.isdigit() or len(value) > 9 or not (
            low <= int(value) <= high
        ):
            self.fail(name, f"must be an integer from {low} to {high}")
            return default
        return int(value)

    def flag(self, name: str) -> bool:
        """Present (with no value or a truthy one) means True."""
        value = self.one(name)
        return value is not None and value.lower() not in {"0", "false", "no"}

    def done(self, message: str = "invalid query") -> None:
        """Raise ValidationFailed naming every bad field, if any: a parameter without a name,
        as in `?=1`, and a parameter the route did not read (a misspelt `timezone=` would
        otherwise be ignored silently) are bad fields too."""
        if "" in self._params:
            self.fail("query", "has a parameter without a name")
        for name in sorted(set(self._params) - self._read - {""}):
            self.fail(name, "is not a parameter of this route")
        if self.errors:
            raise ValidationFailed(self.errors, message)
