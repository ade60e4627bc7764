"""Authorize with audit, and API keys stored only as hashes (SPEC §6)."""

from __future__ import annotations

import hashlib
import hmac
import threading
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

import attrs

from analytics_core.access import KNOWN_ROLES, Action, Actor, Decision, Outcome, decide
from analytics_core.errors import (
    FieldError,
    Forbidden,
    NotFound,
    Unauthenticated,
    ValidationFailed,
)
from analytics_core.events import NIL_ORG_MESSAGE, PLATFORM_ORG
from analytics_core.ports import (
    ApiKeyCache,
    AuditAppender,
    Clock,
    IdGenerator,
    UnitOfWork,
    UnitOfWorkFactory,
)
from analytics_core.records import ApiKeyRecord, AuditEntry

API_KEY_PREFIX = "ak"
REVOKE_ACTION = "analytics:apikeys:revoke"


class AuditWriter:
    """Writes audit entries durably for many threads at once (group commit).

    `record` returns once the entry is committed, or raises the error that kept it from being
    committed: an entry is never dropped nor acknowledged before it is durable. A caller that
    finds fewer than `writers` writes in progress becomes a writer: it commits every entry
    queued meanwhile in one transaction (up to `batch` per transaction) and repeats until the
    queue is empty, while the other callers wait for their entry's transaction. Concurrent
    requests of one process thus share a commit (one WAL flush) instead of paying one each; a
    lone request writes its entry itself, as before. With `writers` above one (PostgreSQL,
    where each writer holds its own connection) a group is sent while another is still being
    flushed, and the server's own group commit joins their flushes.

    The transaction is the `appender`'s (on PostgreSQL one autocommitted statement on a held
    connection: sql.audit_appender), or else a unit of work of `uow_factory` (UnitOfWorkAudit).
    """

    def __init__(self, uow_factory: UnitOfWorkFactory, *, batch: int = 256,
                 appender: AuditAppender | None = None, writers: int = 1) -> None:
        self._appender = appender if appender is not None else UnitOfWorkAudit(uow_factory)
        self._batch = batch
        self._writers = max(writers, 1)
        self._lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._active = 0  # writers draining the queue now
        self.commits = 0  # transactions committed (tests and metrics read it)

    def record(self, entry: AuditEntry) -> None:
        """Append one entry durably (blocks until its transaction commits)."""
        pending = _Pending(entry)
        with self._lock:
            self._queue.append(pending)
            lead = self._take_lead()
        while True:
            if lead:
                self._drain()
            if pending.done.wait(_FOLLOWER_POLL):
                break
            with self._lock:  # a writer that died left entries behind: take over
                lead = self._take_lead()
        if pending.error is not None:
            raise pending.error

    def _take_lead(self) -> bool:
        """Become a writer if fewer than `writers` are active (called under the lock)."""
        if self._active >= self._writers:
            return False
        self._active += 1
        return True

    def _drain(self) -> None:
        try:
            while True:
                with self._lock:
                    batch, self._queue = self._queue[:self._batch], self._queue[self._batch:]
                    if not batch:
                        self._active -= 1
                        return
                try:
                    self._appender.append([pending.entry for pending in batch])
                    with self._lock:
                        self.commits += 1
                except Exception as e:  # each waiter of the batch gets the error back
                    for pending in batch:
                        pending.error = e
                for pending in batch:
                    pending.done.set()
        except BaseException:
            with self._lock:
                self._active -= 1
            raise


_FOLLOWER_POLL = 0.5  # seconds a waiting caller sleeps before checking the writer is alive


@attrs.frozen
class UnitOfWorkAudit:
    """ports.AuditAppender over any storage: the entries in one unit of work."""

    uow_factory: UnitOfWorkFactory

    def append(self, entries: Sequence[AuditEntry]) -> None:
        """Record every entry and commit (nothing for no entries)."""
        if not entries:
            return
        with self.uow_factory() as uow:
            for entry in entries:
                uow.audit.record(entry)
            uow.commit()


@attrs.define
class _Pending:
    entry: AuditEntry
    done: threading.Event = attrs.field(factory=threading.Event)
    error: Exception | None = None


@attrs.frozen
class Authorizer:
    """Decides every access to org data and audits the decision in the same breath (through
    `writer`, which shares commits between concurrent requests of the process)."""

    uow_factory: UnitOfWorkFactory
    clock: Clock
    ids: IdGenerator
    writer: AuditWriter = attrs.field()

    @writer.default
    def _writer(self) -> AuditWriter:
        return AuditWriter(self.uow_factory)

    def require(
        self, actor: Actor, action: Action, org_id: uuid.UUID, *, resource: str = "",
        request_id: str | None = None,
    ) -> Decision:
        """Return the decision when allowed; record it either way; raise Forbidden when denied."""
        decision = decide(actor, action, org_id)
        entry = AuditEntry(
            audit_id=self.ids.new_id(), at=self.clock.now(), actor=actor.subject,
            actor_org=actor.org_id, org_id=org_id, action=action.value,
            resource=resource or f"org:{org_id}", outcome=decision.outcome,
            reason=decision.reason, request_id=request_id, cross_org=decision.cross_org,
        )
        self.writer.record(entry)
        if not decision.allowed:
            raise Forbidden(decision.reason)
        return decision


def hash_secret(secret: str) -> str:
    """SHA-256 hex of an API key secret (keys are high-entropy, so no slow KDF is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    *, org_id: uuid.UUID | None, roles: Iterable[str], name: str, uow_factory: UnitOfWorkFactory,
    clock: Clock, ids: IdGenerator,
) -> tuple[str, ApiKeyRecord]:
    """Create a key; returns the plaintext (shown once) and the stored record (hash only)."""
    role_set = frozenset(roles)
    unknown = sorted(role_set - KNOWN_ROLES)
    valid = ", ".join(sorted(KNOWN_ROLES, key=lambda r: (":" in r, r)))
    errors = [FieldError("role", f"unknown role {r!r}; valid roles: {valid}") for r in unknown]
    if not role_set:
        errors.append(FieldError("role", "at least one role is required"))
    if org_id is None and "admin" not in role_set:
        errors.append(FieldError("org", "is required unless the role is admin"))
    if org_id == PLATFORM_ORG:
        errors.append(FieldError("org", NIL_ORG_MESSAGE))
    if errors:
        raise ValidationFailed(errors, "invalid API key request")
    key_id = ids.new_id().hex[:16]
    secret = ids.new_id().hex + ids.new_id().hex
    record = ApiKeyRecord(key_id, org_id, role_set, hash_secret(secret), clock.now(), name)
    with uow_factory() as uow:
        uow.api_keys.add(record)
        uow.commit()
    return f"{API_KEY_PREFIX}_{key_id}_{secret}", record


def authenticate_api_key(presented: str, *, uow_factory: UnitOfWorkFactory,
                         keys: ApiKeyCache | None = None) -> Actor:
    """The actor behind an `X-API-Key` value; Unauthenticated for anything unknown or revoked.
    With `keys`, a valid key's record is kept by the process until the key changes."""
    parts = presented.split("_")
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        raise Unauthenticated("malformed API key")
    _, key_id, secret = parts
    record = None if keys is None else keys.get(key_id)
    if record is None:
        generation = -1 if keys is None else keys.generation()
        with uow_factory() as uow:
            record = uow.api_keys.find(key_id)
        if keys is not None and record is not None and not record.revoked:
            keys.put(record, generation)
    if record is None or record.revoked or not hmac.compare_digest(
        record.secret_hash, hash_secret(secret)
    ):
        raise Unauthenticated("invalid API key")
    if record.org_id == PLATFORM_ORG:  # stored before such keys were refused: nobody's org
        raise Unauthenticated(f"API key's org {NIL_ORG_MESSAGE}")
    return Actor(f"apikey:{key_id}", record.org_id, record.roles, "apikey")


def list_api_keys(
    org_id: uuid.UUID | None, *, uow_factory: UnitOfWorkFactory,
) -> list[ApiKeyRecord]:
    """The keys of one org (None: every key), oldest first, revoked ones included."""
    with uow_factory() as uow:
        return uow.api_keys.list(org_id)


@attrs.frozen
class Revocation:
    """What `revoke_api_key` did: the key as now stored, and whether it was already revoked."""

    record: ApiKeyRecord
    already_revoked: bool


def revoke_api_key(
    key_id: str, *, actor: str, uow_factory: UnitOfWorkFactory, clock: Clock, ids: IdGenerator,
) -> Revocation:
    """Revoke a key so it stops authenticating at once; NotFound for an unknown key id.

    Revoking an org's key is audited in that org (action `analytics:apikeys:revoke`, by
    `actor`) in the same transaction. A platform-wide admin key belongs to no org, so the audit
    log, which is kept per org, has no place for it. Revoking a revoked key changes and audits
    nothing.
    """
    with uow_factory() as uow:
        found = uow.api_keys.find(key_id)
    if found is None:
        raise NotFound(f"no API key with id {key_id!r}")
    if found.revoked:
        return Revocation(found, already_revoked=True)
    # A new unit that writes first: SQLite then takes its write lock at once instead of
    # upgrading a read transaction, which can fail while the API ingests.
    with uow_factory() as uow:
        if not uow.api_keys.revoke(key_id):
            raise NotFound(f"no API key with id {key_id!r}")
        if found.org_id is not None:
            uow.audit.record(AuditEntry(
                audit_id=ids.new_id(), at=clock.now(), actor=actor, actor_org=None,
                org_id=found.org_id, action=REVOKE_ACTION, resource=f"apikey:{key_id}",
                outcome=Outcome.ALLOWED, reason="API key revoked", request_id=None,
            ))
        uow.commit()
    return Revocation(attrs.evolve(found, revoked=True), already_revoked=False)


def record_change(uow: UnitOfWork, ids: IdGenerator, now: datetime, *, actor: Actor,
                  org_id: uuid.UUID, resource: str, action: str, reason: str = "") -> None:
    """Audit a change an actor makes to an org's configuration (budgets, rules, webhooks).
    Changing use cases record it first: on SQLite the unit then holds the write lock before
    it reads, and never has to upgrade a read transaction (which fails at once under a
    concurrent writer); a change that then fails rolls its entry back."""
    uow.audit.record(AuditEntry(
        audit_id=ids.new_id(), at=now, actor=actor.subject, actor_org=actor.org_id,
        org_id=org_id, action=action, resource=resource, outcome=Outcome.ALLOWED,
        reason=reason, request_id=None, cross_org=actor.org_id != org_id,
    ))
