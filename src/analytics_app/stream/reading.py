"""What a partition worker reads: chunks of consecutive messages from a partition reader."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from analytics_core.usecases.ingest import RawMessage


class Chunk(Protocol):
    """Messages of one broker chunk at consecutive offsets."""

    @property
    def first_offset(self) -> int: ...

    @property
    def timestamp(self) -> datetime: ...

    @property
    def bodies(self) -> tuple[bytes, ...]: ...

    @property
    def retention_skipped(self) -> int:
        """Messages right before this chunk that retention deleted before they were read."""
        ...


class ChunkReader(Protocol):
    """A subscription to one partition that asks the broker for more only when taken from."""

    async def open(self) -> None: ...

    async def next_chunk(self, timeout: float) -> Chunk | None: ...

    async def close(self) -> None: ...

    @property
    def buffered(self) -> int: ...


ReaderFactory = Callable[[str, int | None], ChunkReader]
"""(stream, last offset already handled or None) -> a reader starting right after it."""


def messages_of(chunk: Chunk) -> list[RawMessage]:
    """The chunk's bodies as raw messages carrying their offsets."""
    first = chunk.first_offset
    return [RawMessage(body, first + i) for i, body in enumerate(chunk.bodies)]
