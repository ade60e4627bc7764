"""Carry out restatements (analytics_core.restatements) batch by batch, and read them.

`run_restatements` works through every open restatement in the order their versions were
added. One batch is one unit of work: up to `batch` events of the model after the cursor
(orgs in id order; small orgs share a batch) are priced again by the catalog as it stood when
the restatement's version was added; each whose price version changes is stored with the new
version, the rollups and the attribution rows it counted in get the difference of its catalog
cost (every tier, exactly), the record's per (org, model, UTC day) deltas grow by it, and the
cursor moves past the batch. Batches are short transactions, so ingestion keeps its pace meanwhile.
Interrupted anywhere (even kill -9), the next run continues from the committed cursor; a
batch done again finds its events already carrying the new version and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

import attrs

from analytics_core.attribution import AttributionSettings, groups_of, wanted_values
from analytics_core.errors import NotFound
from analytics_core.events import UsageEvent
from analytics_core.ports import Clock, UnitOfWork, UnitOfWorkFactory
from analytics_core.prices import ZERO_COSTS, Catalog, PriceVersion, category_costs
from analytics_core.restatements import (
    Restatement,
    RestatementCursor,
    RestatementDelta,
    RestatementStatus,
)
from analytics_core.rollups import NO_CLIENT, Rollup, RollupKey, RollupStats
from analytics_core.timegrid import floor_bucket

DEFAULT_BATCH = 2000
# A restatement starts this long after its record: an ingest unit that read the catalog just
# before the new version committed has committed by then, so the walk sees its events.
START_GRACE = timedelta(seconds=10)

Progress = Callable[[Restatement], None]
_BEFORE = datetime(1970, 1, 1, tzinfo=UTC)  # cursor time of an org not started yet
_NO_EVENT = uuid.UUID(int=0)


def run_restatements(
    *, uow_factory: UnitOfWorkFactory, clock: Clock, batch: int = DEFAULT_BATCH,
    max_batches: int | None = None, progress: Progress | None = None,
    attribution: AttributionSettings | None = None,
) -> int:
    """Run open restatements until none is left (or `max_batches` batches ran); the number
    of batches run."""
    done = 0
    while max_batches is None or done < max_batches:
        with uow_factory() as uow:
            position = {v.version_id: i for i, v in enumerate(uow.prices.all())}
            due = sorted((r for r in uow.restatements.open()
                          if r.created_at + START_GRACE <= clock.now()),
                         key=lambda r: position.get(r.version_id, -1))
        if not due:
            return done
        finished = _step(due[0].restatement_id, uow_factory=uow_factory, clock=clock,
                         batch=batch, attribution=attribution or AttributionSettings())
        done += 1
        if progress is not None:
            progress(finished)
    return done


def _step(restatement_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory, clock: Clock,
          batch: int, attribution: AttributionSettings) -> Restatement:
    """One batch of one restatement, in one unit of work; the record as it now stands.

    Restatements run in the order their versions were added (`run_restatements`)."""
    with uow_factory() as uow:
        uow.prices.revision()  # first: on SQLite the unit then holds the write lock
        r = uow.restatements.get(restatement_id)
        if r is None:
            raise NotFound(f"restatement {restatement_id} does not exist")
        versions = uow.prices.all()
        position = {v.version_id: i for i, v in enumerate(versions)}
        mine = position[r.version_id]
        # The catalog as it stood when this restatement's version was added: restatements run
        # in that order, each moving only events priced before its version existed, so every
        # change is recorded under the version that caused it.
        catalog = Catalog.of(versions[:mine + 1])
        by_id = {v.version_id: v for v in versions}
        newer = {v for v, i in position.items() if i > mine}
        orgs = [r.org_id] if r.org_id is not None else uow.rollups.active_orgs(
            floor_bucket(r.window_start), r.window_end)
        cursor = r.cursor
        remaining = [o for o in orgs if cursor is None or o >= cursor.org_id]
        room = batch  # events this batch may still read: small orgs share one batch
        revised: set[uuid.UUID] = set()
        r = attrs.evolve(r, status=RestatementStatus.RUNNING)
        while remaining and room:
            org = remaining.pop(0)
            after = None
            if cursor is not None and cursor.org_id == org and cursor.occurred_at != _BEFORE:
                after = (cursor.occurred_at, cursor.event_id)
            rows = uow.events.priced(org, r.model_id, r.window_start, r.window_end,
                                     after=after, limit=room)
            room -= len(rows)
            changed = _reprice(uow, r, org, [(e, v) for e, v in rows if v not in newer],
                               catalog=catalog, by_id=by_id, attribution=attribution)
            r = attrs.evolve(r, events_repriced=r.events_repriced + changed)
            if changed:
                revised.add(org)
            if not room and rows:  # maybe more of this org: continue after the last one
                last = rows[-1][0]
                r = attrs.evolve(r, cursor=RestatementCursor(org, last.occurred_at,
                                                             last.event_id))
            elif remaining:  # this org is done: the next one, from its start
                r = attrs.evolve(r, cursor=RestatementCursor(remaining[0], _BEFORE, _NO_EVENT))
        if not remaining and room:
            r = attrs.evolve(r, status=RestatementStatus.SUCCEEDED, completed_at=clock.now())
        uow.restatements.save(r)
        # Past days' catalog costs changed: budget values kept between passes are read again.
        # Last, like the ingest's, so the two writers lock in the same order (rollups, then
        # attribution rows, then history revisions, each in key order): no deadlock.
        uow.freshness.revise_history(sorted(revised))
        uow.commit()
    return r


def _reprice(
    uow: UnitOfWork, r: Restatement, org: uuid.UUID,
    rows: Sequence[tuple[UsageEvent, uuid.UUID | None]], *, catalog: Catalog,
    by_id: dict[uuid.UUID, PriceVersion], attribution: AttributionSettings,
) -> int:
    """Store the new versions, rollup differences and deltas of one batch; events changed."""
    changed_events: list[UsageEvent] = []
    differences: list[list[int]] = []
    changes: list[tuple[datetime, uuid.UUID, uuid.UUID | None]] = []
    differences_by_key: list[tuple[RollupKey, list[int]]] = []
    days: dict[tuple[uuid.UUID, date], list[int]] = {}
    for event, stored in rows:
        new = catalog.price(event)
        new_id = None if new is None else new.version_id
        if new_id == stored:
            continue
        old_version = by_id.get(stored) if stored is not None else None
        old = ZERO_COSTS if old_version is None else category_costs(event, old_version)
        new_costs = ZERO_COSTS if new is None else new.costs
        changes.append((event.occurred_at, event.event_id, new_id))
        key = RollupKey(org, event.model_id, event.client_id or NO_CLIENT,
                        floor_bucket(event.occurred_at))
        difference = [b - a for a, b in zip(old, new_costs, strict=True)]
        difference.append((new is not None) - (old_version is not None))
        differences_by_key.append((key, difference))
        changed_events.append(event)
        differences.append(difference)
        day = days.setdefault((event.model_id, event.occurred_at.date()), [0, 0, 0])
        day[0] += 1
        day[1] += sum(old)
        day[2] += sum(new_costs)
    if not changes:
        return 0
    uow.events.set_price_versions(org, changes)
    uow.rollups.add(_catalog_deltas(differences_by_key))
    _adjust_attribution(uow, changed_events, differences, attribution)
    uow.restatements.add_deltas([
        RestatementDelta(r.restatement_id, org, model, day, n, before, after)
        for (model, day), (n, before, after) in sorted(days.items())
    ])
    return len(changes)


def _adjust_attribution(uow: UnitOfWork, events: Sequence[UsageEvent],
                        differences: Sequence[Sequence[int]],
                        attribution: AttributionSettings) -> None:
    """The same catalog differences on the attribution rows the events counted in at ingest
    (their value, or `(other)` when it was not admitted; values admitted are never dropped, so
    reading them again finds the same groups)."""
    dimensions = attribution.dimensions
    admitted = uow.attribution.admit(wanted_values(events, dimensions), 0)
    uow.attribution.adjust_catalog(_catalog_deltas(
        (RollupKey(event.org_id, event.model_id, group, floor_bucket(event.occurred_at)),
         difference)
        for event, difference in zip(events, differences, strict=True)
        for group in groups_of(event, dimensions, admitted)
    ))


def _catalog_deltas(differences: Iterable[tuple[RollupKey, Sequence[int]]]) -> list[Rollup]:
    """Rollup deltas carrying only catalog costs and priced counts: the differences (7 costs,
    then the priced count) summed per key, sorted by key."""
    per_key: dict[RollupKey, list[int]] = {}
    for key, difference in differences:
        acc = per_key.setdefault(key, [0] * len(difference))
        for i, n in enumerate(difference):
            acc[i] += n
    return [Rollup(key, RollupStats(catalog_costs=tuple(v[:-1]), priced=v[-1]))
            for key, v in sorted(per_key.items())]


@attrs.frozen
class RestatementView:
    """A restatement as one org sees it: the record and that org's deltas."""

    restatement: Restatement
    deltas: tuple[RestatementDelta, ...]


def org_restatements(org_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory
                     ) -> list[RestatementView]:
    """The restatements that touched (or may touch) an org, newest first; a global one shows
    only when it changed something of the org or is still running."""
    with uow_factory() as uow:
        out = []
        for r in uow.restatements.for_org(org_id):
            deltas = tuple(uow.restatements.deltas(r.restatement_id, org_id))
            if deltas or r.org_id == org_id or r.status is not RestatementStatus.SUCCEEDED:
                out.append(RestatementView(r, deltas))
    return out


