"""GET usage, reliability and freshness of one org (SPEC §4, §5)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence

import falcon

from analytics_app.http.auth import Guard, actor_of
from analytics_app.http.params import QueryReader, path_uuid
from analytics_app.http.render import (
    PERCENTILES,
    freshness_body,
    reliability_body,
    usage_body,
)
from analytics_app.observability import metrics
from analytics_core.access import Action, decide
from analytics_core.events import MAX_CLIENT_ID
from analytics_core.freshness import FreshnessReport
from analytics_core.registry import Names
from analytics_core.timegrid import Grain, zone
from analytics_core.usecases.queries import (
    MAX_TOP,
    AnalyticsQuery,
    AnalyticsReport,
    GroupBy,
    parse_group_by,
)

QueryFn = Callable[[AnalyticsQuery], AnalyticsReport]
FreshnessFn = Callable[[uuid.UUID, Sequence[uuid.UUID]], FreshnessReport]
NamesFn = Callable[[uuid.UUID], Names]
"""The display names of models and of the org's clients (analytics_core.registry)."""

GRAINS: Mapping[str, Grain] = {
    "hour": Grain.HOUR, "hourly": Grain.HOUR, "day": Grain.DAY, "daily": Grain.DAY,
    "month": Grain.MONTH, "monthly": Grain.MONTH,
}
DEFAULT_PERCENTILE = "p95"


def read_query(reader: QueryReader, org_id: uuid.UUID) -> AnalyticsQuery:
    """start, end, granularity, tz, modelId, clientId, groupBy -> a validated query."""
    start, end = reader.instant("start"), reader.instant("end")
    grain = reader.choice("granularity", GRAINS, Grain.DAY)
    tz = reader.tz()
    models = reader.uuids("modelId")
    clients = reader.texts("clientId", MAX_CLIENT_ID)
    group_by, tag = GroupBy.MODEL, None
    text = reader.one("groupBy")
    if text is not None:
        try:
            group_by, tag = parse_group_by(text)
        except ValueError as e:
            reader.fail("groupBy", str(e))
    top = reader.integer("top", 1, MAX_TOP, 0) or None
    reader.done()
    assert start is not None
    assert end is not None
    return AnalyticsQuery(org_id, start, end, grain, tz, models, clients, group_by, tag, top)


def _names(names: NamesFn, report: AnalyticsReport) -> Names:
    """The names that label the report's groups: none to read when it has no groups."""
    if report.query.group_by is GroupBy.NONE:
        return Names()
    return names(report.query.org_id)


class UsageResource:
    """GET /orgs/{orgId}/usage."""

    def __init__(self, guard: Guard, query: QueryFn, names: NamesFn) -> None:
        self._guard = guard
        self._query = query
        self._names = names

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Usage and spend series, totals equal to their sum, freshness."""
        org_id = path_uuid(path["orgId"], "orgId")
        self._guard.require(req, Action.USAGE_READ, org_id)
        report = self._query(read_query(QueryReader(req.params), org_id))
        metrics.observe_freshness_lag(report.freshness.lag_seconds)
        resp.media = usage_body(report, _names(self._names, report))


class ReliabilityResource:
    """GET /orgs/{orgId}/reliability."""

    def __init__(self, guard: Guard, query: QueryFn, names: NamesFn) -> None:
        self._guard = guard
        self._query = query
        self._names = names

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Error classes, error rate and latency percentiles; `percentile` picks `highlighted`."""
        org_id = path_uuid(path["orgId"], "orgId")
        self._guard.require(req, Action.RELIABILITY_READ, org_id)
        reader = QueryReader(req.params)
        percentile = reader.choice("percentile", {p: p for p in PERCENTILES}, DEFAULT_PERCENTILE)
        report = self._query(read_query(reader, org_id))
        metrics.observe_freshness_lag(report.freshness.lag_seconds)
        resp.media = reliability_body(report, percentile, _names(self._names, report))


class FreshnessResource:
    """GET /orgs/{orgId}/freshness: readable with either the usage or the reliability grant."""

    def __init__(self, guard: Guard, freshness: FreshnessFn, names: NamesFn) -> None:
        self._guard = guard
        self._freshness = freshness
        self._names = names

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Pipeline freshness and one entry per model (unknown models get null times)."""
        org_id = path_uuid(path["orgId"], "orgId")
        usage_allowed = decide(actor_of(req), Action.USAGE_READ, org_id).allowed
        action = Action.USAGE_READ if usage_allowed else Action.RELIABILITY_READ
        self._guard.require(req, action, org_id, resource=f"freshness:{org_id}")
        reader = QueryReader(req.params)
        tz = reader.tz()
        models = reader.uuids("modelId")
        reader.done()
        report = self._freshness(org_id, models)
        metrics.observe_freshness_lag(report.freshness.lag_seconds)
        resp.media = freshness_body(report, zone(tz), self._names(org_id))
