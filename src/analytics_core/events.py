"""The usage event (SPEC §2): value object, limits and dedupe fingerprint.

Validation of raw payloads lives in `event_parsing` (with its fast path in `event_fastpath`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC as _UTC
from datetime import datetime, timedelta
from enum import StrEnum
from hashlib import sha256
from typing import Any

import attrs

from analytics_core.money import UNITS_PER_CENT, Cents

MAX_FUTURE = timedelta(minutes=5)
MAX_CLIENT_ID = 128
MAX_ERROR_CODE = 128
MAX_METADATA_KEYS = 32
MAX_METADATA_BYTES = 4096
MAX_INT = 2**63 - 1
# Per-event bounds at ingest (SPEC §11; docs/domain.md, "Counter bounds"): far above any real
# inference call, and small enough that one (org, model, client) day-tier row can only reach
# 2**63 after more than 9.2 billion events in one UTC day (106,000 events/s for 24 h).
MAX_EVENT_TOKENS = 10**9
MAX_EVENT_LATENCY_MS = 86_400_000  # 24 hours
MAX_EVENT_COST_CENTS = 100_000  # USD 1,000
MAX_EVENT_COST_UNITS = MAX_EVENT_COST_CENTS * UNITS_PER_CENT
PLATFORM_ORG = uuid.UUID(int=0)
"""The nil UUID: the platform's own org (global price versions are audited under it; dead
letters whose org could not be read are stored under it). Never a tenant's: an event, an API
key or an identity naming it is refused."""
NIL_ORG_MESSAGE = "must not be the nil UUID (reserved for the platform)"
_NONE = "\x00"
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_MICROSECOND = timedelta(microseconds=1)
_FINGERPRINT_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


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
class TokenDetails:
    """Token categories (SPEC §12): parts of `inputTokens` (cache reads, cache writes, audio
    input) and of `outputTokens` (reasoning, audio output). All zero for an event that carried
    none, which is how every event stored before the categories existed reads."""

    cache_read: int = 0
    cache_write: int = 0
    audio_input: int = 0
    reasoning: int = 0
    audio_output: int = 0

    @property
    def input_parts(self) -> int:
        """Tokens of the input categories (at most `inputTokens`)."""
        return self.cache_read + self.cache_write + self.audio_input

    @property
    def output_parts(self) -> int:
        """Tokens of the output categories (at most `outputTokens`)."""
        return self.reasoning + self.audio_output

    def __bool__(self) -> bool:
        return bool(self.cache_read or self.cache_write or self.audio_input or self.reasoning
                    or self.audio_output)

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        """(cache_read, cache_write, audio_input, reasoning, audio_output)."""
        return (self.cache_read, self.cache_write, self.audio_input, self.reasoning,
                self.audio_output)


NO_TOKEN_DETAILS = TokenDetails()
TOKEN_DETAIL_KEYS = (
    "cacheReadTokens", "cacheWriteTokens", "audioInputTokens", "reasoningTokens",
    "audioOutputTokens",
)
"""The camelCase keys of `tokenDetails`, in `TokenDetails.as_tuple` order."""
TOKEN_DETAIL_NAMES = (
    "cache_read_tokens", "cache_write_tokens", "audio_input_tokens", "reasoning_tokens",
    "audio_output_tokens",
)
"""Their snake_case names (CSV columns, table columns, RollupStats fields), in that order."""


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
    token_details: TokenDetails = NO_TOKEN_DETAILS

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
        details = self.token_details
        if details is not NO_TOKEN_DETAILS and details:
            check_token_details(details, self.input_tokens, self.output_tokens)

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
        parts: tuple[str, ...] = (
            str(self.event_id), _repeated_id_text(self.org_id), _repeated_id_text(self.model_id),
            str((self.occurred_at - _EPOCH) // _MICROSECOND), self.status._value_,
            str(self.latency_ms), str(self.input_tokens), str(self.output_tokens),
            str(self.cost.units),
            _NONE if actor is None else _repeated_id_text(actor),
            _NONE if client is None else str(client),
            _NONE if error is None else str(error),
            _FINGERPRINT_JSON.encode(self.metadata) if self.metadata else "",
        )
        details = self.token_details
        if details is not NO_TOKEN_DETAILS and details:
            # Only events with categories hash them: every fingerprint stored before the
            # categories existed stays the fingerprint of the same event read back.
            parts = (*parts, "td", *map(str, details.as_tuple()))
        return sha256("\x1f".join(parts).encode()).hexdigest()


_ID_TEXTS: dict[int, str] = {}
MAX_CACHED_IDS = 4096


def _repeated_id_text(value: uuid.UUID) -> str:
    """str(value), remembered: org, model and actor ids repeat across events, and formatting a
    UUID costs as much as hashing the whole fingerprint."""
    if type(value) is not uuid.UUID:
        return str(value)
    text = _ID_TEXTS.get(value.int)
    if text is None:
        if len(_ID_TEXTS) >= MAX_CACHED_IDS:
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
        "tokenDetails": dict(zip(TOKEN_DETAIL_KEYS, event.token_details.as_tuple(), strict=True)),
    }


def check_token_details(details: TokenDetails, input_tokens: int, output_tokens: int) -> None:
    """ValueError unless every category is an integer >= 0 and each side's parts add up to
    at most its total."""
    for name, value in zip(TOKEN_DETAIL_KEYS, details.as_tuple(), strict=True):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
            raise ValueError(f"tokenDetails.{name} must be an integer >= 0")
    if details.input_parts > input_tokens:
        raise ValueError("tokenDetails: cacheReadTokens + cacheWriteTokens + audioInputTokens "
                         "must not exceed inputTokens")
    if details.output_parts > output_tokens:
        raise ValueError("tokenDetails: reasoningTokens + audioOutputTokens must not exceed "
                         "outputTokens")


def is_valid_unicode(text: str) -> bool:
    """Whether every store can hold `text` (SPEC §11): no U+0000, which PostgreSQL text and
    jsonb refuse, and no lone surrogate (JSON's "\\ud800" escapes decode to them), which
    UTF-8, PostgreSQL and the fingerprint all refuse."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
