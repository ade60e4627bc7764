"""POST /events hands each event's own bytes to the ingest use case (the stream's path): the
same results as decoding the whole body, every error named the same way."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import falcon.testing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_app.http.bodies import parse_json
from analytics_app.http.problems import ProblemError
from analytics_app.http.resources.events import _events, batch_payloads
from analytics_core.errors import ValidationFailed
from analytics_core.ports import UnitOfWorkFactory
from tests.app.conftest import PREFIX

JSON = {"Content-Type": "application/json"}


def _careful(data: bytes, limit: int = 10_000) -> list[object]:
    return _events(parse_json(data), limit)


def _decoded(payloads: list[object]) -> list[object]:
    return [parse_json(p) if isinstance(p, bytes) else p for p in payloads]


elements = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5)
    | st.decimals(allow_nan=False, allow_infinity=False, places=4),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200)
@given(st.lists(elements, max_size=6))
def test_every_element_decodes_as_the_careful_reader_decodes_it(events: list[object]) -> None:
    """Objects go through as their own bytes, other elements decoded; either way each is the
    value the whole-body decoder gives."""
    data = json.dumps({"events": events}, default=str).encode()
    fast = batch_payloads(data, 10_000)
    assert _decoded(fast) == _careful(data)
    assert all(isinstance(p, bytes) for p, e in zip(fast, _careful(data), strict=True)
               if isinstance(e, dict))


@pytest.mark.parametrize("body", [
    b'[1, 2]', b'{"events": 3}', b'{"other": []}', b'{"events": [1,]}', b'\xff\xfe',
    b'{"events": [NaN]}', b'{"events": "x"}', b'{"events": [1, 2',
])
def test_a_body_msgspec_refuses_gets_the_careful_readers_error(body: bytes) -> None:
    """Invalid JSON, bad UTF-8, a non-object or no events list: the same field error."""
    with pytest.raises(ValidationFailed) as careful:
        _careful(body)
    with pytest.raises(ValidationFailed) as fast:
        batch_payloads(body, 10_000)
    assert fast.value.errors == careful.value.errors


def test_too_many_events_is_413_on_both_paths() -> None:
    """The count limit holds on the fast path."""
    data = json.dumps({"events": [{}] * 3}).encode()
    with pytest.raises(ProblemError) as raised:
        batch_payloads(data, 2)
    assert raised.value.problem.status == 413


def test_a_dead_lettered_http_event_keeps_the_bytes_as_sent(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    uow_factory: UnitOfWorkFactory,
) -> None:
    """The dead letter holds the event exactly as it was posted (spacing and key order)."""
    event = b'{ "status" : "bogus",   "orgId": "' + str(org_a).encode() + b'" }'
    body = b'{"events": [' + event + b']}'
    result = client.simulate_post(f"{PREFIX}/events", body=body,
                                  headers={**JSON, **admin_of_a})
    assert result.status_code == 202, result.text
    with uow_factory() as uow:
        [letter] = uow.dead_letters.recent(org_a)
    assert letter.raw == event


def test_exact_costs_survive_the_fast_path(
    client: falcon.testing.TestClient, org_a: uuid.UUID, admin_of_a: dict[str, str],
    make_event: Any,
) -> None:
    """A cost with many decimals is stored exactly (no float on the way)."""
    event = make_event(org_a, costEstimateCents=Decimal("0.1234"))
    body = json.dumps({"events": [event]}, default=str).replace(
        '"0.1234"', "0.1234").encode()
    result = client.simulate_post(f"{PREFIX}/events", body=body,
                                  headers={**JSON, **admin_of_a})
    assert result.json["accepted"] == 1, result.text
    usage = client.simulate_get(f"{PREFIX}/orgs/{org_a}/usage", headers=admin_of_a, params={
        "start": "2024-03-14T00:00:00Z", "end": "2024-03-16T00:00:00Z"}).json
    assert usage["totals"]["costEstimateCentsExact"] == "0.1234"
