"""Usage export points: the store merges per (zone-local period, model), additive fields only."""

from __future__ import annotations

from collections.abc import Iterator

from analytics_core.exports import ExportGranularity, ExportRequest
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.timegrid import Grain, period_end, period_start, zone
from analytics_core.usecases.queries import SeriesPoint, period_boundaries

GRAINS = {
    ExportGranularity.HOURLY: Grain.HOUR,
    ExportGranularity.DAILY: Grain.DAY,
    ExportGranularity.MONTHLY: Grain.MONTH,
}


def usage_points(request: ExportRequest, uow_factory: UnitOfWorkFactory) -> Iterator[SeriesPoint]:
    """The points of a usage export in (period, model) order, as `group_series` by model gives
    them over the window's rollups. The store merges them (`RollupStore.aggregate` without
    latency), so memory holds one cell per period and model, whatever the rollup count."""
    grain, tz = GRAINS[request.granularity], zone(request.tz)
    edges = period_boundaries(request.start, request.end, grain, request.tz)
    with uow_factory() as uow:
        cells = uow.rollups.aggregate(
            request.org_id, edges, group_by="model", model_ids=request.models, latency=False
        )
    for first, model, stats in cells:
        start = period_start(first, grain, tz)
        yield SeriesPoint(start, period_end(start, grain, tz), model, stats)
