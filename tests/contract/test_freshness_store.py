"""FreshnessStore contract: markers merged per (org, model), each time only moving forward."""

from __future__ import annotations

import uuid
from datetime import timedelta

from analytics_core.freshness import FreshnessMarker
from analytics_core.ports import UnitOfWorkFactory
from tests.contract.factories import BASE, make_marker, new_id


def touch(uow_factory: UnitOfWorkFactory, markers: list[FreshnessMarker]) -> None:
    """freshness.touch in its own committed unit of work."""
    with uow_factory() as uow:
        uow.freshness.touch(markers)
        uow.commit()


def markers(uow_factory: UnitOfWorkFactory, org: uuid.UUID) -> list[FreshnessMarker]:
    """freshness.markers in its own unit of work."""
    with uow_factory() as uow:
        return uow.freshness.markers(org)


def test_touch_creates_a_marker(uow_factory: UnitOfWorkFactory) -> None:
    """A marker for a new (org, model) is stored as it is."""
    marker = make_marker()
    touch(uow_factory, [marker])
    assert markers(uow_factory, marker.org_id) == [marker]


def test_touch_moves_each_time_forward(uow_factory: UnitOfWorkFactory) -> None:
    """Later times replace earlier ones."""
    old = make_marker()
    new = make_marker(org_id=old.org_id, model_id=old.model_id,
                      last_event_at=BASE + timedelta(minutes=1),
                      last_rollup_at=BASE + timedelta(minutes=2))
    touch(uow_factory, [old])
    touch(uow_factory, [new])
    assert markers(uow_factory, old.org_id) == [new]


def test_touch_never_moves_a_time_backwards(uow_factory: UnitOfWorkFactory) -> None:
    """Earlier times and missing (None) times leave the stored ones in place."""
    stored = make_marker()
    older = make_marker(org_id=stored.org_id, model_id=stored.model_id,
                        last_event_at=BASE - timedelta(days=1), last_rollup_at=None)
    touch(uow_factory, [stored])
    touch(uow_factory, [older])
    assert markers(uow_factory, stored.org_id) == [stored]


def test_each_time_moves_independently(uow_factory: UnitOfWorkFactory) -> None:
    """A newer event time with an older rollup time keeps the later of each."""
    stored = make_marker()
    mixed = make_marker(org_id=stored.org_id, model_id=stored.model_id,
                        last_event_at=BASE + timedelta(hours=1),
                        last_rollup_at=BASE - timedelta(hours=1))
    touch(uow_factory, [stored])
    touch(uow_factory, [mixed])
    assert markers(uow_factory, stored.org_id) == [FreshnessMarker(
        stored.org_id, stored.model_id, mixed.last_event_at, stored.last_rollup_at
    )]


def test_touch_fills_a_missing_time(uow_factory: UnitOfWorkFactory) -> None:
    """A stored None is replaced by any time."""
    empty = make_marker(last_event_at=None, last_rollup_at=None)
    later = make_marker(org_id=empty.org_id, model_id=empty.model_id)
    touch(uow_factory, [empty])
    assert markers(uow_factory, empty.org_id) == [empty]
    touch(uow_factory, [later])
    assert markers(uow_factory, empty.org_id) == [later]


def test_touch_merges_markers_of_one_model_in_one_call(uow_factory: UnitOfWorkFactory) -> None:
    """Several markers for one (org, model) in one call merge to the latest times."""
    a = make_marker(last_event_at=BASE + timedelta(seconds=5), last_rollup_at=BASE)
    b = make_marker(org_id=a.org_id, model_id=a.model_id, last_event_at=BASE,
                    last_rollup_at=BASE + timedelta(seconds=9))
    touch(uow_factory, [a, b])
    assert markers(uow_factory, a.org_id) == [a.merge(b)]


def test_markers_are_sorted_by_model_id(uow_factory: UnitOfWorkFactory) -> None:
    """An org's markers come one per model, sorted by model_id."""
    org = new_id()
    stored = [make_marker(org_id=org) for _ in range(5)]
    touch(uow_factory, stored)
    assert markers(uow_factory, org) == sorted(stored, key=lambda m: m.model_id)


def test_markers_exclude_other_orgs(uow_factory: UnitOfWorkFactory) -> None:
    """Only the requested org's markers are listed; an org without any gets []."""
    mine = make_marker()
    touch(uow_factory, [mine, make_marker(model_id=mine.model_id)])
    assert markers(uow_factory, mine.org_id) == [mine]
    assert markers(uow_factory, new_id()) == []


def revise(uow_factory: UnitOfWorkFactory, orgs: list[uuid.UUID], *, commit: bool = True
           ) -> None:
    """freshness.revise_history in its own unit of work, committed or rolled back."""
    with uow_factory() as uow:
        uow.freshness.revise_history(orgs)
        if commit:
            uow.commit()


def revisions(uow_factory: UnitOfWorkFactory) -> dict[uuid.UUID, int]:
    """freshness.history_revisions in its own unit of work."""
    with uow_factory() as uow:
        return uow.freshness.history_revisions()


def test_each_history_revision_counts_once_per_org(uow_factory: UnitOfWorkFactory) -> None:
    """An org never revised is absent; each revising unit counts one per org, however often
    the org is named in it; other orgs are untouched."""
    a, b, untouched = new_id(), new_id(), new_id()
    assert untouched not in revisions(uow_factory)
    revise(uow_factory, [a])
    revise(uow_factory, [a, b, a])
    revise(uow_factory, [])
    found = revisions(uow_factory)
    assert (found.get(a), found.get(b), found.get(untouched)) == (2, 1, None)


def test_a_rolled_back_history_revision_counts_nothing(uow_factory: UnitOfWorkFactory
                                                       ) -> None:
    """The revision belongs to the writing transaction: rolled back with it."""
    org = new_id()
    revise(uow_factory, [org])
    revise(uow_factory, [org], commit=False)
    assert revisions(uow_factory).get(org) == 1
