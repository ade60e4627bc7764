"""EventDecoder contract (msgspec): exactly the careful reader's event, or None; never raises.

The decoder reads stream bytes straight into an event. Whatever it returns must be the event
`parse_event(decode_payload(data))` returns (same values, same types, same fingerprint); when
the careful reader rejects a payload the decoder must return None. Producer payloads of the
plain shape must be read (not None), or the fast edge would be dead code.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from analytics_adapters.msgspec_codec import MsgspecEventDecoder
from analytics_core.errors import ValidationFailed
from analytics_core.event_parsing import parse_event
from analytics_core.events import MAX_FUTURE, Status, UsageEvent, to_canonical
from analytics_core.money import Cents
from analytics_core.usecases.ingest import decode_payload

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=400)
DECODER = MsgspecEventDecoder()
SNAKE = {"eventId": "event_id", "orgId": "org_id", "modelId": "model_id",
         "occurredAt": "occurred_at", "latencyMs": "latency_ms", "inputTokens": "input_tokens",
         "outputTokens": "output_tokens", "costEstimateCents": "cost_estimate_cents",
         "actorId": "actor_id", "clientId": "client_id", "errorCode": "error_code"}
KEYS = [*SNAKE, "status", "metadata"]


def as_seen(event: UsageEvent) -> tuple[Any, ...]:
    """Every field with its type, the zone object and the fingerprint."""
    fields = attrs.astuple(event, recurse=False)
    return ([(type(v), v) for v in fields], event.occurred_at.tzinfo is UTC,
            type(event.cost.units), [(type(k), type(v)) for k, v in event.metadata.items()],
            event.fingerprint())


def careful(data: bytes, now: datetime = NOW, retention: timedelta = RETENTION) -> Any:
    """The careful reader's event, or 'rejected'."""
    try:
        return as_seen(parse_event(decode_payload(data), now=now, raw_retention=retention))
    except ValidationFailed:
        return "rejected"


def fast(data: bytes, now: datetime = NOW, retention: timedelta = RETENTION) -> Any:
    """The decoder's event, or None."""
    event = DECODER.decode(data, now - retention, now + MAX_FUTURE)
    return None if event is None else as_seen(event)


def assert_agrees(data: bytes) -> Any:
    """The decoder returns None or exactly what the careful reader returns; its result."""
    got = fast(data)
    if got is not None:
        assert got == careful(data), data
    return got


def dumps(payload: dict[str, Any], **options: Any) -> str:
    """json.dumps writing Decimal values as JSON numbers (their own spelling)."""
    numbers = {f"@decimal{i}@": str(v) for i, v in enumerate(payload.values())
               if isinstance(v, Decimal)}
    tokens = {str(v): k for k, v in numbers.items()}
    text = json.dumps({k: tokens[str(v)] if isinstance(v, Decimal) else v
                       for k, v in payload.items()}, default=str, **options)
    for token, number in numbers.items():
        text = text.replace(f'"{token}"', number)
    return text


ids = st.uuids()
texts = st.text(max_size=6) | st.sampled_from(["", "c" * 128, "c" * 129, "é" * 129, "\x00"])
events = st.builds(
    UsageEvent, event_id=ids, org_id=ids, model_id=ids,
    occurred_at=st.datetimes(min_value=datetime(2024, 5, 1), max_value=datetime(2025, 6, 1, 12, 5),
                             timezones=st.just(UTC)),
    status=st.sampled_from(Status), latency_ms=st.integers(0, 2**63 - 1),
    input_tokens=st.integers(0, 10**9), output_tokens=st.integers(0, 10**9),
    cost=st.builds(Cents, st.integers(0, 10**12)), actor_id=st.none() | ids,
    client_id=st.none() | st.text(max_size=20), error_code=st.none() | st.text(max_size=8),
    metadata=st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=4)
    | st.dictionaries(st.text(st.characters(max_codepoint=0x7F), max_size=5),
                      st.text(st.characters(max_codepoint=0x7F), max_size=10), max_size=4),
)
ODD_VALUES: list[object] = [
    None, True, 0, -1, 1.0, 1.5, 2**63, 2**64 + 1, "", "5", "1.5", "success", [], {}, {"k": 1},
    "0f8fad5b-d9cb-469f-a165-70867728950e", "0F8FAD5B-D9CB-469F-A165-70867728950E",
    "{0f8fad5b-d9cb-469f-a165-70867728950e}", "0f8fad5bd9cb469fa16570867728950e",
    "2025-06-01T11:58:30+01:00", "2025-06-01t11:58:30z", "2025-06-01 11:58:30Z",
    "2025-06-01T11:58:30.1234567Z", "2025-06-01T11:58:30", "error", "THROTTLED", "1e3", " 1",
    "-1", "NaN", "0x10", "1.5\n",
]
NUMBER_SPELLINGS = ["{n}", "{n}.0", "{n}e0", "{n}E+0", "{n}.00", "-0", "1e400", "1" * 5000]


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """A valid event as producers send it, then edited as JSON and as text: keys dropped,
    respelt in snake_case, doubled, nulled or given odd values; numbers respelt; extra keys;
    escapes, BOMs, stray bytes."""
    event = draw(events)
    payload: dict[str, Any] = to_canonical(event)
    if draw(st.integers(0, 4)):  # producers send a JSON number; a string takes the careful way
        payload["costEstimateCents"] = Decimal(event.cost.exact_str())
    for key in ("actorId", "clientId", "errorCode", "metadata"):
        if payload[key] in (None, {}) and draw(st.booleans()):
            del payload[key]
    plain = draw(st.booleans())  # half as producers send them, half edited
    size = 0 if plain else draw(st.sampled_from([0, 1, 1, 2, 3]))
    for key in draw(st.lists(st.sampled_from(KEYS), min_size=size, max_size=size, unique=True)):
        action = draw(st.sampled_from(["drop", "snake", "both", "odd", "none"]))
        value = payload.pop(key, None)
        if action == "snake":
            payload[SNAKE.get(key, key)] = value
        elif action == "both":
            payload[key] = payload[SNAKE.get(key, key)] = value
        elif action == "odd":
            payload[key] = draw(st.sampled_from(ODD_VALUES) | texts)
        elif action == "none":
            payload[key] = None
    if not plain and draw(st.integers(0, 4)) == 0:
        payload[draw(st.sampled_from(["region", "extra"]))] = draw(st.sampled_from(ODD_VALUES))
    text = dumps(payload, ensure_ascii=draw(st.booleans()),
                 separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])))
    for key in ("latencyMs", "inputTokens", "outputTokens", "costEstimateCents"):
        value = payload.get(key)
        if not plain and type(value) in (int, Decimal) and draw(st.integers(0, 4)) == 0:
            spelt = draw(st.sampled_from(NUMBER_SPELLINGS)).format(n=value)
            text = text.replace(f'"{key}": {value}', f'"{key}": {spelt}', 1)
            text = text.replace(f'"{key}":{value}', f'"{key}":{spelt}', 1)
    edits = ["none"] * 3 + ["bom", "space", "trail", "dup", "escape", "surrogate", "badbyte"]
    edit = "none" if plain else draw(st.sampled_from(edits))
    if edit == "bom":
        text = "\ufeff" + text
    elif edit == "space":
        text = f" \n\t{text}\r\n"
    elif edit == "trail":
        text += draw(st.sampled_from(["x", "{}", ",", "\x00"]))
    elif edit == "dup":  # json.loads keeps the last of a doubled key
        key = draw(st.sampled_from(KEYS))
        odd = json.dumps(draw(st.sampled_from(ODD_VALUES)))
        text = text.replace("{", f'{{"{key}": {odd}, ', 1) if draw(st.booleans()) else (
            text[:-1] + f', "{key}": {odd}}}')
    elif edit == "escape":  # a key or a value written with \u escapes
        text = text.replace('"status"', '"\\u0073tatus"', 1).replace("-", "\\u002d", 1)
    elif edit == "surrogate":
        text = text.replace('"clientId": ', '"clientId": "\\ud800", "x": ', 1).replace(
            '"clientId":', '"clientId":"\\udfff","x":', 1)
    data = text.encode()
    if edit == "badbyte":
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\xff" + data[at:]
    return data


@settings(max_examples=1000, deadline=None)
@given(payloads())
@example(b'{"eventId": "x"')
@example(b"[]")
@example(b"null")
@example(('{"eventId": "0f8fad5b-d9cb-469f-a165-70867728950e", "costEstimateCents": '
          + "[" * 5000 + "]" * 5000 + "}").encode())
def test_the_decoder_returns_the_careful_readers_event_or_none(data: bytes) -> None:
    """Never a different event, never an event for a rejected payload, never an exception."""
    assert_agrees(data)


@settings(max_examples=200, deadline=None)
@given(events, st.booleans(), st.booleans())
def test_plain_producer_payloads_are_read_by_the_decoder(
    event: UsageEvent, decimal_cost: bool, compact: bool
) -> None:
    """The canonical camelCase payload, its cost as a JSON number or an integer, is read by the
    decoder itself whenever the careful reader accepts it."""
    payload: dict[str, Any] = to_canonical(event)
    exact = Decimal(event.cost.exact_str())
    payload["costEstimateCents"] = (int(exact) if exact == exact.to_integral_value()
                                    and not decimal_cost else exact)
    data = dumps(payload, separators=(",", ":") if compact else (", ", ": ")).encode()
    expected = careful(data)
    if expected != "rejected" and all(s.isascii() for s in event.metadata.values()) and all(
        k.isascii() for k in event.metadata
    ) and len(json.dumps(event.metadata)) < 600:
        assert fast(data) == expected


@pytest.mark.parametrize("now", [datetime.max.replace(tzinfo=UTC), NOW])
def test_the_window_is_the_callers(now: datetime) -> None:
    """The decoder applies the given [earliest, latest] window to occurredAt, inclusive."""
    event = UsageEvent(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), NOW, Status.SUCCESS, 1, 2, 3,
                       Cents(10))
    data = dumps({**to_canonical(event), "costEstimateCents": Decimal("0.001")}).encode()
    assert DECODER.decode(data, NOW, NOW) == event
    assert DECODER.decode(data, NOW + timedelta(microseconds=1), now) is None
    assert DECODER.decode(data, NOW - timedelta(days=1), NOW - timedelta(microseconds=1)) is None


BASE_EVENT = UsageEvent(
    uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e"), uuid.uuid4(), uuid.uuid4(),
    NOW - timedelta(minutes=1), Status.ERROR, 5, 6, 7, Cents(125),
    uuid.uuid4(), "key-1", "E42", {"region": "eu"},
)
# JSON text put in place of one key's value (or after it, doubling the key).
ODD_JSON = [
    '"1e3"', '" 1"', '"0.5"', '"7"', '"-1"', '"NaN"', '"1.5\\n"', "1e3", "1E+2", "-0", "-0.0",
    "0.00005", "0.00015", "1e-30", "1e400", "922337203685477.5807", "922337203685477.5808",
    "NaN", "Infinity", "-1", "1.0", "2.5", "true", "null", "[]", "{}", "1" * 5000,
    "9223372036854775807", "9223372036854775808", "18446744073709551616",
    '"0F8FAD5B-D9CB-469F-A165-70867728950E"', '"0f8fad5bd9cb469fa16570867728950e"',
    '"{0f8fad5b-d9cb-469f-a165-70867728950e}"', '"urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e"',
    '"0f8fad5b-d9cb-469f-a165-70867728950"', '"2025-06-01T11:58:30+00:00"',
    '"2025-06-01T11:58:30z"', '"2025-06-01T11:58:30.1234567Z"', '"2025-06-01T11:58:30-00:00"',
    '"2025-06-01T12:05:00Z"', '"2025-06-01T12:05:00.000001Z"', '"\\ud800"', '"\\udfff x"',
    '"\\u0000"', '"' + "c" * 128 + '"', '"' + "c" * 129 + '"', '"é"', '"success"', '"SUCCESS"',
    '{"k": "v"}', '{"k": 1}', '{"k": "\\ud800"}', '{"k": "é"}', '{"k": "' + "x" * 4089 + '"}',
]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("value", ODD_JSON)
@pytest.mark.parametrize("double", [False, True], ids=["replaced", "doubled"])
def test_each_odd_value_of_each_key_is_read_alike(key: str, value: str, double: bool) -> None:
    """One key given an odd JSON value (replaced, or doubled after the original so the odd
    one is the last): the decoder returns the careful reader's event or None."""
    payload = {**to_canonical(BASE_EVENT), "costEstimateCents": Decimal("0.0125")}
    text = dumps(payload, separators=(",", ":"))
    original = json.dumps(key) + ":" + (dumps({key: payload[key]}, separators=(",", ":"))[
        len(json.dumps(key)) + 2:-1])
    assert original in text
    edited = original + "," if double else ""
    data = text.replace(original, edited + json.dumps(key) + ":" + value, 1).encode()
    assert_agrees(data)


def test_the_unedited_base_payload_is_read_by_the_decoder() -> None:
    """The payload the single edits start from takes the decoder's way."""
    payload = {**to_canonical(BASE_EVENT), "costEstimateCents": Decimal("0.0125")}
    assert fast(dumps(payload).encode()) is not None


def test_ingest_with_the_decoder_stores_what_ingest_without_it_stores() -> None:
    """A mixed stream batch (plain, string cost, snake_case, invalid, not JSON) gives the same
    outcomes, events and dead letters with the decoder as without it."""
    from analytics_adapters.memory import (  # noqa: PLC0415
        InMemoryStorage,
        ManualClock,
        unit_of_work_factory,
    )
    from analytics_adapters.system import RandomIds  # noqa: PLC0415
    from analytics_core.usecases.ingest import RawMessage, ingest_batch  # noqa: PLC0415

    plain = {**to_canonical(BASE_EVENT), "costEstimateCents": Decimal("0.0125")}
    bodies = [
        dumps(plain).encode(),
        json.dumps({**to_canonical(BASE_EVENT), "eventId": str(uuid.uuid4())}).encode(),
        dumps({**plain, "eventId": str(uuid.uuid4()), "latencyMs": -1}).encode(),
        dumps({**{SNAKE.get(k, k): v for k, v in plain.items()},
               "event_id": str(uuid.uuid4())}).encode(),
        b"\xff not json",
        dumps({**plain, "latencyMs": 6}).encode(),  # a conflicting duplicate of the first
    ]
    seen = []
    for decoder in (None, DECODER):
        uow_factory = unit_of_work_factory(InMemoryStorage())
        result = ingest_batch([RawMessage(b, i) for i, b in enumerate(bodies)],
                              source="stream:s", uow_factory=uow_factory,
                              clock=ManualClock(NOW), ids=RandomIds(), decoder=decoder)
        with uow_factory() as uow:
            stored = sorted(map(as_seen, uow.events.scan(
                BASE_EVENT.org_id, NOW - timedelta(days=1), NOW + timedelta(days=1))))
            dead = [(d.offset, d.reason, d.raw) for d in uow.dead_letters.recent(limit=10)]
        seen.append(([(r.status, r.event_id, r.errors, r.conflict) for r in result.results],
                     stored, sorted(dead)))
    assert seen[0] == seen[1]
    assert [r[0].value for r in seen[0][0]] == [
        "accepted", "accepted", "rejected", "accepted", "rejected", "duplicate"]


def test_the_nil_org_is_left_to_the_careful_reader() -> None:
    """The decoder returns None for an event of the nil org, which the careful reader
    rejects (the platform org is never a tenant's)."""
    body = {"eventId": str(uuid.uuid4()), "orgId": "00000000-0000-0000-0000-000000000000",
            "modelId": str(uuid.uuid4()), "occurredAt": "2025-06-01T11:00:00Z",
            "status": "success", "latencyMs": 5, "inputTokens": 1, "outputTokens": 2,
            "costEstimateCents": 1}
    data = json.dumps(body).encode()
    assert fast(data) is None
    assert careful(data) == "rejected"
    assert fast(json.dumps({**body, "orgId": str(uuid.uuid4())}).encode()) is not None
