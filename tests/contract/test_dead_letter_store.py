"""DeadLetterStore contract: ids unique (re-adding is a no-op), newest-first listings, a count."""

from __future__ import annotations

import uuid
from datetime import timedelta

from analytics_core.ports import UnitOfWorkFactory
from analytics_core.records import DeadLetter, DedupeConflict
from tests.contract.factories import BASE, evolve, make_conflict, make_dead_letter, new_id


def add(uow_factory: UnitOfWorkFactory, letters: list[DeadLetter]) -> None:
    """dead_letters.add in its own committed unit of work."""
    with uow_factory() as uow:
        uow.dead_letters.add(letters)
        uow.commit()


def add_conflicts(uow_factory: UnitOfWorkFactory, conflicts: list[DedupeConflict]) -> None:
    """dead_letters.add_conflicts in its own committed unit of work."""
    with uow_factory() as uow:
        uow.dead_letters.add_conflicts(conflicts)
        uow.commit()


def letters_at(org: uuid.UUID, *seconds: int) -> list[DeadLetter]:
    """Dead letters of `org` received BASE + each of `seconds`."""
    return [make_dead_letter(org_id=org, received_at=BASE + timedelta(seconds=s)) for s in seconds]


def test_recent_lists_an_orgs_dead_letters_newest_first(uow_factory: UnitOfWorkFactory) -> None:
    """An org's dead letters come newest first."""
    org = new_id()
    letters = letters_at(org, 2, 9, 5)
    add(uow_factory, letters)
    with uow_factory() as uow:
        assert uow.dead_letters.recent(org) == [letters[1], letters[2], letters[0]]


def test_recent_of_an_org_excludes_other_orgs(uow_factory: UnitOfWorkFactory) -> None:
    """Other orgs' and unattributable dead letters are not listed for an org."""
    mine = make_dead_letter()
    add(uow_factory, [mine, make_dead_letter(), make_dead_letter(org_id=None)])
    with uow_factory() as uow:
        assert uow.dead_letters.recent(mine.org_id) == [mine]


def test_recent_honours_limit(uow_factory: UnitOfWorkFactory) -> None:
    """At most `limit` dead letters, the newest ones."""
    org = new_id()
    letters = letters_at(org, 1, 2, 3, 4)
    add(uow_factory, letters)
    with uow_factory() as uow:
        assert uow.dead_letters.recent(org, limit=2) == [letters[3], letters[2]]


def test_recent_without_org_lists_every_dead_letter(uow_factory: UnitOfWorkFactory) -> None:
    """org_id None lists every org's dead letters and unattributable ones, newest first."""
    a, b = make_dead_letter(), make_dead_letter(received_at=BASE + timedelta(seconds=1))
    orphan = make_dead_letter(org_id=None, offset=None, received_at=BASE - timedelta(seconds=1))
    add(uow_factory, [a, b, orphan])
    with uow_factory() as uow:
        everything = uow.dead_letters.recent(None, limit=100_000)
    assert {a, b, orphan} <= set(everything)
    times = [d.received_at for d in everything]
    assert times == sorted(times, reverse=True)


def test_re_adding_a_dead_letter_id_is_a_no_op(uow_factory: UnitOfWorkFactory) -> None:
    """A second letter with a stored id changes nothing and is not counted again."""
    first = make_dead_letter()
    add(uow_factory, [first])
    with uow_factory() as uow:
        before = uow.dead_letters.count()
    add(uow_factory, [evolve(first, reason="other", received_at=BASE + timedelta(days=1))])
    with uow_factory() as uow:
        assert uow.dead_letters.count() == before
        assert uow.dead_letters.recent(first.org_id) == [first]


def test_duplicate_ids_within_one_call_store_one_letter(uow_factory: UnitOfWorkFactory) -> None:
    """The same id twice in one call stores it once."""
    letter = make_dead_letter()
    add(uow_factory, [letter, evolve(letter, reason="second")])
    with uow_factory() as uow:
        assert uow.dead_letters.recent(letter.org_id) == [letter]


def test_count_counts_every_stored_dead_letter(uow_factory: UnitOfWorkFactory) -> None:
    """count grows by the number of new dead letters, whatever their org."""
    with uow_factory() as uow:
        before = uow.dead_letters.count()
        uow.dead_letters.add([make_dead_letter(), make_dead_letter(org_id=None)])
        assert uow.dead_letters.count() == before + 2
        uow.commit()


def test_dead_letters_round_trip_every_field(uow_factory: UnitOfWorkFactory) -> None:
    """Raw bytes (not UTF-8), reason, source, offset and times survive storage exactly."""
    org = new_id()
    full = make_dead_letter(org_id=org, raw=bytes(range(256)), offset=2**62,
                            reason="clientId: must be at most 128 characters ✗")
    bare = make_dead_letter(org_id=org, raw=b"", offset=None, source="http",
                            received_at=BASE - timedelta(microseconds=1))
    add(uow_factory, [full, bare])
    with uow_factory() as uow:
        assert uow.dead_letters.recent(org) == [full, bare]


def test_conflicts_list_an_orgs_conflicts_newest_first(uow_factory: UnitOfWorkFactory) -> None:
    """An org's dedupe conflicts come newest first, other orgs' excluded, limit honoured."""
    org = new_id()
    conflicts = [make_conflict(org_id=org, detected_at=BASE + timedelta(seconds=s))
                 for s in (3, 1, 2)]
    add_conflicts(uow_factory, [*conflicts, make_conflict()])
    with uow_factory() as uow:
        assert uow.dead_letters.conflicts(org) == [conflicts[0], conflicts[2], conflicts[1]]
        assert uow.dead_letters.conflicts(org, limit=1) == [conflicts[0]]


def test_conflicts_round_trip_every_field(uow_factory: UnitOfWorkFactory) -> None:
    """Fingerprints, raw bytes, source and times survive storage exactly."""
    conflict = make_conflict(raw=b"\xff\x00{}", source="stream:analytics.usage.v1-3")
    add_conflicts(uow_factory, [conflict])
    with uow_factory() as uow:
        assert uow.dead_letters.conflicts(conflict.org_id) == [conflict]


def test_conflicts_are_not_dead_letters(uow_factory: UnitOfWorkFactory) -> None:
    """Storing conflicts does not change the dead-letter count or listing."""
    conflict = make_conflict()
    with uow_factory() as uow:
        before = uow.dead_letters.count()
        uow.dead_letters.add_conflicts([conflict])
        assert uow.dead_letters.count() == before
        assert uow.dead_letters.recent(conflict.org_id) == []


def test_re_adding_a_conflict_id_is_a_no_op(uow_factory: UnitOfWorkFactory) -> None:
    """A conflict with a stable id (a streamed message read again) is stored once, the first
    version kept; conflicts without an id are each stored."""
    org, conflict_id = new_id(), new_id()
    first = make_conflict(org_id=org, conflict_id=conflict_id)
    again = evolve(first, detected_at=BASE + timedelta(seconds=5))
    plain = [make_conflict(org_id=org, detected_at=BASE + timedelta(seconds=s)) for s in (1, 1)]
    add_conflicts(uow_factory, [first])
    add_conflicts(uow_factory, [again, *plain])
    with uow_factory() as uow:
        stored = uow.dead_letters.conflicts(org)
    assert len(stored) == 3
    assert [c for c in stored if c.conflict_id == conflict_id] == [first]
