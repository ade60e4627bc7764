"""What every SQL repository needs from its unit of work: the transaction's connection."""

from __future__ import annotations

from typing import Protocol

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
