"""Translation of SQLAlchemy and driver exceptions into the core error tree."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

import psycopg
import sqlalchemy.exc as sa_exc

from analytics_core.errors import AnalyticsError, Conflict, SchemaNotMigrated, StoreUnavailable

P = ParamSpec("P")
T = TypeVar("T")

_UNIQUE_VIOLATION = "23505"
_UNDEFINED_TABLE = "42P01"
_UNDEFINED_FUNCTION = "42883"
# What a Citus coordinator reports (SQLSTATE XX000 or 08xxx) when it cannot reach a worker node:
# the cluster is partly down, which is an outage to wait out, not a bad request.
_CITUS_NODE_DOWN = (
    "failure on connection marked as essential",
    "connection to the remote node",
    "could not establish any connections to the node",
    "could not connect to the remote node",
)
_MISSING = (
    "database schema is missing or behind (a table or function does not exist); "
    "run `analytics migrate`"
)


def translate(error: BaseException) -> AnalyticsError | None:
    """The core error for a driver or SQLAlchemy error, or None when it is neither."""
    if isinstance(error, AnalyticsError):
        return error
    original = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    if isinstance(error, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return StoreUnavailable(f"database unavailable: {error}")
    if isinstance(original, psycopg.Error):
        return _from_psycopg(original)
    if isinstance(original, sqlite3.Error):
        return _from_sqlite(original)
    if isinstance(error, sa_exc.DBAPIError):
        return StoreUnavailable(f"database error: {type(original).__name__}")
    return None


def _from_psycopg(error: psycopg.Error) -> AnalyticsError:
    state = error.sqlstate
    if state == _UNIQUE_VIOLATION:
        return Conflict("a record with the same key already exists")
    if state == _UNDEFINED_TABLE or (state == _UNDEFINED_FUNCTION and "analytics_" in str(error)):
        return SchemaNotMigrated(_MISSING)
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return StoreUnavailable(f"database unavailable: {_first_line(error)}")
    if (state or "").startswith("08") or any(m in str(error) for m in _CITUS_NODE_DOWN):
        return StoreUnavailable(f"database node unavailable: {_first_line(error)}")
    return AnalyticsError(f"database error {state or ''}: {_first_line(error)}".strip())


def _from_sqlite(error: sqlite3.Error) -> AnalyticsError:
    message = str(error)
    if isinstance(error, sqlite3.IntegrityError) and "UNIQUE" in message.upper():
        return Conflict("a record with the same key already exists")
    if "no such table" in message:
        return SchemaNotMigrated(_MISSING)
    if isinstance(error, sqlite3.OperationalError):
        return StoreUnavailable(f"database unavailable: {message}")
    return AnalyticsError(f"database error: {message}")


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """Re-raise driver errors as core errors (`raise ... from e`)."""
    try:
        yield
    except AnalyticsError:
        raise
    except Exception as e:
        translated = translate(e)
        if translated is None:
            raise
        raise translated from e


def translated(func: Callable[P, T]) -> Callable[P, T]:
    """Decorator form of `translate_errors` for repository methods."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        with translate_errors():
            return func(*args, **kwargs)

    return wrapper
