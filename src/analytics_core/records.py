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
    # Set once, when a re-drive stored the message's event (`accepted`) or found it already
    # stored (`duplicate`); the letter stays, as the record of what happened.
    redriven_at: datetime | None = None
    redriven_by: str | None = None
    redrive_outcome: str | None = None


@attrs.frozen
class DeadLetterFilter:
    """Which dead letters a page holds: `reason` is a case-insensitive substring of the reason,
    `source` the exact source (`http`, `stream:<name>`), `since` <= received_at < `until`,
    `redriven` True/False keeps only re-driven / open letters."""

    reason: str | None = None
    source: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    redriven: bool | None = None


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
class AuditFilter:
    """Which audit entries a page holds: exact `actor`, `action` and `outcome`,
    `since` <= at < `until`."""

    actor: str | None = None
    action: str | None = None
    outcome: Outcome | None = None
    since: datetime | None = None
    until: datetime | None = None


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
