"""Hypothesis strategies and exact reference helpers shared by the core unit tests."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from hypothesis import strategies as st

from analytics_core.events import (
    MAX_EVENT_COST_UNITS,
    MAX_EVENT_LATENCY_MS,
    MAX_EVENT_TOKENS,
    NO_TOKEN_DETAILS,
    Status,
    TokenDetails,
    UsageEvent,
)
from analytics_core.money import Cents

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=400)
# The snake_case spelling of each camelCase key, written out independently of the parser.
SNAKE = {
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
QUANTILES: tuple[tuple[float, Fraction], ...] = (
    (0.5, Fraction(1, 2)),
    (0.95, Fraction(95, 100)),
    (0.99, Fraction(99, 100)),
)
MAX_INT = 2**63 - 1

uuids = st.uuids()
#: Tenant org ids: any UUID but the nil one, which is the platform's (never a tenant's).
org_uuids = uuids.filter(lambda u: u.int != 0)
utc_instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2060, 12, 31), timezones=st.just(UTC)
)
cents = st.builds(Cents, st.integers(min_value=0, max_value=10**15))
statuses = st.sampled_from(list(Status))
# Text any store can hold (SPEC §11): no U+0000 (surrogates are excluded by default).
_STORABLE = st.characters(codec="utf-8", exclude_characters="\x00")
short_text = st.text(_STORABLE, max_size=20)

#: Latencies in milliseconds: zeros, ones, small, large, the int64 limit and heavy tails.
latencies = st.one_of(
    st.just(0),
    st.just(1),
    st.integers(min_value=0, max_value=1_000),
    st.integers(min_value=0, max_value=10**7),
    st.integers(min_value=0, max_value=MAX_INT),
    st.integers(min_value=1, max_value=10**6).map(lambda u: 10**12 // u),  # Pareto-like tail
)

#: Latencies an event may carry at ingest (at most 24 hours), with the same shapes.
event_latencies = st.one_of(
    st.just(0),
    st.just(1),
    st.integers(min_value=0, max_value=1_000),
    st.integers(min_value=0, max_value=10**7),
    st.just(MAX_EVENT_LATENCY_MS),
    st.integers(min_value=0, max_value=MAX_EVENT_LATENCY_MS),
    st.integers(min_value=12, max_value=10**6).map(lambda u: 10**9 // u),
)
#: Costs an event may carry at ingest (at most USD 1,000).
event_cents = st.builds(Cents, st.integers(min_value=0, max_value=MAX_EVENT_COST_UNITS))


def exact_rank_value(values: Sequence[int], q: Fraction) -> int:
    """Exact nearest-rank percentile: the ceil(q*n)-th smallest value (rank >= 1)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


def within_one_percent(estimate: float | None, exact: int) -> bool:
    """Whether an estimate is within 1 % relative error of the exact value."""
    return estimate is not None and abs(estimate - exact) <= 0.01 * exact


@st.composite
def metadata_maps(draw: st.DrawFn) -> dict[str, str]:
    """Small string->string maps that always fit the 32-key / 4 KiB limits."""
    return draw(st.dictionaries(short_text, st.text(_STORABLE, max_size=40), max_size=8))


@st.composite
def usage_events(
    draw: st.DrawFn,
    *,
    orgs: Sequence[uuid.UUID] | None = None,
    models: Sequence[uuid.UUID] | None = None,
    clients: Sequence[str | None] | None = None,
    start: datetime = NOW - RETENTION + timedelta(minutes=1),
    end: datetime = NOW + timedelta(minutes=5),
    codes: Sequence[str | None] | None = None,
    rich: bool = True,
) -> UsageEvent:
    """A valid event (within the ingest bounds); id pools force bucket collisions; rich=False
    skips actor, metadata and token categories."""
    when = draw(
        st.datetimes(
            min_value=start.replace(tzinfo=None),
            max_value=end.replace(tzinfo=None),
            timezones=st.just(UTC),
        )
    )
    texts = st.none() | st.text(_STORABLE, max_size=128)
    code_strategy = st.sampled_from(codes) if codes else texts
    tokens_in = draw(st.integers(min_value=0, max_value=MAX_EVENT_TOKENS))
    tokens_out = draw(st.integers(min_value=0, max_value=MAX_EVENT_TOKENS))
    return UsageEvent(
        event_id=draw(uuids),
        org_id=draw(st.sampled_from(orgs)) if orgs else draw(org_uuids),
        model_id=draw(st.sampled_from(models)) if models else draw(uuids),
        occurred_at=when,
        status=draw(statuses),
        latency_ms=draw(event_latencies),
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        cost=draw(event_cents),
        actor_id=draw(st.none() | uuids) if rich else None,
        client_id=draw(st.sampled_from(clients))
        if clients
        else draw(texts),
        error_code=draw(code_strategy),
        metadata=draw(metadata_maps()) if rich else {},
        token_details=draw(token_details(tokens_in, tokens_out)) if rich else NO_TOKEN_DETAILS,
    )


@st.composite
def token_details(draw: st.DrawFn, tokens_in: int, tokens_out: int) -> TokenDetails:
    """Token categories within their totals; none at all half of the time (old producers)."""
    if draw(st.booleans()):
        return NO_TOKEN_DETAILS
    cache_read = draw(st.integers(0, tokens_in))
    cache_write = draw(st.integers(0, tokens_in - cache_read))
    audio_in = draw(st.integers(0, tokens_in - cache_read - cache_write))
    reasoning = draw(st.integers(0, tokens_out))
    audio_out = draw(st.integers(0, tokens_out - reasoning))
    details = TokenDetails(cache_read, cache_write, audio_in, reasoning, audio_out)
    return details if details else NO_TOKEN_DETAILS


def valid_payload(**overrides: object) -> dict[str, object]:
    """A valid camelCase event payload relative to NOW, with some keys replaced."""
    payload: dict[str, object] = {
        "eventId": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "orgId": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "modelId": "16fd2706-8baf-433b-82eb-8c7fada847da",
        "occurredAt": "2025-06-01T11:58:30.250Z",
        "status": "success",
        "latencyMs": 120,
        "inputTokens": 10,
        "outputTokens": 20,
        "costEstimateCents": 1,
    }
    payload.update(overrides)
    return payload
