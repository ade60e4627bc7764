"""Reconciliation (SPEC §7): export CSV rows, manifest, usage/reliability API and raw events agree.

For random events (several models and clients, every status, fractional cents, times spread
over days around DST changes), ingested with `ingest_batch`, and a random 15-minute-aligned
window, zone and model subset: the usage API, the reliability API, the usage export (hourly,
daily, monthly) summed row by row, its manifest, the `events` export and the raw event sums
are EXACTLY equal — counts, every status, tokens and cost to 0.0001 cent. Run over every
storage (memory, SQLite, PostgreSQL) and both object stores (local directory, S3 on moto).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from urllib.parse import urlencode

import attrs
import falcon.testing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_adapters.memory import ManualClock
from analytics_adapters.system import RandomIds
from analytics_app.bootstrap.ports import Ports
from analytics_core.csvrows import EVENT_COLUMNS, USAGE_COLUMNS, neutralise
from analytics_core.ports import ObjectStore, UnitOfWorkFactory
from analytics_core.usecases.export_runner import ExportRunner
from analytics_core.usecases.ingest import EventOutcome, RawMessage, ingest_batch
from tests.integration.export_support import (
    PREFIX,
    client_of,
    csv_rows,
    download,
    gateway_services,
    instant,
    object_store_of,
    org_admin,
    read_object,
    run_all,
    runner_of,
    uow_factory_of,
    utc_z,
)

NOW = datetime(2024, 11, 25, tzinfo=UTC)
# Windows start within a day or two of a DST change: New York springs forward 2024-03-10 and
# falls back 2024-11-03; Lord Howe (a 30-minute shift) falls back 2024-04-07. Kathmandu is
# +05:45 all year.
ANCHORS = (datetime(2024, 3, 9, tzinfo=UTC), datetime(2024, 11, 2, tzinfo=UTC),
           datetime(2024, 4, 6, tzinfo=UTC))
ZONES = ("UTC", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe")
QUARTER = timedelta(minutes=15)
DAY = 86_400
STATUSES = ("success", "error", "timeout", "throttled")
CLIENTS = (None, "app-1", '=HYPERLINK("http://x")', "-svc", "@ops")
METADATA = ({}, {"team": "search"}, {"feature": "=cmd()", "team": "ads", "é": "ü"})
MODELS = 4
GRAINS = (("hourly", "hour"), ("daily", "day"), ("monthly", "month"))
UNITS = Decimal("0.0001")


@attrs.frozen
class Spec:
    """One drawn event; `second` counts from the window start."""

    model: int
    client: str | None
    status: str
    latency: int
    input_tokens: int
    output_tokens: int
    cost: Decimal
    second: int  # relative to the window start
    other_org: bool
    metadata: int = 0  # index into METADATA


@attrs.frozen
class Scenario:
    """Events, replays, rejects and the window/zone/models to reconcile."""

    specs: tuple[Spec, ...]
    replays: tuple[int, ...]
    rejects: int
    tz: str
    start: datetime
    end: datetime
    models: frozenset[int]


def specs(length: int) -> st.SearchStrategy[Spec]:
    """Events mostly inside a window of `length` seconds, some a day around it, some exactly
    on its edges."""
    seconds = st.one_of(
        st.integers(0, length - 1), st.integers(-DAY, length + DAY),
        st.sampled_from([-1, 0, length - 1, length]),
    )
    return st.builds(
        Spec, model=st.integers(0, MODELS - 1), client=st.sampled_from(CLIENTS),
        status=st.sampled_from(STATUSES), latency=st.integers(0, 120_000),
        input_tokens=st.integers(0, 200_000), output_tokens=st.integers(0, 50_000),
        cost=st.decimals(min_value=0, max_value=Decimal("5000"), places=6), second=seconds,
        other_org=st.integers(0, 5).map(lambda n: n == 0),
        metadata=st.integers(0, len(METADATA) - 1),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A random scenario; the window is 15-minute aligned and at most 7 days long."""
    start = draw(st.sampled_from(ANCHORS)) + QUARTER * draw(st.integers(-96, 2 * 96))
    end = start + QUARTER * draw(st.integers(1, 7 * 96))
    events = tuple(draw(st.lists(specs(int((end - start).total_seconds())), min_size=1,
                                 max_size=60)))
    replays = tuple(draw(st.lists(st.integers(0, len(events) - 1), max_size=4)))
    return Scenario(
        events, replays, draw(st.integers(0, 2)), draw(st.sampled_from(ZONES)),
        start, end, frozenset(draw(st.sets(st.integers(0, MODELS - 1), max_size=MODELS - 1))),
    )


@attrs.frozen
class Totals:
    """Exact sums: counts, statuses, tokens, cost in 0.0001 cent units."""

    invocations: int = 0
    success: int = 0
    errors: int = 0
    timeouts: int = 0
    throttled: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_units: int = 0


def units(text: str | Decimal) -> int:
    """0.0001-cent units of a cents amount, rounded half-even (as SPEC §2 stores it)."""
    return int(Decimal(text).quantize(UNITS, rounding=ROUND_HALF_EVEN) * 10_000)


def totals_of(rows: Sequence[tuple[str, int, int, int, str]]) -> Totals:
    """Sum (status, count, input, output, cost) tuples."""
    by_status = {s: sum(n for st_, n, *_ in rows if st_ == s) for s in STATUSES}
    return Totals(
        sum(n for _, n, *_ in rows), by_status["success"], by_status["error"],
        by_status["timeout"], by_status["throttled"], sum(r[2] for r in rows),
        sum(r[3] for r in rows), sum(units(r[4]) for r in rows),
    )


@attrs.frozen
class World:
    """One storage and one object store, shared by every example of a parameter pair."""

    services: Ports
    client: falcon.testing.TestClient
    runner: ExportRunner


@pytest.fixture(scope="module", params=[
    "memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage(request: pytest.FixtureRequest) -> Iterator[UnitOfWorkFactory]:
    """Each storage backend (one fresh database per module)."""
    with uow_factory_of(request.param) as factory:
        yield factory


@pytest.fixture(scope="module", params=["localfs", pytest.param("s3", marks=pytest.mark.s3)])
def objects(request: pytest.FixtureRequest) -> Iterator[ObjectStore]:
    """Each object store backend."""
    with object_store_of(request.param) as store:
        yield store


@pytest.fixture(scope="module")
def world(storage: UnitOfWorkFactory, objects: ObjectStore) -> World:
    """The HTTP app and an export runner over the storage and object store."""
    services = gateway_services(storage, objects, ManualClock(NOW))
    return World(services, client_of(services), runner_of(services))


def payload(spec: Spec, org: uuid.UUID, other: uuid.UUID, models: Sequence[uuid.UUID],
            start: datetime) -> dict[str, Any]:
    """The raw event of a spec (JSON numbers as Decimal, as the edges decode them)."""
    body: dict[str, Any] = {
        "eventId": str(uuid.uuid4()), "orgId": str(other if spec.other_org else org),
        "modelId": str(models[spec.model]),
        "occurredAt": utc_z(start + timedelta(seconds=spec.second)), "status": spec.status,
        "latencyMs": spec.latency, "inputTokens": spec.input_tokens,
        "outputTokens": spec.output_tokens, "costEstimateCents": spec.cost,
        "errorCode": None if spec.status == "success" else "E_UPSTREAM",
    }
    if spec.client is not None:
        body["clientId"] = spec.client
    if METADATA[spec.metadata]:
        body["metadata"] = METADATA[spec.metadata]
    return body


def ingest(world: World, scenario: Scenario, org: uuid.UUID,
           models: Sequence[uuid.UUID]) -> list[dict[str, Any]]:
    """Ingest the scenario in two batches with replays (one conflicting) and rejects; return
    the payloads that were accepted."""
    other = uuid.uuid4()
    bodies = [payload(s, org, other, models, scenario.start) for s in scenario.specs]
    replays = [dict(bodies[i]) for i in scenario.replays]
    for i, replay in enumerate(replays):
        if i % 2:
            replay["costEstimateCents"] = Decimal("1.5") + replay["costEstimateCents"]
    rejects = [{**bodies[0], "eventId": str(uuid.uuid4()), "inputTokens": -1}] * scenario.rejects
    half = len(bodies) // 2
    s = world.services
    accepted: list[dict[str, Any]] = []
    for batch in (bodies[:half], bodies[half:] + replays + rejects):
        result = ingest_batch([RawMessage(b) for b in batch], source="test",
                              uow_factory=s.uow_factory, clock=s.clock, ids=RandomIds())
        accepted += [b for b, r in zip(batch, result.results, strict=True)
                     if r.status is EventOutcome.ACCEPTED]
    assert len(accepted) == len(bodies)
    return accepted


def expected(scenario: Scenario, org: uuid.UUID, models: Sequence[uuid.UUID],
             accepted: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The accepted events of the org inside the window and the model subset."""
    wanted = {str(models[i]) for i in scenario.models} or {str(m) for m in models}
    return [
        b for b in accepted
        if b["orgId"] == str(org) and b["modelId"] in wanted
        and scenario.start <= instant(b["occurredAt"]) < scenario.end
    ]


def raw_totals(events: Sequence[dict[str, Any]]) -> Totals:
    """Exact sums over raw events."""
    return totals_of([(e["status"], 1, e["inputTokens"], e["outputTokens"],
                       e["costEstimateCents"]) for e in events])


def api(world: World, org: uuid.UUID, path: str, scenario: Scenario, grain: str,
        models: Sequence[uuid.UUID]) -> dict[str, Any]:
    """GET usage or reliability over HTTP for the scenario's window, zone and models."""
    query = [("start", utc_z(scenario.start)), ("end", utc_z(scenario.end)),
             ("granularity", grain), ("tz", scenario.tz)]
    query += [("modelId", str(models[i])) for i in sorted(scenario.models)]
    result = world.client.simulate_get(f"{PREFIX}/orgs/{org}/{path}",
                                       query_string=urlencode(query), headers=org_admin(org))
    assert result.status_code == 200, result.text
    body: dict[str, Any] = result.json
    return body


def api_totals(usage: dict[str, Any], reliability: dict[str, Any]) -> Totals:
    """Totals as the two HTTP views report them."""
    u, r = usage["totals"], reliability["totals"]
    assert u["invocations"] == r["invocations"]
    return Totals(u["invocations"], r["success"], r["errors"], r["timeouts"], r["throttled"],
                  u["inputTokens"], u["outputTokens"], units(u["costEstimateCentsExact"]))


def export(world: World, org: uuid.UUID, scenario: Scenario, models: Sequence[uuid.UUID],
           **options: str) -> tuple[dict[str, Any], bytes, dict[str, Any]]:
    """Create an export over HTTP, run it, and return (job, CSV bytes, manifest)."""
    headers = org_admin(org)
    body = {"timeRange": {"start": utc_z(scenario.start), "end": utc_z(scenario.end)},
            "tz": scenario.tz, "models": [str(models[i]) for i in sorted(scenario.models)],
            **options}
    created = world.client.simulate_post(f"{PREFIX}/orgs/{org}/exports", json=body,
                                         headers=headers)
    assert created.status_code == 202, created.text
    run_all(world.runner)
    url = f"{PREFIX}/orgs/{org}/exports/{created.json['jobId']}"
    job: dict[str, Any] = world.client.simulate_get(url, headers=headers).json
    assert job["status"] == "succeeded", job
    csv_bytes = download(world.client, job["downloadUrl"], headers)
    key = f"analytics/exports/{org}/{job['jobId']}.manifest.json"
    manifest: dict[str, Any] = json.loads(read_object(world.services.objects, key))
    assert manifest["checksum"] == job["checksum"] == hashlib.sha256(csv_bytes).hexdigest()
    assert manifest["rowCount"] == job["rowCount"]
    return job, csv_bytes, manifest


def manifest_totals(manifest: dict[str, Any]) -> Totals:
    """Totals as the manifest states them."""
    t = manifest["totals"]
    return Totals(t["invocations"], t["success"], t["errors"], t["timeouts"], t["throttled"],
                  t["inputTokens"], t["outputTokens"], units(t["costEstimateCents"]))


def usage_row_totals(rows: Sequence[dict[str, str]]) -> Totals:
    """Sum the rows of a usage CSV."""
    def col(name: str) -> int:
        return sum(int(r[name]) for r in rows)

    return Totals(col("invocations"), col("success"), col("errors"), col("timeouts"),
                  col("throttled"), col("input_tokens"), col("output_tokens"),
                  sum(units(r["cost_estimate_cents"]) for r in rows))


def check_rows_match_series(rows: Sequence[dict[str, str]], usage: dict[str, Any],
                            reliability: dict[str, Any], scenario: Scenario) -> None:
    """Row i of the CSV is point i of both API series, with its period clipped to the window."""
    assert len(rows) == len(usage["series"]) == len(reliability["series"])
    for row, u, r in zip(rows, usage["series"], reliability["series"], strict=True):
        assert (row["model_id"], int(row["invocations"]), int(row["input_tokens"]),
                int(row["output_tokens"]), row["cost_estimate_cents"]) == (
            u["modelId"], u["invocations"], u["inputTokens"], u["outputTokens"],
            u["costEstimateCentsExact"])
        assert [int(row[c]) for c in ("success", "errors", "timeouts", "throttled")] == [
            r["success"], r["errors"], r["timeouts"], r["throttled"]]
        assert instant(row["bucket_start"]) == max(instant(u["bucketStart"]), scenario.start)
        assert instant(row["bucket_end"]) == min(instant(u["bucketEnd"]), scenario.end)


def check_usage_exports(world: World, org: uuid.UUID, scenario: Scenario,
                        models: Sequence[uuid.UUID], raw: Totals) -> None:
    """For each grain: API totals == CSV row sums == manifest totals == raw sums."""
    for granularity, grain in GRAINS:
        usage = api(world, org, "usage", scenario, grain, models)
        reliability = api(world, org, "reliability", scenario, grain, models)
        assert api_totals(usage, reliability) == raw
        _, body, manifest = export(world, org, scenario, models, granularity=granularity)
        rows = csv_rows(body)
        assert body.startswith(",".join(USAGE_COLUMNS).encode() + b"\r\n")
        assert {(r["timezone"], r["org_id"]) for r in rows} <= {(scenario.tz, str(org))}
        assert usage_row_totals(rows) == manifest_totals(manifest) == raw
        assert manifest["rowCount"] == len(rows)
        check_rows_match_series(rows, usage, reliability, scenario)


def check_events_export(world: World, org: uuid.UUID, scenario: Scenario,
                        models: Sequence[uuid.UUID], events: Sequence[dict[str, Any]]) -> None:
    """The events export has one row per accepted event in the window, with the same sums."""
    _, body, manifest = export(world, org, scenario, models, kind="events")
    rows = csv_rows(body)
    assert body.startswith(",".join(EVENT_COLUMNS).encode() + b"\r\n")
    assert len(rows) == manifest["rowCount"] == len(events)
    assert sorted(r["event_id"] for r in rows) == sorted(e["eventId"] for e in events)
    summed = totals_of([(r["status"], 1, int(r["input_tokens"]), int(r["output_tokens"]),
                         r["cost_estimate_cents"]) for r in rows])
    assert summed == manifest_totals(manifest) == raw_totals(events)
    clients = {e["eventId"]: e.get("clientId") for e in events}
    metadata = {e["eventId"]: e.get("metadata", {}) for e in events}
    for r in rows:
        assert r["client_id"] == neutralise(clients[r["event_id"]] or "")
        # The metadata column: the event's metadata as compact JSON with sorted keys, empty
        # when it has none (never a formula: JSON objects start with `{`).
        assert (json.loads(r["metadata"]) if r["metadata"] else {}) == metadata[r["event_id"]]


# Each example ingests, queries six times and runs four exports: a fifth of the profile's
# examples per backend pair keeps the module well under a minute.
@settings(max_examples=max(10, settings().max_examples // 4))
@given(scenario=scenarios())
def test_export_totals_equal_the_usage_api_and_the_raw_events_exactly(
    world: World, scenario: Scenario,
) -> None:
    """Usage exports (every grain) and events exports equal both APIs and the raw events."""
    org = uuid.uuid4()
    models = [uuid.uuid4() for _ in range(MODELS)]
    accepted = ingest(world, scenario, org, models)
    events = expected(scenario, org, models, accepted)
    raw = raw_totals(events)
    check_usage_exports(world, org, scenario, models, raw)
    check_events_export(world, org, scenario, models, events)
