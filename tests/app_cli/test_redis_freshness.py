"""The Redis freshness cache end to end: the container in SQL mode with ANALYTICS_REDIS_URL, the
real HTTP app, the freshness endpoint served from Redis, invalidated by committed batches, and
correct (200, readiness degraded, no 5xx) with Redis down (SPEC §4, §9)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
import redis
from prometheus_client import REGISTRY

from analytics_adapters.redis.freshness_cache import DEFAULT_PREFIX, RedisFreshnessCache
from analytics_app.bootstrap.application import Application
from analytics_app.config import Settings
from analytics_core.freshness import FreshnessMarker
from analytics_core.usecases.access import create_api_key
from tests.conftest import REDIS_URL, require_service
from tests.contract.store_backends import free_port, redis_available
from tests.wiring import app_for

PREFIX = "/analytics/v1"


def lookups(result: str) -> float:
    """analytics_freshness_cache_lookups_total{result} so far."""
    value = REGISTRY.get_sample_value("analytics_freshness_cache_lookups_total",
                                      {"result": result})
    return value or 0.0


class Service:
    """An Application in SQLite mode with the given Redis URL, its HTTP app and an org admin."""

    def __init__(self, tmp_path: Path, redis_url: str) -> None:
        self.application = Application(Settings(
            data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'analytics.db'}",
            export_dir=tmp_path / "exports", redis_url=redis_url,
        ))
        self.application.migrate()
        self.org = uuid.uuid4()
        s = self.application.ports
        key, _ = create_api_key(org_id=self.org, roles=["org_admin"], name="t",
                                uow_factory=s.uow_factory, clock=s.clock, ids=s.ids)
        self.client = falcon.testing.TestClient(app_for(s), headers={"X-API-Key": key})

    def ingest(self, model: uuid.UUID, at: datetime) -> None:
        """POST one event of `model` at `at`."""
        event = {"eventId": str(uuid.uuid4()), "orgId": str(self.org), "modelId": str(model),
                 "occurredAt": at.isoformat(), "status": "success", "latencyMs": 40,
                 "inputTokens": 3, "outputTokens": 4, "costEstimateCents": "0.125"}
        result = self.client.simulate_post(f"{PREFIX}/events", json={"events": [event]})
        assert result.status_code == 202, result.text
        assert result.json["accepted"] == 1

    def freshness(self) -> dict[str, Any]:
        """GET the org's freshness (must be 200)."""
        result = self.client.simulate_get(f"{PREFIX}/orgs/{self.org}/freshness")
        assert result.status_code == 200, result.text
        body: dict[str, Any] = result.json
        return body


def last_events(body: dict[str, Any]) -> dict[str, datetime]:
    """modelId -> lastEventAt of a freshness body."""
    return {e["modelId"]: datetime.fromisoformat(e["lastEventAt"].replace("Z", "+00:00"))
            for e in body["entries"]}


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """The service on the test Redis; the org's cache entry is removed afterwards."""
    require_service("Redis", redis_available())
    s = Service(tmp_path, REDIS_URL)
    yield s
    s.application.shutdown()
    with redis.Redis.from_url(REDIS_URL) as client:
        client.delete(f"{DEFAULT_PREFIX}{s.org}")


@pytest.mark.redis
def test_freshness_is_served_from_redis_and_a_committed_batch_invalidates_it(
    service: Service,
) -> None:
    """Freshness reads come from Redis (hit counted); a committed batch drops the entry."""
    m1, m2, seen = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    service.ingest(m1, at)
    misses = lookups("miss")
    assert last_events(service.freshness()) == {str(m1): at}
    assert lookups("miss") == misses + 1
    # An entry written to Redis (with a long TTL) is served as is: the endpoint reads Redis.
    redis_cache = RedisFreshnessCache.from_url(REDIS_URL)
    planted = [FreshnessMarker(service.org, m, at - timedelta(hours=1), at) for m in (m1, seen)]
    redis_cache.put(service.org, planted, timedelta(minutes=5))
    hits = lookups("hit")
    assert last_events(service.freshness()) == {
        str(m1): at - timedelta(hours=1), str(seen): at - timedelta(hours=1)}
    assert lookups("hit") == hits + 1
    service.ingest(m2, at + timedelta(minutes=1))
    assert redis_cache.get(service.org) is None  # invalidated by the commit, not by its TTL
    assert last_events(service.freshness()) == {str(m1): at, str(m2): at + timedelta(minutes=1)}
    assert redis_cache.get(service.org) is not None  # filled again from the store
    redis_cache.close()


def test_with_redis_down_the_api_answers_correctly_and_readiness_says_degraded(
    tmp_path: Path,
) -> None:
    """Redis on a closed port: ingest and reads answer 200, readiness is 200 with redis degraded."""
    service = Service(tmp_path, f"redis://127.0.0.1:{free_port()}/0")
    model = uuid.uuid4()
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    errors = lookups("error")
    service.ingest(model, at)  # the invalidation fails quietly after the commit
    assert last_events(service.freshness()) == {str(model): at}
    assert last_events(service.freshness()) == {str(model): at}
    assert lookups("error") >= errors + 1
    usage = service.client.simulate_get(
        f"{PREFIX}/orgs/{service.org}/usage",
        params={"start": (at - timedelta(hours=1)).isoformat(),
                "end": (at + timedelta(hours=1)).isoformat(), "granularity": "hour"})
    assert usage.status_code == 200, usage.text
    assert usage.json["totals"]["invocations"] == 1
    assert usage.json["totals"]["costEstimateCentsExact"] == "0.1250"
    ready = service.client.simulate_get(f"{PREFIX}/status/readyz", query_string="verbose")
    assert ready.status_code == 200
    checks = {c["name"]: c["status"] for c in ready.json["checks"]}
    assert ready.json["status"] == "degraded"
    assert checks == {"database": "ok", "object_store": "ok", "redis": "degraded"}
    plain = service.client.simulate_get(f"{PREFIX}/status/readyz")
    assert (plain.status_code, plain.text) == (200, "OK")
    service.application.shutdown()
