"""list_api_keys and revoke_api_key over the in-memory fakes: what is revoked, what is audited."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import attrs
import pytest

from analytics_adapters.memory import InMemoryStorage, ManualClock, unit_of_work_factory
from analytics_adapters.system import RandomIds
from analytics_core.access import Outcome
from analytics_core.errors import NotFound, Unauthenticated, ValidationFailed
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.usecases.access import (
    Revocation,
    authenticate_api_key,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)

NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def uow_factory() -> UnitOfWorkFactory:
    """Units of work over fresh in-memory storage."""
    return unit_of_work_factory(InMemoryStorage())


@pytest.fixture
def clock() -> ManualClock:
    """A clock fixed at NOW."""
    return ManualClock(NOW)


def _create(uow_factory: UnitOfWorkFactory, clock: ManualClock, org: uuid.UUID | None,
            role: str) -> str:
    key, _ = create_api_key(org_id=org, roles=[role], name="k", uow_factory=uow_factory,
                            clock=clock, ids=RandomIds())
    return key


def _revoke(uow_factory: UnitOfWorkFactory, clock: ManualClock, key: str) -> Revocation:
    return revoke_api_key(key.split("_")[1], actor="cli", uow_factory=uow_factory, clock=clock,
                          ids=RandomIds())


def test_revoking_an_org_key_refuses_it_and_audits_in_that_org(
    uow_factory: UnitOfWorkFactory, clock: ManualClock,
) -> None:
    """The key stops authenticating and one `analytics:apikeys:revoke` entry by the actor is
    recorded."""
    org = uuid.uuid4()
    key = _create(uow_factory, clock, org, "org_admin")
    clock.advance(timedelta(minutes=5))
    result = _revoke(uow_factory, clock, key)
    assert result.record.revoked
    assert not result.already_revoked
    with pytest.raises(Unauthenticated):
        authenticate_api_key(key, uow_factory=uow_factory)
    with uow_factory() as uow:
        [entry] = uow.audit.recent(org)
    assert (entry.actor, entry.org_id, entry.action, entry.resource, entry.outcome, entry.at) == (
        "cli", org, "analytics:apikeys:revoke", f"apikey:{key.split('_')[1]}", Outcome.ALLOWED,
        NOW + timedelta(minutes=5))


def test_revoking_again_reports_already_revoked_and_audits_nothing_more(
    uow_factory: UnitOfWorkFactory, clock: ManualClock,
) -> None:
    """A second revocation is a no-op that says so."""
    org = uuid.uuid4()
    key = _create(uow_factory, clock, org, "org_admin")
    _revoke(uow_factory, clock, key)
    again = _revoke(uow_factory, clock, key)
    assert again.already_revoked
    assert again.record.revoked
    with uow_factory() as uow:
        assert len(uow.audit.recent(org)) == 1


def test_revoking_an_admin_key_needs_no_org(
    uow_factory: UnitOfWorkFactory, clock: ManualClock,
) -> None:
    """A platform admin key (no org) is revoked; there is no org to audit it in."""
    key = _create(uow_factory, clock, None, "admin")
    assert _revoke(uow_factory, clock, key).record.org_id is None
    with pytest.raises(Unauthenticated):
        authenticate_api_key(key, uow_factory=uow_factory)


def test_revoking_an_unknown_key_id_raises_not_found(
    uow_factory: UnitOfWorkFactory, clock: ManualClock,
) -> None:
    """An unknown id is NotFound, naming the id."""
    with pytest.raises(NotFound, match="'0123456789abcdef'"):
        revoke_api_key("0123456789abcdef", actor="cli", uow_factory=uow_factory, clock=clock,
                       ids=RandomIds())


def test_list_api_keys_scopes_by_org_oldest_first(
    uow_factory: UnitOfWorkFactory, clock: ManualClock,
) -> None:
    """An org lists its own keys; None lists every key, in creation order."""
    org = uuid.uuid4()
    first = _create(uow_factory, clock, org, "org_admin")
    clock.advance(timedelta(seconds=1))
    admin = _create(uow_factory, clock, None, "admin")
    clock.advance(timedelta(seconds=1))
    second = _create(uow_factory, clock, org, "analytics:usage:read")
    ids = [k.split("_")[1] for k in (first, admin, second)]
    assert [r.key_id for r in list_api_keys(org, uow_factory=uow_factory)] == [ids[0], ids[2]]
    assert [r.key_id for r in list_api_keys(None, uow_factory=uow_factory)] == ids


@pytest.mark.parametrize("role", ["org_admin", "admin", "analytics:usage:read"])
def test_no_key_is_made_for_the_platform_org(
    uow_factory: UnitOfWorkFactory, clock: ManualClock, role: str,
) -> None:
    """The nil UUID is the platform's own org (its audit holds global price changes, its dead
    letters are other tenants' unreadable messages): no key belongs to it, and nothing is
    stored for the refused request."""
    with pytest.raises(ValidationFailed) as info:
        _create(uow_factory, clock, uuid.UUID(int=0), role)
    assert [e.field for e in info.value.errors] == ["org"]
    assert list_api_keys(None, uow_factory=uow_factory) == []


def test_a_stored_key_of_the_platform_org_does_not_authenticate(
    uow_factory: UnitOfWorkFactory, clock: ManualClock,
) -> None:
    """A key stored for the nil UUID before such keys were refused (or written straight into
    the table) is not an identity: Unauthenticated, as a revoked key."""
    key = _create(uow_factory, clock, uuid.uuid4(), "org_admin")
    key_id = key.split("_")[1]
    with uow_factory() as uow:
        record = uow.api_keys.find(key_id)
        assert record is not None
        uow.api_keys.add(attrs.evolve(record, key_id="nilorg0000000000", org_id=uuid.UUID(int=0)))
        uow.commit()
    nil_key = "_".join([key.split("_")[0], "nilorg0000000000", key.split("_")[2]])
    with pytest.raises(Unauthenticated):
        authenticate_api_key(nil_key, uow_factory=uow_factory)
    assert authenticate_api_key(key, uow_factory=uow_factory).org_id is not None
