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
- Callers are serialised by a lock (the AuditWriter already writes one group at a time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from psycopg import Connection as PgConnection

from analytics_adapters.sql.errors import translate_errors
from analytics_core.records import AuditEntry

_COLUMNS = """INSERT INTO audit_log (audit_id, org_id, at, actor, actor_org, action, resource,
                       outcome, reason, request_id, cross_org)"""
_INSERT_ONE = _COLUMNS + """
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"""  # a lone request: scalars dump faster
_INSERT_MANY = _COLUMNS + """
SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::timestamptz[], %s::text[], %s::uuid[],
                     %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::bool[])"""

IDLE_CHECK_SECONDS = 1.0


class PgAuditAppender:
    """ports.AuditAppender on PostgreSQL (see the module docstring)."""

    def __init__(self, engine: sa.Engine, *, idle_check: float = IDLE_CHECK_SECONDS) -> None:
        self._engine = engine
        self._idle_check = idle_check
        self._lock = threading.Lock()
        self._held: Any = None  # a checked-out pool connection (PoolProxiedConnection)
        self._last_used = 0.0
        self.checkouts = 0  # connections checked out so far (tests read it)

    def append(self, entries: Sequence[AuditEntry]) -> None:
        """Commit every entry in one autocommitted statement (nothing for no entries)."""
        if not entries:
            return
        if len(entries) == 1:
            statement, params = _INSERT_ONE, _row(entries[0])
        else:
            statement, params = _INSERT_MANY, _columns(entries)
        with self._lock, translate_errors():
            driver = self._connection()
            try:
                with driver.cursor() as cur:
                    cur.execute(statement, params)
            except BaseException:
                self._discard()
                raise
            self._last_used = time.monotonic()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the held connection (None when none is held)."""
        held = self._held
        return None if held is None else int(held.driver_connection.info.backend_pid)

    def close(self) -> None:
        """Give the held connection back to the pool."""
        with self._lock:
            self._release()

    def _connection(self) -> PgConnection[Any]:
        if self._held is not None and time.monotonic() - self._last_used > self._idle_check:
            self._release()  # idle: check out again, so that the pool pings it
        if self._held is None:
            held = self._engine.raw_connection()
            self.checkouts += 1
            driver = held.driver_connection
            assert isinstance(driver, PgConnection)
            try:
                driver.autocommit = True
            except BaseException:
                held.invalidate()
                held.close()
                raise
            self._held = held
        driver = self._held.driver_connection
        assert isinstance(driver, PgConnection)
        return driver

    def _release(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        try:
            held.driver_connection.autocommit = False
        except Exception:  # a broken connection: the pool must not hand it out again
            held.invalidate()
        held.close()

    def _discard(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.invalidate()
            held.close()


def _row(e: AuditEntry) -> tuple[Any, ...]:
    """One entry's inserted values."""
    return (e.audit_id, e.org_id, e.at, e.actor, e.actor_org, e.action, e.resource,
            e.outcome.value, e.reason, e.request_id, e.cross_org)


def _columns(entries: Sequence[AuditEntry]) -> tuple[list[Any], ...]:
    """The entries as one list per inserted column."""
    return (
        [e.audit_id for e in entries], [e.org_id for e in entries], [e.at for e in entries],
        [e.actor for e in entries], [e.actor_org for e in entries],
        [e.action for e in entries], [e.resource for e in entries],
        [e.outcome.value for e in entries], [e.reason for e in entries],
        [e.request_id for e in entries], [e.cross_org for e in entries],
    )
