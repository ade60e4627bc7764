"""ApiKeyStore contract: records by key id, duplicates refused with Conflict, listed per org in
(created_at, key_id) order, revoked idempotently."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analytics_core.errors import Conflict
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.records import ApiKeyRecord
from tests.contract.factories import BASE, evolve, make_api_key, new_id


def store(uow_factory: UnitOfWorkFactory, records: list[ApiKeyRecord]) -> None:
    """Add each record in one committed unit of work."""
    with uow_factory() as uow:
        for record in records:
            uow.api_keys.add(record)
        uow.commit()


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


def test_list_of_an_org_is_exactly_its_keys_by_created_at_then_key_id(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """An org's keys, revoked ones too, come ordered by created_at, ties by key id (code
    points: upper case before '_' before lower case); other orgs' and admin keys are not listed."""
    org, stem = new_id(), new_id().hex[:12]
    later = make_api_key(org_id=org, key_id=f"{stem}A", created_at=BASE + timedelta(seconds=1))
    tie_b = make_api_key(org_id=org, key_id=f"{stem}b", revoked=True)
    tie_a = make_api_key(org_id=org, key_id=f"{stem}a")
    tie_upper = make_api_key(org_id=org, key_id=f"{stem}B")
    tie_under = make_api_key(org_id=org, key_id=f"{stem}_")
    earliest = make_api_key(org_id=org, key_id=f"{stem}z", created_at=BASE - timedelta(days=1))
    others = [make_api_key(), make_api_key(org_id=None, roles=frozenset({"admin"}))]
    store(uow_factory, [later, tie_b, *others, tie_a, tie_upper, tie_under, earliest])
    with uow_factory() as uow:
        assert uow.api_keys.list(org) == [earliest, tie_upper, tie_under, tie_a, tie_b, later]


def test_list_of_an_org_without_keys_is_empty(uow_factory: UnitOfWorkFactory) -> None:
    """An org nobody created a key for lists nothing."""
    store(uow_factory, [make_api_key()])
    with uow_factory() as uow:
        assert uow.api_keys.list(new_id()) == []


def test_list_of_none_is_every_key_in_order(uow_factory: UnitOfWorkFactory) -> None:
    """None lists the keys of every org and the org-less admin keys, in the same order."""
    first = make_api_key(created_at=BASE - timedelta(microseconds=1))
    admin = make_api_key(org_id=None, roles=frozenset({"admin"}), revoked=True)
    last = make_api_key(created_at=BASE + timedelta(microseconds=1))
    store(uow_factory, [last, admin, first])
    with uow_factory() as uow:
        listed = uow.api_keys.list(None)
    ours = {first.key_id, admin.key_id, last.key_id}
    assert [r for r in listed if r.key_id in ours] == [first, admin, last]
    assert listed == sorted(listed, key=lambda r: (r.created_at, r.key_id))


def test_revoke_marks_only_that_key_revoked(uow_factory: UnitOfWorkFactory) -> None:
    """revoke returns True and sets revoked, leaving every other field and other keys as they
    were."""
    org = new_id()
    target, neighbour = make_api_key(org_id=org), make_api_key(org_id=org)
    store(uow_factory, [target, neighbour])
    with uow_factory() as uow:
        assert uow.api_keys.revoke(target.key_id) is True
        uow.commit()
    with uow_factory() as uow:
        assert uow.api_keys.find(target.key_id) == evolve(target, revoked=True)
        assert uow.api_keys.find(neighbour.key_id) == neighbour
        assert [r.revoked for r in uow.api_keys.list(org)] == [
            r.key_id == target.key_id for r in sorted([target, neighbour],
                                                       key=lambda r: r.key_id)
        ]


def test_revoke_is_idempotent(uow_factory: UnitOfWorkFactory) -> None:
    """Revoking a revoked key returns True again and changes nothing."""
    record = make_api_key()
    store(uow_factory, [record])
    for _ in range(2):
        with uow_factory() as uow:
            assert uow.api_keys.revoke(record.key_id) is True
            uow.commit()
    with uow_factory() as uow:
        assert uow.api_keys.revoke(record.key_id) is True
        assert uow.api_keys.find(record.key_id) == evolve(record, revoked=True)


def test_revoke_of_an_unknown_key_id_is_false_and_creates_nothing(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """An unknown key id is not revoked, and no record appears for it."""
    missing = make_api_key()
    with uow_factory() as uow:
        assert uow.api_keys.revoke(missing.key_id) is False
        uow.commit()
    with uow_factory() as uow:
        assert uow.api_keys.find(missing.key_id) is None
        assert uow.api_keys.list(missing.org_id) == []


def test_uncommitted_revoke_is_rolled_back(uow_factory: UnitOfWorkFactory) -> None:
    """A revoke whose unit of work is not committed leaves the key usable."""
    record = make_api_key()
    store(uow_factory, [record])
    with uow_factory() as uow:
        assert uow.api_keys.revoke(record.key_id) is True
        assert uow.api_keys.find(record.key_id) == evolve(record, revoked=True)
    with uow_factory() as uow:
        assert uow.api_keys.find(record.key_id) == record
