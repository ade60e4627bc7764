"""Every metric named by the alert rules and the Grafana dashboard exists in a live /metrics."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator

import pytest

from analytics_app.observability.status_server import serve_status
from analytics_app.stream.status import ConsumerStatus, StreamMetrics
from tests.ops.conftest import ROOT, Gunicorn

ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "analytics-dashboard.json"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
PROMQL_WORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and",
    "or", "unless", "inf", "nan",
})
_IDENTIFIER = re.compile(r"(?<![\w:.])([a-zA-Z_:][\w:]*)(?![\w:]|\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric-looking identifiers of a PromQL expression (labels, functions, keywords and
    durations removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    return {name for name in _IDENTIFIER.findall(text) if name.lower() not in PROMQL_WORDS}


def alert_expressions(text: str) -> tuple[list[str], set[str]]:
    """The `expr:` values of a rules file (block scalars included) and its recorded names."""
    expressions: list[str] = []
    recorded = set(re.findall(r"^\s*-?\s*record:\s*(\S+)", text, re.MULTILINE))
    lines = text.splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^(\s*)expr:\s*(.*)$", line)
        if not match:
            continue
        indent, value = len(match[1]), match[2].strip()
        if value not in ("|", ">", "|-", ">-"):
            expressions.append(value)
            continue
        block = []
        for following in lines[i + 1:]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            block.append(following)
        expressions.append("\n".join(block))
    return expressions, recorded


def dashboard_expressions(document: object) -> Iterator[str]:
    """Every `expr` string anywhere in the dashboard JSON."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from dashboard_expressions(value)
    elif isinstance(document, list):
        for item in document:
            yield from dashboard_expressions(item)


def exposed_names(text: str) -> set[str]:
    """Metric names declared (# TYPE) or sampled in an exposition text."""
    names = set(re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE))
    names |= set(re.findall(r"^([a-zA-Z_:][\w:]*)[{ ]", text, re.MULTILINE))
    return names


def is_exposed(name: str, exposed: set[str]) -> bool:
    """Whether a name (or, for _bucket/_sum/_count, its histogram base) is exposed."""
    if name in exposed:
        return True
    return any(name.endswith(s) and name.removesuffix(s) in exposed for s in HISTOGRAM_SUFFIXES)


@pytest.fixture(scope="module")
def live_names(gunicorn: Gunicorn) -> set[str]:
    """Names in the gunicorn API's /metrics plus the stream consumer's status /metrics."""
    status, body = gunicorn.get("/metrics")
    assert status == 200
    metrics = StreamMetrics()
    server = serve_status("127.0.0.1", 0, render=metrics.render_page,
                          readiness=ConsumerStatus().readiness)
    try:
        port = server.server_address[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            consumer = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    return exposed_names(body.decode()) | exposed_names(consumer)


def test_the_name_extractor_keeps_metrics_and_drops_promql_syntax() -> None:
    """Functions, labels, by-clauses, durations and offsets are not taken for metric names."""
    expr = ('histogram_quantile(0.95, sum by (le) (rate(x_seconds_bucket{route!="/m"}[5m]))) '
            '> 1 and y_total offset 1d < 0.8 * z:rate5m')
    assert metric_names(expr) == {"x_seconds_bucket", "y_total", "z:rate5m"}


def test_every_alert_rule_metric_exists_in_live_metrics(live_names: set[str]) -> None:
    """Each metric used by deploy/prometheus/alerts.yml is emitted (recording rules aside)."""
    expressions, recorded = alert_expressions(ALERTS.read_text())
    assert len(expressions) >= 8
    used = set().union(*(metric_names(e) for e in expressions)) - recorded
    assert used
    assert sorted(n for n in used if not is_exposed(n, live_names)) == []


def test_every_dashboard_metric_exists_in_live_metrics(live_names: set[str]) -> None:
    """Each metric queried by the Grafana dashboard is emitted."""
    expressions = list(dashboard_expressions(json.loads(DASHBOARD.read_text())))
    assert expressions
    used = set().union(*(metric_names(e) for e in expressions))
    assert sorted(n for n in used if not is_exposed(n, live_names)) == []


def test_the_alert_rules_cover_the_required_conditions() -> None:
    """Freshness, dedupe, export failures, throughput, 5xx and latency each have a rule."""
    text = ALERTS.read_text()
    for alert in ("FreshnessLagHigh", "DedupeConflictRateHigh", "ExportFailedTwiceInARow",
                  "IngestThroughputBelowBaseline", "Http5xxRateHigh", "HttpLatencyP95High"):
        assert f"alert: Analytics{alert}" in text
