"""The demo generator: realistic, deterministic, and carrying the planted irregularities."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from analytics_app.bootstrap.application import Application
from analytics_app.cli.demo_data import CONFLICTS, DemoData, generate_demo, ingest_demo
from analytics_app.config import Settings
from analytics_core.event_parsing import parse_event, parse_time
from analytics_core.timegrid import zone

NOW = datetime(2025, 3, 12, 10, 7, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo() -> DemoData:
    """One demo run at a fixed instant."""
    return generate_demo(now=NOW, seed=11, events=8000)


def _times(demo: DemoData) -> list[datetime]:
    return [parse_time(p["occurredAt"]) for p in demo.payloads]


def test_same_seed_and_instant_give_the_same_events():
    """Generation is deterministic for a (seed, now) pair."""
    first = generate_demo(now=NOW, seed=3, events=1500)
    second = generate_demo(now=NOW, seed=3, events=1500)
    assert first.payloads == second.payloads


def test_another_seed_gives_other_events():
    """Another seed changes the data."""
    assert generate_demo(now=NOW, seed=3, events=1500).payloads != generate_demo(
        now=NOW, seed=4, events=1500).payloads


def test_every_event_is_valid(demo: DemoData):
    """Each payload passes the ingestion contract."""
    for payload in demo.payloads:
        parse_event(payload, now=NOW, raw_retention=timedelta(days=400))


def test_covers_several_orgs_and_about_ten_models(demo: DemoData):
    """Several orgs, ten models, several clients."""
    assert len({p["orgId"] for p in demo.payloads}) == 4
    assert len({p["modelId"] for p in demo.payloads}) == 10
    assert len({p["clientId"] for p in demo.payloads}) >= 8


def test_volume_is_close_to_the_request(demo: DemoData):
    """About as many events as asked for (within 10 %)."""
    assert 7200 <= len(demo.payloads) <= 8800


def test_events_span_the_last_fourteen_days(demo: DemoData):
    """Nothing in the future, nothing older than the window."""
    times = _times(demo)
    assert max(times) <= NOW
    assert min(times) >= NOW - timedelta(days=14, minutes=15)


def test_contains_exact_duplicates_and_conflicts(demo: DemoData):
    """Some events are delivered twice; exactly CONFLICTS redeliveries differ in content."""
    by_id: dict[object, list[dict[str, object]]] = {}
    for p in demo.payloads:
        by_id.setdefault(p["eventId"], []).append(p)
    repeated = [copies for copies in by_id.values() if len(copies) > 1]
    assert len(repeated) == demo.duplicates > CONFLICTS
    assert sum(1 for copies in repeated if copies[0] != copies[1]) == CONFLICTS


def test_some_events_arrive_late(demo: DemoData):
    """Late events: arriving after events more than an hour newer than themselves."""
    newest, late = datetime.min.replace(tzinfo=UTC), 0
    seen: set[object] = set()
    for payload, when in zip(demo.payloads, _times(demo), strict=True):
        if payload["eventId"] in seen:
            continue
        seen.add(payload["eventId"])
        if newest - when > timedelta(hours=1):
            late += 1
        newest = max(newest, when)
    assert late >= demo.late // 2 > 0


def test_spike_window_has_errors_and_slow_calls(demo: DemoData):
    """Inside the spike the model fails far more often and is far slower than outside."""
    spike = demo.spike
    inside, outside = [], []
    for p, when in zip(demo.payloads, _times(demo), strict=True):
        if p["orgId"] == str(spike.org_id) and p["modelId"] == str(spike.model_id):
            (inside if spike.start <= when < spike.end else outside).append(p)
    def failure_rate(events: list[dict[str, object]]) -> float:
        return sum(1 for e in events if e["status"] != "success") / len(events)
    def median_latency(events: list[dict[str, object]]) -> int:
        return sorted(int(str(e["latencyMs"])) for e in events)[len(events) // 2]
    assert len(inside) >= 10
    assert failure_rate(inside) > 5 * failure_rate(outside)
    assert median_latency(inside) > 3 * median_latency(outside)


def test_traffic_is_diurnal_in_the_org_zone(demo: DemoData):
    """The first org sends more in its local afternoon than at night."""
    org = demo.orgs[0]
    hours = Counter(
        when.astimezone(zone(org.tz)).hour
        for p, when in zip(demo.payloads, _times(demo), strict=True)
        if p["orgId"] == str(org.org_id)
    )
    afternoon = sum(hours[h] for h in range(12, 17))
    night = sum(hours[h] for h in range(5))
    assert afternoon > 3 * night


def test_ingesting_counts_duplicates_and_conflicts():
    """Through the real ingest use case: every duplicate is counted once, conflicts recorded."""
    application = Application(Settings())
    data = generate_demo(now=datetime.now(UTC), seed=5, events=1500)
    summary = ingest_demo(data.payloads, application.use_cases.ingest_demo, batch_size=400)
    assert summary.rejected == 0
    assert summary.duplicates == data.duplicates
    assert summary.conflicts == CONFLICTS
    assert summary.accepted + summary.duplicates == len(data.payloads)
