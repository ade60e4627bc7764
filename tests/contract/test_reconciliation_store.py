"""ReconciliationStore contract: a run and its lines read back exactly (amounts beyond 64 bits
too), only in their org, newest first with a cursor; an id is stored once."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest

from analytics_core.errors import Conflict
from analytics_core.money import Cents
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.reconciliation import ColumnMapping, CostUnit, LineStatus, ReconciliationLine
from analytics_core.reconciliation_runs import Basis, ReconciliationRun
from tests.contract.factories import BASE, evolve, new_id

HUGE = Cents(10**20 + 7)  # beyond a 64-bit integer of units


def make_run(org: uuid.UUID, seconds: int = 0) -> ReconciliationRun:
    """A run of `org` created BASE + seconds, with a custom mapping."""
    mapping = ColumnMapping(day="Usage Date", model="SKU", cost="Cost (cents)",
                            input_tokens="In", cost_unit=CostUnit.CENTS, day_format="%m/%d/%Y")
    return ReconciliationRun(
        new_id(), org, BASE + timedelta(seconds=seconds), "user:fin", "june.csv",
        "Asia/Kolkata", Basis.REPORTED, Decimal("0.5"), mapping, date(2024, 6, 1),
        date(2024, 6, 30), Cents(123_456), HUGE, 3, 2, BASE,
    )


LINES = (
    ReconciliationLine(date(2024, 6, 1), new_id(), "gpt-4.1", LineStatus.MATCHED, Cents(100),
                       Cents(100), Cents(0), Decimal("0.00"), False, 10, 20, 3, 10, None,
                       (2, 5)),
    ReconciliationLine(date(2024, 6, 2), None, "=renamed", LineStatus.INVOICED_ONLY, None,
                       HUGE, HUGE, None, True, rows=(3,)),
    ReconciliationLine(date(2024, 6, 2), new_id(), "claude", LineStatus.METERED_ONLY,
                       Cents(-50), None, Cents(50), Decimal("-100.00"), True, 1, 2, 1),
)


def add(uow_factory: UnitOfWorkFactory, run: ReconciliationRun,
        lines: tuple[ReconciliationLine, ...] = LINES) -> None:
    """reconciliations.add in its own committed unit."""
    with uow_factory() as uow:
        uow.reconciliations.add(run, lines)
        uow.commit()


def test_a_run_and_its_lines_read_back_exactly(uow_factory: UnitOfWorkFactory) -> None:
    """Every field, the mapping, exact amounts and the lines in order."""
    run = make_run(new_id())
    add(uow_factory, run)
    with uow_factory() as uow:
        assert uow.reconciliations.get(run.org_id, run.reconciliation_id) == run
        assert uow.reconciliations.lines(run.org_id, run.reconciliation_id) == list(LINES)


def test_runs_are_visible_only_in_their_org(uow_factory: UnitOfWorkFactory) -> None:
    """Another org sees neither the run nor its lines."""
    run = make_run(new_id())
    add(uow_factory, run)
    other = new_id()
    with uow_factory() as uow:
        assert uow.reconciliations.get(other, run.reconciliation_id) is None
        assert uow.reconciliations.lines(other, run.reconciliation_id) == []
        assert uow.reconciliations.page(other, limit=10) == []


def test_an_id_is_stored_once(uow_factory: UnitOfWorkFactory) -> None:
    """Adding the same id again is a Conflict and changes nothing."""
    run = make_run(new_id())
    add(uow_factory, run)
    with pytest.raises(Conflict):
        add(uow_factory, evolve(run, name="again"), LINES[:1])
    with uow_factory() as uow:
        assert uow.reconciliations.get(run.org_id, run.reconciliation_id) == run
        assert len(uow.reconciliations.lines(run.org_id, run.reconciliation_id)) == 3


def test_pages_walk_runs_newest_first(uow_factory: UnitOfWorkFactory) -> None:
    """Pages of 2 list each run once, newest first, ties by id descending."""
    org = new_id()
    runs = [make_run(org, s) for s in (1, 3, 1, 2, 3)]
    for run in runs:
        add(uow_factory, run, ())
    seen: list[ReconciliationRun] = []
    before = None
    while True:
        with uow_factory() as uow:
            page = uow.reconciliations.page(org, limit=2, before=before)
        seen += page
        if len(page) < 2:
            break
        before = (page[-1].created_at, page[-1].reconciliation_id)
    assert seen == sorted(runs, key=lambda r: (r.created_at, r.reconciliation_id),
                          reverse=True)
