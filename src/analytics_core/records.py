"""Records kept for audit and operations: dead letters, conflicts, audit entries, API keys."""

from __future__ import annotations

import uuid
from datetime import datetime

import attrs

from analytics_core.access import Outcome


@attrs.frozen
class DeadLetter:
    """A rejected message, kept with its raw bytes so nothing is silently dropped."""

    dead_letter_id: uuid.UUID
    received_at: datetime
    source: str  # "http" or "stream:<name>"
    raw: bytes
    reason: str
    org_id: uuid.UUID | None = None
    offset: int | None = None


@attrs.frozen
class DedupeConflict:
    """A duplicate (org, event) whose content differs from the first accepted version."""

    org_id: uuid.UUID
    event_id: uuid.UUID
    detected_at: datetime
    source: str
    first_fingerprint: str
    new_fingerprint: str
    raw: bytes
    # Stable id of a conflict read from a stream (stream + offset): storing it again is a no-op.
    # None (HTTP): every detection is a record of its own.
    conflict_id: uuid.UUID | None = None


@attrs.frozen
class AuditEntry:
    """One authorization decision on org data (SPEC §6)."""

    audit_id: uuid.UUID
    at: datetime
    actor: str
    actor_org: uuid.UUID | None
    org_id: uuid.UUID
    action: str
    resource: str
    outcome: Outcome
    reason: str
    request_id: str | None
    cross_org: bool = False


@attrs.frozen
class ApiKeyRecord:
    """An API key as stored: only the SHA-256 of the secret is kept."""

    key_id: str
    org_id: uuid.UUID | None
    roles: frozenset[str]
    secret_hash: str
    created_at: datetime
    name: str = ""
    revoked: bool = False


@attrs.frozen
class StreamPosition:
    """Last committed offset of one stream partition for one consumer group."""

    consumer: str
    stream: str
    offset: int
