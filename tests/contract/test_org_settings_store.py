"""OrgSettingsStore contract: none until set, replaced by a later put, every zone listed."""

from __future__ import annotations

from datetime import timedelta

from analytics_core.org_settings import OrgSettings
from analytics_core.ports import UnitOfWorkFactory
from tests.contract.factories import BASE, new_id


def put(uow_factory: UnitOfWorkFactory, settings: OrgSettings) -> None:
    """org_settings.put in its own committed unit."""
    with uow_factory() as uow:
        uow.org_settings.put(settings)
        uow.commit()


def test_settings_read_back_and_a_later_put_replaces_them(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """None before; the stored value after; the second put wins; zones list every org."""
    org, other = new_id(), new_id()
    with uow_factory() as uow:
        assert uow.org_settings.get(org) is None
    first = OrgSettings(org, "Asia/Kolkata", BASE, "user:a")
    put(uow_factory, first)
    put(uow_factory, OrgSettings(other, "UTC", BASE, "user:b"))
    with uow_factory() as uow:
        assert uow.org_settings.get(org) == first
    second = OrgSettings(org, "Europe/Berlin", BASE + timedelta(hours=1), "user:c")
    put(uow_factory, second)
    with uow_factory() as uow:
        assert uow.org_settings.get(org) == second
        zones = uow.org_settings.zones()
    assert (zones[org], zones[other]) == ("Europe/Berlin", "UTC")


def test_an_uncommitted_put_is_rolled_back(uow_factory: UnitOfWorkFactory) -> None:
    """Without commit nothing is stored."""
    org = new_id()
    with uow_factory() as uow:
        uow.org_settings.put(OrgSettings(org, "UTC", BASE, "user:a"))
    with uow_factory() as uow:
        assert uow.org_settings.get(org) is None
