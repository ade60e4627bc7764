"""`analytics usage` and `analytics reliability`: the API's reports on a terminal (a table) or
as the API's JSON (`--json`), read straight from the configured database."""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.event_parsing import parse_time

if TYPE_CHECKING:
    from analytics_app.config import Settings
    from analytics_core.registry import Names
    from analytics_core.rollups import RollupStats
    from analytics_core.usecases.queries import AnalyticsQuery, AnalyticsReport

GRANULARITIES = ("hour", "day", "month")
DEFAULT_DAYS = 7


def register_query_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `usage` and `reliability` to the `analytics` parser."""
    for name, help_text in (
        ("usage", "usage and spend of one org: a table, or the API's JSON with --json"),
        ("reliability", "errors and latency percentiles of one org: a table, or --json"),
    ):
        p = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:]
                           + f". Default window: the last {DEFAULT_DAYS} days.")
        p.add_argument("--org", required=True, help="org id (UUID)")
        p.add_argument("--start", help=f"RFC 3339 start (default: {DEFAULT_DAYS} days ago)")
        p.add_argument("--end", help="RFC 3339 end, exclusive (default: now)")
        p.add_argument("--granularity", choices=GRANULARITIES, default="day")
        p.add_argument("--tz", default="UTC", help="IANA time zone (default UTC)")
        p.add_argument("--model", action="append", default=[], dest="models",
                       help="only this model id (repeatable)")
        p.add_argument("--client", action="append", default=[], dest="clients",
                       help="only this client id (repeatable)")
        p.add_argument("--group-by", default="model", dest="group_by", metavar="GROUP",
                       help="model (default), client, actor, none, or tag:KEY for an "
                            "attribution key (ANALYTICS_ATTRIBUTION_KEYS)")
        p.add_argument("--top", type=int, help="the N largest groups, the rest as (other)")
        if name == "reliability":
            p.add_argument("--percentile", choices=("p50", "p95", "p99"), default="p95")
        p.add_argument("--json", action="store_true", help="print the API's JSON document")
        p.set_defaults(handler=_lazy(name))


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from analytics_app.config import load_settings  # noqa: PLC0415  imported on use

        return report_command(args, load_settings(), kind=name)

    return run


def _query(args: argparse.Namespace) -> AnalyticsQuery:
    from analytics_core.timegrid import Grain  # noqa: PLC0415
    from analytics_core.usecases.queries import (  # noqa: PLC0415
        AnalyticsQuery,
        GroupBy,
        parse_group_by,
    )

    errors: list[FieldError] = []
    now = datetime.now(UTC)
    times = {}
    for field, default in (("start", now - timedelta(days=DEFAULT_DAYS)), ("end", now)):
        text = getattr(args, field)
        try:
            times[field] = default if text is None else parse_time(text)
        except ValueError as e:
            errors.append(FieldError(f"--{field}", str(e)))
    org = _uuids([args.org], "--org", errors)
    models = _uuids(args.models, "--model", errors)
    group_by, tag = GroupBy.MODEL, None
    try:
        group_by, tag = parse_group_by(args.group_by)
    except ValueError as e:
        errors.append(FieldError("--group-by", str(e)))
    if errors:
        raise ValidationFailed(errors, "invalid query")
    return AnalyticsQuery(org[0], times["start"], times["end"], Grain(args.granularity),
                          args.tz, tuple(models), tuple(args.clients), group_by, tag, args.top)


def _uuids(values: Sequence[str], field: str, errors: list[FieldError]) -> list[uuid.UUID]:
    found = []
    for value in values:
        try:
            found.append(uuid.UUID(value))
        except ValueError:
            errors.append(FieldError(field, f"must be a UUID, got {value!r}"))
    return found


def report_command(args: argparse.Namespace, settings: Settings, *, kind: str) -> int:
    """Print one report as a table (or JSON)."""
    from analytics_app.bootstrap.application import Application  # noqa: PLC0415
    from analytics_app.http import render  # noqa: PLC0415  the API's documents, as-is

    query = _query(args)
    with Application(settings) as app:
        app.preflight()
        uc = app.use_cases
        report = uc.usage(query) if kind == "usage" else uc.reliability(query)
        names = uc.names(query.org_id)
    if args.json:
        body = (render.usage_body(report, names) if kind == "usage"
                else render.reliability_body(report, args.percentile, names))
        print(json.dumps(body, indent=2, ensure_ascii=False))
        return 0
    rows = (_usage_rows(report, names) if kind == "usage"
            else _reliability_rows(report, names, args.percentile))
    for line in _table(rows):
        print(line)
    print(f"{len(report.series)} points; freshness {report.freshness.status.value}, complete "
          f"through {report.freshness.complete_through.isoformat()}", file=sys.stderr)
    return 0


def _label(report: AnalyticsReport, group: str | None, names: Names) -> str:
    if group is None:
        return "all"
    if group == "(other)":
        return group
    kind = report.query.group_by.value
    if kind == "model":
        return names.model(uuid.UUID(group)) or group
    if kind == "client":
        return (names.client(group) or group) if group else "(no client)"
    return group or f"(no {'actor' if kind == 'actor' else report.query.tag})"


def _period(report: AnalyticsReport, start: datetime) -> str:
    from analytics_core.timegrid import isoformat, zone  # noqa: PLC0415

    return isoformat(start, zone(report.query.tz))


def _usage_rows(report: AnalyticsReport, names: Names) -> list[list[str]]:
    rows = [["period start", "group", "invocations", "input tokens", "cached input",
             "output tokens", "reasoning", "cost (cents)"]]
    for p in report.series:
        rows.append([_period(report, p.bucket_start), _label(report, p.group, names),
                     *_usage_cells(p.stats)])
    rows.append(["total", "", *_usage_cells(report.totals)])
    return rows


def _usage_cells(s: RollupStats) -> list[str]:
    return [f"{s.invocations:,}", f"{s.input_tokens:,}", f"{s.cache_read_tokens:,}",
            f"{s.output_tokens:,}", f"{s.reasoning_tokens:,}", s.cost.exact_str()]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _reliability_rows(report: AnalyticsReport, names: Names, percentile: str) -> list[list[str]]:
    quantile = {"p50": 0.5, "p95": 0.95, "p99": 0.99}[percentile]
    rows = [["period start", "group", "invocations", "errors", "timeouts", "throttled",
             "error rate", f"{percentile} ms"]]
    for label, s in [(_period(report, p.bucket_start) + "\t" + _label(report, p.group, names),
                      p.stats) for p in report.series] + [("total\t", report.totals)]:
        period, group = label.split("\t")
        rate = s.failures / s.invocations if s.invocations else 0.0
        rows.append([period, group, f"{s.invocations:,}", f"{s.errors:,}", f"{s.timeouts:,}",
                     f"{s.throttled:,}", f"{rate:.2%}", _ms(s.percentile(quantile))])
    return rows


def _table(rows: list[list[str]]) -> list[str]:
    """Left-aligned text columns, right-aligned numbers, two spaces apart."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for r in rows:
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                strict=True))]
        lines.append("  ".join(cells).rstrip())
    return lines
