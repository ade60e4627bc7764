"""The scheduled monthly export reads each org's calendar month in the org's own zone (issue
17): on every storage backend, an org in Asia/Kolkata gets its March (from 2024-02-29T18:30Z)
once Kolkata's April has begun, an org without settings its UTC March, and an org in
America/Los_Angeles, still in March, only its February."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from analytics_adapters.memory import ManualClock
from analytics_adapters.system import RandomIds
from analytics_core.events import Status, UsageEvent
from analytics_core.exports import ExportJob
from analytics_core.money import Cents
from analytics_core.org_settings import OrgSettings
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.rollups import build_rollups
from analytics_core.usecases.export_runner import schedule_monthly_exports
from analytics_core.usecases.exports import list_exports

NOW = datetime(2024, 4, 1, 2, 0, tzinfo=UTC)  # Kolkata: April 1 07:30; Los Angeles: Mar 31


def used(uow_factory: UnitOfWorkFactory, org: uuid.UUID, *times: datetime) -> None:
    """Rollups of one event at each time."""
    events = [UsageEvent(uuid.uuid4(), org, uuid.uuid4(), t, Status.SUCCESS, 5, 1, 1, Cents(1))
              for t in times]
    with uow_factory() as uow:
        uow.rollups.add(build_rollups(events))
        uow.commit()


def zone_of(uow_factory: UnitOfWorkFactory, org: uuid.UUID, tz: str) -> None:
    """Set an org's zone."""
    with uow_factory() as uow:
        uow.org_settings.put(OrgSettings(org, tz, NOW, "test"))
        uow.commit()


def jobs(uow_factory: UnitOfWorkFactory, org: uuid.UUID) -> list[ExportJob]:
    """The org's jobs."""
    return list(list_exports(org, uow_factory=uow_factory).jobs)


def test_each_org_gets_its_own_zones_previous_month(uow_factory: UnitOfWorkFactory) -> None:
    """Kolkata's, UTC's and Los Angeles' previous months, each once."""
    kolkata, utc, los_angeles = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    zone_of(uow_factory, kolkata, "Asia/Kolkata")
    zone_of(uow_factory, los_angeles, "America/Los_Angeles")
    used(uow_factory, kolkata, datetime(2024, 3, 15, tzinfo=UTC))
    used(uow_factory, utc, datetime(2024, 3, 31, 20, tzinfo=UTC))
    used(uow_factory, los_angeles, datetime(2024, 2, 20, tzinfo=UTC),
         datetime(2024, 3, 20, tzinfo=UTC))
    clock = ManualClock(NOW)
    created = schedule_monthly_exports(uow_factory=uow_factory, clock=clock, ids=RandomIds())
    again = schedule_monthly_exports(uow_factory=uow_factory, clock=clock, ids=RandomIds())
    mine = {kolkata, utc, los_angeles}
    assert [j for j in again if j.org_id in mine] == []
    assert sorted(str(j.org_id) for j in created if j.org_id in mine) == sorted(map(str, mine))
    [k] = jobs(uow_factory, kolkata)
    assert (k.request.tz, k.request.start, k.request.end, k.idempotency_key) == (
        "Asia/Kolkata", datetime(2024, 2, 29, 18, 30, tzinfo=UTC),
        datetime(2024, 3, 31, 18, 30, tzinfo=UTC), "monthly:202403")
    [u] = jobs(uow_factory, utc)
    assert (u.request.tz, u.request.start, u.idempotency_key) == (
        "UTC", datetime(2024, 3, 1, tzinfo=UTC), "monthly:202403")
    [la] = jobs(uow_factory, los_angeles)
    assert (la.request.tz, la.request.start, la.idempotency_key) == (
        "America/Los_Angeles", datetime(2024, 2, 1, 8, tzinfo=UTC), "monthly:202402")


def test_an_org_active_only_outside_its_zones_month_gets_no_file(
    uow_factory: UnitOfWorkFactory,
) -> None:
    """Kolkata's March ends at 18:30Z on March 31: usage after it is April's."""
    org = uuid.uuid4()
    zone_of(uow_factory, org, "Asia/Kolkata")
    used(uow_factory, org, datetime(2024, 3, 31, 20, tzinfo=UTC))
    created = schedule_monthly_exports(uow_factory=uow_factory, clock=ManualClock(NOW),
                                       ids=RandomIds())
    assert [j.org_id for j in created if j.org_id == org] == []
