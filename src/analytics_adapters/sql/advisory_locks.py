"""Stream partition ownership through PostgreSQL advisory locks (brokers without single active
consumer).

Each consumer process holds one dedicated connection. Owning a partition means holding the
session-level advisory lock whose 64-bit key is derived from (group, stream). A process that
dies loses its connection and PostgreSQL releases its locks at once; peers polling for free
partitions take them over. Every process also holds a "member" lock so peers can count each
other in `pg_locks` and share the partitions fairly.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random

import psycopg

from analytics_core.errors import StoreUnavailable

log = logging.getLogger(__name__)
_MEMBERS_SQL = """
SELECT count(DISTINCT pid) FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 2 AND classid = %s::bigint::oid
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


def partition_lock_key(group: str, stream: str) -> int:
    """Signed 64-bit advisory-lock key of one partition stream for one consumer group."""
    digest = hashlib.blake2b(f"analytics-stream\0{group}\0{stream}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


def member_namespace(group: str) -> int:
    """The first int4 key of the member locks of a group (0 .. 2**31-1)."""
    digest = hashlib.blake2b(f"analytics-members\0{group}".encode(), digest_size=4)
    return int.from_bytes(digest.digest(), "big") & 0x7FFFFFFF


def libpq_url(url: str) -> str:
    """A libpq URL from a SQLAlchemy one (`postgresql+psycopg://` -> `postgresql://`)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}" if sep else url


class AdvisoryLockOwnership:
    """Which partitions this process owns, coordinated with its peers through PostgreSQL."""

    def __init__(self, database_url: str, group: str, *, connect_timeout: int = 5) -> None:
        self._url = libpq_url(database_url)
        self.group = group
        self._connect_timeout = connect_timeout
        self._conn: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._held: set[str] = set()
        self._member = random.randrange(1, 2**31)  # noqa: S311  an id, not a secret

    @property
    def held(self) -> frozenset[str]:
        """Partitions owned right now (empty after the connection was lost)."""
        return frozenset(self._held)

    async def connect(self) -> None:
        """Open the lock connection and join the group; raises StoreUnavailable."""
        if self._conn is not None and not self._conn.closed:
            return
        self._held.clear()
        try:
            self._conn = await psycopg.AsyncConnection.connect(
                self._url, autocommit=True, connect_timeout=self._connect_timeout,
                application_name=f"analytics-consumer:{self.group}",
                keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3,
            )
            await self._execute("SELECT pg_advisory_lock(%s, %s)",
                                (member_namespace(self.group), self._member))
        except psycopg.Error as e:
            await self._drop()
            raise StoreUnavailable(f"ownership database unavailable: {e}") from e

    async def alive(self) -> bool:
        """Whether the lock connection still works; when it does not, every lock is gone."""
        if self._conn is None or self._conn.closed:
            self._held.clear()
            return False
        try:
            await self._execute("SELECT 1")
        except psycopg.Error:
            await self._drop()
            return False
        return True

    async def members(self) -> int:
        """Consumer processes of this group currently connected (this one included)."""
        rows = await self._execute(_MEMBERS_SQL, (member_namespace(self.group),))
        count = rows[0][0] if rows else 1
        return max(1, count if isinstance(count, int) else 1)

    async def fair_share(self, partitions: int) -> int:
        """How many partitions this process should own: ceil(partitions / members)."""
        return math.ceil(partitions / await self.members())

    async def try_acquire(self, stream: str) -> bool:
        """Take a partition if no peer holds it; True when this process owns it now."""
        if stream in self._held:
            return True
        rows = await self._execute("SELECT pg_try_advisory_lock(%s)",
                                   (partition_lock_key(self.group, stream),))
        if rows and rows[0][0] is True:
            self._held.add(stream)
            return True
        return False

    async def release(self, stream: str) -> None:
        """Give a partition back (call after its last batch was committed)."""
        if stream not in self._held:
            return
        self._held.discard(stream)
        await self._execute("SELECT pg_advisory_unlock(%s)",
                            (partition_lock_key(self.group, stream),))

    async def close(self) -> None:
        """Release everything by closing the connection."""
        await self._drop()

    async def _execute(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        conn = self._conn
        if conn is None or conn.closed:
            self._held.clear()
            raise StoreUnavailable("ownership connection is closed")
        try:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall() if cursor.description else []
        except psycopg.Error as e:
            await self._drop()
            raise StoreUnavailable(f"ownership database unavailable: {e}") from e

    async def _drop(self) -> None:
        self._held.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except psycopg.Error:
                log.debug("closing a broken ownership connection failed", exc_info=True)
