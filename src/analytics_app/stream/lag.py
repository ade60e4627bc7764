"""How far the consumer is behind: messages per partition, and seconds of pipeline freshness."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime

from analytics_app.stream.status import StreamMetrics

TailReader = Callable[[Sequence[str]], Awaitable[Mapping[str, int | None]]]
"""Last offset of each stream (None when empty), for the lag metric."""
CompleteThrough = Callable[[datetime], datetime]
"""The instant through which every event is aggregated, for the freshness-lag metric."""


def utc_now() -> datetime:
    """The wall clock, UTC."""
    return datetime.now(UTC)


class LagMeter:
    """Sets the lag gauges from the streams' tails and the pipeline's progress."""

    def __init__(self, metrics: StreamMetrics, *, tails: TailReader | None,
                 complete_through: CompleteThrough | None,
                 now: Callable[[], datetime] = utc_now) -> None:
        self.metrics, self.tails = metrics, tails
        self.complete_through, self.now = complete_through, now

    async def measure(self, committed: Mapping[str, int | None]) -> Mapping[str, int | None]:
        """Update the gauges for the owned partitions (`committed`: stream -> last offset
        committed); returns the tail of each, for the workers' stall watchdogs."""
        tails: Mapping[str, int | None] = {}
        if self.tails is not None and committed:
            tails = await self.tails(sorted(committed))
            for stream, tail in tails.items():
                done = committed.get(stream)
                lag = 0 if tail is None else tail - (-1 if done is None else done)
                self.metrics.lag_messages.labels(stream).set(max(lag, 0))
        if self.complete_through is not None:
            now = self.now()
            through = await asyncio.to_thread(self.complete_through, now)
            lag_seconds = max(0.0, (now - through).total_seconds())
            self.metrics.lag_seconds.set(lag_seconds)
            self.metrics.freshness_lag.set(lag_seconds)
        return tails
