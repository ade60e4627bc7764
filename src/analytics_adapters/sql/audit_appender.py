"""Audit entries of authorization decisions on PostgreSQL in one round trip.

Every authenticated request writes its audit entry durably before it is answered (SPEC §6).
Through a unit of work that costs a pool checkout with its liveness ping, `BEGIN`, the insert
and `COMMIT`: four round trips, most of a cached read's time. `PgAuditAppender` holds
connections of the engine's pool in autocommit mode instead and sends the whole group of
entries (`access.AuditWriter` shares one write between concurrent requests) as one statement
(`INSERT ... SELECT FROM unnest(...)`, or VALUES for a lone entry): one round trip, committed
(all or none) when it returns.

- Concurrent callers (the AuditWriter's writers) each take a held connection of their own: as
  many are held as callers were recently concurrent.
- A held connection idle longer than `idle_check` seconds goes back to the pool (at the next
  append, or at `close`), and the next group checks one out, which the pool pings: a
  connection that died while nobody wrote (a server restart, a failover) is never used. One
  held longer than `max_hold` seconds in all goes back too, so that a steady stream of
  requests still lets the pool recycle its connections.
- A statement that loses its connection raises StoreUnavailable and discards that connection
  and every other one held and not in use (a restart ends them all; handing them out again
  would fail one group each). Whether a statement that lost its connection committed cannot
  be known, so it is never retried: the request answers 503, as on any outage.
- A statement the server refuses on a sound connection (bad data) fails its group only; the
  connection, in autocommit with nothing left open, stays held.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import attrs
import psycopg
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
MAX_HOLD_SECONDS = 60.0


class PgAuditAppender:
    """ports.AuditAppender on PostgreSQL (see the module docstring)."""

    def __init__(self, engine: sa.Engine, *, idle_check: float = IDLE_CHECK_SECONDS,
                 max_hold: float = MAX_HOLD_SECONDS) -> None:
        self._engine = engine
        self._idle_check = idle_check
        self._max_hold = max_hold
        self._lock = threading.Lock()
        self._free: list[_Held] = []  # held connections not in use, the last used last
        self._closed = False
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
            except psycopg.Error:
                if held.driver.broken or held.driver.closed:
                    self._discard_all(held)
                else:  # refused, nothing open (autocommit): still sound
                    self._put_back(held)
                raise
            except BaseException:  # interrupted mid-statement: its state is unknown
                held.discard()
                raise
            self._put_back(held)

    @property
    def backend_pids(self) -> list[int]:
        """The server processes of the held connections not in use, the last used last."""
        with self._lock:
            return [int(h.driver.info.backend_pid) for h in self._free]

    @property
    def backend_pid(self) -> int | None:
        """The server process of the connection used last (None when none is held)."""
        pids = self.backend_pids
        return pids[-1] if pids else None

    def close(self) -> None:
        """Give the held connections back to the pool; a group still in flight gives its
        connection back when it ends."""
        with self._lock:
            self._closed = True
            free, self._free = self._free, []
        for held in free:
            held.release()

    def _take(self) -> _Held:
        with self._lock:
            held = self._free.pop() if self._free else None
        if held is not None and self._expired(held, time.monotonic()):
            held.release()  # check out again, so that the pool pings (or recycles) it
            held = None
        if held is None:
            held = _Held.checkout(self._engine)
            with self._lock:
                self.checkouts += 1
        return held

    def _expired(self, held: _Held, now: float) -> bool:
        return (now - held.last_used > self._idle_check
                or now - held.checked_out > self._max_hold)

    def _put_back(self, held: _Held) -> None:
        held.last_used = now = time.monotonic()
        with self._lock:
            if self._closed:
                stale = [held]
            else:
                self._free.append(held)
                stale = [h for h in self._free if self._expired(h, now)]
                self._free = [h for h in self._free if not self._expired(h, now)]
        for old in stale:  # held by a burst that is over, or closed: back to the pool
            old.release()

    def _discard_all(self, failed: _Held) -> None:
        with self._lock:
            free, self._free = self._free, []
        for held in [failed, *free]:
            held.discard()


@attrs.define
class _Held:
    """A pool connection checked out and switched to autocommit."""

    proxy: Any  # the pool's connection (PoolProxiedConnection)
    driver: PgConnection[Any]
    checked_out: float
    last_used: float

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
        now = time.monotonic()
        return cls(proxy, driver, now, now)

    def release(self) -> None:
        """Back to the pool, as the pool hands connections out."""
        try:
            self.driver.autocommit = False
        except Exception:  # a broken connection: the pool must not hand it out again
            self.proxy.invalidate()
        self.proxy.close()

    def discard(self) -> None:
        """Closed for good (its connection was lost)."""
        self.proxy.invalidate()
        self.proxy.close()


def _columns(entries: Sequence[AuditEntry]) -> tuple[list[Any], ...]:
    """The entries as one list per inserted column."""
    return tuple(list(column) for column in zip(*map(audit_values, entries), strict=True))
