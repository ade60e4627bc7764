"""FreshnessCache contract: one suite for every adapter, then how Redis fails when it is down."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from analytics_adapters.redis.freshness_cache import RedisFreshnessCache
from analytics_core.errors import StoreUnavailable
from analytics_core.freshness import FreshnessMarker
from analytics_core.ports import FreshnessCache

TTL = timedelta(seconds=30)


def markers_of(org_id: uuid.UUID, count: int = 2) -> list[FreshnessMarker]:
    """Markers with microsecond times, and one model that never saw an event."""
    base = datetime(2024, 3, 31, 23, 59, 59, 123_456, tzinfo=UTC)
    found = [
        FreshnessMarker(
            org_id, uuid.uuid4(), base - timedelta(minutes=i), base + timedelta(seconds=i),
        )
        for i in range(count)
    ]
    return [*found, FreshnessMarker(org_id, uuid.uuid4(), None, None)]


def test_get_of_an_uncached_org_is_a_miss(freshness_cache: FreshnessCache) -> None:
    """get returns None when nothing was cached for the org."""
    assert freshness_cache.get(uuid.uuid4()) is None


def test_put_then_get_returns_the_markers(freshness_cache: FreshnessCache) -> None:
    """get returns equal markers (times, None times, order) after put."""
    org = uuid.uuid4()
    markers = markers_of(org)
    freshness_cache.put(org, markers, TTL)
    assert freshness_cache.get(org) == markers


def test_an_empty_marker_list_is_cached_not_a_miss(freshness_cache: FreshnessCache) -> None:
    """An org without markers caches [] (distinct from a miss)."""
    org = uuid.uuid4()
    freshness_cache.put(org, [], TTL)
    assert freshness_cache.get(org) == []


def test_put_replaces_the_cached_markers(freshness_cache: FreshnessCache) -> None:
    """A second put for the org replaces the first."""
    org = uuid.uuid4()
    freshness_cache.put(org, markers_of(org, 3), TTL)
    newer = markers_of(org, 1)
    freshness_cache.put(org, newer, TTL)
    assert freshness_cache.get(org) == newer


def test_orgs_are_isolated(freshness_cache: FreshnessCache) -> None:
    """Markers cached for one org are never returned for another."""
    org, other = uuid.uuid4(), uuid.uuid4()
    freshness_cache.put(org, markers_of(org), TTL)
    assert freshness_cache.get(other) is None


def test_entries_expire_after_their_ttl(freshness_cache: FreshnessCache) -> None:
    """An entry is a miss once its TTL has passed."""
    org = uuid.uuid4()
    freshness_cache.put(org, markers_of(org), timedelta(milliseconds=300))
    time.sleep(0.5)
    assert freshness_cache.get(org) is None


def test_a_zero_ttl_caches_nothing(freshness_cache: FreshnessCache) -> None:
    """put with a zero TTL leaves the org uncached (and drops an older entry)."""
    org = uuid.uuid4()
    freshness_cache.put(org, markers_of(org), TTL)
    freshness_cache.put(org, markers_of(org), timedelta(0))
    assert freshness_cache.get(org) is None


def test_invalidate_drops_every_given_org(freshness_cache: FreshnessCache) -> None:
    """invalidate removes the entries of all the orgs passed."""
    orgs = [uuid.uuid4() for _ in range(3)]
    for org in orgs:
        freshness_cache.put(org, markers_of(org), TTL)
    freshness_cache.invalidate(iter(orgs))
    assert [freshness_cache.get(org) for org in orgs] == [None, None, None]


def test_invalidate_keeps_other_orgs_cached(freshness_cache: FreshnessCache) -> None:
    """Orgs not passed to invalidate stay cached."""
    dropped, kept = uuid.uuid4(), uuid.uuid4()
    freshness_cache.put(dropped, markers_of(dropped), TTL)
    kept_markers = markers_of(kept)
    freshness_cache.put(kept, kept_markers, TTL)
    freshness_cache.invalidate([dropped])
    assert freshness_cache.get(kept) == kept_markers


def test_invalidate_of_uncached_or_no_orgs_is_ignored(freshness_cache: FreshnessCache) -> None:
    """invalidate accepts orgs never cached and an empty iterable."""
    freshness_cache.invalidate([uuid.uuid4(), uuid.uuid4()])
    freshness_cache.invalidate([])


# --- How the Redis cache behaves when Redis is down ------------------------------------------


@pytest.fixture
def down_redis_cache(unused_port: int) -> RedisFreshnessCache:
    """A Redis cache pointed at a closed port, with the default short timeouts."""
    return RedisFreshnessCache.from_url(f"redis://127.0.0.1:{unused_port}/0")


def test_redis_down_raises_store_unavailable(down_redis_cache: RedisFreshnessCache) -> None:
    """get, put, invalidate and check all raise StoreUnavailable, never a redis error."""
    org = uuid.uuid4()
    calls = [
        lambda: down_redis_cache.get(org),
        lambda: down_redis_cache.put(org, markers_of(org), TTL),
        lambda: down_redis_cache.invalidate([org]),
        down_redis_cache.check,
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable):
            call()


def test_redis_calls_within_the_cooldown_fail_without_a_round_trip(unused_port: int) -> None:
    """After a failure calls fail at once, with no redis error beneath, until the cooldown ends."""
    now = [100.0]
    client = redis.Redis(port=unused_port, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    cache = RedisFreshnessCache(client, cooldown_seconds=1.0, monotonic=lambda: now[0])
    with pytest.raises(StoreUnavailable) as first:
        cache.get(uuid.uuid4())
    with pytest.raises(StoreUnavailable) as cooling:
        cache.get(uuid.uuid4())
    now[0] += 1.5
    with pytest.raises(StoreUnavailable) as retried:
        cache.get(uuid.uuid4())
    causes = [first.value.__cause__, cooling.value.__cause__, retried.value.__cause__]
    assert [cause is not None for cause in causes] == [True, False, True]


@pytest.mark.redis
def test_redis_readiness_passes_when_redis_answers(
    redis_freshness_cache: RedisFreshnessCache,
) -> None:
    """check() returns when Redis answers PING."""
    redis_freshness_cache.check()
