"""EventStore contract: unique (org_id, event_id), first version wins, ordered filtered scans."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import timedelta

from analytics_core.events import Status, TokenDetails, UsageEvent
from analytics_core.money import Cents
from analytics_core.ports import UnitOfWorkFactory
from tests.contract.factories import BASE, evolve, make_event, make_events, new_id


def add(uow_factory: UnitOfWorkFactory, events: list[UsageEvent]) -> list[UsageEvent]:
    """add_new in its own committed unit of work."""
    with uow_factory() as uow:
        inserted = uow.events.add_new(events)
        uow.commit()
    return inserted


def scan_all(
    uow_factory: UnitOfWorkFactory, org_id: uuid.UUID, model_ids: Sequence[uuid.UUID] = ()
) -> list[UsageEvent]:
    """Every event of an org in a wide window."""
    with uow_factory() as uow:
        window = (BASE - timedelta(days=30), BASE + timedelta(days=30))
        return list(uow.events.scan(org_id, *window, model_ids))


def test_add_new_returns_every_new_event_in_input_order(uow_factory: UnitOfWorkFactory) -> None:
    """Events whose keys are new are all inserted and returned in input order."""
    org = new_id()
    events = [make_event(org_id=org, occurred_at=BASE + timedelta(seconds=s)) for s in (5, 1, 3)]
    assert add(uow_factory, events) == events


def test_add_new_skips_keys_already_stored(uow_factory: UnitOfWorkFactory) -> None:
    """A key stored by an earlier unit of work is not inserted or returned again."""
    org = new_id()
    first, second = make_events(2, org_id=org)
    add(uow_factory, [first])
    assert add(uow_factory, [first, second]) == [second]
    assert scan_all(uow_factory, org) == [first, second]


def test_add_new_keeps_the_first_version_of_a_stored_key(uow_factory: UnitOfWorkFactory) -> None:
    """A later event with a stored key but different content changes nothing."""
    original = make_event()
    add(uow_factory, [original])
    changed = evolve(original, latency_ms=999, cost=Cents(1))
    assert add(uow_factory, [changed]) == []
    assert scan_all(uow_factory, original.org_id) == [original]


def test_add_new_first_occurrence_wins_within_one_call(uow_factory: UnitOfWorkFactory) -> None:
    """Duplicates inside one call: only the first occurrence is inserted and returned."""
    first = make_event()
    dup = evolve(first, status=Status.ERROR, error_code="E1")
    other = make_event(org_id=first.org_id, occurred_at=BASE + timedelta(seconds=1))
    assert add(uow_factory, [first, dup, other, first]) == [first, other]
    assert scan_all(uow_factory, first.org_id) == [first, other]


def test_add_new_returns_the_given_objects_not_copies(uow_factory: UnitOfWorkFactory) -> None:
    """The use case tells new from old events by identity, so the returned events are the
    very objects passed in (the first occurrence of each new key)."""
    first = make_event()
    dup = evolve(first, latency_ms=7)
    stored_before, other = make_events(2, org_id=first.org_id)
    add(uow_factory, [stored_before])
    inserted = add(uow_factory, [first, stored_before, dup, other])
    assert [id(e) for e in inserted] == [id(first), id(other)]


def test_same_event_id_in_two_orgs_is_two_keys(uow_factory: UnitOfWorkFactory) -> None:
    """The key is (org_id, event_id): one event id may exist in several orgs."""
    a = make_event()
    b = make_event(event_id=a.event_id)
    assert add(uow_factory, [a, b]) == [a, b]


def test_add_new_of_nothing_returns_an_empty_list(uow_factory: UnitOfWorkFactory) -> None:
    """An empty batch inserts nothing."""
    assert add(uow_factory, []) == []


def test_fingerprints_of_stored_keys_omit_absent_ones(uow_factory: UnitOfWorkFactory) -> None:
    """Only stored keys appear, each with the stored event's fingerprint."""
    stored = make_event()
    add(uow_factory, [stored])
    absent = (stored.org_id, new_id())
    with uow_factory() as uow:
        found = uow.events.fingerprints([stored.key, absent])
    assert found == {stored.key: stored.fingerprint()}


def test_fingerprints_are_those_of_the_first_version(uow_factory: UnitOfWorkFactory) -> None:
    """After a conflicting duplicate, the fingerprint is still the first version's."""
    first = make_event()
    add(uow_factory, [first])
    add(uow_factory, [evolve(first, output_tokens=1)])
    with uow_factory() as uow:
        assert uow.events.fingerprints(iter([first.key])) == {first.key: first.fingerprint()}


def test_fingerprints_of_no_keys_is_empty(uow_factory: UnitOfWorkFactory) -> None:
    """Asking about no keys returns an empty mapping."""
    with uow_factory() as uow:
        assert uow.events.fingerprints([]) == {}


def test_scan_is_start_inclusive_and_end_exclusive(uow_factory: UnitOfWorkFactory) -> None:
    """Events at `start` are included, events at `end` are not."""
    org = new_id()
    before, at_start, inside, at_end = (
        make_event(org_id=org, occurred_at=BASE + timedelta(microseconds=us))
        for us in (-1, 0, 500, 1000)
    )
    add(uow_factory, [at_end, inside, before, at_start])
    with uow_factory() as uow:
        found = list(uow.events.scan(org, BASE, BASE + timedelta(microseconds=1000)))
    assert found == [at_start, inside]


def test_scan_orders_by_occurred_at_then_event_id(uow_factory: UnitOfWorkFactory) -> None:
    """Ties on occurred_at are ordered by event_id."""
    org = new_id()
    same_time = [make_event(org_id=org, occurred_at=BASE) for _ in range(6)]
    earlier = make_event(org_id=org, occurred_at=BASE - timedelta(seconds=1))
    add(uow_factory, [*same_time, earlier])
    expected = [earlier, *sorted(same_time, key=lambda e: e.event_id)]
    assert scan_all(uow_factory, org) == expected


def test_scan_filters_by_model_ids(uow_factory: UnitOfWorkFactory) -> None:
    """Non-empty model_ids keep only those models; empty means every model."""
    org, m1, m2, m3 = new_id(), new_id(), new_id(), new_id()
    events = [make_event(org_id=org, model_id=m, occurred_at=BASE + timedelta(seconds=i))
              for i, m in enumerate((m1, m2, m3))]
    add(uow_factory, events)
    assert scan_all(uow_factory, org, model_ids=[m1, m3]) == [events[0], events[2]]
    assert scan_all(uow_factory, org, model_ids=()) == events


def test_scan_never_returns_other_orgs_events(uow_factory: UnitOfWorkFactory) -> None:
    """Only the requested org's events are scanned."""
    mine, theirs = make_event(), make_event()
    add(uow_factory, [mine, theirs])
    assert scan_all(uow_factory, mine.org_id) == [mine]


def test_scan_returns_an_iterator(uow_factory: UnitOfWorkFactory) -> None:
    """scan yields events lazily through an iterator."""
    event = make_event()
    add(uow_factory, [event])
    with uow_factory() as uow:
        found = uow.events.scan(event.org_id, BASE, BASE + timedelta(seconds=1))
        assert isinstance(found, Iterator)
        assert list(found) == [event]


def test_scan_streams_many_events_in_order(uow_factory: UnitOfWorkFactory) -> None:
    """Thousands of events (more than any fetch batch) come back complete and ordered."""
    org = new_id()
    events = [make_event(org_id=org, occurred_at=BASE + timedelta(milliseconds=i // 3))
              for i in range(2_500)]
    add(uow_factory, events)
    expected = sorted(events, key=lambda e: (e.occurred_at, e.event_id))
    assert scan_all(uow_factory, org) == expected


def test_events_round_trip_every_field_exactly(uow_factory: UnitOfWorkFactory) -> None:
    """Microseconds, fractional cents, unicode, optional fields and metadata survive storage."""
    full = make_event(
        status=Status.THROTTLED, latency_ms=2**62, input_tokens=0, output_tokens=2**63 - 1,
        cost=Cents.parse("123456789.0001"), actor_id=new_id(), client_id="クライアント/λ \"q\"",
        error_code="rate_limited", metadata={"k": "v", "ü": "✓", "quote": "\"'", "": "empty"},
        occurred_at=BASE + timedelta(microseconds=1),
        token_details=TokenDetails(0, 0, 0, 2**62, 2**62 - 1),
    )
    cached = make_event(
        org_id=full.org_id, occurred_at=BASE + timedelta(microseconds=3),
        input_tokens=1000, token_details=TokenDetails(cache_read=600, cache_write=300,
                                                      audio_input=100),
    )
    bare = make_event(
        org_id=full.org_id, client_id=None, error_code=None, actor_id=None, metadata={},
        cost=Cents(0), occurred_at=BASE + timedelta(microseconds=2),
    )
    add(uow_factory, [full, bare, cached])
    found = scan_all(uow_factory, full.org_id)
    assert found == [full, bare, cached]
    assert [e.fingerprint() for e in found] == [e.fingerprint() for e in (full, bare, cached)]
    assert found[1].token_details == TokenDetails()  # none reported: zero in every category
    assert all(e.occurred_at.utcoffset() == timedelta(0) for e in found)


def test_many_events_of_one_call_are_all_stored(uow_factory: UnitOfWorkFactory) -> None:
    """A large batch is inserted completely."""
    org = new_id()
    events = make_events(1_000, org_id=org)
    assert len(add(uow_factory, events)) == 1_000
    assert len(scan_all(uow_factory, org)) == 1_000
