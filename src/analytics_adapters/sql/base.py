"""What every SQL repository needs from its unit of work: the transaction's connection."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import sqlalchemy as sa


class ActiveUnit(Protocol):
    """The unit of work a repository runs in."""

    @property
    def dialect(self) -> str:
        """`postgresql` or `sqlite`."""
        ...

    def connection(self, *, write: bool) -> sa.Connection:
        """The connection of the open transaction, beginning it on first use.

        `write` says whether the caller will write: on SQLite a unit that starts with a write
        takes the write lock at once (BEGIN IMMEDIATE) so it never has to upgrade later.
        """
        ...

    def scratch(self, name: str) -> bool:
        """Mark a per-transaction scratch table as used; True when it was already used."""
        ...


class SqlRepository:
    """Base: a repository bound to one unit of work."""

    def __init__(self, unit: ActiveUnit) -> None:
        self._unit = unit

    @property
    def _postgres(self) -> bool:
        return self._unit.dialect == "postgresql"

    def _read(self) -> sa.Connection:
        return self._unit.connection(write=False)

    def _write(self) -> sa.Connection:
        return self._unit.connection(write=True)


def lock_each(conn: sa.Connection, keys: Iterable[tuple[Any, ...]],
              lock: Callable[..., sa.Select[Any]]) -> Iterator[sa.Row[Any]]:
    """Each row `lock(*key)` selects, locked FOR UPDATE SKIP LOCKED, in the order of `keys`;
    a key whose row another transaction holds (or that no longer matches) is skipped.

    How claims take work: candidates are read without locks, then locked one key at a time,
    so concurrent claimers never wait on each other or take the same row, and every locking
    statement names one row (one shard on Citus, which refuses FOR UPDATE across shards).
    SQLite ignores the lock: its writer holds the database."""
    for key in keys:
        row = conn.execute(lock(*key).with_for_update(skip_locked=True)).one_or_none()
        if row is not None:
            yield row


def add_to_rows(conn: sa.Connection, table: sa.Table, keys: Sequence[str],
                columns: Sequence[str], rows: Mapping[tuple[Any, ...], Sequence[int]]) -> None:
    """Add to `columns` of the existing rows of `table` whose `keys` columns equal each key
    of `rows` (its values in `columns` order), in key order (lock order), one UPDATE per row;
    rows that do not exist are not created."""
    t = table.c
    stmt = table.update().where(*(t[k] == sa.bindparam(f"k_{k}") for k in keys)).values(
        {c: t[c] + sa.bindparam(f"d_{c}") for c in columns})
    conn.execute(stmt, [
        {**{f"k_{k}": v for k, v in zip(keys, key, strict=True)},
         **{f"d_{c}": v for c, v in zip(columns, values, strict=True)}}
        for key, values in sorted(rows.items(), key=lambda kv: kv[0])])
