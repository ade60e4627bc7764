"""Column types that read and write the same Python values on PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


def to_micros(value: datetime) -> int:
    """Microseconds since the Unix epoch of an aware instant (exact integer arithmetic)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return (value - EPOCH) // _MICRO


def from_micros(value: int) -> datetime:
    """Inverse of `to_micros`: an aware UTC datetime."""
    return EPOCH + value * _MICRO


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC instants: `timestamptz` on PostgreSQL, integer microseconds on SQLite.

    Integers on SQLite keep comparisons, ordering and `max()` exact and fast; naive datetimes
    are refused on write so no local-time value can slip in.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return to_micros(value)
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("datetime must be timezone-aware")
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return from_micros(int(value))
        result: datetime = value.astimezone(UTC)
        return result


class IntList(TypeDecorator[list[int]]):
    """A list of integers: a native array on PostgreSQL, comma-separated text on SQLite."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, big: bool = False) -> None:
        super().__init__()
        self.big = big

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            item: TypeEngine[int] = sa.BigInteger() if self.big else sa.Integer()
            return dialect.type_descriptor(postgresql.ARRAY(item))
        return dialect.type_descriptor(sa.Text())

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name == "postgresql":
            return None
        return encode_int_list

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any] | None:
        if dialect.name == "postgresql":
            return None
        return decode_int_list


def encode_int_list(values: list[int] | None) -> str | None:
    """SQLite text form of an integer list."""
    return None if values is None else ",".join(map(str, values))


def decode_int_list(text: str | None) -> list[int] | None:
    """Inverse of `encode_int_list`."""
    if text is None:
        return None
    return [int(v) for v in text.split(",")] if text else []


def json_type() -> TypeEngine[Any]:
    """JSON: `jsonb` on PostgreSQL, JSON text on SQLite."""
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def big_id() -> TypeEngine[int]:
    """An auto-incrementing surrogate key (SQLite only auto-increments INTEGER PRIMARY KEY)."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def c_text() -> TypeEngine[str]:
    """Text compared by code point on both engines, as Python compares str (SQLite's default)."""
    return sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
