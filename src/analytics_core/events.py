"""The usage event (SPEC §2): value object, validation of raw payloads, dedupe fingerprint."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC as _UTC
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from hashlib import sha256
from typing import Any

import attrs

from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.money import UNITS_PER_CENT, Cents, decimal_units

MAX_FUTURE = timedelta(minutes=5)
MAX_CLIENT_ID = 128
MAX_ERROR_CODE = 128
MAX_METADATA_KEYS = 32
MAX_METADATA_BYTES = 4096
MAX_INT = 2**63 - 1
_NONE = "\x00"
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_MICROSECOND = timedelta(microseconds=1)
_PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_FINGERPRINT_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))
_METADATA_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)


class Status(StrEnum):
    """Outcome of one inference call."""

    SUCCESS = "success"
    ERROR = "error"
    TIMEOUT = "timeout"
    THROTTLED = "throttled"


def as_utc(value: datetime) -> datetime:
    """Normalise an aware datetime to UTC; naive datetimes are refused."""
    if value.tzinfo is _UTC and type(value) is datetime:
        return value  # what astimezone(UTC) returns for it, minus two calls
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(_UTC)


@attrs.frozen
class UsageEvent:
    """One validated inference call. Times are aware UTC datetimes; money is exact."""

    event_id: uuid.UUID
    org_id: uuid.UUID
    model_id: uuid.UUID
    occurred_at: datetime = attrs.field(converter=as_utc)
    status: Status
    latency_ms: int
    input_tokens: int
    output_tokens: int
    cost: Cents
    actor_id: uuid.UUID | None = None
    client_id: str | None = None
    error_code: str | None = None
    metadata: Mapping[str, str] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        if not (  # plain ints in range skip the general checks, which name the bad field
            type(self.latency_ms) is int and 0 <= self.latency_ms <= MAX_INT
            and type(self.input_tokens) is int and 0 <= self.input_tokens <= MAX_INT
            and type(self.output_tokens) is int and 0 <= self.output_tokens <= MAX_INT
        ):
            for name in ("latency_ms", "input_tokens", "output_tokens"):
                value = getattr(self, name)
                if isinstance(value, bool) or not isinstance(value, int) or not (
                    0 <= value <= MAX_INT
                ):
                    raise ValueError(f"{name} must be an integer >= 0")
        if self.cost.units < 0:
            raise ValueError("cost must be >= 0")

    @property
    def key(self) -> tuple[uuid.UUID, uuid.UUID]:
        """The dedupe key (org_id, event_id)."""
        return (self.org_id, self.event_id)

    def fingerprint(self) -> str:
        """Stable SHA-256 (hex) of the content, used to detect dedupe conflicts.

        Built from a unit-separated field list rather than the canonical JSON: it is on the
        ingest hot path, and every field, None included, is still told apart.
        """
        actor, client, error = self.actor_id, self.client_id, self.error_code
        parts = (
            str(self.event_id), _repeated_id_text(self.org_id), _repeated_id_text(self.model_id),
            str((self.occurred_at - _EPOCH) // _MICROSECOND), self.status._value_,
            str(self.latency_ms), str(self.input_tokens), str(self.output_tokens),
            str(self.cost.units),
            _NONE if actor is None else _repeated_id_text(actor),
            _NONE if client is None else str(client),
            _NONE if error is None else str(error),
            _FINGERPRINT_JSON.encode(self.metadata) if self.metadata else "",
        )
        return sha256("\x1f".join(parts).encode()).hexdigest()


_ID_TEXTS: dict[int, str] = {}
_MAX_CACHED_IDS = 4096


def _repeated_id_text(value: uuid.UUID) -> str:
    """str(value), remembered: org, model and actor ids repeat across events, and formatting a
    UUID costs as much as hashing the whole fingerprint."""
    if type(value) is not uuid.UUID:
        return str(value)
    text = _ID_TEXTS.get(value.int)
    if text is None:
        if len(_ID_TEXTS) >= _MAX_CACHED_IDS:
            _ID_TEXTS.clear()
        text = _ID_TEXTS[value.int] = str(value)
    return text


def to_canonical(event: UsageEvent) -> dict[str, Any]:
    """The canonical camelCase JSON form of an event (money as a 4-place decimal string)."""
    return {
        "eventId": str(event.event_id),
        "orgId": str(event.org_id),
        "modelId": str(event.model_id),
        "occurredAt": event.occurred_at.astimezone(_UTC).isoformat().replace("+00:00", "Z"),
        "status": event.status.value,
        "latencyMs": event.latency_ms,
        "inputTokens": event.input_tokens,
        "outputTokens": event.output_tokens,
        "costEstimateCents": event.cost.exact_str(),
        "actorId": str(event.actor_id) if event.actor_id else None,
        "clientId": event.client_id,
        "errorCode": event.error_code,
        "metadata": dict(event.metadata),
    }


_SNAKE = {
    "eventId": "event_id",
    "orgId": "org_id",
    "modelId": "model_id",
    "occurredAt": "occurred_at",
    "latencyMs": "latency_ms",
    "inputTokens": "input_tokens",
    "outputTokens": "output_tokens",
    "costEstimateCents": "cost_estimate_cents",
    "actorId": "actor_id",
    "clientId": "client_id",
    "errorCode": "error_code",
}


class _Reader:
    """Collects field errors while reading a raw payload."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.errors: list[FieldError] = []

    def get(self, key: str) -> tuple[bool, Any]:
        if key in self.raw:
            return True, self.raw[key]
        snake = _SNAKE.get(key)
        if snake is not None and snake in self.raw:
            return True, self.raw[snake]
        return False, None

    def fail(self, field: str, reason: str) -> None:
        self.errors.append(FieldError(field, reason))

    def uuid(self, key: str, *, required: bool) -> uuid.UUID | None:
        present, value = self.get(key)
        if not present or value is None:
            if required:
                self.fail(key, "is required")
            return None
        if not isinstance(value, str):
            self.fail(key, "must be a UUID string")
            return None
        try:
            return uuid.UUID(value)
        except ValueError:
            self.fail(key, "must be a UUID string")
            return None

    def count(self, key: str) -> int | None:
        present, value = self.get(key)
        if not present or value is None:
            self.fail(key, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
            self.fail(key, "must be an integer >= 0")
            return None
        return value

    def short_text(self, key: str, limit: int) -> str | None:
        present, value = self.get(key)
        if not present or value is None:
            return None
        if not isinstance(value, str):
            self.fail(key, "must be a string")
            return None
        if len(value) > limit:
            self.fail(key, f"must be at most {limit} characters")
            return None
        if not is_valid_unicode(value):
            self.fail(key, _NOT_UNICODE)
            return None
        return value


_NOT_UNICODE = "must be valid Unicode text (no unpaired surrogates)"


def is_valid_unicode(text: str) -> bool:
    """Whether `text` can be encoded (JSON's "\\ud800" escapes decode to lone surrogates, which
    UTF-8, PostgreSQL and the fingerprint all refuse)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_time(value: object) -> datetime:
    """Parse an RFC 3339 date-time with an explicit offset into an aware UTC datetime."""
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time with offset")
    text = value.replace("z", "Z").replace("Z", "+00:00").replace("t", "T")
    fraction = re.search(r"\.(\d+)", text)
    if fraction and len(fraction.group(1)) > 6:
        text = text.replace(fraction.group(0), "." + fraction.group(1)[:6])
    try:
        return datetime.fromisoformat(text).astimezone(_UTC)
    except (ValueError, OverflowError) as e:  # offsets can push year 1/9999 out of range
        raise ValueError("must be an RFC 3339 date-time with offset") from e


def parse_event(
    raw: object, *, now: datetime, raw_retention: timedelta
) -> UsageEvent:
    """Validate a decoded JSON payload into a UsageEvent; ValidationFailed names each bad field.

    Canonical keys are camelCase; snake_case spellings are accepted; unknown keys are ignored.
    JSON numbers for money should be decoded as Decimal (floats are accepted via their repr).
    """
    event = _parse_plain(raw, now, raw_retention) if type(raw) is dict else None
    return event if event is not None else _parse_carefully(
        raw, now=now, raw_retention=raw_retention
    )


# The fast path: a well-formed camelCase payload of plain JSON types (what producers send) is
# read with direct checks. It returns None at the first unusual thing (a snake_case key, a
# subclass, an offset other than UTC, a string to reject...) and `_parse_carefully` then reads the
# payload again, so every accepted value and every error message comes from the careful reader.
_PLAIN_TIME = re.compile(  # UTC as Z or +00:00 (isoformat's spelling): both parse to UTC itself
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|\+00:00)"
)
_STATUS_OF_TEXT = {s.value: s for s in Status}
_ABSENT: Any = object()
_UUIDS: dict[str, uuid.UUID] = {}  # org, model and actor ids repeat across events
_SMALL_METADATA_CHARS = MAX_METADATA_BYTES // 6  # any char takes at most 6 bytes (\u001f)


def _parse_plain(raw: dict[str, Any], now: datetime, retention: timedelta) -> UsageEvent | None:
    try:
        earliest, latest = now - retention, now + MAX_FUTURE
    except OverflowError:  # the careful reader meets this only when it has a time to compare
        return None
    get = raw.get
    status = get("status")
    status = _STATUS_OF_TEXT.get(status) if type(status) is str else None
    latency, tokens_in, tokens_out = get("latencyMs"), get("inputTokens"), get("outputTokens")
    if (  # cheap checks first: a payload bound for the careful reader wastes little here
        status is None
        or type(latency) is not int or not 0 <= latency <= MAX_INT
        or type(tokens_in) is not int or not 0 <= tokens_in <= MAX_INT
        or type(tokens_out) is not int or not 0 <= tokens_out <= MAX_INT
        or (when := _plain_time(get("occurredAt"), earliest, latest)) is None
        or (cost := _plain_cost(get("costEstimateCents"))) is None
        or (org_id := _plain_uuid(get("orgId"), cache=True)) is None
        or (model_id := _plain_uuid(get("modelId"), cache=True)) is None
        or (event_id := _plain_uuid(get("eventId"), cache=False)) is None  # unique: no cache
    ):
        return None
    actor = get("actorId", _ABSENT)
    if actor is _ABSENT:
        if "actor_id" in raw:
            return None
        actor = None
    elif actor is not None and (actor := _plain_uuid(actor, cache=True)) is None:
        return None
    client = _plain_text(raw, "clientId", "client_id", MAX_CLIENT_ID)
    error = _plain_text(raw, "errorCode", "error_code", MAX_ERROR_CODE)
    metadata = _plain_metadata(get("metadata"))
    if client is _ABSENT or error is _ABSENT or metadata is None:
        return None
    return UsageEvent(  # positionally, in field order: keywords cost a third more here
        event_id, org_id, model_id, when, status, latency, tokens_in, tokens_out, cost,
        actor, client, error, metadata,
    )


def _plain_uuid(value: object, *, cache: bool) -> uuid.UUID | None:
    if type(value) is not str:
        return None
    found = _UUIDS.get(value) if cache else None
    if found is None:
        try:
            found = uuid.UUID(value)
        except ValueError:
            return None
        if cache and len(value) == 36:
            if len(_UUIDS) >= _MAX_CACHED_IDS:
                _UUIDS.clear()
            _UUIDS[value] = found
    return found


def _plain_time(value: object, earliest: datetime, latest: datetime) -> datetime | None:
    if type(value) is not str or not _PLAIN_TIME.fullmatch(value):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if earliest <= when <= latest else None


def _plain_cost(value: object) -> Cents | None:
    if type(value) is int:
        units = value * UNITS_PER_CENT
    else:
        if type(value) is Decimal:
            amount = value
        elif type(value) is str and _PLAIN_DECIMAL.fullmatch(value):
            amount = Decimal(value)
        else:
            return None
        try:
            units = decimal_units(amount)
        except ValueError:
            return None
    return Cents(units) if 0 <= units <= MAX_INT else None


def _plain_text(raw: dict[str, Any], key: str, snake: str, limit: int) -> Any:
    """The text, None, or _ABSENT when the careful reader must decide."""
    value = raw.get(key, _ABSENT)
    if value is _ABSENT:
        return _ABSENT if snake in raw else None
    if value is None or (type(value) is str and len(value) <= limit
                         and is_valid_unicode(value)):
        return value
    return _ABSENT


def _plain_metadata(value: object) -> dict[str, str] | None:
    if value is None:
        return {}
    if type(value) is not dict or len(value) > MAX_METADATA_KEYS:
        return None
    chars = 0
    for k, v in value.items():
        # Non-ASCII text goes the careful way: its UTF-8 size (and lone surrogates) need encoding.
        if type(k) is not str or type(v) is not str or not k.isascii() or not v.isascii():
            return None
        chars += len(k) + len(v) + 4  # quotes, colon, comma
    return dict(value) if chars <= _SMALL_METADATA_CHARS else None


def _parse_carefully(
    raw: object, *, now: datetime, raw_retention: timedelta
) -> UsageEvent:
    """`parse_event` for any payload: reads each field in contract order, collecting errors."""
    if not isinstance(raw, Mapping):
        raise ValidationFailed([FieldError("$", "event must be a JSON object")])
    r = _Reader(raw)
    event_id = r.uuid("eventId", required=True)
    org_id = r.uuid("orgId", required=True)
    model_id = r.uuid("modelId", required=True)
    actor_id = r.uuid("actorId", required=False)
    occurred_at = _read_occurred_at(r, now, raw_retention)
    status = _read_status(r)
    latency = r.count("latencyMs")
    tokens_in = r.count("inputTokens")
    tokens_out = r.count("outputTokens")
    cost = _read_cost(r)
    client_id = r.short_text("clientId", MAX_CLIENT_ID)
    error_code = r.short_text("errorCode", MAX_ERROR_CODE)
    metadata = _read_metadata(r)
    if r.errors:
        raise ValidationFailed(r.errors, "invalid usage event")
    assert event_id
    assert org_id
    assert model_id
    assert occurred_at
    assert status
    assert cost is not None
    assert latency is not None
    assert tokens_in is not None
    assert tokens_out is not None
    return UsageEvent(
        event_id=event_id,
        org_id=org_id,
        model_id=model_id,
        occurred_at=occurred_at,
        status=status,
        latency_ms=latency,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cost=cost,
        actor_id=actor_id,
        client_id=client_id,
        error_code=error_code,
        metadata=metadata,
    )


def _read_occurred_at(r: _Reader, now: datetime, retention: timedelta) -> datetime | None:
    present, value = r.get("occurredAt")
    if not present or value is None:
        r.fail("occurredAt", "is required")
        return None
    try:
        when = parse_time(value)
    except ValueError as e:
        r.fail("occurredAt", str(e))
        return None
    if when > now + MAX_FUTURE:
        r.fail("occurredAt", "must not be more than 5 minutes in the future")
        return None
    if when < now - retention:
        r.fail("occurredAt", f"is older than the raw retention of {retention.days} days")
        return None
    return when


def _read_status(r: _Reader) -> Status | None:
    present, value = r.get("status")
    if not present or value is None:
        r.fail("status", "is required")
        return None
    try:
        return Status(value)
    except ValueError:
        r.fail("status", "must be one of success, error, timeout, throttled")
        return None


def _read_cost(r: _Reader) -> Cents | None:
    present, value = r.get("costEstimateCents")
    if not present or value is None:
        r.fail("costEstimateCents", "is required")
        return None
    # A plain decimal string is the canonical form (`to_canonical`), so it must parse back.
    if isinstance(value, bool) or (isinstance(value, str) and not _PLAIN_DECIMAL.fullmatch(value)):
        r.fail("costEstimateCents", "must be a number >= 0")
        return None
    try:
        cost = Cents.parse(value)
    except (ValueError, TypeError):
        r.fail("costEstimateCents", "must be a number >= 0")
        return None
    if cost.units < 0:
        r.fail("costEstimateCents", "must be a number >= 0")
        return None
    if cost.units > MAX_INT:
        r.fail("costEstimateCents", "is too large")
        return None
    return cost


def _read_metadata(r: _Reader) -> dict[str, str]:
    present, value = r.get("metadata")
    if not present or value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        r.fail("metadata", "must be an object of string to string")
        return {}
    if len(value) > MAX_METADATA_KEYS:
        r.fail("metadata", f"must have at most {MAX_METADATA_KEYS} keys")
        return {}
    try:
        size = len(_METADATA_JSON.encode(dict(value)).encode())
    except UnicodeEncodeError:
        r.fail("metadata", _NOT_UNICODE)
        return {}
    if size > MAX_METADATA_BYTES:
        r.fail("metadata", f"must serialize to at most {MAX_METADATA_BYTES} bytes")
        return {}
    return dict(value)
