"""Validation of raw usage-event payloads (SPEC §2): field-named errors, camelCase or snake_case."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC as _UTC
from datetime import datetime, timedelta
from typing import Any

from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.event_fastpath import PLAIN_DECIMAL, parse_plain
from analytics_core.events import (
    MAX_CLIENT_ID,
    MAX_ERROR_CODE,
    MAX_EVENT_COST_CENTS,
    MAX_EVENT_COST_UNITS,
    MAX_EVENT_LATENCY_MS,
    MAX_EVENT_TOKENS,
    MAX_FUTURE,
    MAX_METADATA_BYTES,
    MAX_METADATA_KEYS,
    NIL_ORG_MESSAGE,
    NO_TOKEN_DETAILS,
    TOKEN_DETAIL_KEYS,
    Status,
    TokenDetails,
    UsageEvent,
    is_valid_unicode,
)
from analytics_core.money import Cents

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
_NOT_UNICODE = "must be valid Unicode text (no unpaired surrogates)"
_NUL = "must not contain U+0000 (NUL)"


def _text_problem(text: str) -> str | None:
    """Why a store could not hold `text` (SPEC §11), or None."""
    if is_valid_unicode(text):
        return None
    return _NUL if "\x00" in text else _NOT_UNICODE
_METADATA_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

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
    "tokenDetails": "token_details",
}
_DETAIL_SNAKE = {
    "cacheReadTokens": "cache_read_tokens",
    "cacheWriteTokens": "cache_write_tokens",
    "audioInputTokens": "audio_input_tokens",
    "reasoningTokens": "reasoning_tokens",
    "audioOutputTokens": "audio_output_tokens",
}


class _Reader:
    """Collects field errors while reading a raw payload."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.errors: list[FieldError] = []

    def value(self, key: str, *, required: bool) -> Any:
        """The value under `key` or its snake_case spelling; None when absent or null, which
        is an `is required` error when `required`."""
        if key in self.raw:
            value = self.raw[key]
        else:
            snake = _SNAKE.get(key)
            value = self.raw[snake] if snake is not None and snake in self.raw else None
        if value is None and required:
            self.fail(key, "is required")
        return value

    def fail(self, field: str, reason: str) -> None:
        self.errors.append(FieldError(field, reason))

    def uuid(self, key: str, *, required: bool) -> uuid.UUID | None:
        value = self.value(key, required=required)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(key, "must be a UUID string")
            return None
        try:
            return uuid.UUID(value)
        except ValueError:
            self.fail(key, "must be a UUID string")
            return None

    def count(self, key: str, limit: int) -> int | None:
        value = self.value(key, required=True)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(key, "must be an integer >= 0")
            return None
        if value > limit:
            self.fail(key, f"must be at most {limit}")
            return None
        return value

    def short_text(self, key: str, limit: int) -> str | None:
        value = self.value(key, required=False)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail(key, "must be a string")
            return None
        if len(value) > limit:
            self.fail(key, f"must be at most {limit} characters")
            return None
        problem = _text_problem(value)
        if problem is not None:
            self.fail(key, problem)
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
    event = parse_plain(raw, now, raw_retention) if type(raw) is dict else None
    return event if event is not None else _parse_carefully(
        raw, now=now, raw_retention=raw_retention
    )


def _parse_carefully(
    raw: object, *, now: datetime, raw_retention: timedelta
) -> UsageEvent:
    """`parse_event` for any payload: reads each field in contract order, collecting errors."""
    if not isinstance(raw, Mapping):
        raise ValidationFailed([FieldError("$", "event must be a JSON object")])
    r = _Reader(raw)
    event_id = r.uuid("eventId", required=True)
    org_id = r.uuid("orgId", required=True)
    if org_id is not None and not org_id.int:
        r.fail("orgId", NIL_ORG_MESSAGE)
    model_id = r.uuid("modelId", required=True)
    actor_id = r.uuid("actorId", required=False)
    occurred_at = _read_occurred_at(r, now, raw_retention)
    status = _read_status(r)
    latency = r.count("latencyMs", MAX_EVENT_LATENCY_MS)
    tokens_in = r.count("inputTokens", MAX_EVENT_TOKENS)
    tokens_out = r.count("outputTokens", MAX_EVENT_TOKENS)
    cost = _read_cost(r)
    client_id = r.short_text("clientId", MAX_CLIENT_ID)
    error_code = r.short_text("errorCode", MAX_ERROR_CODE)
    metadata = _read_metadata(r)
    details = _read_token_details(r, tokens_in, tokens_out)
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
        token_details=details,
    )


def _read_token_details(
    r: _Reader, tokens_in: int | None, tokens_out: int | None
) -> TokenDetails:
    """`tokenDetails` (SPEC §12): each category an integer >= 0, parts within their total."""
    value = r.value("tokenDetails", required=False)
    if value is None:
        return NO_TOKEN_DETAILS
    if not isinstance(value, Mapping):
        r.fail("tokenDetails", "must be an object of token counts")
        return NO_TOKEN_DETAILS
    counts: list[int] = []
    for key in TOKEN_DETAIL_KEYS:
        snake = _DETAIL_SNAKE[key]
        n = value[key] if key in value else value.get(snake)
        if n is None:
            counts.append(0)
        elif isinstance(n, bool) or not isinstance(n, int) or n < 0:
            r.fail(f"tokenDetails.{key}", "must be an integer >= 0")
        elif n > MAX_EVENT_TOKENS:
            r.fail(f"tokenDetails.{key}", f"must be at most {MAX_EVENT_TOKENS}")
        else:
            counts.append(n)
    if len(counts) < len(TOKEN_DETAIL_KEYS):
        return NO_TOKEN_DETAILS
    details = TokenDetails(*counts)
    if tokens_in is not None and details.input_parts > tokens_in:
        r.fail("tokenDetails", "cacheReadTokens + cacheWriteTokens + audioInputTokens must "
               f"not exceed inputTokens ({details.input_parts} > {tokens_in})")
    if tokens_out is not None and details.output_parts > tokens_out:
        r.fail("tokenDetails", "reasoningTokens + audioOutputTokens must not exceed "
               f"outputTokens ({details.output_parts} > {tokens_out})")
    return details if details else NO_TOKEN_DETAILS


def _read_occurred_at(r: _Reader, now: datetime, retention: timedelta) -> datetime | None:
    value = r.value("occurredAt", required=True)
    if value is None:
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
    value = r.value("status", required=True)
    if value is None:
        return None
    try:
        return Status(value)
    except ValueError:
        r.fail("status", "must be one of success, error, timeout, throttled")
        return None


def _read_cost(r: _Reader) -> Cents | None:
    value = r.value("costEstimateCents", required=True)
    if value is None:
        return None
    # A plain decimal string is the canonical form (`to_canonical`), so it must parse back.
    if isinstance(value, bool) or (isinstance(value, str) and not PLAIN_DECIMAL.fullmatch(value)):
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
    if cost.units > MAX_EVENT_COST_UNITS:
        r.fail("costEstimateCents", f"must be at most {MAX_EVENT_COST_CENTS}")
        return None
    return cost


def _read_metadata(r: _Reader) -> dict[str, str]:
    value = r.value("metadata", required=False)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        r.fail("metadata", "must be an object of string to string")
        return {}
    if len(value) > MAX_METADATA_KEYS:
        r.fail("metadata", f"must have at most {MAX_METADATA_KEYS} keys")
        return {}
    problem = next(filter(None, (_text_problem(t) for kv in value.items() for t in kv)), None)
    if problem is not None:
        r.fail("metadata", problem)
        return {}
    size = len(_METADATA_JSON.encode(dict(value)).encode())
    if size > MAX_METADATA_BYTES:
        r.fail("metadata", f"must serialize to at most {MAX_METADATA_BYTES} bytes")
        return {}
    return dict(value)
