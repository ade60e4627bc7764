"""The fast path of event validation: a well-formed producer payload read with direct checks.

`parse_plain` returns None at the first unusual thing, and `event_parsing.parse_event` then
reads the payload with the careful reader, so every error message comes from one place.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from analytics_core.events import (
    MAX_CACHED_IDS,
    MAX_CLIENT_ID,
    MAX_ERROR_CODE,
    MAX_EVENT_COST_UNITS,
    MAX_EVENT_LATENCY_MS,
    MAX_EVENT_TOKENS,
    MAX_FUTURE,
    MAX_METADATA_BYTES,
    MAX_METADATA_KEYS,
    NO_TOKEN_DETAILS,
    TOKEN_DETAIL_KEYS,
    Status,
    TokenDetails,
    UsageEvent,
    is_valid_unicode,
)
from analytics_core.money import UNITS_PER_CENT, Cents, decimal_units

PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")

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


def parse_plain(raw: dict[str, Any], now: datetime, retention: timedelta) -> UsageEvent | None:
    """The event of a plain camelCase payload (a decoded JSON object), or None."""
    window = plain_window(now, retention)
    if window is None:
        return None
    earliest, latest = window
    get = raw.get
    if (
        (org_id := _plain_uuid(get("orgId"), cache=True)) is None
        or (model_id := _plain_uuid(get("modelId"), cache=True)) is None
        or (event_id := _plain_uuid(get("eventId"), cache=False)) is None  # unique: no cache
    ):
        return None
    actor = _camel_only(raw, "actorId", "actor_id")
    client = _camel_only(raw, "clientId", "client_id")
    error = _camel_only(raw, "errorCode", "error_code")
    details = _camel_only(raw, "tokenDetails", "token_details")
    if actor is _ABSENT or client is _ABSENT or error is _ABSENT or details is _ABSENT or (
        actor is not None and (actor := _plain_uuid(actor, cache=True)) is None
    ):
        return None
    return plain_event(
        event_id, org_id, model_id, get("occurredAt"), get("status"), get("latencyMs"),
        get("inputTokens"), get("outputTokens"), get("costEstimateCents"), actor, client, error,
        get("metadata"), earliest, latest, details,
    )


def plain_window(now: datetime, retention: timedelta) -> tuple[datetime, datetime] | None:
    """(earliest, latest) accepted occurrence times, or None when they overflow datetime (the
    careful reader meets that only when it has a time to compare, so it decides)."""
    try:
        return now - retention, now + MAX_FUTURE
    except OverflowError:
        return None


def plain_event(  # noqa: PLR0917 - one positional call per event, on the hot path
    event_id: uuid.UUID, org_id: uuid.UUID, model_id: uuid.UUID, occurred_at: object,
    status: object, latency: object, tokens_in: object, tokens_out: object, cost: object,
    actor_id: uuid.UUID | None, client: object, error: object, metadata: object,
    earliest: datetime, latest: datetime, token_details: object = None,
) -> UsageEvent | None:
    """The event of a payload's values when each is plain and valid, else None.

    Shared by `parse_plain` and the stream edge's typed decoder (ports.EventDecoder), which
    pass the values of a camelCase payload: ids already read as UUIDs, every other value as
    JSON decoded it (numbers as int, or Decimal when they have a fraction or exponent; an
    absent optional key as None).
    """
    details: TokenDetails | None = NO_TOKEN_DETAILS
    if token_details is not None and (
        details := _plain_details(token_details, tokens_in, tokens_out)
    ) is None:
        return None
    status = _STATUS_OF_TEXT.get(status) if type(status) is str else None
    if (  # cheap checks first: a payload bound for the careful reader wastes little here
        status is None
        or not org_id.int  # the platform's own org: the careful reader names the error
        or type(latency) is not int or not 0 <= latency <= MAX_EVENT_LATENCY_MS
        or type(tokens_in) is not int or not 0 <= tokens_in <= MAX_EVENT_TOKENS
        or type(tokens_out) is not int or not 0 <= tokens_out <= MAX_EVENT_TOKENS
        or (when := _plain_time(occurred_at, earliest, latest)) is None
        or (units := _plain_cost(cost)) is None
        or (client is not None and not _plain_text(client, MAX_CLIENT_ID))
        or (error is not None and not _plain_text(error, MAX_ERROR_CODE))
        or (labels := _plain_metadata(metadata)) is None
    ):
        return None
    return UsageEvent(  # positionally, in field order: keywords cost a third more here
        event_id, org_id, model_id, when, status, latency, tokens_in, tokens_out, units,
        actor_id, client, error, labels, details,  # type: ignore[arg-type]
    )


_DETAIL_KEYS = frozenset(TOKEN_DETAIL_KEYS)


def _plain_details(value: object, tokens_in: object, tokens_out: object) -> TokenDetails | None:
    """The categories of a plain camelCase `tokenDetails` within their totals, else None."""
    if type(value) is not dict or not _DETAIL_KEYS.issuperset(value):
        return None
    for n in value.values():
        if type(n) is not int or not 0 <= n <= MAX_EVENT_TOKENS:
            return None
    get = value.get
    details = TokenDetails(
        get("cacheReadTokens", 0), get("cacheWriteTokens", 0), get("audioInputTokens", 0),
        get("reasoningTokens", 0), get("audioOutputTokens", 0),
    )
    if type(tokens_in) is not int or type(tokens_out) is not int or (
        details.input_parts > tokens_in or details.output_parts > tokens_out
    ):
        return None
    return details if details else NO_TOKEN_DETAILS


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
            if len(_UUIDS) >= MAX_CACHED_IDS:
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
        elif type(value) is str and PLAIN_DECIMAL.fullmatch(value):
            amount = Decimal(value)
        else:
            return None
        try:
            units = decimal_units(amount)
        except ValueError:
            return None
    return Cents(units) if 0 <= units <= MAX_EVENT_COST_UNITS else None


def _camel_only(raw: dict[str, Any], key: str, snake: str) -> Any:
    """The value under `key` (None when absent), or _ABSENT when only the careful reader can
    tell what a snake_case spelling of the key means."""
    value = raw.get(key, _ABSENT)
    if value is _ABSENT:
        return _ABSENT if snake in raw else None
    return value


def _plain_text(value: object, limit: int) -> bool:
    """A plain str within `limit` characters and valid Unicode."""
    return type(value) is str and len(value) <= limit and is_valid_unicode(value)


def _plain_metadata(value: object) -> dict[str, str] | None:
    if value is None:
        return {}
    if type(value) is not dict or len(value) > MAX_METADATA_KEYS:
        return None
    chars = 0
    for k, v in value.items():
        # Non-ASCII text goes the careful way: its UTF-8 size (and lone surrogates) need encoding.
        if (type(k) is not str or type(v) is not str or not k.isascii() or not v.isascii()
                or "\x00" in k or "\x00" in v):
            return None
        chars += len(k) + len(v) + 4  # quotes, colon, comma
    return dict(value) if chars <= _SMALL_METADATA_CHARS else None
