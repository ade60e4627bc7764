"""GET and PUT /orgs/{orgId}/settings: the org's own zone (its scheduled monthly export's
calendar month)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import falcon

from analytics_app.http.auth import Guard, actor_of
from analytics_app.http.bodies import read_json
from analytics_app.http.params import QueryReader, path_uuid
from analytics_core.access import Action
from analytics_core.org_settings import OrgSettings
from analytics_core.timegrid import isoformat, zone

GetSettings = Callable[[uuid.UUID], OrgSettings]
PutSettings = Callable[[uuid.UUID, object, str], OrgSettings]


def settings_body(s: OrgSettings) -> dict[str, Any]:
    """The settings; `updatedAt` null while the defaults apply."""
    return {"orgId": str(s.org_id), "timezone": s.tz,
            "updatedAt": None if s.updated_at is None else isoformat(s.updated_at, zone("UTC")),
            "updatedBy": s.updated_by}


class OrgSettingsResource:
    """Read (usage read grant) and replace (org_admin) an org's settings."""

    def __init__(self, guard: Guard, get: GetSettings, put: PutSettings, *,
                 max_body_bytes: int) -> None:
        self._guard, self._get, self._put = guard, get, put
        self._max_body = max_body_bytes

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """The org's settings (the defaults when it set none)."""
        org_id = path_uuid(path["orgId"], "orgId")
        self._guard.require(req, Action.USAGE_READ, org_id, resource=f"settings:{org_id}")
        QueryReader(req.params).done()
        resp.media = settings_body(self._get(org_id))

    def on_put(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Replace them: `{"timezone": "Europe/Berlin"}`."""
        org_id = path_uuid(path["orgId"], "orgId")
        self._guard.require(req, Action.ORG_SETTINGS_WRITE, org_id,
                            resource=f"settings:{org_id}")
        QueryReader(req.params).done()
        body = read_json(req, self._max_body)
        resp.media = settings_body(self._put(org_id, body, actor_of(req).subject))
