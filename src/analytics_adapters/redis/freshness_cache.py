"""FreshnessCache on Redis: one JSON value per org with a TTL; Redis errors are StoreUnavailable."""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import cattrs
import redis
from cattrs.gen import make_dict_unstructure_fn, override
from redis.backoff import NoBackoff
from redis.retry import Retry

from analytics_core.errors import StoreUnavailable
from analytics_core.freshness import FreshnessMarker

DEFAULT_PREFIX = "analytics:freshness:"
DEFAULT_TIMEOUT_SECONDS = 0.2
DEFAULT_COOLDOWN_SECONDS = 1.0

T = TypeVar("T")


class RedisFreshnessCache:
    """Per-org freshness markers cached in Redis under `{prefix}{org_id}`.

    Never the source of truth: calls fail fast with StoreUnavailable (short socket timeouts, no
    client retries), and after a failure every call fails immediately for `cooldown_seconds`
    so a down or black-holed Redis costs requests nothing while the store serves them.
    An invalidation lost to an outage is bounded by the entry's TTL.
    """

    name = "freshness_cache"

    def __init__(
        self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX,
        cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._cooldown = cooldown_seconds
        self._monotonic = monotonic
        self._down_until = -math.inf

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = DEFAULT_PREFIX,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        cooldown_seconds: float = DEFAULT_COOLDOWN_SECONDS,
    ) -> RedisFreshnessCache:
        """A cache on a new connection pool (nothing connects until the first call)."""
        client = redis.Redis.from_url(
            url, socket_timeout=timeout_seconds, socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(client, prefix=prefix, cooldown_seconds=cooldown_seconds)

    def get(self, org_id: uuid.UUID) -> list[FreshnessMarker] | None:
        """Cached markers, or None on a miss (an unreadable value is a miss too)."""
        raw = self._call(lambda: self._client.get(self._key(org_id)))
        if raw is None:
            return None
        try:
            items = json.loads(raw)
            if not isinstance(items, list):
                return None
            return [_decode(org_id, item) for item in items]
        except (ValueError, TypeError, KeyError, cattrs.BaseValidationError):
            return None

    def put(self, org_id: uuid.UUID, markers: Sequence[FreshnessMarker], ttl: timedelta) -> None:
        """Cache markers for at most `ttl` (a TTL under 1 ms drops the entry instead)."""
        milliseconds = int(ttl / timedelta(milliseconds=1))
        key = self._key(org_id)
        if milliseconds < 1:
            self._call(lambda: self._client.unlink(key))
            return
        value = json.dumps([_encode(marker) for marker in markers])
        self._call(lambda: self._client.psetex(key, milliseconds, value))

    def invalidate(self, org_ids: Iterable[uuid.UUID]) -> None:
        """Drop the entries of every org given, in one round trip."""
        keys = sorted({self._key(org_id) for org_id in org_ids})
        if keys:
            self._call(lambda: self._client.unlink(*keys))

    def check(self) -> None:
        """Readiness: Redis answers PING (bypasses the cooldown)."""
        self._down_until = -math.inf
        self._call(self._client.ping)

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def _key(self, org_id: uuid.UUID) -> str:
        return f"{self._prefix}{org_id}"

    def _call(self, operation: Callable[[], T]) -> T:
        if self._monotonic() < self._down_until:
            raise StoreUnavailable("redis freshness cache unavailable (cooling down)")
        try:
            return operation()
        except redis.RedisError as e:
            self._down_until = self._monotonic() + self._cooldown
            raise StoreUnavailable(f"redis freshness cache unavailable: {e}") from e


def _converter() -> cattrs.Converter:
    """Markers as stored: {"model_id", "last_event_at", "last_rollup_at"} with ISO 8601 times;
    the org is the key, so it is left out and put back from the key on the way in."""
    converter = cattrs.Converter(detailed_validation=False)
    converter.register_unstructure_hook(uuid.UUID, str)
    converter.register_structure_hook(uuid.UUID, lambda value, _: uuid.UUID(value))
    converter.register_unstructure_hook(datetime, datetime.isoformat)
    converter.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
    converter.register_unstructure_hook(FreshnessMarker, make_dict_unstructure_fn(
        FreshnessMarker, converter, org_id=override(omit=True)))
    return converter


_MARKERS = _converter()


def _encode(marker: FreshnessMarker) -> dict[str, Any]:
    encoded: dict[str, Any] = _MARKERS.unstructure(marker)
    return encoded


def _decode(org_id: uuid.UUID, item: dict[str, Any]) -> FreshnessMarker:
    return _MARKERS.structure({**item, "org_id": str(org_id)}, FreshnessMarker)
