"""DeadLetterStore contract: ids unique (re-adding is a no-op), newest-first listings, a count."""

from __future__ import annotations

import uuid
from datetime import timedelta

from analytics_core.ports import UnitOfWorkFactory
from analytics_core.records import DeadLetter, DeadLetterFilter, DedupeConflict
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


def walk(uow_factory: UnitOfWorkFactory, org: uuid.UUID | None, where: DeadLetterFilter,
         size: int) -> list[DeadLetter]:
    """Every page of `size` in order, following the (received_at, id) key of each last one."""
    seen: list[DeadLetter] = []
    before = None
    while True:
        with uow_factory() as uow:
            page = uow.dead_letters.page(org, where, limit=size, before=before)
        seen += page
        if len(page) < size:
            return seen
        before = (page[-1].received_at, page[-1].dead_letter_id)


def test_pages_walk_every_letter_newest_first_with_ties_by_id(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """Pages of 2 list each letter once, newest first, ties broken by id (descending)."""
    org = new_id()
    letters = letters_at(org, 3, 1, 3, 2, 3)
    add(uow_factory, [*letters, make_dead_letter()])
    expected = sorted(letters, key=lambda d: (d.received_at, d.dead_letter_id), reverse=True)
    assert walk(uow_factory, org, DeadLetterFilter(), 2) == expected


def test_page_filters_by_reason_source_time_and_status(uow_factory: UnitOfWorkFactory) -> None:
    """reason is a case-insensitive substring (LIKE wildcards are literal), source exact, the
    window half-open, status by the re-drive mark."""
    org = new_id()
    a = make_dead_letter(org_id=org, reason="latencyMs: must be >= 0", source="http")
    b = make_dead_letter(org_id=org, reason="100%_done: odd", received_at=BASE + timedelta(1))
    c = make_dead_letter(org_id=org, reason="LATENCYMS: too big", received_at=BASE + timedelta(2))
    add(uow_factory, [a, b, c])
    with uow_factory() as uow:
        assert uow.dead_letters.mark_redriven(c.dead_letter_id, BASE, "cli:bob", "accepted")
        uow.commit()

    def ids(**where: object) -> list[uuid.UUID]:
        with uow_factory() as uow:
            found = uow.dead_letters.page(org, DeadLetterFilter(**where),  # type: ignore[arg-type]
                                          limit=10)
        return [d.dead_letter_id for d in found]

    assert ids(reason="latencyms") == [c.dead_letter_id, a.dead_letter_id]
    assert ids(reason="%_") == [b.dead_letter_id]
    assert ids(reason="_x") == []
    assert ids(source="http") == [a.dead_letter_id]
    assert ids(since=BASE + timedelta(1), until=BASE + timedelta(2)) == [b.dead_letter_id]
    assert ids(redriven=True) == [c.dead_letter_id]
    assert ids(redriven=False) == [b.dead_letter_id, a.dead_letter_id]


def test_page_without_org_includes_unattributed_letters(uow_factory: UnitOfWorkFactory) -> None:
    """org None pages every org's letters, unattributed ones too."""
    source = f"stream:{new_id()}"
    mine, loose = make_dead_letter(source=source), make_dead_letter(org_id=None, source=source)
    add(uow_factory, [mine, loose])
    with uow_factory() as uow:
        found = uow.dead_letters.page(None, DeadLetterFilter(source=source), limit=10)
    assert {d.dead_letter_id for d in found} == {mine.dead_letter_id, loose.dead_letter_id}


def test_get_returns_a_letter_by_id_whatever_its_org(uow_factory: UnitOfWorkFactory) -> None:
    """get finds a letter (raw bytes intact) and None for an unknown id."""
    letter = make_dead_letter(org_id=None)
    add(uow_factory, [letter])
    with uow_factory() as uow:
        assert uow.dead_letters.get(letter.dead_letter_id) == letter
        assert uow.dead_letters.get(new_id()) is None


def test_mark_redriven_is_kept_once(uow_factory: UnitOfWorkFactory) -> None:
    """The first mark wins; a second one and a mark of an unknown id change nothing."""
    letter = make_dead_letter()
    add(uow_factory, [letter])
    later = BASE + timedelta(hours=1)
    with uow_factory() as uow:
        assert uow.dead_letters.mark_redriven(letter.dead_letter_id, later, "user:a", "accepted")
        uow.commit()
    with uow_factory() as uow:
        assert not uow.dead_letters.mark_redriven(letter.dead_letter_id, BASE, "user:b",
                                                  "duplicate")
        assert not uow.dead_letters.mark_redriven(new_id(), BASE, "user:b", "accepted")
        uow.commit()
    with uow_factory() as uow:
        stored = uow.dead_letters.get(letter.dead_letter_id)
    assert stored == evolve(letter, redriven_at=later, redriven_by="user:a",
                            redrive_outcome="accepted")


def test_an_uncommitted_mark_is_rolled_back(uow_factory: UnitOfWorkFactory) -> None:
    """A unit left without commit leaves the letter open."""
    letter = make_dead_letter()
    add(uow_factory, [letter])
    with uow_factory() as uow:
        uow.dead_letters.mark_redriven(letter.dead_letter_id, BASE, "user:a", "accepted")
    with uow_factory() as uow:
        assert uow.dead_letters.get(letter.dead_letter_id) == letter
