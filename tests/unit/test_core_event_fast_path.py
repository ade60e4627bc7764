"""The ingest fast paths agree with the careful reader and the former implementations exactly."""

from __future__ import annotations

import enum
import hashlib
import json
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs
import pytest
from core_strategies import NOW, RETENTION, SNAKE, metadata_maps, usage_events, valid_payload
from hypothesis import given
from hypothesis import strategies as st

from analytics_core.errors import ValidationFailed
from analytics_core.event_fastpath import parse_plain
from analytics_core.event_parsing import _parse_carefully, parse_event
from analytics_core.events import MAX_INT, NO_TOKEN_DETAILS, UsageEvent, as_utc, to_canonical
from analytics_core.money import Cents
from analytics_core.rollups import NO_CLIENT, Rollup, RollupKey, build_rollups, stats_of
from analytics_core.timegrid import floor_bucket
from analytics_core.usecases.ingest import decode_payload

KEYS = [*SNAKE, "status", "metadata"]
ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


class Small(enum.IntEnum):
    """An int subclass: accepted by the careful reader, never by the plain path."""

    TWO = 2


class Text(str):
    """A str subclass."""

    __slots__ = ()


def outcome(parse: Callable[[object], UsageEvent], raw: object) -> tuple[Any, ...]:
    """What a parser does with a payload: the exact field values and types, or its errors."""
    try:
        event = parse(raw)
    except ValidationFailed as e:
        return ("rejected", e.errors, str(e))
    except Exception as e:  # whatever escapes must escape from both paths, the same way
        return ("raised", type(e), str(e))
    fingerprint = event.fingerprint()  # text with lone surrogates is rejected before this
    fields = attrs.astuple(event, recurse=False)
    shared = isinstance(raw, dict) and any(event.metadata is v for v in raw.values())
    return (
        "event", [(type(v), v) for v in fields], event.occurred_at.tzinfo is UTC, shared,
        [(type(k), type(v)) for k, v in event.metadata.items()], type(event.cost.units),
        fingerprint,
    )


def both_paths(
    raw: object, now: datetime = NOW, retention: timedelta = RETENTION
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """parse_event (plain path first) and the careful reader alone (at the test instant)."""
    return (
        outcome(lambda r: parse_event(r, now=now, raw_retention=retention), raw),
        outcome(lambda r: _parse_carefully(r, now=now, raw_retention=retention), raw),
    )


def iso(when: datetime) -> str:
    """RFC 3339 rendering with a Z offset."""
    return when.isoformat().replace("+00:00", "Z")


EDGES = [
    NOW + timedelta(minutes=5), NOW + timedelta(minutes=5, microseconds=1),
    NOW - RETENTION, NOW - RETENTION - timedelta(microseconds=1),
]


@st.composite
def timestamps(draw: st.DrawFn, when: datetime) -> str:
    """`when` spelt in RFC 3339-ish ways: Z/z/numeric offsets, t/space/_ separators, 0-9
    fraction digits; sometimes another instant (window edges, far years) instead."""
    when = draw(st.sampled_from([when, when, when, *EDGES]) | st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ))
    minutes = draw(
        st.sampled_from([0, 0, 0, 1, -1, 345, -240, 1439, -1439]) | st.integers(-1439, 1439)
    )
    local = when.replace(tzinfo=None) + timedelta(minutes=minutes)
    sep = draw(st.sampled_from(["T", "T", "t", " ", "_"]))
    digits = draw(st.sampled_from([None, None, 0, 1, 2, 3, 6, 6, 7, 9]))
    extra = draw(st.text(alphabet="0123456789", min_size=3, max_size=3))
    fraction = "" if digits is None else "." + (f"{local.microsecond:06d}" + extra)[:digits]
    if minutes == 0:
        zone = draw(st.sampled_from(["Z", "Z", "z", "+00:00", "-00:00", "+0000", "", "Z\n", "ZZ"]))
    else:
        hours, mins = divmod(abs(minutes), 60)
        colon = draw(st.sampled_from([":", ":", ""]))
        zone = f"{'+' if minutes > 0 else '-'}{hours:02}{colon}{mins:02}"
    return (
        f"{local.year:04}-{local.month:02}-{local.day:02}{sep}"
        f"{local.hour:02}:{local.minute:02}:{local.second:02}{fraction}{zone}"
    )


ODD_TIMES = [
    "2025-02-30T00:00:00Z", "2025-06-01T24:00:00Z", "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01", "2025-W22-7T11:58:30Z",
    "20250601T115830Z", "2025-06-01T11:58:30,5Z", "٢٠٢٥-06-01T11:58:30Z", "2025-06-01",
    "2025-06-01T11:58:30.Z", "2025-06-01T11:58:30.1234567Z", 1_748_779_110,
]
ODD_IDS = [
    ID.upper(), "{" + ID + "}", "urn:uuid:" + ID, ID.replace("-", ""), " " + ID, ID + "\n",
    ID[:-1], ID.replace("-", "", 1) + "-", "", "x" * 36, "0f8f_ad5b-d9cb-469f-a165-70867728950e",
    Text(ID), 12, uuid.UUID(ID),
]
ODD_COUNTS = [0, MAX_INT, MAX_INT + 1, 2**64, -1, True, False, Small.TWO, 2.0, 1.5, "5"]
ODD_COSTS = [
    Decimal("1e30"), Decimal("-0"), Decimal("0.00005"), Decimal("0.00015"), Decimal("sNaN"),
    Decimal("NaN"), Decimal("-Infinity"), Decimal("1e-30"), Decimal("922337203685477.5807"),
    Decimal("922337203685477.58075"), Decimal("922337203685477.5808"), Decimal("1E+2"),
    Decimal("-0.00001"), Decimal("-0.00005"), Decimal("-0.00006"), "12.3400", "7", "1e3", " 1",
    "1.5\n", "-1", "0.1", "٣", "922337203685477.5807", "922337203685477.5808", Text("1"), 0.1,
    1.5, float("nan"), 0, 922337203685477, 922337203685478, 10**16, -1, True, Small.TWO,
]
ODD_STATUSES = ["SUCCESS", "ok", "", Text("success"), 1, ["success"], "error", "throttled"]
ODD_TEXTS = ["", "c" * 128, "c" * 129, "é" * 128, "é" * 129, "\ud800", "\x00", Text("t"), 5, []]
ODD_METADATA: list[object] = [
    {"k": "x" * 4089}, {"k": "x" * 4090}, {"k": "x" * 670}, {"k": "\x01" * 675},
    {"k": "\x01" * 680}, {"k": "\x01" * 681}, {"k": "\x01" * 682},
    {f"k{i}": "v" for i in range(32)}, {f"k{i}": "v" for i in range(33)},
    {"k": "\ud800"}, {"\ud800": "v"}, {"k": "é"}, {"k": "é" * 2100}, {"k": 1}, {1: "v"},
    {"k": None}, OrderedDict(k="v"), {Text("k"): "v"}, {"k": Text("v")}, {}, [], "k=v",
]
ODD_DETAILS: list[object] = [
    {}, {"cacheReadTokens": 0}, {"cacheReadTokens": 1}, {"reasoningTokens": MAX_INT},
    {"cacheReadTokens": -1}, {"cacheReadTokens": True}, {"cacheReadTokens": 1.0},
    {"cacheReadTokens": "1"}, {"cacheReadTokens": None}, {"cache_read_tokens": 1},
    {"cacheReadTokens": 1, "cache_read_tokens": 2}, {"unknown": 1}, {"audioOutputTokens": 10**9},
    {"audioOutputTokens": 10**9 + 1}, {"cacheWriteTokens": 2**64}, [], "x", 3,
    {"cacheReadTokens": 10**9, "cacheWriteTokens": 10**9}, {Text("reasoningTokens"): 1},
]
ODD_BY_KEY: dict[str, list[object]] = {
    **dict.fromkeys(["eventId", "orgId", "modelId", "actorId"], ODD_IDS),
    "occurredAt": ODD_TIMES + [iso(when) for when in EDGES],
    **dict.fromkeys(["latencyMs", "inputTokens", "outputTokens"], ODD_COUNTS),
    "costEstimateCents": ODD_COSTS,
    "status": ODD_STATUSES,
    **dict.fromkeys(["clientId", "errorCode"], ODD_TEXTS),
    "metadata": ODD_METADATA,
    "tokenDetails": ODD_DETAILS,
}
odd_values = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 3), st.floats(), st.decimals(),
    st.text(max_size=12), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.text(max_size=3) | st.integers(), max_size=3),
)
odd_by_key: dict[str, st.SearchStrategy[Any]] = {
    key: st.sampled_from(values) | odd_values for key, values in ODD_BY_KEY.items()
}
odd_by_key["metadata"] |= metadata_maps() | st.dictionaries(
    st.text(st.characters(max_codepoint=0x7F), max_size=3),
    st.text(st.characters(max_codepoint=0x7F), max_size=800), max_size=3,
)


@st.composite
def cost_spellings(draw: st.DrawFn, cost: Cents) -> object:
    """The same amount as a JSON number would decode, a canonical string, an int or a float."""
    exact = cost.exact_str()
    choices: list[object] = [Decimal(exact), Decimal(exact).normalize(), exact, float(exact)]
    if cost.units % 10_000 == 0:
        choices.append(cost.units // 10_000)
    return draw(st.sampled_from(choices))


@st.composite
def near_valid_payloads(draw: st.DrawFn) -> dict[str, Any]:
    """A valid payload, its time and cost spelt in various ways, with nothing, one key or a few
    keys dropped, respelt in snake_case, doubled or given an odd value, and extra keys."""
    event = draw(usage_events())
    payload: dict[str, Any] = to_canonical(event)
    payload["costEstimateCents"] = draw(cost_spellings(event.cost))
    if draw(st.sampled_from([False, False, True])):
        payload["occurredAt"] = draw(timestamps(event.occurred_at))
    for key in ("actorId", "clientId", "errorCode", "metadata"):
        if payload[key] in (None, {}) and draw(st.booleans()):
            del payload[key]
    if not event.token_details and draw(st.booleans()):
        del payload["tokenDetails"]
    size = draw(st.sampled_from([0, 1, 1, 1, 2, 4]))
    for key in draw(st.lists(st.sampled_from(KEYS), min_size=size, max_size=size, unique=True)):
        action = draw(st.sampled_from(["drop", "snake", "snake", "both", "odd", "odd", "none"]))
        value = payload.pop(key, None)
        snake = SNAKE.get(key, key)
        odd = draw(odd_by_key[key])
        if action == "snake":
            payload[snake] = value
        elif action == "both":
            payload[key], payload[snake] = value, draw(st.sampled_from([value, odd]))
        elif action == "odd":
            payload[key] = odd
        elif action == "none":
            payload[key] = None
    payload.update(draw(st.dictionaries(st.sampled_from(["region", "extra", "_id"]), odd_values)))
    return payload


@given(near_valid_payloads())
def test_plain_and_careful_paths_agree_on_near_valid_payloads(payload: dict[str, Any]) -> None:
    """The same event (values, types, fingerprint) or the same errors, in the same order."""
    fast, careful = both_paths(payload)
    assert fast == careful


BASES: list[dict[str, Any]] = [
    valid_payload(),
    valid_payload(
        actorId="a8098c1a-f86e-11da-bd1a-00112444be1e", clientId="key-1", errorCode="E",
        metadata={"region": "eu"}, costEstimateCents=Decimal("0.0125"), latencyMs=0,
    ),
]
SINGLE_EDITS: list[tuple[str, str, object]] = [
    *[(key, "odd", value) for key, values in ODD_BY_KEY.items() for value in values],
    *[(key, "odd snake", value) for key, values in ODD_BY_KEY.items() for value in values[:3]],
    *[(key, action, None) for key in KEYS for action in ("drop", "snake", "none", "both")],
]


@pytest.mark.parametrize(("key", "action", "value"), SINGLE_EDITS)
def test_each_single_edit_of_a_valid_payload_is_read_alike(
    key: str, action: str, value: object
) -> None:
    """One key dropped, respelt, nulled, doubled or given an edge value: the paths agree."""
    for base in BASES:
        payload = dict(base)
        snake = SNAKE.get(key, key)
        if action == "odd":
            payload[key] = value
        elif action == "odd snake":
            payload[snake] = value  # beside the camelCase key when it is there
        elif action == "drop":
            payload.pop(key, None)
        elif action == "snake":
            payload[snake] = payload.pop(key, None)
        elif action == "none":
            payload[key] = None
        else:
            payload[snake] = payload.get(key)
        fast, careful = both_paths(payload)
        assert fast == careful


@pytest.mark.parametrize(
    ("now", "retention"),
    [
        (NOW, timedelta(days=10**6)),
        (datetime.max.replace(tzinfo=UTC), RETENTION),
        (NOW, timedelta(0)),
        (datetime(2025, 6, 1, 11, 58, 30, 250_000, tzinfo=UTC), timedelta(microseconds=1)),
    ],
    ids=["past-year-1", "past-year-9999", "no-retention", "exact-instant"],
)
@pytest.mark.parametrize(
    "payload",
    [valid_payload(), valid_payload(occurredAt="x"), valid_payload(orgId=1)],
    ids=["valid", "bad-time", "bad-org"],
)
def test_windows_that_overflow_or_close_are_read_alike(
    now: datetime, retention: timedelta, payload: dict[str, Any]
) -> None:
    """A retention or instant that overflows datetime fails the same way in both paths."""
    fast, careful = both_paths(payload, now, retention)
    assert fast == careful


@given(near_valid_payloads(), st.sampled_from([OrderedDict, MappingProxyType, list, str]))
def test_other_containers_get_the_careful_reader(payload: dict[str, Any], kind: Any) -> None:
    """Mappings that are not plain dicts, and non-mappings, are read as before."""
    fast, careful = both_paths(kind(payload))
    assert fast == careful


@given(usage_events(rich=False), st.data())
def test_well_formed_producer_payloads_take_the_plain_path(
    event: UsageEvent, data: st.DataObject
) -> None:
    """A camelCase payload of plain JSON types with a UTC time is read by the plain path."""
    payload: dict[str, Any] = to_canonical(event)
    zone = data.draw(st.sampled_from(["Z", "+00:00"]))
    payload["occurredAt"] = payload["occurredAt"].replace("Z", zone)
    payload["costEstimateCents"] = data.draw(cost_spellings(event.cost).filter(
        lambda c: not isinstance(c, float)
    ))
    plain = parse_plain(payload, NOW, RETENTION)
    assert plain is not None
    assert outcome(lambda _: plain, payload) == both_paths(payload)[1]


def former_decode_payload(payload: object) -> object:
    """decode_payload before the shared decoder (json.loads per call)."""
    if isinstance(payload, bytes | bytearray | memoryview):
        try:
            payload = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValidationFailed([]) from e
    if isinstance(payload, str):
        try:
            return json.loads(payload, parse_float=Decimal)
        except ValueError as e:
            raise ValidationFailed([], f"message is not valid JSON: {e}") from e
    return payload


def decoded(decode: Callable[[object], object], payload: object) -> tuple[Any, ...]:
    """Decoded value (repr keeps Decimal apart from float) or the error text."""
    try:
        return ("ok", repr(decode(payload)))
    except ValidationFailed as e:
        return ("rejected", str(e).rsplit("message is not valid JSON: ", 1)[-1])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=8,
)


@given(
    st.one_of(json_values.map(json.dumps), st.text(max_size=30), st.just(" ")),
    st.sampled_from(["", "\ufeff", " ", "\ufeff\ufeff"]),
    st.sampled_from([str, str.encode, lambda s: bytearray(s.encode())]),
)
def test_decode_payload_decodes_and_refuses_like_json_loads(
    text: str, prefix: str, form: Callable[[str], object]
) -> None:
    """Same values, same 'not valid JSON' messages (a BOM included) as json.loads per call."""
    payload = form(prefix + text)
    assert decoded(decode_payload, payload) == decoded(former_decode_payload, payload)


def former_fingerprint(event: UsageEvent) -> str:
    """UsageEvent.fingerprint as it was written before the fast paths."""
    optional = [
        "\x00" if v is None else str(v) for v in (event.actor_id, event.client_id, event.error_code)
    ]
    parts = [
        str(event.event_id), str(event.org_id), str(event.model_id),
        str((event.occurred_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)),
        event.status.value, str(event.latency_ms), str(event.input_tokens),
        str(event.output_tokens), str(event.cost.units), *optional,
        json.dumps(event.metadata, sort_keys=True, separators=(",", ":")) if event.metadata else "",
    ]
    if event.token_details:  # events with token categories (SPEC §12) hash them after the rest
        parts += ["td", *map(str, event.token_details.as_tuple())]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


wide_events = usage_events(
    start=datetime(1, 1, 2, tzinfo=UTC), end=datetime(9999, 12, 30, tzinfo=UTC)
)


class LoudUUID(uuid.UUID):
    """A UUID subclass with its own text."""

    def __str__(self) -> str:
        return super().__str__().upper()


@given(usage_events() | wide_events, st.sampled_from([None, Small.TWO]))
def test_fingerprint_equals_the_former_formula(event: UsageEvent, count: Small | None) -> None:
    """Same hex digest as before for every event, ids repeated or not, subclasses too; an event
    without token categories keeps the digest it had before they existed."""
    if count is not None:
        event = attrs.evolve(event, latency_ms=count, output_tokens=count,
                             token_details=NO_TOKEN_DETAILS)
    again = attrs.evolve(event, event_id=uuid.uuid4())  # org and model ids now remembered
    loud = attrs.evolve(event, org_id=LoudUUID(int=event.org_id.int))
    for e in (event, again, loud, again):
        assert e.fingerprint() == former_fingerprint(e)


def former_as_utc(value: datetime) -> datetime:
    """as_utc before its UTC shortcut."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(UTC)


@given(st.datetimes(timezones=st.none() | st.just(UTC) | st.timezones() | st.sampled_from(
    [timezone(timedelta(0)), timezone(timedelta(hours=-3))]
)))
def test_as_utc_equals_the_former_conversion(value: datetime) -> None:
    """Same instant, same tzinfo object, same refusal of naive datetimes."""
    try:
        expected: Any = former_as_utc(value)
    except (ValueError, OverflowError) as e:
        expected = type(e)
    try:
        got: Any = as_utc(value)
    except (ValueError, OverflowError) as e:
        got = type(e)
    assert got == expected
    if isinstance(expected, datetime):
        assert (got.tzinfo, got.utcoffset()) == (expected.tzinfo, expected.utcoffset())


def former_count_check(name: str, value: object) -> str | None:
    """The error UsageEvent raised for a count value before the plain-int shortcut."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        return f"{name} must be an integer >= 0"
    return None


@given(
    usage_events(rich=False),
    st.sampled_from(["latency_ms", "input_tokens", "output_tokens"]),
    st.sampled_from([0, 1, MAX_INT, MAX_INT + 1, -1, True, False, Small.TWO, 2.0, "3", None]),
)
def test_event_constructor_refuses_counts_as_before(
    event: UsageEvent, name: str, value: object
) -> None:
    """The constructor accepts and refuses exactly the count values it did, with its message."""
    expected = former_count_check(name, value)
    if expected is None:
        assert getattr(attrs.evolve(event, **{name: value}), name) is value
    else:
        with pytest.raises(ValueError, match=f"^{expected}$"):
            attrs.evolve(event, **{name: value})


def former_build_rollups(events: list[UsageEvent]) -> list[Rollup]:
    """build_rollups keyed by UUIDs and floor_bucket datetimes, as it was."""
    groups: dict[tuple[uuid.UUID, uuid.UUID, str, datetime], list[UsageEvent]] = {}
    for e in events:
        key = (e.org_id, e.model_id, e.client_id or NO_CLIENT, floor_bucket(e.occurred_at))
        groups.setdefault(key, []).append(e)
    return [Rollup(RollupKey(*k), stats_of(groups[k])) for k in sorted(groups)]


ORGS = [uuid.UUID(int=2**127 + 1), uuid.UUID(int=5), uuid.UUID(int=2**128 - 1)]
pooled = usage_events(
    orgs=ORGS, models=ORGS, clients=[None, "", "a", "b"], rich=False,
    start=datetime(1969, 12, 31, 23, tzinfo=UTC), end=datetime(1970, 1, 1, 1, tzinfo=UTC),
)


@given(st.lists(usage_events() | wide_events | pooled, max_size=40))
def test_build_rollups_equals_the_former_grouping(events: list[UsageEvent]) -> None:
    """Same keys (UTC bucket starts), same order, same statistics as grouping by UUID keys."""
    got, expected = build_rollups(events), former_build_rollups(events)
    assert got == expected
    assert all(r.key.bucket_start.tzinfo is UTC for r in got)


def test_the_nil_org_leaves_the_plain_path_for_the_careful_readers_error() -> None:
    """The plain path does not read an event of the nil org: the careful reader rejects it."""
    payload = valid_payload(orgId="00000000-0000-0000-0000-000000000000")
    assert parse_plain(payload, NOW, RETENTION) is None
    with pytest.raises(ValidationFailed):
        parse_event(payload, now=NOW, raw_retention=RETENTION)
