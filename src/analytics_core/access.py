"""Identity and the access policy (SPEC §6) as a pure function of actor, action and org."""

from __future__ import annotations

import uuid
from enum import StrEnum

import attrs

ADMIN = "admin"
ORG_ADMIN = "org_admin"


class Action(StrEnum):
    """Permissions; the value is the fine-grained role that grants it (except the
    `ORG_ADMIN_ONLY` actions, which no fine-grained role grants)."""

    USAGE_READ = "analytics:usage:read"
    RELIABILITY_READ = "analytics:reliability:read"
    EXPORTS_CREATE = "analytics:exports:create"
    EXPORTS_READ = "analytics:exports:read"
    EXPORTS_DOWNLOAD = "analytics:exports:download"
    EVENTS_WRITE = "analytics:events:write"
    CLIENTS_WRITE = "analytics:clients:write"
    BUDGETS_WRITE = "analytics:budgets:write"
    WEBHOOKS_MANAGE = "analytics:webhooks:manage"
    DEAD_LETTERS_MANAGE = "analytics:dead-letters:manage"
    AUDIT_READ = "analytics:audit:read"
    ORG_SETTINGS_WRITE = "analytics:org-settings:write"


ORG_ADMIN_ONLY = frozenset({Action.CLIENTS_WRITE, Action.BUDGETS_WRITE,
                            Action.WEBHOOKS_MANAGE, Action.DEAD_LETTERS_MANAGE,
                            Action.AUDIT_READ, Action.ORG_SETTINGS_WRITE})
"""Actions only `org_admin` (in its org) and `admin` hold: the SPEC §6 roles stay the six."""
KNOWN_ROLES = frozenset({ADMIN, ORG_ADMIN, *(a.value for a in Action if a not in ORG_ADMIN_ONLY)})


@attrs.frozen
class Actor:
    """An authenticated caller. `org_id` is None only for platform admins."""

    subject: str
    org_id: uuid.UUID | None
    roles: frozenset[str]
    method: str = "unknown"  # jwt | apikey | gateway

    @property
    def is_admin(self) -> bool:
        """Platform-wide admin."""
        return ADMIN in self.roles


class Outcome(StrEnum):
    """Result of an authorization decision."""

    ALLOWED = "allowed"
    DENIED = "denied"


@attrs.frozen
class Decision:
    """Outcome plus why; `cross_org` marks an admin reading another org's data."""

    outcome: Outcome
    reason: str
    cross_org: bool = False

    @property
    def allowed(self) -> bool:
        """True when access is granted."""
        return self.outcome is Outcome.ALLOWED


def decide(actor: Actor, action: Action, org_id: uuid.UUID) -> Decision:
    """Whether `actor` may perform `action` on `org_id`'s data.

    `admin` may act on every org (cross-org when it is not its own); every other grant is
    scoped to the actor's own org: `org_admin` grants all actions, a fine-grained role its one.
    """
    if actor.is_admin:
        return Decision(Outcome.ALLOWED, "admin", cross_org=actor.org_id != org_id)
    if actor.org_id is None or actor.org_id != org_id:
        return Decision(Outcome.DENIED, "identity belongs to another org")
    if ORG_ADMIN in actor.roles or (action not in ORG_ADMIN_ONLY and action.value in actor.roles):
        return Decision(Outcome.ALLOWED, "role grants action")
    return Decision(Outcome.DENIED, f"missing permission {action.value}")
