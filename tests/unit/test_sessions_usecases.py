"""Dashboard sessions over the in-memory fakes: sign-in, expiry, revocation, touch, sign-out."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from analytics_adapters.memory import (
    InMemoryStorage,
    ManualClock,
    SequentialIds,
    unit_of_work_factory,
)
from analytics_core.access import Actor, Outcome
from analytics_core.errors import Unauthenticated
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.sessions import SessionPolicy, UiSession, session_hash
from analytics_core.usecases.access import create_api_key, revoke_api_key
from analytics_core.usecases.sessions import (
    end_session,
    purge_sessions,
    resume_session,
    start_session,
)

NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)
POLICY = SessionPolicy()
ORG = uuid.UUID("6f1c2a4e-0000-4000-8000-00000000abcd")
ACTOR = Actor("user:ada", ORG, frozenset({"analytics:usage:read"}), "jwt")
ADMIN = Actor("user:root", None, frozenset({"admin"}), "jwt")


@pytest.fixture
def storage() -> InMemoryStorage:
    """A fresh in-memory database."""
    return InMemoryStorage()


@pytest.fixture
def uow_factory(storage: InMemoryStorage) -> UnitOfWorkFactory:
    """Units of work over `storage`."""
    return unit_of_work_factory(storage)


@pytest.fixture
def clock() -> ManualClock:
    """A clock at NOW that moves only when told."""
    return ManualClock(NOW)


@pytest.fixture
def ids() -> SequentialIds:
    """Predictable ids."""
    return SequentialIds()


def sign_in(uow_factory: UnitOfWorkFactory, clock: ManualClock, ids: SequentialIds,
            actor: Actor = ACTOR, *, key_id: str | None = None,
            not_after: datetime | None = None) -> tuple[str, UiSession]:
    """start_session with the default policy."""
    return start_session(actor, key_id=key_id, not_after=not_after, policy=POLICY,
                         uow_factory=uow_factory, clock=clock, ids=ids)


def resume(uow_factory: UnitOfWorkFactory, clock: ManualClock, token: str) -> UiSession:
    """resume_session with the default policy."""
    return resume_session(token, policy=POLICY, uow_factory=uow_factory, clock=clock)


def stored(uow_factory: UnitOfWorkFactory, token: str) -> UiSession | None:
    """The stored session behind a token, looked up by its hash."""
    with uow_factory() as uow:
        return uow.sessions.find(session_hash(token))


def test_each_sign_in_makes_a_new_session_with_fresh_tokens(
    uow_factory: UnitOfWorkFactory, clock: ManualClock, ids: SequentialIds,
) -> None:
    """Two sign-ins of one actor give distinct 64-hex tokens, hashes and CSRF tokens."""
    token_a, a = sign_in(uow_factory, clock, ids)
    token_b, b = sign_in(uow_factory, clock, ids)
    assert token_a != token_b
    assert len(token_a) == len(token_b) == 64
    assert int(token_a, 16) >= 0
    assert a.session_hash != b.session_hash
    assert len({a.csrf_token, b.csrf_token, token_a, token_b}) == 4
    assert (a.created_at, a.last_seen_at, a.expires_at) == (NOW, NOW, NOW + POLICY.absolute)
    assert stored(uow_factory, token_a) == a
    assert stored(uow_factory, token_b) == b


def test_only_the_hash_of_the_token_is_stored(
    storage: InMemoryStorage, uow_factory: UnitOfWorkFactory, clock: ManualClock,
    ids: SequentialIds,
) -> None:
    """The store is keyed by sha256(token) and no stored value contains the token."""
    token, session = sign_in(uow_factory, clock, ids)
    assert session.session_hash == session_hash(token) != token
    assert list(storage.ui_sessions) == [session_hash(token)]
    assert token not in repr(storage.ui_sessions)


def test_a_live_session_resumes_with_its_actor(
    uow_factory: UnitOfWorkFactory, clock: ManualClock, ids: SequentialIds,
) -> None:
    """Within the idle and absolute limits the token gives back the session and actor."""
    token, session = sign_in(uow_factory, clock, ids)
    clock.advance(POLICY.idle - timedelta(seconds=1))
    resumed = resume(uow_factory, clock, token)
    assert resumed.actor == ACTOR
    assert resumed.csrf_token == session.csrf_token


def test_unknown_and_malformed_tokens_are_unauthenticated(
    uow_factory: UnitOfWorkFactory, clock: ManualClock,
) -> None:
    """A well-formed token never issued and a malformed one both say why they fail."""
    with pytest.raises(Unauthenticated, match="unknown session"):
        resume(uow_factory, clock, "ab" * 32)
    with pytest.raises(Unauthenticated, match="malformed"):
        resume(uow_factory, clock, "not-a-token")


def test_an_idle_session_expires_and_is_deleted(
    uow_factory: UnitOfWorkFactory, clock: ManualClock, ids: SequentialIds,
) -> None:
    """After `idle` without use the token fails with reason idle and the session is gone."""
    token, _ = sign_in(uow_factory, clock, ids)
    clock.advance(POLICY.idle)
    with pytest.raises(Unauthenticated, match=r"expired \(idle\)"):
        resume(uow_factory, clock, token)
    assert stored(uow_factory, token) is None


def test_a_used_session_still_ends_at_its_absolute_expiry(
    uow_factory: UnitOfWorkFactory, clock: ManualClock, ids: SequentialIds,
) -> None:
    """Use every 20 minutes keeps it from idling out, yet it ends `absolute` after sign-in."""
    token, _ = sign_in(uow_factory, clock, ids)
    while clock.advance(timedelta(minutes=20)) < NOW + POLICY.absolute:
        resume(uow_factory, clock, token)
    with pytest.raises(Unauthenticated, match=r"expired \(absolute\)"):
        resume(uow_factory, clock, token)
    assert stored(uow_factory, token) is None


def test_a_bearer_tokens_expiry_caps_the_session(
    uow_factory: UnitOfWorkFactory, clock: ManualClock, ids: SequentialIds,
) -> None:
    """`not_after` before the absolute limit becomes the session's expiry."""
    exp = NOW + timedelta(minutes=10)
    token, session = sign_in(uow_factory, clock, ids, not_after=exp)
    assert session.expires_at == exp
    clock.set(exp)
    with pytest.raises(Unauthenticated, match="absolute"):
        resume(uow_factory, clock, token)


def test_a_late_not_after_leaves_the_absolute_limit(
    uow_factory: UnitOfWorkFactory, clock: ManualClock, ids: SequentialIds,
) -> None:
    """`not_after` beyond `absolute` does not lengthen the session."""
    _, session = sign_in(uow_factory, clock, ids, not_after=NOW + timedelta(days=7))
    assert session.expires_at == NOW + POLICY.absolute


def test_revoking_the_api_key_ends_its_sessions(
    uow_factory: UnitOfWorkFactory, clock: ManualClock, ids: SequentialIds,
) -> None:
    """A session opened with a key fails and is deleted once that key is revoked."""
    _, record = create_api_key(org_id=ORG, roles=["analytics:usage:read"], name="k",
                               uow_factory=uow_factory, clock=clock, ids=ids)
    actor = Actor(f"apikey:{record.key_id}", ORG, record.roles, "apikey")
    token, _ = sign_in(uow_factory, clock, ids, actor, key_id=record.key_id)
    assert resume(uow_factory, clock, token).key_id == record.key_id
    revoke_api_key(record.key_id, actor="cli", uow_factory=uow_factory, clock=clock, ids=ids)
    with pytest.raises(Unauthenticated, match="revoked"):
        resume(uow_factory, clock, token)
    assert stored(uow_factory, token) is None


def test_a_session_whose_api_key_is_missing_ends(
    uow_factory: UnitOfWorkFactory, clock: ManualClock, ids: SequentialIds,
) -> None:
    """A key id no longer stored ends the session like a revoked key."""
    token, _ = sign_in(uow_factory, clock, ids, key_id="0123456789abcdef")
    with pytest.raises(Unauthenticated, match="API key 0123456789abcdef"):
        resume(uow_factory, clock, token)
    assert stored(uow_factory, token) is None


def test_last_use_is_written_at_most_once_per_touch_interval(
    uow_factory: UnitOfWorkFactory, clock: ManualClock, ids: SequentialIds,
) -> None:
    """Use sooner than `touch_every` writes nothing; use after it stores the new instant."""
    token, _ = sign_in(uow_factory, clock, ids)
    clock.advance(POLICY.touch_every - timedelta(seconds=1))
    assert resume(uow_factory, clock, token).last_seen_at == NOW
    assert getattr(stored(uow_factory, token), "last_seen_at", None) == NOW
    later = clock.advance(timedelta(seconds=1))
    assert resume(uow_factory, clock, token).last_seen_at == later
    assert getattr(stored(uow_factory, token), "last_seen_at", None) == later


def test_signing_out_ends_the_session_once(
    uow_factory: UnitOfWorkFactory, clock: ManualClock, ids: SequentialIds,
) -> None:
    """end_session is True and the token stops working; a second call is False."""
    token, _ = sign_in(uow_factory, clock, ids)
    assert end_session(token, uow_factory=uow_factory, clock=clock, ids=ids) is True
    with pytest.raises(Unauthenticated, match="unknown session"):
        resume(uow_factory, clock, token)
    assert end_session(token, uow_factory=uow_factory, clock=clock, ids=ids) is False


def test_sign_in_and_sign_out_are_audited_in_the_actors_org(
    uow_factory: UnitOfWorkFactory, clock: ManualClock, ids: SequentialIds,
) -> None:
    """One allowed `analytics:ui:sign-in` then one `analytics:ui:sign-out` by the actor."""
    token, session = sign_in(uow_factory, clock, ids)
    clock.advance(timedelta(minutes=5))
    end_session(token, uow_factory=uow_factory, clock=clock, ids=ids)
    with uow_factory() as uow:
        entries = list(reversed(uow.audit.recent(ORG)))
    assert [(e.action, e.actor, e.org_id, e.outcome, e.at) for e in entries] == [
        ("analytics:ui:sign-in", "user:ada", ORG, Outcome.ALLOWED, NOW),
        ("analytics:ui:sign-out", "user:ada", ORG, Outcome.ALLOWED, NOW + timedelta(minutes=5)),
    ]
    assert entries[0].resource == entries[1].resource == f"session:{session.session_hash[:16]}"


def test_an_org_less_admin_signs_in_and_out_without_audit(
    storage: InMemoryStorage, uow_factory: UnitOfWorkFactory, clock: ManualClock,
    ids: SequentialIds,
) -> None:
    """A platform admin belongs to no org, so nothing is appended to the per-org audit log."""
    token, _ = sign_in(uow_factory, clock, ids, ADMIN)
    assert resume(uow_factory, clock, token).actor == ADMIN
    assert end_session(token, uow_factory=uow_factory, clock=clock, ids=ids)
    assert storage.audit == []


def test_purge_deletes_only_expired_sessions(
    uow_factory: UnitOfWorkFactory, clock: ManualClock, ids: SequentialIds,
) -> None:
    """An idle and a capped session are purged and counted; a fresh one stays."""
    idle, _ = sign_in(uow_factory, clock, ids)
    capped, _ = sign_in(uow_factory, clock, ids, not_after=NOW + timedelta(minutes=1))
    clock.advance(POLICY.idle)
    fresh, _ = sign_in(uow_factory, clock, ids)
    assert purge_sessions(policy=POLICY, uow_factory=uow_factory, clock=clock) == 2
    assert stored(uow_factory, idle) is None
    assert stored(uow_factory, capped) is None
    assert stored(uow_factory, fresh) is not None
    assert purge_sessions(policy=POLICY, uow_factory=uow_factory, clock=clock) == 0


def test_policy_durations_must_be_positive() -> None:
    """A zero or negative idle, absolute or touch interval is refused."""
    for field in ("idle", "absolute", "touch_every"):
        with pytest.raises(ValueError, match=field):
            SessionPolicy(**{field: timedelta(0)})


def test_expired_names_the_limit_reached_first() -> None:
    """absolute at `expires_at`, idle at `last_seen_at + idle`, None before either."""
    session = UiSession(session_hash("t"), ACTOR, "csrf", NOW, NOW, NOW + timedelta(hours=1))
    assert session.expired(NOW + POLICY.idle - timedelta(microseconds=1), POLICY) is None
    assert session.expired(NOW + POLICY.idle, POLICY) == "idle"
    assert session.expired(NOW + timedelta(hours=1), POLICY) == "absolute"
