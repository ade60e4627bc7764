"""Audit entries of authorization decisions on PostgreSQL in one round trip.

Every authenticated request writes its audit entry durably before it is answered (SPEC §6).
Through a unit of work that costs a pool checkout with its liveness ping, `BEGIN`, the insert
and `COMMIT`: four round trips, most of a cached read's time. `PgAuditAppender` holds one
connection of the engine's pool in autocommit mode instead and sends the whole group of
entries (`access.AuditWriter` shares one write between concurrent requests) as one statement
(`INSERT ... SELECT FROM unnest(...)`, or VALUES for a lone entry): one round trip, committed
(all or none) when it returns.

- The held connection is given back to the pool and a fresh one checked out (the pool pings it)
  when it has been idle longer than `idle_check` seconds, so a connection that died while
  nobody wrote (a server restart, a failover) is never used.
- A statement that fails discards the connection and raises StoreUnavailable: whether a
  statement that lost its connection committed cannot be known, so it is never retried (the
  request answers 503, as on any outage); the next group checks out a new connection.
- Concurrent callers (the AuditWriter's writers) each take a held connection of their own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from psycopg import Connection as PgConnection
from sqlalchemy.dialects import postgresql

from analytics_adapters.sql.convert import AUDIT_COLUMNS, audit_values
from analytics_adapters.sql.errors import translate_errors
from analytics_adapters.sql.schema import audit_log
from analytics_core.records import AuditEntry

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]
_INTO = "INSERT INTO audit_log (@columns)".replace("@columns", ", ".join(AUDIT_COLUMNS))
_INSERT_ONE = _INTO + " VALUES (@values)".replace(  # a lone request: scalars dump faster
    "@values", ", ".join("%s" for _ in AUDIT_COLUMNS))
_INSERT_MANY = _INTO + " SELECT * FROM unnest(@arrays)".replace("@arrays", ", ".join(
    f"%s::{audit_log.c[c].type.compile(dialect=_PG)}[]" for c in AUDIT_COLUMNS))

IDLE_CHECK_SECONDS = 1.0


class PgAuditAppender:
    """ports.AuditAppender on PostgreSQL (see the module docstring). Concurrent callers each
    use their own held connection: as many are held as callers were recently concurrent (the
    AuditWriter's `writers` at most); one idle past `idle_check` goes back to the pool."""

    def __init__(self, engine: sa.Engine, *, idle_check: float = IDLE_CHECK_SECONDS) -> None:
        self._engine = engine
        self._idle_check = idle_check
        self._lock = threading.Lock()
        self._free: list[_Held] = []  # held connections not in use, the last used last
        self.checkouts = 0  # connections checked out so far (tests read it)

    def append(self, entries: Sequence[AuditEntry]) -> None:
        """Commit every entry in one autocommitted statement (nothing for no entries)."""
        if not entries:
            return
        if len(entries) == 1:
            statement, params = _INSERT_ONE, audit_values(entries[0])
        else:
            statement, params = _INSERT_MANY, _columns(entries)
        with translate_errors():
            held = self._take()
            try:
                with held.driver.cursor() as cur:
                    cur.execute(statement, params)
            except BaseException:
                held.discard()
                raise
            held.last_used = now = time.monotonic()
            with self._lock:
                self._free.append(held)
                stale = [h for h in self._free if now - h.last_used > self._idle_check]
                self._free = [h for h in self._free if now - h.last_used <= self._idle_check]
            for old in stale:  # held by a burst that is over: back to the pool
                old.release()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the connection used last (None when none is held)."""
        with self._lock:
            return int(self._free[-1].driver.info.backend_pid) if self._free else None

    def close(self) -> None:
        """Give the held connections back to the pool."""
        with self._lock:
            free, self._free = self._free, []
        for held in free:
            held.release()

    def _take(self) -> _Held:
        with self._lock:
            held = self._free.pop() if self._free else None
        if held is not None and time.monotonic() - held.last_used > self._idle_check:
            held.release()  # idle: check out again, so that the pool pings it
            held = None
        if held is None:
            held = _Held.checkout(self._engine)
            with self._lock:
                self.checkouts += 1
        return held


@attrs.define
class _Held:
    """A pool connection checked out and switched to autocommit."""

    proxy: Any  # the pool's connection (PoolProxiedConnection)
    driver: PgConnection[Any]
    last_used: float = 0.0

    @classmethod
    def checkout(cls, engine: sa.Engine) -> _Held:
        proxy = engine.raw_connection()  # the pool pings it first
        driver = proxy.driver_connection
        assert isinstance(driver, PgConnection)
        try:
            driver.autocommit = True
        except BaseException:
            proxy.invalidate()
            proxy.close()
            raise
        return cls(proxy, driver, time.monotonic())

    def release(self) -> None:
        """Back to the pool, as the pool hands connections out."""
        try:
            self.driver.autocommit = False
        except Exception:  # a broken connection: the pool must not hand it out again
            self.proxy.invalidate()
        self.proxy.close()

    def discard(self) -> None:
        """Closed for good (its statement failed)."""
        self.proxy.invalidate()
        self.proxy.close()


def _columns(entries: Sequence[AuditEntry]) -> tuple[list[Any], ...]:
    """The entries as one list per inserted column."""
    return tuple(list(column) for column in zip(*map(audit_values, entries), strict=True))
