"""Usage, reliability and freshness queries over rollups (SPEC §3, §4, §5)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

import attrs

from analytics_core.attribution import ACTOR, OTHER, TAG_PREFIX, AttributionSettings
from analytics_core.errors import FieldError, StoreUnavailable, ValidationFailed
from analytics_core.freshness import Freshness, FreshnessMarker, FreshnessReport, ModelFreshness
from analytics_core.ports import Clock, FreshnessCache, PipelineProgress, UnitOfWorkFactory
from analytics_core.prices import Catalog, PriceVersion
from analytics_core.rollups import (
    OTHER_ERROR_CODE,
    AggregateCell,
    Rollup,
    RollupStats,
    merge_stats,
)
from analytics_core.timegrid import (
    Grain,
    PeriodIndex,
    ceil_bucket,
    floor_bucket,
    period_end,
    period_start,
    served_window_errors,
    zone,
)

MAX_QUERY_RANGE = timedelta(days=400)
TOP_ERROR_CODES = 10
FRESHNESS_CACHE_TTL = timedelta(seconds=5)


class GroupBy(StrEnum):
    """Series split: one series per model, per client, per actor, per value of an attribution
    tag (`AnalyticsQuery.tag`), or a single series."""

    MODEL = "model"
    CLIENT = "client"
    NONE = "none"
    ACTOR = "actor"
    TAG = "tag"


MAX_TOP = 100
GROUP_BY_CHOICES = "model, client, actor, none or tag:KEY"


def parse_group_by(text: str) -> tuple[GroupBy, str | None]:
    """`model`, `client`, `actor`, `none` or `tag:KEY` as (GroupBy, tag); ValueError names the
    valid choices."""
    if text.startswith(TAG_PREFIX) and len(text) > len(TAG_PREFIX):
        return GroupBy.TAG, text[len(TAG_PREFIX):]
    if text in {g.value for g in GroupBy if g is not GroupBy.TAG}:
        return GroupBy(text), None
    raise ValueError(f"must be one of {GROUP_BY_CHOICES}")


@attrs.frozen
class AnalyticsQuery:
    """A validated usage or reliability query.

    The window counts every 15-minute base bucket that starts in [floor15(start), end): rollups
    are the resolution, so a bucket overlapping the window counts whole.
    """

    org_id: uuid.UUID
    start: datetime
    end: datetime
    grain: Grain = Grain.DAY
    tz: str = "UTC"
    model_ids: tuple[uuid.UUID, ...] = ()
    client_ids: tuple[str, ...] = ()
    group_by: GroupBy = GroupBy.MODEL
    tag: str | None = None  # the attribution key of group_by=tag
    top: int | None = None  # keep the N largest groups, fold the rest into "(other)"

    @property
    def dimension(self) -> str | None:
        """The attribution dimension read for actor and tag groupings, else None."""
        if self.group_by is GroupBy.ACTOR:
            return ACTOR
        if self.group_by is GroupBy.TAG:
            return f"{TAG_PREFIX}{self.tag}"
        return None

    def __attrs_post_init__(self) -> None:
        errors = served_window_errors(self.start, self.end, "start", "end")
        if (self.group_by is GroupBy.TAG) != bool(self.tag):
            errors.append(FieldError("groupBy", "tag:KEY needs a key; only tag takes one"))
        if self.dimension is not None and self.client_ids:
            errors.append(FieldError("clientId", "cannot filter by client when grouping by "
                                     "actor or tag (attribution rollups have no client)"))
        if self.top is not None and not 1 <= self.top <= MAX_TOP:
            errors.append(FieldError("top", f"must be an integer from 1 to {MAX_TOP}"))
        elif self.top is not None and self.group_by is GroupBy.NONE:
            errors.append(FieldError("top", "needs groupBy other than none"))
        if self.end <= self.start:
            errors.append(FieldError("end", "must be after start"))
        elif self.end - self.start > MAX_QUERY_RANGE:
            errors.append(FieldError("end", f"range must be at most {MAX_QUERY_RANGE.days} days"))
        try:
            zone(self.tz)
        except ValueError:
            errors.append(FieldError("tz", f"unknown IANA time zone {self.tz!r}"))
        if errors:
            raise ValidationFailed(errors, "invalid query")


@attrs.frozen
class SeriesPoint:
    """Merged statistics of one grain period for one group (None when group_by is none)."""

    bucket_start: datetime
    bucket_end: datetime
    group: str | None
    stats: RollupStats


@attrs.frozen
class AnalyticsReport:
    """Series, totals over the same rollups, and pipeline freshness."""

    query: AnalyticsQuery
    series: tuple[SeriesPoint, ...]
    totals: RollupStats
    freshness: Freshness
    # Usage reports: the catalog versions in effect for the org's models in the window.
    price_versions: tuple[PriceVersion, ...] = ()

    def top_error_codes(self, limit: int = TOP_ERROR_CODES) -> list[tuple[str, int]]:
        """Most frequent error codes over the range, most frequent first."""
        ranked = sorted(
            ((c, n) for c, n in self.totals.error_codes.items() if c != OTHER_ERROR_CODE),
            key=lambda kv: (-kv[1], kv[0]),
        )
        return ranked[:limit]


def _group_of(rollup: Rollup, group_by: GroupBy) -> str | None:
    if group_by is GroupBy.MODEL:
        return str(rollup.key.model_id)
    if group_by is GroupBy.CLIENT:
        return rollup.key.client_id
    return None


def group_series(
    rollups: Sequence[Rollup], grain: Grain, tz_name: str, group_by: GroupBy
) -> list[SeriesPoint]:
    """Merge base rollups into zone-local grain periods per group, ordered by (start, group)."""
    index = PeriodIndex(grain, zone(tz_name))
    cells: dict[tuple[datetime, str | None], list[RollupStats]] = {}
    for r in rollups:
        cell = (index.start_of(r.key.bucket_start), _group_of(r, group_by))
        cells.setdefault(cell, []).append(r.stats)
    ordered = sorted(cells, key=lambda c: (c[0], c[1] or ""))
    return [
        SeriesPoint(
            start, period_end(start, grain, index.tz), group, merge_stats(cells[(start, group)])
        )
        for start, group in ordered
    ]


def current_freshness(progress: PipelineProgress, clock: Clock) -> Freshness:
    """Pipeline freshness now."""
    now = clock.now()
    return Freshness.at(now, progress.complete_through(now))


def period_boundaries(start: datetime, end: datetime, grain: Grain, tz_name: str) -> list[datetime]:
    """Edges of the zone-local periods covering [floor15(start), ceil15(end)): the first edge is
    the window's first bucket, the inner ones are period starts, the last the window's end."""
    tz = zone(tz_name)
    first, last = floor_bucket(start), ceil_bucket(end)
    edges = [first]
    edge = period_end(period_start(first, grain, tz), grain, tz)
    while edge < last:
        edges.append(edge)
        edge = period_end(edge, grain, tz)
    edges.append(last)
    return edges


def check_grouping(query: AnalyticsQuery, attribution: AttributionSettings) -> None:
    """ValidationFailed naming groupBy when it names a tag that is not an attribution key."""
    if query.group_by is GroupBy.TAG and query.tag not in attribution.keys:
        configured = ", ".join(f"tag:{k}" for k in attribution.keys) or "none configured"
        raise ValidationFailed([FieldError(
            "groupBy", f"tag:{query.tag} is not an attribution key (ANALYTICS_ATTRIBUTION_KEYS:"
            f" {configured}); valid: model, client, actor, none, tag:KEY for a configured key",
        )], "invalid query")


def query_analytics(
    query: AnalyticsQuery, *, uow_factory: UnitOfWorkFactory, progress: PipelineProgress,
    clock: Clock, latency: bool = True, attribution: AttributionSettings | None = None,
) -> AnalyticsReport:
    """Usage and reliability both come from one read: series, and totals equal to their sum.

    The store merges per period (`RollupStore.aggregate`); `latency=False` (usage) skips the
    sketches and error codes, which usage never shows.
    """
    check_grouping(query, attribution or AttributionSettings())
    freshness = current_freshness(progress, clock)
    edges = period_boundaries(query.start, query.end, query.grain, query.tz)
    with uow_factory() as uow:
        if query.dimension is not None:
            cells = uow.attribution.aggregate(query.org_id, edges, dimension=query.dimension,
                                              model_ids=query.model_ids, latency=latency)
        else:
            cells = uow.rollups.aggregate(
                query.org_id, edges, group_by=query.group_by.value,
                model_ids=query.model_ids, client_ids=query.client_ids, latency=latency,
            )
        if query.top is not None:
            cells = top_groups(cells, query.top)
        catalog = None
        if not latency and any(stats.priced for _, _, stats in cells):
            catalog = Catalog.of(uow.prices.all())
    tz = zone(query.tz)
    series = []
    for first, group, stats in cells:
        start = period_start(first, query.grain, tz)
        series.append(SeriesPoint(start, period_end(start, query.grain, tz), group, stats))
    totals = merge_stats(p.stats for p in series)
    versions = () if catalog is None else _versions_in(catalog, query, series, edges)
    return AnalyticsReport(query, tuple(series), totals, freshness, versions)


def top_groups(cells: Sequence[AggregateCell], n: int) -> list[AggregateCell]:
    """The cells of the `n` largest groups over the whole window (by reported cost, then
    invocations, then group), and per period one `(other)` cell merging every other group
    (attribution's own `(other)` included; the group of events without a value, "", ranks
    like any other), so that the totals are unchanged. Ordered by (period, group), `(other)`
    last in its period."""
    totals: dict[str | None, list[int]] = {}
    for _, group, stats in cells:
        t = totals.setdefault(group, [0, 0])
        t[0] += stats.cost.units
        t[1] += stats.invocations
    ranked = sorted((g for g in totals if g not in (OTHER, None)),
                    key=lambda g: (-totals[g][0], -totals[g][1], g or ""))
    keep = set(ranked[:n])
    out: list[AggregateCell] = []
    rest: dict[datetime, list[RollupStats]] = {}
    for start, group, stats in cells:
        if group in keep:
            out.append((start, group, stats))
        else:
            rest.setdefault(start, []).append(stats)
    out.extend((start, OTHER, merge_stats(parts)) for start, parts in rest.items())
    out.sort(key=lambda c: (c[0], c[1] == OTHER, c[1] or ""))
    return out


def _versions_in(catalog: Catalog, query: AnalyticsQuery, series: Sequence[SeriesPoint],
                 edges: Sequence[datetime]) -> tuple[PriceVersion, ...]:
    """The versions in effect in the window for the report's models: the filter's, else the
    series' (grouped by model), else every model the catalog prices."""
    if query.model_ids:
        models = set(query.model_ids)
    elif query.group_by is GroupBy.MODEL:
        models = {uuid.UUID(p.group) for p in series if p.group}
    else:
        models = {v.model_id for v in catalog.versions}
    found = {v.version_id: v for m in models
             for v in catalog.overlapping(query.org_id, m, edges[0], edges[-1])}
    return tuple(sorted(found.values(), key=lambda v: (str(v.model_id), v.org_id is not None,
                                                      v.effective_from)))


def get_freshness(
    org_id: uuid.UUID, *, uow_factory: UnitOfWorkFactory, progress: PipelineProgress,
    clock: Clock, cache: FreshnessCache | None = None, model_ids: Sequence[uuid.UUID] = (),
    cache_ttl: timedelta = FRESHNESS_CACHE_TTL,
) -> FreshnessReport:
    """Per-model freshness of an org: markers from the cache (or the store when the cache is
    cold or down) and lag from the real pipeline. Unknown models get null times, never made up."""
    freshness = current_freshness(progress, clock)
    markers = _cached_markers(org_id, cache)
    if markers is None:
        with uow_factory() as uow:
            markers = uow.freshness.markers(org_id)
        if cache is not None:
            with contextlib.suppress(StoreUnavailable):
                cache.put(org_id, markers, cache_ttl)
    by_model = {m.model_id: m for m in markers}
    wanted = list(model_ids) if model_ids else sorted(by_model)
    entries = tuple(
        ModelFreshness(
            model_id,
            by_model[model_id].last_event_at if model_id in by_model else None,
            by_model[model_id].last_rollup_at if model_id in by_model else None,
            freshness.lag_seconds,
            freshness.status,
        )
        for model_id in wanted
    )
    return FreshnessReport(org_id, freshness, entries)


def _cached_markers(
    org_id: uuid.UUID, cache: FreshnessCache | None
) -> list[FreshnessMarker] | None:
    if cache is None:
        return None
    try:
        return cache.get(org_id)
    except StoreUnavailable:
        return None


def has_usage_data(
    *, uow_factory: UnitOfWorkFactory, clock: Clock, days: int = 400,
) -> bool:
    """Whether any org has rollups in the last `days` days (i.e. the store is not empty)."""
    now = clock.now()
    with uow_factory() as uow:
        return bool(uow.rollups.active_orgs(now - timedelta(days=days), now + timedelta(hours=1)))
