"""Usage export points streamed one zone-local day at a time, with only additive statistics."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, tzinfo

from analytics_core.exports import ExportGranularity, ExportRequest
from analytics_core.money import Cents
from analytics_core.ports import UnitOfWorkFactory
from analytics_core.rollups import Rollup, RollupStats
from analytics_core.timegrid import (
    Grain,
    PeriodIndex,
    floor_bucket,
    period_end,
    period_start,
    zone,
)
from analytics_core.usecases.queries import SeriesPoint

GRAINS = {
    ExportGranularity.HOURLY: Grain.HOUR,
    ExportGranularity.DAILY: Grain.DAY,
    ExportGranularity.MONTHLY: Grain.MONTH,
}


def _day_slices(low: datetime, high: datetime, tz: tzinfo) -> Iterator[tuple[datetime, datetime]]:
    """[low, high) cut at the zone's local midnights (low is a 15-minute boundary)."""
    start = low
    while start < high:
        end = min(period_end(period_start(start, Grain.DAY, tz), Grain.DAY, tz), high)
        yield start, end
        start = end


class _UsageCells:
    """Additive sums per (zone-local period, model) of a usage export, popped as periods close.

    Only what the CSV holds is summed (counts, tokens, cost): latency sketches and error codes
    are never merged, which is most of the cost of a general rollup merge.
    """

    def __init__(self, grain: Grain, tz: tzinfo) -> None:
        self._index = PeriodIndex(grain, tz)
        self._sums: dict[tuple[datetime, str], list[int]] = {}
        self._ends: dict[datetime, datetime] = {}

    def add(self, rollup: Rollup) -> None:
        """Add a base rollup to its period's cell."""
        s = rollup.stats
        period = self._index.start_of(rollup.key.bucket_start)
        if period not in self._ends:
            self._ends[period] = period_end(period, self._index.grain, self._index.tz)
        sums = self._sums.setdefault((period, str(rollup.key.model_id)), [0] * 8)
        for i, value in enumerate((s.invocations, s.success, s.errors, s.timeouts, s.throttled,
                                   s.input_tokens, s.output_tokens, s.cost.units)):
            sums[i] += value

    def pop_closed(self, until: datetime | None) -> Iterator[SeriesPoint]:
        """Points of the periods ending at or before `until` (all when None), in (period,
        model) order, as group_series orders them."""
        done = sorted(c for c in self._sums if until is None or self._ends[c[0]] <= until)
        for period, model in done:
            v = self._sums.pop((period, model))
            stats = RollupStats(invocations=v[0], success=v[1], errors=v[2], timeouts=v[3],
                                throttled=v[4], input_tokens=v[5], output_tokens=v[6],
                                cost=Cents(v[7]))
            yield SeriesPoint(period, self._ends[period], model, stats)


def usage_points(request: ExportRequest, uow_factory: UnitOfWorkFactory) -> Iterator[SeriesPoint]:
    """The points of a usage export, as group_series by model would give them over the window's
    rollups, but read one zone-local day at a time (memory holds a day of rollups and the open
    periods, whatever the window) and carrying only the additive statistics."""
    tz = zone(request.tz)
    cells = _UsageCells(GRAINS[request.granularity], tz)
    for start, end in _day_slices(floor_bucket(request.start), request.end, tz):
        with uow_factory() as uow:
            rollups = uow.rollups.query(request.org_id, start, end, request.models)
        for rollup in rollups:
            cells.add(rollup)
        yield from cells.pop_closed(end)
    yield from cells.pop_closed(None)
