"""`Analytics.aio` keeps the event loop free: other tasks run while a call is in flight."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from analytics import Analytics


def _events(org: uuid.UUID, count: int) -> list[dict[str, object]]:
    now = datetime.now(UTC)
    return [{"eventId": str(uuid.uuid4()), "orgId": str(org), "modelId": str(uuid.uuid4()),
             "occurredAt": (now - timedelta(minutes=1)).isoformat(), "status": "success",
             "latencyMs": 5, "inputTokens": 1, "outputTokens": 1, "costEstimateCents": "0.0100"}
            for _ in range(count)]


def test_other_tasks_run_while_an_aio_call_is_in_flight() -> None:
    """A ticker task advances during `await aio.ingest(...)` (a blocking call would starve
    it), and the result is the synchronous method's."""
    org = uuid.uuid4()

    async def main() -> tuple[int, int]:
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                ticks += 1
                await asyncio.sleep(0)

        with Analytics.in_memory() as analytics:
            task = asyncio.create_task(ticker())
            await asyncio.sleep(0)
            before = ticks
            batch = await analytics.aio.ingest(_events(org, 3000))
            during = ticks - before
            done.set()
            await task
            return during, batch.accepted

    during, accepted = asyncio.run(main())
    assert accepted == 3000
    assert during > 0


def test_aio_methods_raise_what_the_synchronous_ones_raise() -> None:
    """Errors cross the thread unchanged (a bad query is ValidationFailed naming `end`)."""
    from analytics import ValidationFailed  # noqa: PLC0415

    async def main() -> list[str]:
        with Analytics.in_memory() as analytics:
            now = datetime.now(UTC)
            try:
                await analytics.aio.usage(uuid.uuid4(), now, now - timedelta(hours=1))
            except ValidationFailed as e:
                return [err.field for err in e.errors]
        return []

    assert asyncio.run(main()) == ["end"]


def test_naming_a_model_twice_with_a_taken_alias_is_a_conflict_naming_the_model() -> None:
    """name_model registers and renames; an alias of another model raises Conflict naming it."""
    from analytics import Conflict  # noqa: PLC0415

    first, second = uuid.uuid4(), uuid.uuid4()
    with Analytics.in_memory() as analytics:
        analytics.name_model(first, "gpt-4o", aliases=["gpt-4o-2024-08-06"])
        analytics.name_model(first, "GPT-4o", aliases=["gpt-4o-2024-08-06"])
        try:
            analytics.name_model(second, "other", aliases=["GPT-4O-2024-08-06"])
        except Conflict as e:
            message = str(e)
        else:
            message = ""
        names = {m.model_id: m.name for m in analytics.models()}
    assert str(first) in message
    assert not message.startswith("row")
    assert names == {first: "GPT-4o"}
