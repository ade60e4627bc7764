"""The usage event contract (SPEC §2): parsing, each rejection rule, canonical form, fingerprint."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from core_strategies import (
    NOW,
    RETENTION,
    SNAKE,
    cents,
    token_details,
    usage_events,
    valid_payload,
)
from hypothesis import given
from hypothesis import strategies as st

from analytics_core.errors import ValidationFailed
from analytics_core.event_parsing import parse_event, parse_time
from analytics_core.events import Status, TokenDetails, UsageEvent, as_utc, to_canonical
from analytics_core.money import Cents


def parse(raw: object) -> UsageEvent:
    """parse_event at the fixed test instant with a 400-day retention."""
    return parse_event(raw, now=NOW, raw_retention=RETENTION)


def rejected_fields(raw: object) -> list[str]:
    """Field names of every error parse_event reports for a payload."""
    with pytest.raises(ValidationFailed) as info:
        parse(raw)
    return [e.field for e in info.value.errors]


def iso(when: datetime) -> str:
    """RFC 3339 rendering with a Z offset."""
    return when.isoformat().replace("+00:00", "Z")


def test_valid_camel_case_payload_parses_to_exact_values() -> None:
    """Every camelCase field lands in the value object with its exact value."""
    event = parse(
        valid_payload(
            actorId="a8098c1a-f86e-11da-bd1a-00112444be1e",
            clientId="key-1",
            errorCode=None,
            metadata={"region": "eu"},
            costEstimateCents=Decimal("0.0125"),
        )
    )
    assert event.event_id == uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e")
    assert event.occurred_at == datetime(2025, 6, 1, 11, 58, 30, 250_000, tzinfo=UTC)
    assert (event.latency_ms, event.input_tokens, event.output_tokens) == (120, 10, 20)
    assert event.cost == Cents(125)
    assert event.actor_id == uuid.UUID("a8098c1a-f86e-11da-bd1a-00112444be1e")
    assert (event.client_id, event.error_code, dict(event.metadata)) == (
        "key-1",
        None,
        {"region": "eu"},
    )


def test_snake_case_payload_parses_like_camel_case() -> None:
    """Every key may be spelled in snake_case."""
    camel = valid_payload(actorId=str(uuid.uuid4()), clientId="c", errorCode="E1")
    snake = {SNAKE.get(k, k): v for k, v in camel.items()}
    assert parse(snake) == parse(camel)


def test_camel_case_wins_when_both_spellings_are_present() -> None:
    """With both spellings of a key, the canonical camelCase one is read."""
    event = parse(valid_payload(latencyMs=5, latency_ms=9))
    assert event.latency_ms == 5


def test_unknown_keys_are_ignored() -> None:
    """Keys outside the contract neither fail nor change the event."""
    assert parse(valid_payload(region="eu", extra={"a": [1]})) == parse(valid_payload())


def test_optional_fields_default_to_none_and_empty() -> None:
    """actorId, clientId, errorCode and metadata may be absent or null."""
    event = parse(valid_payload(actorId=None, clientId=None, errorCode=None, metadata=None))
    assert (event.actor_id, event.client_id, event.error_code, dict(event.metadata)) == (
        None,
        None,
        None,
        {},
    )


def test_offsets_are_normalised_to_utc() -> None:
    """An instant written with a +05:45 offset is stored as the same instant in UTC."""
    event = parse(valid_payload(occurredAt="2025-06-01T17:43:30+05:45"))
    assert event.occurred_at == datetime(2025, 6, 1, 11, 58, 30, tzinfo=UTC)
    assert event.occurred_at.tzinfo is UTC


def test_non_object_payload_is_rejected_as_a_whole() -> None:
    """A payload that is not a JSON object is reported under '$'."""
    assert rejected_fields(["not", "an", "object"]) == ["$"]


FUTURE_LIMIT = NOW + timedelta(minutes=5)
RETENTION_LIMIT = NOW - RETENTION

BAD_VALUES: list[tuple[str, object]] = [
    *[(key, v) for key in ("eventId", "orgId", "modelId") for v in ("not-a-uuid", 12, "", None)],
    ("actorId", "not-a-uuid"),
    ("actorId", 7),
    ("occurredAt", None),
    ("occurredAt", "2025-06-01T11:58:30"),
    ("occurredAt", "2025-06-01"),
    ("occurredAt", "2025-06-01T11:58:30+0000"),
    ("occurredAt", "01/06/2025 11:58"),
    ("occurredAt", "2025-02-30T00:00:00Z"),
    ("occurredAt", 1_748_779_110),
    ("occurredAt", iso(FUTURE_LIMIT + timedelta(microseconds=1))),
    ("occurredAt", iso(RETENTION_LIMIT - timedelta(microseconds=1))),
    ("status", None),
    ("status", "ok"),
    ("status", "SUCCESS"),
    ("status", 1),
    ("status", ["success"]),
    *[
        (key, v)
        for key in ("latencyMs", "inputTokens", "outputTokens")
        for v in (None, -1, 1.5, 2.0, True, False, "5", 2**63)
    ],
    ("costEstimateCents", None),
    ("costEstimateCents", -1),
    ("costEstimateCents", Decimal("-0.01")),
    ("costEstimateCents", True),
    ("costEstimateCents", "abc"),
    ("costEstimateCents", "-1"),
    ("costEstimateCents", "1e3"),
    ("costEstimateCents", " 1"),
    ("costEstimateCents", "1.5\n"),
    ("costEstimateCents", float("nan")),
    ("costEstimateCents", Decimal("Infinity")),
    ("costEstimateCents", Decimal("1e30")),
    ("costEstimateCents", 10**16),
    ("costEstimateCents", [1]),
    ("clientId", "c" * 129),
    ("clientId", 5),
    ("errorCode", "e" * 129),
    ("errorCode", {"code": 1}),
    ("metadata", ["a"]),
    ("metadata", "k=v"),
    ("metadata", {"k": 1}),
    ("metadata", {"k": None}),
    ("metadata", {1: "v"}),
    ("metadata", {f"k{i}": "v" for i in range(33)}),
    ("metadata", {"k": "x" * 4089}),
]


@pytest.mark.parametrize(
    ("field", "value"), BAD_VALUES, ids=[f"{f}={v!r:.30}" for f, v in BAD_VALUES]
)
def test_each_violation_is_rejected_naming_its_field(field: str, value: object) -> None:
    """One bad field yields exactly one error, naming that field."""
    assert rejected_fields(valid_payload(**{field: value})) == [field]


@pytest.mark.parametrize(
    "field",
    [
        "eventId",
        "orgId",
        "modelId",
        "occurredAt",
        "status",
        "latencyMs",
        "inputTokens",
        "outputTokens",
        "costEstimateCents",
    ],
)
def test_each_required_field_is_required(field: str) -> None:
    """Dropping a required key is reported as that field."""
    payload = valid_payload()
    del payload[field]
    assert rejected_fields(payload) == [field]


def test_several_violations_are_reported_together() -> None:
    """Every bad field is named in one ValidationFailed, in contract order."""
    payload = valid_payload(orgId="x", status="meh", latencyMs=-3, metadata={"k": 1})
    del payload["costEstimateCents"]
    assert rejected_fields(payload) == [
        "orgId",
        "status",
        "latencyMs",
        "costEstimateCents",
        "metadata",
    ]


def test_validation_failure_is_a_value_error_with_a_readable_message() -> None:
    """ValidationFailed is a ValueError whose message names the field and reason."""
    with pytest.raises(ValueError, match="latencyMs: must be an integer >= 0"):
        parse(valid_payload(latencyMs=-1))


@pytest.mark.parametrize(
    "when", [FUTURE_LIMIT, RETENTION_LIMIT, NOW, NOW - timedelta(days=399)], ids=str
)
def test_occurred_at_limits_are_inclusive(when: datetime) -> None:
    """Exactly 5 minutes ahead and exactly at the retention edge are still accepted."""
    assert parse(valid_payload(occurredAt=iso(when))).occurred_at == when


@pytest.mark.parametrize(
    "text",
    [
        "2025-06-01T11:58:30Z",
        "2025-06-01t11:58:30z",
        "2025-06-01 11:58:30+00:00",
        "2025-06-01T07:58:30-04:00",
        "2025-06-01T11:58:30.123456789Z",
    ],
)
def test_rfc3339_spellings_with_offset_are_accepted(text: str) -> None:
    """Z, lower-case t/z, a space separator, numeric offsets and nanoseconds all parse."""
    assert parse_time(text).replace(microsecond=0) == datetime(2025, 6, 1, 11, 58, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "units"),
    [
        (Decimal("0.00005"), 0),
        (Decimal("0.00015"), 2),
        (Decimal("12.34567"), 123_457),
        (0, 0),
        (3, 30_000),
        (0.5, 5_000),
        ("12.3400", 123_400),
        ("7", 70_000),
    ],
)
def test_cost_accepts_fractional_cents_rounded_half_even(value: object, units: int) -> None:
    """Costs keep 0.0001 cent exactly and round half-even beyond; canonical strings parse too."""
    assert parse(valid_payload(costEstimateCents=value)).cost == Cents(units)


@pytest.mark.parametrize("field", ["clientId", "errorCode"])
def test_text_fields_accept_exactly_128_characters(field: str) -> None:
    """128 characters is the inclusive limit for clientId and errorCode."""
    event = parse(valid_payload(**{field: "é" * 128}))
    assert "é" * 128 in (event.client_id, event.error_code)


def test_metadata_accepts_32_keys() -> None:
    """32 keys is the inclusive limit."""
    metadata = {f"k{i:02}": "v" for i in range(32)}
    assert parse(valid_payload(metadata=metadata)).metadata == metadata


def test_metadata_accepts_exactly_4_kib_serialised() -> None:
    """A map serialising to exactly 4096 bytes of compact UTF-8 JSON is accepted."""
    metadata = {"k": "x" * (4096 - len('{"k":""}'))}
    assert len(json.dumps(metadata, separators=(",", ":")).encode()) == 4096
    assert parse(valid_payload(metadata=metadata)).metadata == metadata


def test_metadata_size_counts_utf8_bytes_not_characters() -> None:
    """Multi-byte characters count by their UTF-8 size."""
    assert rejected_fields(valid_payload(metadata={"k": "é" * 2100})) == ["metadata"]


def test_constructor_refuses_naive_times_and_negative_counts() -> None:
    """The value object validates itself, not only the parser."""
    event = parse(valid_payload())
    with pytest.raises(ValueError):
        attrs.evolve(event, occurred_at=datetime(2025, 6, 1))
    with pytest.raises(ValueError):
        attrs.evolve(event, latency_ms=-1)
    with pytest.raises(ValueError):
        attrs.evolve(event, input_tokens=True)
    with pytest.raises(ValueError):
        attrs.evolve(event, cost=Cents(-1))


def test_as_utc_refuses_naive_datetimes() -> None:
    """Naive datetimes carry no instant and are refused."""
    with pytest.raises(ValueError):
        as_utc(datetime(2025, 1, 1))
    assert as_utc(datetime(2025, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == datetime(
        2025, 1, 1, tzinfo=UTC
    )


@given(usage_events())
def test_canonical_form_parses_back_to_the_same_event(event: UsageEvent) -> None:
    """parse_event(to_canonical(e)) == e."""
    assert parse(to_canonical(event)) == event


@given(usage_events())
def test_canonical_form_survives_a_json_text_round_trip(event: UsageEvent) -> None:
    """The canonical form is plain JSON and parses back after json.dumps/loads (Decimal floats)."""
    text = json.dumps(to_canonical(event))
    assert parse(json.loads(text, parse_float=Decimal)) == event


@given(usage_events())
def test_snake_case_canonical_form_parses_back_to_the_same_event(event: UsageEvent) -> None:
    """The snake_case spelling of the canonical form round-trips too."""
    snake = {SNAKE.get(k, k): v for k, v in to_canonical(event).items()}
    assert parse(snake) == event


@given(usage_events())
def test_asdict_and_evolve_round_trip(event: UsageEvent) -> None:
    """The value object rebuilds from its fields unchanged."""
    assert UsageEvent(**attrs.asdict(event, recurse=False)) == event
    assert attrs.evolve(event) == event


@given(usage_events())
def test_fingerprint_is_stable(event: UsageEvent) -> None:
    """Equal content gives the same fingerprint, whatever the metadata insertion order."""
    reordered = attrs.evolve(event, metadata=dict(reversed(list(event.metadata.items()))))
    assert (
        event.fingerprint() == reordered.fingerprint() == parse(to_canonical(event)).fingerprint()
    )
    assert len(event.fingerprint()) == 64


CHANGES: dict[str, st.SearchStrategy[Any]] = {
    "event_id": st.uuids(),
    "org_id": st.uuids(),
    "model_id": st.uuids(),
    "occurred_at": st.datetimes(timezones=st.just(UTC)),
    "status": st.sampled_from(["success", "error", "timeout", "throttled"]),
    "latency_ms": st.integers(min_value=0, max_value=2**63 - 1),
    "input_tokens": st.integers(min_value=0, max_value=2**63 - 1),
    "output_tokens": st.integers(min_value=0, max_value=2**63 - 1),
    "cost": cents,
    "actor_id": st.none() | st.uuids(),
    "client_id": st.none() | st.text(max_size=128),
    "error_code": st.none() | st.text(max_size=128),
    "metadata": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    "token_details": st.none(),  # drawn within the event's totals in the test
}


@given(usage_events(), st.sampled_from(sorted(CHANGES)), st.data())
def test_fingerprint_changes_with_any_field(
    event: UsageEvent, name: str, data: st.DataObject
) -> None:
    """Changing any one field's value changes the fingerprint."""
    value = data.draw(CHANGES[name], label=name)
    if name == "status":
        value = Status(value)
    elif name == "input_tokens":
        value = max(value, event.token_details.input_parts)
    elif name == "output_tokens":
        value = max(value, event.token_details.output_parts)
    elif name == "token_details":
        value = data.draw(token_details(event.input_tokens, event.output_tokens), label=name)
    changed = attrs.evolve(event, **{name: value})
    if changed == event:
        return
    assert changed.fingerprint() != event.fingerprint()


def test_event_key_is_org_then_event() -> None:
    """The dedupe key is (org_id, event_id)."""
    event = parse(valid_payload())
    assert event.key == (event.org_id, event.event_id)


_PINNED_IDS = (
    uuid.UUID("0f8fad5b-d9cb-469f-a165-70867728950e"),
    uuid.UUID("7c9e6679-7425-40de-944b-e07fc1f90ae7"),
    uuid.UUID("16fd2706-8baf-433b-82eb-8c7fada847da"),
)
PINNED_FINGERPRINTS: list[tuple[UsageEvent, str]] = [
    (
        UsageEvent(
            *_PINNED_IDS, occurred_at=datetime(2025, 6, 1, 11, 58, 30, 250_000, tzinfo=UTC),
            status=Status.SUCCESS, latency_ms=120, input_tokens=10, output_tokens=20,
            cost=Cents(10_000),
        ),
        "2356521542e00aa64481bf498dd6787d41bf1cbe0ad814b647bc662fe20370f6",
    ),
    (
        UsageEvent(
            *_PINNED_IDS,
            occurred_at=datetime(
                2025, 6, 1, 17, 43, 30, 123_456, tzinfo=timezone(timedelta(hours=5, minutes=45))
            ),
            status=Status.ERROR, latency_ms=0, input_tokens=2**63 - 1, output_tokens=0,
            cost=Cents(125), actor_id=uuid.UUID("a8098c1a-f86e-11da-bd1a-00112444be1e"),
            client_id="clé-1", error_code="", metadata={"zone": "eu", "région": "ouest", "a": ""},
        ),
        "138e14f3c47308f66a215b67dff43313def04f0c22d346cfe541721ba8f95e19",
    ),
    (
        UsageEvent(
            uuid.UUID("00000000-0000-0000-0000-000000000001"),
            uuid.UUID("ffffffff-ffff-ffff-ffff-ffffffffffff"),
            _PINNED_IDS[2],
            occurred_at=datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
            status=Status.THROTTLED, latency_ms=7, input_tokens=1, output_tokens=2,
            cost=Cents(0), error_code="rate_limited", metadata={"k\x1f": 'v"\\\n'},
        ),
        "32342974eee413d7ad51964bc15193d3716e2ecec531151fa63ec949ae45dc21",
    ),
]


@pytest.mark.parametrize(
    ("event", "expected"), PINNED_FINGERPRINTS, ids=["minimal", "rich", "1969"]
)
def test_fingerprint_of_a_fixed_event_never_changes(event: UsageEvent, expected: str) -> None:
    """Fingerprints are stored in databases, so their value is pinned across versions."""
    assert event.fingerprint() == expected


@pytest.mark.parametrize(("field", "value"), [
    ("clientId", "web-\ud800"),
    ("errorCode", "\udfffE42"),
    ("metadata", {"trace": "x\ud83d"}),
    ("metadata", {"\udc00key": "v"}),
])
def test_text_with_a_lone_surrogate_is_rejected_naming_its_field(field: str,
                                                                  value: object) -> None:
    """JSON's \\ud800 escapes decode to lone surrogates, which no UTF-8 store can keep: the
    field is rejected (so the message is dead-lettered) instead of failing its whole batch."""
    raw = {**valid_payload(), field: value}
    with pytest.raises(ValidationFailed) as info:
        parse(raw)
    assert [(e.field, e.reason) for e in info.value.errors] == [
        (field, "must be valid Unicode text (no unpaired surrogates)")]


def test_text_with_paired_surrogates_from_json_is_kept() -> None:
    """An escaped surrogate pair is one valid character (here an emoji), accepted as such."""
    raw = json.loads('{"clientId": "web-\\ud83d\\ude00", "metadata": {"k": "\\ud83d\\ude00"}}')
    event = parse({**valid_payload(), **raw})
    assert event.client_id == "web-\U0001f600"
    assert event.metadata == {"k": "\U0001f600"}


@pytest.mark.parametrize(("field", "value"), [
    ("clientId", "web-\x00"),
    ("errorCode", "\x00E42"),
    ("metadata", {"trace": "x\x00"}),
    ("metadata", {"k\x00ey": "v"}),
])
def test_text_with_nul_is_rejected_naming_its_field(field: str, value: object) -> None:
    """U+0000 is refused by PostgreSQL text and jsonb: the field is rejected (the message is
    dead-lettered) instead of failing its whole batch."""
    raw = {**valid_payload(), field: value}
    with pytest.raises(ValidationFailed) as info:
        parse(raw)
    assert [(e.field, e.reason) for e in info.value.errors] == [
        (field, "must not contain U+0000 (NUL)")]


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("inputTokens", 2**63 - 1, "must be at most 1000000000"),
    ("outputTokens", 10**9 + 1, "must be at most 1000000000"),
    ("latencyMs", 86_400_001, "must be at most 86400000"),
    ("costEstimateCents", "100000.0001", "must be at most 100000"),
    ("costEstimateCents", 2**63, "must be at most 100000"),
])
def test_counters_above_the_per_event_bounds_are_rejected_naming_the_field(
    field: str, value: object, reason: str,
) -> None:
    """The per-event bounds keep every stored sum inside int64 (docs/domain.md)."""
    with pytest.raises(ValidationFailed) as info:
        parse({**valid_payload(), field: value})
    assert [(e.field, e.reason) for e in info.value.errors] == [(field, reason)]


@pytest.mark.parametrize(("field", "value"), [
    ("inputTokens", 10**9), ("outputTokens", 10**9), ("latencyMs", 86_400_000),
    ("costEstimateCents", 100_000),
])
def test_counters_at_the_per_event_bounds_are_accepted(field: str, value: object) -> None:
    """The bounds themselves are valid values."""
    parse({**valid_payload(), field: value})


DETAIL_BAD_VALUES: list[tuple[object, str]] = [
    ([1], "tokenDetails"),
    ("cacheReadTokens=1", "tokenDetails"),
    ({"cacheReadTokens": -1}, "tokenDetails.cacheReadTokens"),
    ({"cacheWriteTokens": 1.5}, "tokenDetails.cacheWriteTokens"),
    ({"audioInputTokens": True}, "tokenDetails.audioInputTokens"),
    ({"reasoningTokens": "5"}, "tokenDetails.reasoningTokens"),
    ({"audio_output_tokens": 10**9 + 1}, "tokenDetails.audioOutputTokens"),
    ({"cacheReadTokens": 101}, "tokenDetails"),  # more than inputTokens (100)
    ({"cacheReadTokens": 60, "cacheWriteTokens": 30, "audioInputTokens": 11}, "tokenDetails"),
    ({"reasoningTokens": 41}, "tokenDetails"),  # more than outputTokens (40)
    ({"reasoningTokens": 20, "audioOutputTokens": 21}, "tokenDetails"),
]


@pytest.mark.parametrize(("value", "field"), DETAIL_BAD_VALUES,
                         ids=[f"{v!r:.40}" for v, _ in DETAIL_BAD_VALUES])
def test_bad_token_categories_reject_the_event_naming_the_field(value: object, field: str) -> None:
    """A category that is not a count, or parts adding up to more than their total, reject
    the event with one error naming tokenDetails (or the category)."""
    payload = valid_payload(inputTokens=100, outputTokens=40, tokenDetails=value)
    assert rejected_fields(payload) == [field]


def test_token_categories_are_read_in_either_spelling_with_absent_ones_zero() -> None:
    """camelCase or snake_case keys (inside and outside), unknown keys ignored, null or {}
    meaning none; parts may add up to exactly their total."""
    payload = valid_payload(inputTokens=100, outputTokens=40)
    full = parse({**payload, "tokenDetails": {
        "cacheReadTokens": 60, "cache_write_tokens": 30, "audioInputTokens": 10,
        "reasoningTokens": 25, "audioOutputTokens": 15, "videoTokens": 7}})
    assert full.token_details == TokenDetails(60, 30, 10, 25, 15)
    snake = parse({**payload, "token_details": {"reasoning_tokens": 3}})
    assert snake.token_details == TokenDetails(reasoning=3)
    for none in (None, {}, {"cacheReadTokens": 0}):
        assert parse({**payload, "tokenDetails": none}).token_details == TokenDetails()
    assert parse(payload).token_details == TokenDetails()


def test_the_constructor_refuses_categories_beyond_their_totals() -> None:
    """Library callers building events get the same rule as the edges."""
    event = parse(valid_payload(inputTokens=10, outputTokens=5))
    with pytest.raises(ValueError, match="must not exceed inputTokens"):
        attrs.evolve(event, token_details=TokenDetails(cache_read=11))
    with pytest.raises(ValueError, match="must not exceed outputTokens"):
        attrs.evolve(event, token_details=TokenDetails(reasoning=3, audio_output=3))
    with pytest.raises(ValueError, match=r"tokenDetails\.cacheWriteTokens"):
        attrs.evolve(event, token_details=TokenDetails(cache_write=-1))


NIL = "00000000-0000-0000-0000-000000000000"


def test_the_nil_uuid_is_not_an_org() -> None:
    """The nil UUID is the platform's own org (global price versions are audited there, and
    dead letters whose org could not be read are stored under it): an event naming it is a
    field error on `orgId`, on every reader, so no tenant's data ever lands there."""
    for spelling in (NIL, NIL.upper(), NIL.replace("-", "")):
        assert rejected_fields(valid_payload(orgId=spelling)) == ["orgId"]
    with pytest.raises(ValidationFailed) as info:
        parse(valid_payload(orgId=NIL))
    assert "nil UUID" in info.value.errors[0].reason
    assert parse(valid_payload(modelId=NIL, actorId=NIL)).model_id == uuid.UUID(int=0)
