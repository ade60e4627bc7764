"""PriceCatalogStore, RestatementStore and the priced side of EventStore, on every backend:
append-only versions read back exactly, a growing revision, restatement records and additive
deltas scoped by org, price versions stored with events and changed in place."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import attrs
import pytest

from analytics_core.errors import Conflict
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.prices import PriceCategory, PriceVersion
from analytics_core.restatements import (
    Restatement,
    RestatementCursor,
    RestatementDelta,
    RestatementStatus,
)
from tests.contract.factories import BASE, make_events, new_id


def _version(**overrides: object) -> PriceVersion:
    fields: dict[str, object] = {
        "version_id": new_id(), "model_id": new_id(), "org_id": None,
        "effective_from": BASE - timedelta(days=3),
        "prices": {PriceCategory.INPUT: 150_000, PriceCategory.OUTPUT: 600_000,
                   PriceCategory.CACHE_READ: 75_000},
        "created_at": BASE, "created_by": "admin:alice", "supersedes": None,
        "note": "list price, 2026 — «tier 1»",
    }
    fields.update(overrides)
    return PriceVersion(**fields)  # type: ignore[arg-type]


def _add(uow_factory: UnitOfWorkFactory, *versions: PriceVersion) -> None:
    with uow_factory() as uow:
        uow.prices.add(versions)
        uow.commit()


def _all(uow_factory: UnitOfWorkFactory) -> list[PriceVersion]:
    with uow_factory() as uow:
        return uow.prices.all()


def test_versions_read_back_exactly_in_the_order_added(uow_factory: UnitOfWorkFactory) -> None:
    """Every field survives storage; all() keeps the order of adding."""
    first = _version()
    second = _version(model_id=first.model_id, org_id=new_id(), supersedes=first.version_id,
                      prices={PriceCategory.INPUT: 0, PriceCategory.OUTPUT: 10**12})
    _add(uow_factory, first)
    _add(uow_factory, second)
    mine = [v for v in _all(uow_factory) if v.model_id == first.model_id]
    assert mine == [first, second]


def test_the_revision_grows_with_every_add(uow_factory: UnitOfWorkFactory) -> None:
    """revision() changes when versions are added, and is stable otherwise."""
    with uow_factory() as uow:
        before = uow.prices.revision()
    with uow_factory() as uow:
        assert uow.prices.revision() == before
    _add(uow_factory, _version())
    with uow_factory() as uow:
        assert uow.prices.revision() > before


def test_a_known_version_id_is_a_conflict_and_nothing_is_added(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """Versions are immutable: adding an id again fails, and its batch stores nothing."""
    stored = _version()
    _add(uow_factory, stored)
    fresh = _version()
    with uow_factory() as uow, pytest.raises(Conflict):
        uow.prices.add([fresh, attrs.evolve(stored, note="changed")])
    ids = {v.version_id for v in _all(uow_factory)}
    assert stored.version_id in ids
    assert fresh.version_id not in ids


def test_an_uncommitted_add_is_rolled_back(uow_factory: UnitOfWorkFactory) -> None:
    """Leaving the unit without commit stores nothing."""
    version = _version()
    with uow_factory() as uow:
        uow.prices.add([version])
    assert version.version_id not in {v.version_id for v in _all(uow_factory)}


def _restatement(**overrides: object) -> Restatement:
    fields: dict[str, object] = {
        "restatement_id": new_id(), "created_at": BASE, "created_by": "admin:alice",
        "version_id": new_id(), "supersedes": None, "model_id": new_id(), "org_id": None,
        "window_start": BASE - timedelta(days=2), "window_end": BASE,
    }
    fields.update(overrides)
    return Restatement(**fields)  # type: ignore[arg-type]


def test_restatements_are_created_saved_and_listed(uow_factory: UnitOfWorkFactory) -> None:
    """get returns what was saved; open lists unfinished ones oldest first; for_org shows the
    org's own and global ones, never another org's."""
    org, other = new_id(), new_id()
    mine = _restatement(org_id=org, created_at=BASE + timedelta(seconds=1))
    theirs = _restatement(org_id=other)
    everyone = _restatement(created_at=BASE + timedelta(seconds=2))
    with uow_factory() as uow:
        for r in (mine, theirs, everyone):
            uow.restatements.create(r)
        uow.commit()
    moved = attrs.evolve(mine, status=RestatementStatus.RUNNING, events_repriced=7,
                         cursor=RestatementCursor(org, BASE, new_id()))
    done = attrs.evolve(everyone, status=RestatementStatus.SUCCEEDED, completed_at=BASE)
    with uow_factory() as uow:
        uow.restatements.save(moved)
        uow.restatements.save(done)
        uow.commit()
    with uow_factory() as uow:
        assert uow.restatements.get(mine.restatement_id) == moved
        assert uow.restatements.get(new_id()) is None
        open_ids = [r.restatement_id for r in uow.restatements.open()]
        listed = uow.restatements.for_org(org)
    assert mine.restatement_id in open_ids
    assert everyone.restatement_id not in open_ids
    assert open_ids.index(theirs.restatement_id) < open_ids.index(mine.restatement_id)
    ids = [r.restatement_id for r in listed]
    assert theirs.restatement_id not in ids
    assert ids.index(everyone.restatement_id) < ids.index(mine.restatement_id)  # newest first


def test_deltas_add_up_per_org_model_and_day(uow_factory: UnitOfWorkFactory) -> None:
    """add_deltas adds to existing keys; deltas() returns one org's, by (model, day)."""
    r = _restatement()
    org, other, m1, m2 = new_id(), new_id(), new_id(), new_id()
    day = date(2026, 3, 1)

    def delta(o: uuid.UUID, m: uuid.UUID, d: date, n: int, before: int, after: int
              ) -> RestatementDelta:
        return RestatementDelta(r.restatement_id, o, m, d, n, before, after)

    with uow_factory() as uow:
        uow.restatements.create(r)
        uow.restatements.add_deltas([delta(org, m1, day, 2, 100, 40), delta(other, m1, day, 1,
                                                                             5, 9)])
        uow.commit()
    with uow_factory() as uow:
        uow.restatements.add_deltas([delta(org, m1, day, 3, 10, 4),
                                     delta(org, m2, day + timedelta(days=1), 1, 0, 2**40)])
        uow.commit()
    with uow_factory() as uow:
        found = uow.restatements.deltas(r.restatement_id, org)
    lo, hi = sorted([m1, m2])
    expected = {m1: delta(org, m1, day, 5, 110, 44),
                m2: delta(org, m2, day + timedelta(days=1), 1, 0, 2**40)}
    assert found == [expected[lo], expected[hi]]
    assert found[[lo, hi].index(m1)].delta_units == -66


def test_events_keep_their_price_version_and_page_in_key_order(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """add_new stores each event's version; priced() pages one org's model after a position;
    set_price_versions changes them (None: unpriced)."""
    org, model, version = new_id(), new_id(), new_id()
    events = make_events(5, org_id=org, model_id=model)
    other_model = make_events(1, org_id=org, occurred_at=BASE + timedelta(seconds=2))
    with uow_factory() as uow:
        uow.events.add_new([*events, *other_model],
                           [version, None, version, version, None, version])
        uow.commit()
    window = (BASE - timedelta(days=1), BASE + timedelta(days=1))
    with uow_factory() as uow:
        first = uow.events.priced(org, model, *window, after=None, limit=3)
        rest = uow.events.priced(org, model, *window,
                                 after=(first[-1][0].occurred_at, first[-1][0].event_id),
                                 limit=3)
    assert [(e, v) for e, v in first + rest] == list(zip(
        events, [version, None, version, version, None], strict=True))
    new = new_id()
    with uow_factory() as uow:
        uow.events.set_price_versions(org, [(events[0].occurred_at, events[0].event_id, None),
                                            (events[1].occurred_at, events[1].event_id, new)])
        uow.commit()
    with uow_factory() as uow:
        again = uow.events.priced(org, model, *window, after=None, limit=10)
    assert [v for _, v in again] == [None, new, version, version, None]
    assert [e for e, _ in again] == events  # the events themselves never change
