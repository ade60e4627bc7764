"""ApiKeyStore contract: records by key id, duplicates refused with Conflict."""

from __future__ import annotations

import pytest

from analytics_core.errors import Conflict
from analytics_core.ports import UnitOfWorkFactory
from tests.contract.factories import evolve, make_api_key


def test_added_key_is_found_with_every_field(uow_factory: UnitOfWorkFactory) -> None:
    """find returns the stored record exactly (roles, org, hash, name, revoked)."""
    record = make_api_key()
    admin = make_api_key(org_id=None, roles=frozenset({"admin"}), name="", revoked=True)
    with uow_factory() as uow:
        uow.api_keys.add(record)
        uow.api_keys.add(admin)
        uow.commit()
    with uow_factory() as uow:
        assert uow.api_keys.find(record.key_id) == record
        assert uow.api_keys.find(admin.key_id) == admin


def test_find_of_an_unknown_key_id_is_none(uow_factory: UnitOfWorkFactory) -> None:
    """An unknown key id finds nothing."""
    with uow_factory() as uow:
        assert uow.api_keys.find(make_api_key().key_id) is None


def test_adding_a_duplicate_key_id_raises_conflict(uow_factory: UnitOfWorkFactory) -> None:
    """A second record with a stored key id raises Conflict and leaves the first in place."""
    record = make_api_key()
    with uow_factory() as uow:
        uow.api_keys.add(record)
        uow.commit()
    with uow_factory() as uow, pytest.raises(Conflict):
        uow.api_keys.add(evolve(record, name="impostor"))
    with uow_factory() as uow:
        assert uow.api_keys.find(record.key_id) == record


def test_duplicate_key_id_in_one_unit_raises_conflict(uow_factory: UnitOfWorkFactory) -> None:
    """The same key id twice in one unit of work raises Conflict."""
    record = make_api_key()
    with uow_factory() as uow:
        uow.api_keys.add(record)
        with pytest.raises(Conflict):
            uow.api_keys.add(record)
