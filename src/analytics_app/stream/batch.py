"""The batch a partition worker is filling: messages in offset order, cut by size and age."""

from __future__ import annotations

import time
from collections.abc import Sequence

from analytics_core.usecases.ingest import RawMessage, StreamCheckpoint


class Batch:
    """Messages taken but not committed yet, and the part of a chunk that did not fit."""

    def __init__(self, size: int, max_wait: float) -> None:
        self.size, self.max_wait = size, max_wait
        self.messages: list[RawMessage] = []
        self.carry: list[RawMessage] = []  # the part of a chunk that did not fit the batch
        self.received: int | None = None  # last offset taken
        self.after_retention = False  # the batch may start past a retention gap
        self._started = 0.0

    def __bool__(self) -> bool:
        return bool(self.messages)

    def take(self, messages: Sequence[RawMessage]) -> None:
        """Add messages up to the size; the rest waits in `carry`."""
        if not messages:
            return
        if not self.messages:
            self._started = time.monotonic()
        room = self.size - len(self.messages)
        self.messages.extend(messages[:room])
        self.carry = list(messages[room:])
        self.received = messages[-1].offset

    def take_carry(self) -> None:
        """Start the next batch with what did not fit the last one."""
        if self.carry:
            self.take(self.carry)

    def full(self) -> bool:
        """Whether the batch holds `size` messages."""
        return len(self.messages) >= self.size

    def until_due(self) -> float:
        """Seconds until the batch is `max_wait` old (negative once it is)."""
        return self._started + self.max_wait - time.monotonic()

    def due(self) -> bool:
        """Whether the batch is `max_wait` old."""
        return self.until_due() <= 0

    def checkpoint(self, group: str, stream: str) -> StreamCheckpoint:
        """The offset checkpoint committed with this batch."""
        first, last = self.messages[0].offset, self.messages[-1].offset
        assert first is not None
        assert last is not None
        return StreamCheckpoint(group, stream, last,
                                first_offset=None if self.after_retention else first)

    def committed(self) -> None:
        """Empty the batch after its commit (the carry stays)."""
        self.messages, self.after_retention = [], False

    def drop(self) -> None:
        """Forget the batch in hand (it will be read again); the carry stays."""
        self.messages = []

    def rewind(self, offset: int | None) -> None:
        """Forget everything taken after `offset`: the next message taken follows it."""
        self.messages, self.carry, self.after_retention = [], [], False
        self.received = offset
