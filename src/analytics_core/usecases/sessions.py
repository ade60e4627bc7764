"""Dashboard sign-in, session checks and sign-out (SPEC §14) over the `SessionStore` port.

Every sign-in makes a brand-new session with fresh tokens, so a session id planted before
sign-in is never promoted (no session fixation). Checks read in one unit of work and write
(touch, delete) in another that starts with the write: SQLite then takes its write lock at
once instead of upgrading a read transaction.
"""

from __future__ import annotations

import re
from datetime import datetime

import attrs

from analytics_core.access import Actor
from analytics_core.errors import Unauthenticated
from analytics_core.ports import Clock, IdGenerator, UnitOfWork, UnitOfWorkFactory
from analytics_core.records import ApiKeyRecord
from analytics_core.sessions import SessionPolicy, UiSession, session_hash
from analytics_core.usecases.access import record_change

SIGN_IN_ACTION = "analytics:ui:sign-in"
SIGN_OUT_ACTION = "analytics:ui:sign-out"
_TOKEN = re.compile(r"[0-9a-f]{64}")


def _new_token(ids: IdGenerator) -> str:
    return ids.new_id().hex + ids.new_id().hex


def _resource(session: UiSession) -> str:
    # A prefix of the hash ties sign-in to sign-out; the hash opens no session.
    return f"session:{session.session_hash[:16]}"


def _audit(uow: UnitOfWork, ids: IdGenerator, now: datetime, session: UiSession, *,
           action: str, reason: str) -> None:
    if session.actor.org_id is not None:
        record_change(uow, ids, now, actor=session.actor, org_id=session.actor.org_id,
                      resource=_resource(session), action=action, reason=reason)


def start_session(
    actor: Actor, *, key_id: str | None, not_after: datetime | None, policy: SessionPolicy,
    uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator,
) -> tuple[str, UiSession]:
    """Open a new session for an authenticated actor; returns its token (the cookie value,
    never stored) and the stored session.

    It expires `policy.absolute` after now or at `not_after` (a bearer token's expiry),
    whichever is first. Signing in to an org is audited there (`analytics:ui:sign-in`) in the
    same transaction.
    """
    now = clock.now()
    token = _new_token(ids)
    expires_at = now + policy.absolute
    if not_after is not None:
        expires_at = min(expires_at, not_after)
    session = UiSession(session_hash(token), actor, _new_token(ids), now, now, expires_at,
                        key_id)
    how = "bearer token" if key_id is None else f"API key {key_id}"
    with uow_factory() as uow:
        _audit(uow, ids, now, session, action=SIGN_IN_ACTION, reason=f"signed in with {how}")
        uow.sessions.add(session)
        uow.commit()
    return token, session


def resume_session(
    token: str, *, policy: SessionPolicy, uow_factory: UnitOfWorkFactory, clock: Clock,
) -> UiSession:
    """The live session behind a cookie value; Unauthenticated (saying why) when the token is
    unknown, the session has been idle too long or reached its absolute expiry, or the API
    key it was opened with is gone or revoked; those ended sessions are deleted.

    Its last use is written when it was `policy.touch_every` or more ago (not per request).
    """
    if not _TOKEN.fullmatch(token):
        raise Unauthenticated("malformed session token")
    hashed = session_hash(token)
    now = clock.now()
    with uow_factory() as uow:
        session = uow.sessions.find(hashed)
        key = None if session is None or session.key_id is None else uow.api_keys.find(
            session.key_id)
    if session is None:
        raise Unauthenticated("unknown session")
    ended = _why_ended(session, key, now, policy)
    if ended is not None:
        with uow_factory() as uow:
            uow.sessions.delete(hashed)
            uow.commit()
        raise Unauthenticated(ended)
    if now - session.last_seen_at >= policy.touch_every:
        with uow_factory() as uow:
            uow.sessions.touch(hashed, now)
            uow.commit()
        session = attrs.evolve(session, last_seen_at=now)
    return session


def _why_ended(session: UiSession, key: ApiKeyRecord | None, now: datetime,
               policy: SessionPolicy) -> str | None:
    reason = session.expired(now, policy)
    if reason is not None:
        return f"session expired ({reason})"
    if session.key_id is not None and (key is None or key.revoked):
        return f"session ended: API key {session.key_id} was revoked or deleted"
    return None


def end_session(
    token: str, *, uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator,
) -> bool:
    """Sign out: delete the session; True when it existed. Signing out of an org is audited
    there (`analytics:ui:sign-out`) in the same transaction."""
    hashed = session_hash(token)
    with uow_factory() as uow:
        session = uow.sessions.find(hashed)
    if session is None:
        return False
    with uow_factory() as uow:
        deleted = uow.sessions.delete(hashed)
        if deleted:
            _audit(uow, ids, clock.now(), session, action=SIGN_OUT_ACTION,
                   reason="signed out")
        uow.commit()
    return deleted


def purge_sessions(
    *, policy: SessionPolicy, uow_factory: UnitOfWorkFactory, clock: Clock,
) -> int:
    """Delete every idle or absolutely expired session; return how many."""
    with uow_factory() as uow:
        removed = uow.sessions.delete_expired(clock.now(), policy.idle)
        uow.commit()
    return removed
