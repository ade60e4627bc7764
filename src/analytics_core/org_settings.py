"""An org's own settings: today its time zone, which places its scheduled monthly export's
calendar month (SPEC §7, §15). An org without settings uses the deployment's default zone."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime

import attrs

from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.timegrid import zone_error

FIELDS = frozenset({"timezone"})


@attrs.frozen
class OrgSettings:
    """An org's zone; `updated_at` None: nothing was set, the default applies."""

    org_id: uuid.UUID
    tz: str
    updated_at: datetime | None = None
    updated_by: str | None = None


def settings_from(org_id: uuid.UUID, body: object, *, by: str, now: datetime) -> OrgSettings:
    """Settings from a request body `{"timezone": "Europe/Berlin"}`; ValidationFailed names
    each bad field (unknown fields too)."""
    if not isinstance(body, Mapping):
        raise ValidationFailed([FieldError("body", "must be a JSON object")], "invalid settings")
    errors = [FieldError(str(k), "is not a setting; valid: timezone")
              for k in body if k not in FIELDS]
    tz = body.get("timezone")
    if tz is None:
        errors.append(FieldError("timezone", "is required"))
    else:
        reason = zone_error(tz)
        if reason is not None:
            errors.append(FieldError("timezone", reason))
    if errors:
        raise ValidationFailed(errors, "invalid settings")
    assert isinstance(tz, str)
    return OrgSettings(org_id, tz, now, by)
