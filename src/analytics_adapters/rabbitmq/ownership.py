"""Partition ownership without a shared database: this process owns every partition."""

from __future__ import annotations

from analytics_core.ports import PartitionOwnership

__all__ = ["PartitionOwnership", "SingleProcessOwnership"]


class SingleProcessOwnership:
    """Ownership when no PostgreSQL is configured: this one process owns every partition.

    Only one consumer process may then run per group (SQLite or in-memory storage).
    """

    def __init__(self) -> None:
        self._held: set[str] = set()

    @property
    def held(self) -> frozenset[str]:
        """Partitions owned right now."""
        return frozenset(self._held)

    async def connect(self) -> None:
        """Nothing to connect."""

    async def alive(self) -> bool:
        """Always alive."""
        return True

    async def fair_share(self, partitions: int) -> int:
        """Every partition."""
        return partitions

    async def try_acquire(self, stream: str) -> bool:
        """Always succeeds."""
        self._held.add(stream)
        return True

    async def release(self, stream: str) -> None:
        """Forget a partition."""
        self._held.discard(stream)

    async def close(self) -> None:
        """Forget every partition."""
        self._held.clear()
