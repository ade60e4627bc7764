"""SessionStore contract: sessions by hash, found exactly as added, duplicates refused, touched
and deleted by hash, expired ones purged at inclusive idle and absolute boundaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from analytics_core.access import Actor
from analytics_core.errors import Conflict
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.sessions import UiSession, session_hash
from tests.contract.factories import BASE, new_id

IDLE = timedelta(minutes=30)
# Purge tests run far before every other session any test stores (BASE or the real clock),
# so a purge there touches only this module's own leftovers.
LONG_AGO = datetime(1975, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
US = timedelta(microseconds=1)


def make_session(**overrides: Any) -> UiSession:
    """A session of a fresh org's API key at BASE, alive for 12 hours; any field overridable."""
    fields: dict[str, Any] = {
        "session_hash": session_hash(new_id().hex), "csrf_token": new_id().hex,
        "actor": Actor(f"apikey:{new_id().hex[:16]}", new_id(),
                       frozenset({"analytics:usage:read", "analytics:exports:read"}), "apikey"),
        "created_at": BASE, "last_seen_at": BASE, "expires_at": BASE + timedelta(hours=12),
        "key_id": new_id().hex[:16],
    }
    fields.update(overrides)
    return UiSession(**fields)


def store(uow_factory: UnitOfWorkFactory, *sessions: UiSession) -> None:
    """Add each session in one committed unit of work."""
    with uow_factory() as uow:
        for session in sessions:
            uow.sessions.add(session)
        uow.commit()


def find(uow_factory: UnitOfWorkFactory, hashed: str) -> UiSession | None:
    """sessions.find in its own unit."""
    with uow_factory() as uow:
        return uow.sessions.find(hashed)


def test_added_session_is_found_with_every_field(uow_factory: UnitOfWorkFactory) -> None:
    """find returns the session exactly: actor (roles, org, method), CSRF token, instants
    to the microsecond, key id; an org-less bearer session too."""
    keyed = make_session()
    admin = make_session(actor=Actor("user:root", None, frozenset({"admin"}), "jwt"),
                         key_id=None, last_seen_at=BASE + timedelta(minutes=3, microseconds=7))
    store(uow_factory, keyed, admin)
    assert find(uow_factory, keyed.session_hash) == keyed
    assert find(uow_factory, admin.session_hash) == admin


def test_find_of_an_unknown_hash_is_none(uow_factory: UnitOfWorkFactory) -> None:
    """A hash never stored finds nothing."""
    assert find(uow_factory, make_session().session_hash) is None


def test_an_expired_session_is_still_found_until_deleted(uow_factory: UnitOfWorkFactory) -> None:
    """Expiry is the caller's decision: find returns a long-expired session."""
    old = make_session(created_at=LONG_AGO, last_seen_at=LONG_AGO, expires_at=LONG_AGO + US)
    store(uow_factory, old)
    assert find(uow_factory, old.session_hash) == old
    with uow_factory() as uow:
        uow.sessions.delete(old.session_hash)
        uow.commit()


def test_adding_a_duplicate_hash_raises_conflict(uow_factory: UnitOfWorkFactory) -> None:
    """A second session under a stored hash raises Conflict and leaves the first in place."""
    first = make_session()
    store(uow_factory, first)
    with uow_factory() as uow, pytest.raises(Conflict):
        uow.sessions.add(attrs.evolve(first, csrf_token="impostor"))
    assert find(uow_factory, first.session_hash) == first


def test_touch_sets_last_seen_and_nothing_else(uow_factory: UnitOfWorkFactory) -> None:
    """After touch only `last_seen_at` differs; another session is untouched."""
    session, other = make_session(), make_session()
    store(uow_factory, session, other)
    later = BASE + timedelta(minutes=9, microseconds=13)
    with uow_factory() as uow:
        uow.sessions.touch(session.session_hash, later)
        uow.commit()
    assert find(uow_factory, session.session_hash) == attrs.evolve(session, last_seen_at=later)
    assert find(uow_factory, other.session_hash) == other


def test_touch_of_an_unknown_hash_does_nothing(uow_factory: UnitOfWorkFactory) -> None:
    """Touching a hash never stored raises nothing and creates nothing."""
    hashed = make_session().session_hash
    with uow_factory() as uow:
        uow.sessions.touch(hashed, BASE)
        uow.commit()
    assert find(uow_factory, hashed) is None


def test_delete_reports_whether_the_session_existed(uow_factory: UnitOfWorkFactory) -> None:
    """True and gone the first time; False the second time; other sessions stay."""
    session, other = make_session(), make_session()
    store(uow_factory, session, other)
    with uow_factory() as uow:
        assert uow.sessions.delete(session.session_hash) is True
        uow.commit()
    with uow_factory() as uow:
        assert uow.sessions.delete(session.session_hash) is False
        uow.commit()
    assert find(uow_factory, session.session_hash) is None
    assert find(uow_factory, other.session_hash) == other


def test_uncommitted_writes_are_rolled_back(uow_factory: UnitOfWorkFactory) -> None:
    """Without commit an add, a touch and a delete leave nothing behind."""
    kept, added = make_session(), make_session()
    store(uow_factory, kept)
    with uow_factory() as uow:
        uow.sessions.add(added)
        uow.sessions.touch(kept.session_hash, BASE + timedelta(hours=1))
        assert uow.sessions.delete(kept.session_hash)
    assert find(uow_factory, added.session_hash) is None
    assert find(uow_factory, kept.session_hash) == kept


def test_delete_expired_removes_idle_and_absolute_ends_at_their_boundaries(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """`expires_at <= now` or `last_seen_at + idle <= now` is removed and counted; a session
    a microsecond short of either end stays."""
    now = LONG_AGO + timedelta(days=1)
    with uow_factory() as uow:  # leftovers of an earlier failed run of this test
        uow.sessions.delete_expired(now, IDLE)
        uow.commit()
    start = now - timedelta(hours=2)
    at_absolute = make_session(created_at=start, last_seen_at=now - US, expires_at=now)
    past_absolute = make_session(created_at=start, last_seen_at=now - US,
                                 expires_at=now - timedelta(hours=1))
    at_idle = make_session(created_at=start, last_seen_at=now - IDLE,
                           expires_at=now + timedelta(hours=1))
    alive = make_session(created_at=start, last_seen_at=now - IDLE + US, expires_at=now + US)
    store(uow_factory, at_absolute, past_absolute, at_idle, alive)
    with uow_factory() as uow:
        assert uow.sessions.delete_expired(now, IDLE) == 3
        uow.commit()
    for gone in (at_absolute, past_absolute, at_idle):
        assert find(uow_factory, gone.session_hash) is None
    assert find(uow_factory, alive.session_hash) == alive
    with uow_factory() as uow:
        assert uow.sessions.delete_expired(now, IDLE) == 0
        uow.sessions.delete(alive.session_hash)
        uow.commit()


def test_delete_expired_counts_nothing_when_every_session_lives(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """Sessions stored later than `now - idle` and expiring after `now` stay; the count is 0."""
    now = LONG_AGO + timedelta(days=3)
    with uow_factory() as uow:
        uow.sessions.delete_expired(now, IDLE)
        uow.commit()
    alive = make_session(created_at=now, last_seen_at=now, expires_at=now + timedelta(hours=1))
    store(uow_factory, alive)
    with uow_factory() as uow:
        assert uow.sessions.delete_expired(now, IDLE) == 0
        uow.sessions.delete(alive.session_hash)
        uow.commit()
