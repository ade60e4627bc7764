"""The admin's fleet view: every active org's usage in a window and in the window before it."""

from __future__ import annotations

import uuid
from datetime import datetime

import attrs

from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.rollups import RollupStats
from analytics_core.timegrid import ceil_bucket, floor_bucket


@attrs.frozen
class FleetRow:
    """One org: its statistics in the window and in the previous window of the same length."""

    org_id: uuid.UUID
    current: RollupStats
    previous: RollupStats


@attrs.frozen
class FleetWindow:
    """[start, end) and the window of the same length just before it, on 15-minute edges."""

    start: datetime
    end: datetime

    def __attrs_post_init__(self) -> None:
        if self.end <= self.start:
            raise ValidationFailed([FieldError("end", "must be after start")], "invalid window")

    @property
    def edges(self) -> list[datetime]:
        """[previous start, start, end], each on a 15-minute edge."""
        start, end = floor_bucket(self.start), ceil_bucket(self.end)
        return [start - (end - start), start, end]


def fleet_summary(window: FleetWindow, *, uow_factory: UnitOfWorkFactory) -> list[FleetRow]:
    """Every org with rollups in the previous window or this one, sorted by org id, with its
    merged statistics (no sketches) per window: the same merge the usage report makes."""
    previous_start, start, end = window.edges
    rows = []
    with uow_factory() as uow:
        for org_id in uow.rollups.active_orgs(previous_start, end):
            cells = uow.rollups.aggregate(org_id, [previous_start, start, end], group_by="none",
                                          latency=False)
            by_period = {first >= start: stats for first, _, stats in cells}
            rows.append(FleetRow(org_id, by_period.get(True, RollupStats()),
                                 by_period.get(False, RollupStats())))
    return rows
