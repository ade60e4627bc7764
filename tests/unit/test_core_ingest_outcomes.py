"""ingest_batch's per-input outcomes and counts against a plain model of dedupe (SPEC §2).

Each input is new, a repeat of a key stored by an earlier batch, a repeat of a key earlier in
the same batch (same or changed content), or invalid. The model: the first version of a key
wins; a repeat is a duplicate, and a conflict when its content differs from the first version;
invalid inputs are rejected. The counts must agree with the per-input results, which are built
lazily on first use.
"""

from __future__ import annotations

import json
import uuid

from core_strategies import NOW, valid_payload
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_adapters.memory import InMemoryStorage, ManualClock, unit_of_work_factory
from analytics_adapters.system import RandomIds
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.usecases.ingest import (
    BatchResult,
    EventOutcome,
    RawMessage,
    ingest_batch,
)

# What each input of the batch is: ("new",), ("stored", i, changed), ("again", j, changed) for a
# repeat of the j-th earlier input of this batch, ("bad",).
_KINDS = st.sampled_from(["new", "stored", "again", "bad"])


def _payload(event_id: uuid.UUID, org: uuid.UUID, latency: int) -> bytes:
    return json.dumps(valid_payload(eventId=str(event_id), orgId=str(org),
                                    latencyMs=latency)).encode()


def _ingest(uow_factory: UnitOfWorkFactory, bodies: list[bytes],
            first_offset: int = 0) -> BatchResult:
    return ingest_batch([RawMessage(b, first_offset + i) for i, b in enumerate(bodies)],
                        source="stream:s", uow_factory=uow_factory, clock=ManualClock(NOW),
                        ids=RandomIds())


@settings(max_examples=60, deadline=None)
@given(plan=st.lists(st.tuples(_KINDS, st.integers(0, 50), st.booleans()), min_size=1,
                     max_size=25))
def test_outcomes_follow_first_version_wins(plan: list[tuple[str, int, bool]]) -> None:
    """Every input's status, event id and conflict flag match the model, in input order, and
    the batch counts equal the tallies of those results."""
    uow_factory = unit_of_work_factory(InMemoryStorage())
    org = uuid.uuid4()
    stored_ids = [uuid.uuid4() for _ in range(3)]
    _ingest(uow_factory, [_payload(e, org, 100) for e in stored_ids])

    bodies: list[bytes] = []
    expected: list[tuple[EventOutcome, str | None, bool]] = []
    first_latency: dict[uuid.UUID, int] = dict.fromkeys(stored_ids, 100)
    batch_keys: list[uuid.UUID] = []
    for kind, pick, changed in plan:
        if kind == "bad" or (kind == "again" and not batch_keys):
            bodies.append(b'{"eventId": "not json')
            expected.append((EventOutcome.REJECTED, None, False))
            continue
        if kind == "new":
            event_id, latency = uuid.uuid4(), 200 + pick
        else:
            pool = stored_ids if kind == "stored" else batch_keys
            event_id = pool[pick % len(pool)]
            latency = first_latency[event_id] + (1 if changed else 0)
        if event_id in first_latency:
            conflict = latency != first_latency[event_id]
            expected.append((EventOutcome.DUPLICATE, str(event_id), conflict))
        else:
            first_latency[event_id] = latency
            expected.append((EventOutcome.ACCEPTED, str(event_id), False))
        batch_keys.append(event_id)
        bodies.append(_payload(event_id, org, latency))

    result = _ingest(uow_factory, bodies, first_offset=3)
    got = [(r.status, r.event_id, r.conflict) for r in result.results]
    assert got == expected
    assert [r.index for r in result.results] == list(range(len(bodies)))
    assert result.size == len(bodies)
    assert (result.accepted, result.duplicates, result.rejected, result.conflicts) == (
        sum(s is EventOutcome.ACCEPTED for s, _, _ in expected),
        sum(s is EventOutcome.DUPLICATE for s, _, _ in expected),
        sum(s is EventOutcome.REJECTED for s, _, _ in expected),
        sum(c for _, _, c in expected),
    )
    assert result.results is result.results  # built once


def test_redelivery_of_a_batch_is_all_duplicates_without_conflicts() -> None:
    """The same batch again (a redelivered stream chunk) changes nothing: every valid input is
    a duplicate, none conflicts, invalid ones are rejected again."""
    uow_factory = unit_of_work_factory(InMemoryStorage())
    org = uuid.uuid4()
    bodies = [_payload(uuid.uuid4(), org, 10), b"[]", _payload(uuid.uuid4(), org, 20)]
    first = _ingest(uow_factory, bodies)
    again = _ingest(uow_factory, bodies)
    assert (first.accepted, first.duplicates, first.rejected) == (2, 0, 1)
    assert (again.accepted, again.duplicates, again.rejected, again.conflicts) == (0, 2, 1, 0)
    assert [r.status for r in again.results] == [
        EventOutcome.DUPLICATE, EventOutcome.REJECTED, EventOutcome.DUPLICATE]


def test_a_streamed_conflict_read_twice_is_one_record() -> None:
    """A conflicting duplicate at a stream offset, ingested again (redelivery, replay, or a
    second reader of the partition), adds no second conflict record; the same payload over
    HTTP (no offset) is a record per detection."""
    uow_factory = unit_of_work_factory(InMemoryStorage())
    org, event_id = uuid.uuid4(), uuid.uuid4()
    _ingest(uow_factory, [_payload(event_id, org, 1)])
    changed = [_payload(event_id, org, 2)]
    for _ in range(2):
        assert _ingest(uow_factory, changed, first_offset=7).conflicts == 1
    for _ in range(2):
        ingest_batch([RawMessage(changed[0])], source="http", uow_factory=uow_factory,
                     clock=ManualClock(NOW), ids=RandomIds())
    with uow_factory() as uow:
        sources = sorted(c.source for c in uow.dead_letters.conflicts(org))
    assert sources == ["http", "http", "stream:s"]
