"""API keys kept by a process (PostgreSQL LISTEN/NOTIFY): a revocation made by another process
reaches it, a stale read never overwrites a revocation, a lost connection keeps nothing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

from analytics_adapters.sql import SqlStorage
from analytics_adapters.sql.advisory_locks import libpq_url
from analytics_adapters.sql.key_cache import NotifiedKeyCache
from analytics_adapters.system import RandomIds, SystemClock
from analytics_core.errors import Unauthenticated
from analytics_core.ports import UnitOfWork
from analytics_core.usecases.access import authenticate_api_key, create_api_key
from tests.contract.sql_backends import fresh_postgres_database, storage_at

pytestmark = pytest.mark.postgres


@pytest.fixture
def two_processes() -> Iterator[tuple[SqlStorage, SqlStorage, NotifiedKeyCache]]:
    """Two storages on one database (two processes' pools) and the first one's key cache,
    listening."""
    with fresh_postgres_database() as url, storage_at(url) as first, \
            storage_at(url) as second:
        cache = NotifiedKeyCache(libpq_url(url.render_as_string(hide_password=False)))
        until(lambda: cache.generation() >= 0)
        try:
            yield first, second, cache
        finally:
            cache.close()


def until(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    """Poll `condition` until it holds (bounded)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def new_key(storage: SqlStorage) -> tuple[str, str]:
    """(plaintext, key id) of a new org_admin key."""
    plaintext, record = create_api_key(org_id=uuid.uuid4(), roles=["org_admin"], name="t",
                                       uow_factory=storage.unit_of_work, clock=SystemClock(),
                                       ids=RandomIds())
    return plaintext, record.key_id


def revoke(storage: SqlStorage, key_id: str) -> None:
    """Revoke through the store, as `analytics apikey revoke` does."""
    with storage.unit_of_work() as uow:
        assert uow.api_keys.revoke(key_id)
        uow.commit()


def test_a_kept_key_answers_without_the_database_until_another_process_revokes_it(
    two_processes: tuple[SqlStorage, SqlStorage, NotifiedKeyCache],
) -> None:
    """The second request of a key opens no unit of work; a revocation committed by another
    process is refused here within the notice's delivery."""
    first, second, cache = two_processes
    plaintext, key_id = new_key(first)
    opened: list[int] = []

    def counting() -> UnitOfWork:
        opened.append(1)
        return first.unit_of_work()

    authenticate_api_key(plaintext, uow_factory=counting, keys=cache)
    authenticate_api_key(plaintext, uow_factory=counting, keys=cache)
    assert len(opened) == 1
    assert cache.get(key_id) is not None
    revoke(second, key_id)
    until(lambda: cache.get(key_id) is None)
    with pytest.raises(Unauthenticated):
        authenticate_api_key(plaintext, uow_factory=counting, keys=cache)


def test_a_record_read_before_a_notice_is_not_kept(
    two_processes: tuple[SqlStorage, SqlStorage, NotifiedKeyCache],
) -> None:
    """A request that read a key, then learns (through the generation) that a key changed
    meanwhile, does not keep what it read: its read may predate a revocation."""
    first, second, cache = two_processes
    _, key_id = new_key(first)
    _, other = new_key(first)
    generation = cache.generation()
    with first.unit_of_work() as uow:
        record = uow.api_keys.find(key_id)
    assert record is not None
    revoke(second, other)
    until(lambda: cache.generation() != generation)
    cache.put(record, generation)
    assert cache.get(key_id) is None
    cache.put(record, cache.generation())
    assert cache.get(key_id) is not None


def test_a_lost_listening_connection_drops_every_kept_key_until_it_is_back(
    two_processes: tuple[SqlStorage, SqlStorage, NotifiedKeyCache],
) -> None:
    """While the listening connection is down, nothing is kept (requests read the database);
    a revocation made meanwhile is refused; keys are kept again once it listens again."""
    first, second, cache = two_processes
    plaintext, key_id = new_key(first)
    authenticate_api_key(plaintext, uow_factory=first.unit_of_work, keys=cache)
    assert cache.get(key_id) is not None
    with second.engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": cache.backend_pid})
    until(lambda: cache.get(key_id) is None)
    revoke(second, key_id)
    with pytest.raises(Unauthenticated):
        authenticate_api_key(plaintext, uow_factory=first.unit_of_work, keys=cache)
    until(lambda: cache.listening)
    fresh, fresh_id = new_key(first)
    authenticate_api_key(fresh, uow_factory=first.unit_of_work, keys=cache)
    assert cache.get(fresh_id) is not None
