"""ingest_batch with a stream checkpoint, on every storage backend: a batch that does not
continue from the stored offset is refused whole (OffsetGap), in the same unit of work."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from analytics_adapters.memory import ManualClock
from analytics_adapters.system import RandomIds
from analytics_core.errors import OffsetGap
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.usecases.ingest import RawMessage, StreamCheckpoint, ingest_batch
from tests.contract.factories import new_id

NOW = datetime.now(UTC).replace(microsecond=0)


def messages(offsets: range, org: str) -> list[RawMessage]:
    """Valid streamed events at these offsets."""
    return [RawMessage(json.dumps({
        "eventId": str(new_id()), "orgId": org, "modelId": str(new_id()),
        "occurredAt": (NOW - timedelta(minutes=5)).isoformat(), "status": "success",
        "latencyMs": 5, "inputTokens": 1, "outputTokens": 2, "costEstimateCents": "0.5",
    }).encode(), o) for o in offsets]


def ingest(uow_factory: UnitOfWorkFactory, batch: list[RawMessage], stream: str,
           first: int | None) -> int:
    """Ingest with a checkpoint at the batch's last offset; the number of events accepted."""
    last = batch[-1].offset
    assert last is not None
    return ingest_batch(batch, source=f"stream:{stream}", uow_factory=uow_factory,
                        clock=ManualClock(NOW), ids=RandomIds(),
                        checkpoint=StreamCheckpoint("analytics", stream, last,
                                                    first_offset=first)).accepted


def stored_offset(uow_factory: UnitOfWorkFactory, stream: str) -> int | None:
    """The consumer's offset."""
    with uow_factory() as uow:
        return uow.offsets.get("analytics", stream)


def test_contiguous_and_overlapping_batches_are_committed(uow_factory: UnitOfWorkFactory) -> None:
    """First batch of a fresh consumer (any start), then one continuing, then one overlapping."""
    stream, org = f"s-{new_id().hex[:8]}", str(new_id())
    assert ingest(uow_factory, messages(range(5, 10), org), stream, 5) == 5
    assert ingest(uow_factory, messages(range(10, 15), org), stream, 10) == 5
    assert ingest(uow_factory, messages(range(12, 16), org), stream, 12) == 4
    assert stored_offset(uow_factory, stream) == 15


def test_a_batch_past_the_next_offset_is_refused_and_nothing_of_it_is_stored(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """Stored offset 9, batch starting at 11: OffsetGap naming both, no event, offset kept."""
    stream, org = f"s-{new_id().hex[:8]}", str(new_id())
    ingest(uow_factory, messages(range(10), org), stream, 0)
    gap_batch = messages(range(11, 20), org)
    with pytest.raises(OffsetGap) as refused:
        ingest(uow_factory, gap_batch, stream, 11)
    assert (refused.value.stored, refused.value.first) == (9, 11)
    assert stored_offset(uow_factory, stream) == 9
    # the same events are new when they come in a batch that continues from 9
    assert ingest(uow_factory, messages(range(10, 11), org) + gap_batch, stream, 10) == 10


def test_without_a_first_offset_the_check_is_skipped(uow_factory: UnitOfWorkFactory) -> None:
    """A batch after a retention gap carries no first offset and is committed."""
    stream, org = f"s-{new_id().hex[:8]}", str(new_id())
    ingest(uow_factory, messages(range(10), org), stream, 0)
    assert ingest(uow_factory, messages(range(50, 55), org), stream, None) == 5
    assert stored_offset(uow_factory, stream) == 54
