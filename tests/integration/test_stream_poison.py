"""Poison messages on a real stream partition (SPEC §8, §11): each is counted or dead-lettered,
the partition keeps moving, and the good events around them all count."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from analytics_adapters.rabbitmq import StreamRuntime
from analytics_adapters.sql import SqlStorage
from tests.integration.stream_support import (
    ConsumerThread,
    caught_up,
    publish,
    tails,
    wait_until,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]
ORG = uuid.uuid4()


@pytest.fixture
def partitions() -> int:
    """One partition: every poison message sits between good ones on the same stream."""
    return 1


def event(**overrides: object) -> dict[str, object]:
    """A valid event of ORG."""
    return {"eventId": str(uuid.uuid4()), "orgId": str(ORG), "modelId": str(uuid.uuid4()),
            "occurredAt": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
            "status": "success", "latencyMs": 12, "inputTokens": 3, "outputTokens": 4,
            "costEstimateCents": "0.5", **overrides}


def poison(frame_max: int) -> list[bytes]:
    """Messages no event can come from, each for its own reason."""
    org = str(ORG).encode()
    return [
        json.dumps(event(clientId="nul\x00")).encode(),
        json.dumps(event(metadata={"k": "\x00"})).encode(),
        b'\xff\xfe{"orgId": "' + org + b'"}',
        json.dumps(event()).encode().replace(b'"success"', b'"succ\xc3ess"'),
        b"[" * 100_000 + b"]" * 100_000,
        b'{"orgId": "' + org + b'", "costEstimateCents": 1e400}',
        json.dumps(event(inputTokens=2**64)).encode(),
        json.dumps(event(costEstimateCents="1e400")).encode(),
        json.dumps(event(metadata={"k": "x" * (frame_max - 2000)})).encode(),  # ~1 MiB
        b'"' + json.dumps(json.dumps(event())).encode() + b'"',
        b"",
    ]


def test_poison_messages_are_dead_lettered_and_the_partition_keeps_moving(
    runtime: StreamRuntime, storage: SqlStorage,
) -> None:
    """NUL, invalid UTF-8, 100,000-deep nesting, 1e400, 2**64, a ~1 MiB message and more,
    each between good events: the good ones count, each poison one is one dead letter, the
    committed offset reaches the tail. A 10 MiB message is refused by the publisher."""
    bad = poison(runtime.address.frame_max)
    good = [json.dumps(event()).encode() for _ in range(len(bad) + 1)]
    lines = [line for pair in zip(good, [*bad, None], strict=True) for line in pair
             if line is not None]
    publish(runtime, lines)

    async def too_large() -> None:
        async with runtime.publisher() as publisher:
            await publisher.send(b"{" + b" " * (10 * 1024 * 1024) + b"}", org_id=str(ORG))

    with pytest.raises(ValueError, match="exceeds the largest the broker accepts"):
        asyncio.run(too_large())
    with ConsumerThread(runtime, storage, batch_size=5) as consumer:
        wait_until(caught_up(runtime, storage.unit_of_work), 60, "the consumer to pass the poison")
        assert consumer.stop() == 0
    [stream] = runtime.topology.streams
    assert tails(runtime)[stream] == len(lines) - 1
    with storage.unit_of_work() as uow:
        stored = list(uow.events.scan(ORG, datetime.now(UTC) - timedelta(days=1),
                                      datetime.now(UTC) + timedelta(days=1)))
        letters = [d for d in uow.dead_letters.recent(None, limit=10_000)
                   if d.source.endswith(stream)]
    assert len(stored) == len(good)
    assert sorted(d.offset for d in letters) == [2 * i + 1 for i in range(len(bad))]
    assert sorted(d.raw for d in letters) == sorted(bad)
    assert all(d.org_id in (ORG, None) for d in letters)
