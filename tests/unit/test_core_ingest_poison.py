"""A message whose validation fails unexpectedly is dead-lettered alone: the batch goes on."""

from __future__ import annotations

import json
from typing import Any

import pytest
from core_strategies import NOW, valid_payload

from analytics_adapters.memory import InMemoryStorage, ManualClock, unit_of_work_factory
from analytics_adapters.system import RandomIds
from analytics_core.usecases import ingest
from analytics_core.usecases.ingest import RawMessage, ingest_batch


def test_an_unexpected_error_while_validating_one_message_dead_letters_only_that_one(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """The validator crashes on one payload (a bug, not bad input): that message becomes a
    dead letter naming the error type, is logged with its traceback, and the others are
    stored."""
    real = ingest.parse_event

    def flaky(raw: Any, **kwargs: Any) -> Any:
        if raw.get("clientId") == "boom":
            raise RuntimeError("validator bug")
        return real(raw, **kwargs)

    monkeypatch.setattr(ingest, "parse_event", flaky)
    uow_factory = unit_of_work_factory(InMemoryStorage())
    bodies = [json.dumps(valid_payload(eventId=f"0f8fad5b-d9cb-469f-a165-7086772895{i:02d}",
                                       clientId="boom" if i == 1 else "ok")).encode()
              for i in range(3)]
    result = ingest_batch([RawMessage(b, i) for i, b in enumerate(bodies)], source="stream:s",
                          uow_factory=uow_factory, clock=ManualClock(NOW), ids=RandomIds())
    assert (result.accepted, result.rejected) == (2, 1)
    [rejected] = [r for r in result.results if r.status.value == "rejected"]
    assert [(e.field, e.reason) for e in rejected.errors] == [
        ("$", "message could not be processed: RuntimeError")]
    with uow_factory() as uow:
        [letter] = uow.dead_letters.recent()
    assert letter.raw == bodies[1]
    assert "validator bug" in caplog.text


@pytest.mark.parametrize("payload", [b"[" * 100_000 + b"]" * 100_000, "{\"a\":" * 50_000 + "1"
                                     + "}" * 50_000])
def test_json_nested_too_deeply_is_a_field_error_not_a_crash(payload: bytes | str) -> None:
    """Nesting past the decoder's recursion limit is invalid JSON for that message only."""
    result = ingest_batch([RawMessage(payload), RawMessage(json.dumps(valid_payload()))],
                          source="test", uow_factory=unit_of_work_factory(InMemoryStorage()),
                          clock=ManualClock(NOW), ids=RandomIds())
    assert (result.accepted, result.rejected) == (1, 1)
    assert [(e.field, e.reason) for e in result.results[0].errors] == [
        ("$", "message is not valid JSON: nested too deeply")]
