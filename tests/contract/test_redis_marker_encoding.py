"""The Redis freshness cache's stored form: documented JSON; unreadable values are misses."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis

from analytics_adapters.redis.freshness_cache import RedisFreshnessCache
from analytics_core.freshness import FreshnessMarker
from tests.contract.store_backends import REDIS_URL, redis_freshness_cache  # noqa: F401

pytestmark = pytest.mark.redis
ORG = uuid.UUID("00000000-0000-0000-0000-0000000000a1")
MODEL = uuid.UUID("00000000-0000-0000-0000-0000000000b2")


def _raw(_cache: RedisFreshnessCache) -> redis.Redis:
    return redis.Redis.from_url(REDIS_URL)


def test_markers_are_stored_as_iso_json_without_the_org(
    redis_freshness_cache: RedisFreshnessCache,  # noqa: F811
) -> None:
    """The value is a JSON list of {model_id, last_event_at, last_rollup_at}; the org is the
    key, and a missing rollup time is null."""
    at = datetime(2025, 1, 2, 3, 4, 5, 600000, tzinfo=UTC)
    marker = FreshnessMarker(ORG, MODEL, at, None)
    redis_freshness_cache.put(ORG, [marker], timedelta(minutes=1))
    client = _raw(redis_freshness_cache)
    try:
        stored = json.loads(client.get(f"{redis_freshness_cache._prefix}{ORG}"))
    finally:
        client.close()
    assert stored == [{"model_id": str(MODEL), "last_event_at": at.isoformat(),
                       "last_rollup_at": None}]
    assert redis_freshness_cache.get(ORG) == [marker]


@pytest.mark.parametrize("value", [
    b"not json", b"{}", b'[{"model_id": "not-a-uuid", "last_event_at": null, '
    b'"last_rollup_at": null}]', b'[{"last_event_at": null}]',
    b'[{"model_id": "00000000-0000-0000-0000-0000000000b2", "last_event_at": "yesterday", '
    b'"last_rollup_at": null}]',
])
def test_an_unreadable_value_is_a_miss(
    redis_freshness_cache: RedisFreshnessCache, value: bytes,  # noqa: F811
) -> None:
    """Whatever else is stored under the key reads as a miss (the store answers), never an
    error."""
    client = _raw(redis_freshness_cache)
    try:
        client.set(f"{redis_freshness_cache._prefix}{ORG}", value, px=60_000)
    finally:
        client.close()
    assert redis_freshness_cache.get(ORG) is None
