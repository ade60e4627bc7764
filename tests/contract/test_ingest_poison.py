"""ingest_batch on every storage backend: messages no store could keep are dead-lettered one
by one and never fail their batch (a stream consumer would otherwise retry it forever)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from analytics_adapters.memory import ManualClock
from analytics_adapters.system import RandomIds
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.usecases.ingest import RawMessage, StreamCheckpoint, ingest_batch
from tests.contract.factories import new_id

NOW = datetime.now(UTC).replace(microsecond=0)


def event(org: str, **overrides: object) -> dict[str, object]:
    """A valid event payload."""
    return {
        "eventId": str(new_id()), "orgId": org, "modelId": str(new_id()),
        "occurredAt": (NOW - timedelta(minutes=3)).isoformat(), "status": "success",
        "latencyMs": 5, "inputTokens": 1, "outputTokens": 2, "costEstimateCents": "0.5",
        **overrides,
    }


def test_lone_surrogates_are_dead_lettered_and_the_rest_of_the_batch_is_stored(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """Three poison messages among valid ones, as bytes from a stream: the valid ones are
    stored, the three are dead letters with their exact bytes, and the offset is committed."""
    org, stream = str(new_id()), f"s-{new_id().hex[:8]}"
    good = [event(org) for _ in range(3)]
    poison = [event(org, clientId="c\ud800"), event(org, metadata={"k": "\udfff"}),
              event(org, errorCode="\ud83d", status="error")]
    bodies = [json.dumps(p).encode() for p in (good[0], poison[0], good[1], poison[1],
                                               poison[2], good[2])]
    assert all(b"\\ud" in bodies[i] for i in (1, 3, 4))  # escaped in the JSON text
    result = ingest_batch([RawMessage(b, i) for i, b in enumerate(bodies)],
                          source=f"stream:{stream}", uow_factory=uow_factory,
                          clock=ManualClock(NOW), ids=RandomIds(),
                          checkpoint=StreamCheckpoint("analytics", stream, 5, first_offset=0))
    assert (result.accepted, result.rejected) == (3, 3)
    assert [r.status.value for r in result.results] == [
        "accepted", "rejected", "accepted", "rejected", "rejected", "accepted"]
    assert [e.field for r in result.results for e in r.errors] == [
        "clientId", "metadata", "errorCode"]
    with uow_factory() as uow:
        stored = uow.events.fingerprints(
            [(uuid_of(org), uuid_of(str(p["eventId"]))) for p in good + poison])
        letters = [d for d in uow.dead_letters.recent(uuid_of(org)) if d.source.endswith(stream)]
        assert uow.offsets.get("analytics", stream) == 5
    assert {key[1] for key in stored} == {uuid_of(str(p["eventId"])) for p in good}
    assert sorted(d.raw for d in letters) == sorted([bodies[1], bodies[3], bodies[4]])


def uuid_of(text: str) -> uuid.UUID:
    """The UUID of a string id."""
    return uuid.UUID(text)


def test_nul_in_text_is_dead_lettered_naming_the_field_and_the_rest_of_the_batch_is_stored(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """U+0000, which PostgreSQL text and jsonb refuse, is a field error for its event on every
    backend: the valid events around it are stored and the stream offset is committed."""
    org, stream = str(new_id()), f"s-{new_id().hex[:8]}"
    good = [event(org) for _ in range(3)]
    poison = [event(org, clientId="c\x00"), event(org, errorCode="E\x00", status="error"),
              event(org, metadata={"k": "v\x00"}), event(org, metadata={"\x00": "v"})]
    bodies = [json.dumps(p).encode() for p in (good[0], *poison[:2], good[1], *poison[2:],
                                               good[2])]
    assert all(b"\\u0000" in body for body in bodies[1:3] + bodies[4:6])
    result = ingest_batch([RawMessage(b, i) for i, b in enumerate(bodies)],
                          source=f"stream:{stream}", uow_factory=uow_factory,
                          clock=ManualClock(NOW), ids=RandomIds(),
                          checkpoint=StreamCheckpoint("analytics", stream, 6, first_offset=0))
    assert (result.accepted, result.rejected) == (3, 4)
    assert [(e.field, e.reason) for r in result.results for e in r.errors] == [
        ("clientId", "must not contain U+0000 (NUL)"),
        ("errorCode", "must not contain U+0000 (NUL)"),
        ("metadata", "must not contain U+0000 (NUL)"),
        ("metadata", "must not contain U+0000 (NUL)"),
    ]
    with uow_factory() as uow:
        letters = [d for d in uow.dead_letters.recent(uuid_of(org)) if d.source.endswith(stream)]
        assert uow.offsets.get("analytics", stream) == 6
    assert sorted(d.raw for d in letters) == sorted(bodies[1:3] + bodies[4:6])
    assert all("\x00" not in d.reason for d in letters)
