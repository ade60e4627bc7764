"""The consumer's lag gauges: messages behind per owned partition, and freshness seconds."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from analytics_app.stream.lag import LagMeter
from analytics_app.stream.status import StreamMetrics

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC)


def _gauge(metrics: StreamMetrics, name: str, **labels: str) -> float | None:
    value = metrics.registry.get_sample_value(name, labels)
    return None if value is None else float(value)


def test_lag_is_tail_minus_committed_per_partition_and_tails_are_returned() -> None:
    """Behind = tail - committed (all of it before the first commit, 0 for an empty stream);
    the tails come back for the stall watchdogs."""
    asked: list[Sequence[str]] = []

    async def tails(streams: Sequence[str]) -> Mapping[str, int | None]:
        asked.append(list(streams))
        return {"s-0": 99, "s-1": 9, "s-2": None}

    metrics = StreamMetrics()
    meter = LagMeter(metrics, tails=tails, complete_through=None)
    found = asyncio.run(meter.measure({"s-1": None, "s-0": 89, "s-2": None}))
    assert asked == [["s-0", "s-1", "s-2"]]
    assert found == {"s-0": 99, "s-1": 9, "s-2": None}
    name = "analytics_stream_consumer_lag_messages"
    assert _gauge(metrics, name, stream="s-0") == 10
    assert _gauge(metrics, name, stream="s-1") == 10
    assert _gauge(metrics, name, stream="s-2") == 0


def test_freshness_lag_is_now_minus_complete_through_never_negative() -> None:
    """Seconds behind = now - completeThrough, and 0 when the pipeline is ahead of the clock."""
    behind = {"by": timedelta(seconds=42)}
    metrics = StreamMetrics()
    meter = LagMeter(metrics, tails=None, complete_through=lambda now: now - behind["by"],
                     now=lambda: NOW)
    assert asyncio.run(meter.measure({})) == {}
    assert _gauge(metrics, "analytics_stream_consumer_lag_seconds") == 42
    assert _gauge(metrics, "analytics_freshness_lag_seconds") == 42
    behind["by"] = timedelta(seconds=-5)
    asyncio.run(meter.measure({}))
    assert _gauge(metrics, "analytics_stream_consumer_lag_seconds") == 0
