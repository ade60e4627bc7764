"""Waiting between retries: exponential backoff with jitter, cut short by a stop request."""

from __future__ import annotations

import asyncio
import random


class Backoff:
    """Exponential backoff with jitter, reset after a success."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial, self.maximum = initial, maximum
        self.delay = initial

    def next(self) -> float:
        """The delay to wait now; the following one doubles (up to the maximum)."""
        delay = self.delay * random.uniform(0.8, 1.2)  # noqa: S311  jitter, not a secret
        self.delay = min(self.delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        """Back to the initial delay."""
        self.delay = self.initial


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, returning early once `stopping` is set."""
    try:
        await asyncio.wait_for(stopping.wait(), seconds)
    except TimeoutError:
        return
