"""What each page shows, built from the API's own renderers over the same reports.

Every figure is taken from the JSON body the API would send for the same query
(`analytics_app.http.render`), so a page and the API cannot disagree: the page only rounds
for display and keeps the exact value beside it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from analytics_app.http.render import (
    budget_view_body,
    reliability_body,
    usage_body,
)
from analytics_app.ui.api import DashboardApi
from analytics_app.ui.tables import (
    DASH,
    Cell,
    Row,
    Table,
    count_cell,
    ms_cell,
    ratio_cell,
    sum_exact,
    usd_cell,
)
from analytics_app.ui.window import Window
from analytics_core.budgets import FORECAST_WINDOW, projection
from analytics_core.money import Cents
from analytics_core.timegrid import Grain
from analytics_core.usecases.fleet import FleetRow
from analytics_core.usecases.queries import AnalyticsQuery, GroupBy

Body = dict[str, Any]
TOP_MODELS = 8
TOP_GROUPS = 5
NO_VALUE = "(none)"


def _query(org_id: uuid.UUID, window: Window, grain: Grain, group_by: GroupBy, *,
           tag: str | None = None, top: int | None = None) -> AnalyticsQuery:
    return AnalyticsQuery(org_id, window.start, window.end, grain, window.tz,
                          group_by=group_by, tag=tag, top=top)


def usage_query(org_id: uuid.UUID, window: Window) -> AnalyticsQuery:
    """The overview's main read: daily spend by model, the 8 largest and `(other)`."""
    return _query(org_id, window, Grain.DAY, GroupBy.MODEL, top=TOP_MODELS)


def reliability_query(org_id: uuid.UUID, window: Window) -> AnalyticsQuery:
    """The reliability page's read: the whole org, hourly up to a week, else daily."""
    return _query(org_id, window, window.fine_grain, GroupBy.NONE)


def _period_label(iso: str, grain: str) -> str:
    return iso[:10] if grain != "hour" else iso[:16].replace("T", " ")


def _model_label(point: Body) -> str:
    if point.get("other"):
        return "(other)"
    return str(point.get("modelName") or point.get("modelId") or NO_VALUE)


def _client_label(point: Body) -> str:
    if point.get("other"):
        return "(other)"
    return str(point.get("clientName") or point.get("clientId") or "(no client)")


def _attributed_label(key: str) -> Callable[[Body], str]:
    def label(point: Body) -> str:
        return str(point.get(key) or NO_VALUE)
    return label


def time_table(name: str, body: Body, label: Callable[[Body], str], value_key: str,
               unit: str) -> Table:
    """Periods as rows, groups as columns (largest first, `(other)` last), exact values."""
    totals: dict[str, Decimal] = {}
    periods: dict[str, dict[str, str]] = {}
    for point in body["series"]:
        group = label(point)
        value = str(point[value_key])
        totals[group] = totals.get(group, Decimal(0)) + Decimal(value)
        periods.setdefault(point["bucketStart"], {})[group] = value
    groups = sorted(totals, key=lambda g: (g == "(other)", -totals[g], g))
    rows = tuple(
        Row(_period_label(start, body["granularity"]),
            tuple(usd_cell(values.get(g, "0")) if unit == "usd-cents"
                  else count_cell(int(values.get(g, "0"))) for g in groups),
            at=datetime.fromisoformat(start))
        for start, values in sorted(periods.items(), key=lambda kv: datetime.fromisoformat(kv[0]))
    )
    return Table(name, ("Period", *groups), rows, unit)


def group_table(name: str, title: str, body: Body, label: Callable[[Body], str]) -> Table:
    """One row per group over the whole window: reported cost, catalog cost, invocations."""
    groups: dict[str, list[Body]] = {}
    for point in body["series"]:
        groups.setdefault(label(point), []).append(point)

    def total(points: Sequence[Body], key: str) -> str:
        return sum_exact([str(p[key]) for p in points])

    reported = {g: total(points, "costEstimateCentsExact") for g, points in groups.items()}
    ranked = sorted(groups, key=lambda g: (g == "(other)", -Decimal(reported[g]), g))
    rows = tuple(
        Row(g, (usd_cell(reported[g]),
                usd_cell(total(groups[g], "catalogCostCentsExact")),
                count_cell(sum(int(p["invocations"]) for p in groups[g]))))
        for g in ranked
    )
    return Table(name, (title, "Reported cost", "Catalog cost", "Invocations"), rows,
                 "usd-cents")


def kpis(totals: Body) -> list[tuple[str, Cell]]:
    """The overview's headline figures, exactly the API's totals."""
    return [
        ("Reported cost", usd_cell(totals["costEstimateCentsExact"])),
        ("Catalog cost", usd_cell(totals["catalogCostCentsExact"])),
        ("Invocations", count_cell(totals["invocations"])),
        ("Input tokens", count_cell(totals["inputTokens"])),
        ("Output tokens", count_cell(totals["outputTokens"])),
        ("Unpriced invocations", count_cell(totals["unpricedInvocations"])),
    ]


def month_forecast(api: DashboardApi, org_id: uuid.UUID, window: Window,
                   spent: str) -> Cell | None:
    """This month's projected reported cost: the budgets' `projection` formula (the value so
    far plus a 7-day run rate for the time left) over the 168 hours before now (the budgets
    read the 7 whole UTC days before today instead); None unless the window is this month."""
    if window.range != "month":
        return None
    now = api.now()
    trailing = api.http.usage(AnalyticsQuery(org_id, now - FORECAST_WINDOW, now, Grain.MONTH,
                                             window.tz, group_by=GroupBy.NONE))
    units = projection(Cents.parse(spent).units, trailing.totals.cost.units, now,
                       window.month_end)
    return usd_cell(Cents(units).exact_str())


def top_names(attribution_keys: Iterable[str]) -> list[str]:
    """The overview's "who spent it" tables: clients, actors, then each attribution key."""
    return ["clients", "actors", *(f"tag-{key}" for key in attribution_keys)]


def top_table(api: DashboardApi, org_id: uuid.UUID, window: Window, name: str) -> Table:
    """One "who spent it" table by name (see `top_names`): the 5 largest and `(other)`."""
    http = api.http
    if name == "clients":
        report = http.usage(_query(org_id, window, Grain.MONTH, GroupBy.CLIENT, top=TOP_GROUPS))
        return group_table(name, "Client", usage_body(report, http.names(org_id)),
                           _client_label)
    if name == "actors":
        report = http.usage(_query(org_id, window, Grain.MONTH, GroupBy.ACTOR, top=TOP_GROUPS))
        return group_table(name, "Actor", usage_body(report), _attributed_label("actorId"))
    key = name.removeprefix("tag-")
    report = http.usage(_query(org_id, window, Grain.MONTH, GroupBy.TAG, tag=key,
                               top=TOP_GROUPS))
    return group_table(name, f"Tag {key}", usage_body(report), _attributed_label("tagValue"))


def spend_table(body: Body) -> Table:
    """Reported cost per period by model, from the overview's usage body."""
    return time_table("spend-by-model", body, _model_label, "costEstimateCentsExact",
                      "usd-cents")


def overview(api: DashboardApi, org_id: uuid.UUID, window: Window,
             attribution_keys: Iterable[str]) -> Body:
    """Spend this window, budgets, spend by model over time, top clients / actors / tags."""
    http = api.http
    body = usage_body(http.usage(usage_query(org_id, window)), http.names(org_id))
    headline = kpis(body["totals"])
    forecast = month_forecast(api, org_id, window, body["totals"]["costEstimateCentsExact"])
    if forecast is not None:
        headline.insert(1, ("Forecast for the month", forecast))
    return {
        "usage": body, "kpis": headline, "spend": spend_table(body),
        "tops": [top_table(api, org_id, window, name) for name in top_names(attribution_keys)],
        "budgets": [budget_view_body(v) for v in http.list_budgets(org_id)],
        "freshness": body["freshness"],
    }


def reliability(api: DashboardApi, org_id: uuid.UUID, window: Window) -> Body:
    """Error rate per class and latency percentiles over time, top error codes."""
    body = reliability_body(api.http.reliability(reliability_query(org_id, window)), "p95")
    grain = body["granularity"]
    rates = tuple(
        Row(_period_label(p["bucketStart"], grain),
            (ratio_cell(p["errorRate"]), ratio_cell(p["rates"]["error"]),
             ratio_cell(p["rates"]["timeout"]), ratio_cell(p["rates"]["throttled"])),
            at=datetime.fromisoformat(p["bucketStart"]))
        for p in body["series"]
    )
    latency = tuple(
        Row(_period_label(p["bucketStart"], grain),
            tuple(ms_cell(p["latencyMs"][q]) for q in ("p50", "p95", "p99")),
            at=datetime.fromisoformat(p["bucketStart"]))
        for p in body["series"]
    )
    totals = body["totals"]
    codes = tuple(Row(c["code"], (count_cell(c["count"]),)) for c in totals["topErrorCodes"])
    return {
        "reliability": body, "freshness": body["freshness"],
        "kpis": [("Invocations", count_cell(totals["invocations"])),
                 ("Failure rate", ratio_cell(totals["errorRate"])),
                 ("Errors", count_cell(totals["errors"])),
                 ("Timeouts", count_cell(totals["timeouts"])),
                 ("Throttled", count_cell(totals["throttled"])),
                 *((f"Latency {q}", ms_cell(totals["latencyMs"][q]))
                   for q in ("p50", "p95", "p99"))],
        "rates": Table("error-rates", ("Period", "All failures", "Errors", "Timeouts",
                                       "Throttled"), rates, "percent"),
        "latency": Table("latency", ("Period", "p50", "p95", "p99"), latency, "ms"),
        "codes": Table("error-codes", ("Error code", "Count"), codes, "count"),
    }


def _change(current: str, previous: str) -> Cell:
    now, before = Decimal(current), Decimal(previous)
    if not before:
        return Cell(None, "new" if now else DASH)
    ratio = (now - before) / before
    return Cell(format(ratio, "f"), f"{ratio * 100:+.1f} %")


def fleet(fleet_rows: Sequence[FleetRow], freshness: str,
          link: Callable[[uuid.UUID], str]) -> Table:
    """Every active org: spend, change against the previous window, failure rate, freshness
    (the pipeline's status, which every org's freshness report carries)."""
    rows = []
    for r in fleet_rows:
        now, before = r.current, r.previous
        rate = round(now.failures / now.invocations, 6) if now.invocations else 0.0
        rows.append(Row(str(r.org_id), (
            usd_cell(now.cost.exact_str()), usd_cell(before.cost.exact_str()),
            _change(now.cost.exact_str(), before.cost.exact_str()),
            count_cell(now.invocations), ratio_cell(rate),
            Cell(freshness or None, freshness or DASH),
        ), href=link(r.org_id)))
    rows.sort(key=lambda row: -Decimal(row.cells[0].exact or "0"))
    return Table("fleet", ("Org", "Spend", "Previous", "Change", "Invocations",
                           "Failure rate", "Freshness"), tuple(rows), "usd-cents")
