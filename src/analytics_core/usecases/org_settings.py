"""Read and change an org's own settings (its zone)."""

from __future__ import annotations

import uuid

from analytics_core.org_settings import OrgSettings, settings_from
from analytics_core.ports import Clock, UnitOfWorkFactory


def get_org_settings(org_id: uuid.UUID, default_tz: str, *,
                     uow_factory: UnitOfWorkFactory) -> OrgSettings:
    """The org's settings, or the defaults (`updated_at` None) when it set none."""
    with uow_factory() as uow:
        found = uow.org_settings.get(org_id)
    return found if found is not None else OrgSettings(org_id, default_tz)


def put_org_settings(org_id: uuid.UUID, body: object, by: str, *,
                     uow_factory: UnitOfWorkFactory, clock: Clock) -> OrgSettings:
    """Validate and store a body `{"timezone": ...}` (access checked by the driver)."""
    settings = settings_from(org_id, body, by=by, now=clock.now())
    with uow_factory() as uow:
        uow.org_settings.put(settings)
        uow.commit()
    return settings
