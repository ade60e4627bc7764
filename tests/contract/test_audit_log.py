"""AuditLog contract: appended entries listed per org, newest first."""

from __future__ import annotations

from datetime import timedelta

from analytics_core.access import Outcome
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.records import AuditEntry, AuditFilter
from tests.contract.factories import BASE, make_audit_entry, new_id


def record(uow_factory: UnitOfWorkFactory, entries: list[AuditEntry]) -> None:
    """Record each entry in one committed unit of work."""
    with uow_factory() as uow:
        for entry in entries:
            uow.audit.record(entry)
        uow.commit()


def test_recent_lists_an_orgs_entries_newest_first(uow_factory: UnitOfWorkFactory) -> None:
    """Entries about one org come newest first."""
    org = new_id()
    entries = [make_audit_entry(org_id=org, at=BASE + timedelta(seconds=s)) for s in (1, 3, 2)]
    record(uow_factory, entries)
    with uow_factory() as uow:
        assert uow.audit.recent(org) == [entries[1], entries[2], entries[0]]


def test_recent_honours_limit(uow_factory: UnitOfWorkFactory) -> None:
    """At most `limit` entries, the newest ones."""
    org = new_id()
    entries = [make_audit_entry(org_id=org, at=BASE + timedelta(seconds=s)) for s in range(5)]
    record(uow_factory, entries)
    with uow_factory() as uow:
        assert uow.audit.recent(org, limit=2) == [entries[4], entries[3]]


def test_recent_lists_only_entries_about_that_org(uow_factory: UnitOfWorkFactory) -> None:
    """Entries about other orgs are not listed, even when the actor belongs to the org."""
    org = new_id()
    about_org = make_audit_entry(org_id=org)
    by_org_actor = make_audit_entry(actor_org=org)
    record(uow_factory, [about_org, by_org_actor])
    with uow_factory() as uow:
        assert uow.audit.recent(org) == [about_org]


def test_entries_round_trip_every_field(uow_factory: UnitOfWorkFactory) -> None:
    """Outcome, cross-org flag, optional fields and times survive storage exactly."""
    org = new_id()
    denied = make_audit_entry(
        org_id=org, actor="apikey:ak_1", actor_org=new_id(), outcome=Outcome.DENIED,
        reason="identity belongs to another org", request_id=None,
        at=BASE + timedelta(microseconds=7),
    )
    cross = make_audit_entry(
        org_id=org, actor="jwt:root", outcome=Outcome.ALLOWED, reason="admin", cross_org=True,
        resource=f"exports/{new_id()}", action="analytics:exports:download",
    )
    record(uow_factory, [denied, cross])
    with uow_factory() as uow:
        assert uow.audit.recent(org) == [denied, cross]


def test_pages_walk_every_entry_newest_first_with_ties_by_id(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """Pages of 2 list each of the org's entries once, newest first, ties by id descending."""
    org = new_id()
    entries = [make_audit_entry(org_id=org, at=BASE + timedelta(seconds=s))
               for s in (2, 1, 2, 3, 2)]
    record(uow_factory, [*entries, make_audit_entry()])
    seen: list[AuditEntry] = []
    before = None
    while True:
        with uow_factory() as uow:
            page = uow.audit.page(org, AuditFilter(), limit=2, before=before)
        seen += page
        if len(page) < 2:
            break
        before = (page[-1].at, page[-1].audit_id)
    assert seen == sorted(entries, key=lambda e: (e.at, e.audit_id), reverse=True)


def test_page_filters_by_actor_action_outcome_and_time(uow_factory: UnitOfWorkFactory) -> None:
    """actor, action and outcome match exactly; since <= at < until."""
    org = new_id()
    a = make_audit_entry(org_id=org, actor="apikey:one")
    b = make_audit_entry(org_id=org, at=BASE + timedelta(seconds=1), outcome=Outcome.DENIED,
                         action="analytics:exports:create")
    c = make_audit_entry(org_id=org, at=BASE + timedelta(seconds=2), actor="apikey:one",
                         action="analytics:exports:create")
    record(uow_factory, [a, b, c])

    def ids(**where: object) -> list[object]:
        with uow_factory() as uow:
            found = uow.audit.page(org, AuditFilter(**where), limit=10)  # type: ignore[arg-type]
        return [e.audit_id for e in found]

    assert ids(actor="apikey:one") == [c.audit_id, a.audit_id]
    assert ids(actor="apikey:on") == []
    assert ids(action="analytics:exports:create") == [c.audit_id, b.audit_id]
    assert ids(outcome=Outcome.DENIED) == [b.audit_id]
    assert ids(outcome=Outcome.ALLOWED, actor="apikey:one",
               since=BASE + timedelta(seconds=1)) == [c.audit_id]
    assert ids(until=BASE + timedelta(seconds=1)) == [a.audit_id]
