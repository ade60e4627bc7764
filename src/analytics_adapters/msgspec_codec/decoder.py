"""A typed JSON decoder for stream payloads (msgspec): plain producer events without the dict.

`MsgspecEventDecoder.decode` reads the bytes of a message straight into a struct of the
event's camelCase fields (ids parsed as UUIDs in C) and hands the values to the core's
`plain_event`, which applies every rule of the careful reader. Anything else (an unknown or
snake_case key, another type, a string cost, invalid JSON or UTF-8) gives None, and the use
case reads the payload with the careful reader, which writes every error message.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import msgspec

from analytics_core.event_fastpath import plain_event
from analytics_core.events import UsageEvent


class _PlainEvent(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """The producer shape. Optional keys default to None, as the careful reader treats an
    absent key and a null alike."""

    event_id: uuid.UUID
    org_id: uuid.UUID
    model_id: uuid.UUID
    occurred_at: str
    status: str
    latency_ms: int
    input_tokens: int
    output_tokens: int
    # The number's own text: read below exactly as json.loads(parse_float=Decimal) reads it.
    cost_estimate_cents: msgspec.Raw
    actor_id: uuid.UUID | None = None
    client_id: str | None = None
    error_code: str | None = None
    metadata: dict[str, str] | None = None
    token_details: dict[str, int] | None = None


_DECODER = msgspec.json.Decoder(_PlainEvent)
_FRACTION = frozenset(b".eE")


def _number(text: bytes) -> int | Decimal | None:
    """A JSON number as json.loads(parse_float=Decimal) reads it: with a fraction or exponent
    to Decimal, else to int. None for any other value (a string amount: the careful reader
    checks its spelling) and for what json.loads refuses (an int past Python's digit limit)."""
    if not text or text[0] not in b"-0123456789":
        return None
    try:
        return Decimal(text.decode()) if _FRACTION.intersection(text) else int(text)
    except (ValueError, ArithmeticError):
        return None


class MsgspecEventDecoder:
    """ports.EventDecoder on msgspec."""

    def decode(self, data: bytes, earliest: datetime, latest: datetime) -> UsageEvent | None:
        """The event the careful reader would return for `data`, or None (never raises)."""
        try:
            fields = _DECODER.decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return None  # RecursionError: a cost nested ~1,000 arrays deep (msgspec.Raw)
        cost = _number(bytes(fields.cost_estimate_cents))
        if cost is None:
            return None
        return plain_event(
            fields.event_id, fields.org_id, fields.model_id, fields.occurred_at, fields.status,
            fields.latency_ms, fields.input_tokens, fields.output_tokens, cost,
            fields.actor_id, fields.client_id, fields.error_code, fields.metadata,
            earliest, latest, fields.token_details,
        )
