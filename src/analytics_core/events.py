"""The usage event (SPEC §2): value object, validation of raw payloads, dedupe fingerprint."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC as _UTC
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import attrs

from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.money import Cents

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
        for name in ("latency_ms", "input_tokens", "output_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
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
        optional = [
            _NONE if v is None else str(v)
            for v in (self.actor_id, self.client_id, self.error_code)
        ]
        parts = [
            str(self.event_id), str(self.org_id), str(self.model_id),
            str((self.occurred_at - _EPOCH) // _MICROSECOND), self.status.value,
            str(self.latency_ms), str(self.input_tokens), str(self.output_tokens),
            str(self.cost.units), *optional,
            json.dumps(self.metadata, sort_keys=True, separators=(",", ":"))
            if self.metadata else "",
        ]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


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
        return value


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
    size = len(json.dumps(dict(value), separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        r.fail("metadata", f"must serialize to at most {MAX_METADATA_BYTES} bytes")
        return {}
    return dict(value)
