"""FOCUS exports (issue 17, SPEC §15) checked by the FinOps focus-validator (FOCUS 1.2): files
from hand-built data (token categories, an org's negotiated price, tags, clients, an unpriced
model, a zone with a half-hour offset), from the demo data and from Hypothesis-generated data
pass it, hold the FOCUS relations it does not check, and bill exactly the usage API's catalog
cost."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics_app.bootstrap.application import Application
from analytics_app.cli.demo_data import ORGS, demo_model_names, demo_price_drafts, generate_demo
from analytics_app.cli.prices import cli_actor
from analytics_app.config import Settings
from analytics_core.exports import ExportGranularity, ExportKind, ExportRequest, object_key
from analytics_core.focus import APPLICABILITY, FOCUS_COLUMNS
from analytics_core.prices import PriceCategory
from analytics_core.timegrid import Grain
from analytics_core.usecases.ingest import RawMessage
from analytics_core.usecases.prices import PriceDraft
from analytics_core.usecases.queries import AnalyticsQuery
from tests.focus_validator import executable, row_problems, validator_failures

GPT, CLAUDE, UNPRICED = uuid.UUID(int=11), uuid.UUID(int=12), uuid.UUID(int=13)
MICROS = 10**6  # micro-dollars per dollar


@pytest.fixture(scope="module", autouse=True)
def validator_installed() -> None:
    """Skip (fail in CI) before building anything when the validator is missing."""
    executable()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Application]:
    """An in-memory service whose attribution key is `team`."""
    application = Application(Settings(export_dir=tmp_path / "exports",
                                       attribution_keys=("team",)))
    yield application
    application.shutdown()


def price(model: uuid.UUID, org: uuid.UUID | None, since: datetime, **usd: str) -> PriceDraft:
    """A version (USD per million tokens) that restates whatever is already ingested."""
    prices = {PriceCategory(k): int(Decimal(v) * MICROS) for k, v in usd.items()}
    return PriceDraft(model, org, since, prices, restate=True)


def run_focus(app: Application, org: uuid.UUID, start: datetime, end: datetime, tz: str,
              granularity: ExportGranularity = ExportGranularity.DAILY,
              ) -> tuple[bytes, dict[str, Any]]:
    """Create and run a FOCUS export; its CSV and manifest."""
    uc = app.use_cases
    request = ExportRequest(org, start, end, granularity, tz, kind=ExportKind.FOCUS)
    job, _ = uc.create_export(request, "test", None)
    assert app.export_worker().run_round() >= 1
    done = uc.get_export(org, job.job_id)
    assert done.status.value == "succeeded", done.error
    body = b"".join(uc.open_export(org, job.job_id))
    key = object_key(org, f"{job.job_id}.manifest.json")
    manifest = json.loads(b"".join(app.ports.objects.open(key)))
    return body, manifest


def check(body: bytes, workdir: Path) -> list[dict[str, str]]:
    """The validator passes, the unchecked rules hold; the rows."""
    path = workdir / "focus.csv"
    path.write_bytes(body)
    assert validator_failures(path, APPLICABILITY, workdir) == []
    assert row_problems(body) == []
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"))))


def billed_units(rows: Sequence[dict[str, str]]) -> int:
    """The rows' BilledCost in 0.0001-cent units (exact)."""
    total = sum((Decimal(r["BilledCost"]) for r in rows), Decimal(0)) * MICROS
    assert total == total.to_integral_value()
    return int(total)


def catalog_units(app: Application, org: uuid.UUID, start: datetime, end: datetime,
                  tz: str) -> int:
    """The usage API's catalog cost for the window, in units."""
    report = app.use_cases.usage(AnalyticsQuery(org, start, end, grain=Grain.DAY, tz=tz))
    return report.totals.catalog_cost.units


def event(org: uuid.UUID, model: uuid.UUID, at: datetime, **fields: Any) -> RawMessage:
    """A successful event with overrides."""
    body: dict[str, Any] = {
        "eventId": str(uuid.uuid4()), "orgId": str(org), "modelId": str(model),
        "occurredAt": at.isoformat(), "status": "success", "latencyMs": 20,
        "inputTokens": 1000, "outputTokens": 300, "costEstimateCents": "1.5"}
    body.update(fields)
    return RawMessage(body)


def test_categories_a_negotiated_price_tags_and_clients_pass_the_validator(
    app: Application, tmp_path: Path,
) -> None:
    """Rows per category, version, client and tags; the org's override is the contracted
    price and the global line the list price; the unpriced model is left out and counted."""
    org = uuid.uuid4()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start, end = now - timedelta(days=3), now
    uc = app.use_cases
    uc.add_prices(cli_actor(), [
        price(GPT, None, start - timedelta(days=30), input="2.5", output="10",
              cacheRead="1.25", reasoning="10"),
        price(CLAUDE, None, start - timedelta(days=30), input="3", output="15"),
        price(CLAUDE, org, start - timedelta(days=30), input="2.4", output="12"),
    ])
    details = {"cacheReadTokens": 400, "reasoningTokens": 100}
    result = uc.ingest_trusted([
        event(org, GPT, start + timedelta(hours=5), tokenDetails=details,
              metadata={"team": "search", "other": "x"}, clientId="app-1"),
        event(org, GPT, start + timedelta(hours=30), inputTokens=7, outputTokens=3),
        event(org, CLAUDE, start + timedelta(hours=6), metadata={"team": "ads"}),
        event(org, UNPRICED, start + timedelta(hours=7)),
        event(uuid.uuid4(), GPT, start + timedelta(hours=5)),  # another org's
    ], source="test")
    assert result.accepted == 5
    body, manifest = run_focus(app, org, start, end, "Asia/Kolkata")
    assert body.splitlines()[0].decode() == ",".join(FOCUS_COLUMNS)
    rows = check(body, tmp_path)
    assert manifest["focus"]["unpricedEvents"] == 1
    assert manifest["focus"]["pricedEvents"] == 3
    assert billed_units(rows) == catalog_units(app, org, start, end, "Asia/Kolkata")
    claude = [r for r in rows if r["x_ModelId"] == str(CLAUDE)]
    assert {(r["x_TokenCategory"], r["ContractedUnitPrice"], r["ListUnitPrice"])
            for r in claude} == {("input", "2.4", "3.0"), ("output", "12.0", "15.0")}
    assert {r["Tags"] for r in claude} == {'{"team":"ads"}'}
    first = [r for r in rows if r["SubAccountId"] == "app-1"]
    assert sorted(r["x_TokenCategory"] for r in first) == ["cacheRead", "input", "output",
                                                           "reasoning"]
    assert {r["Tags"] for r in first} == {'{"team":"search"}'}
    cache = next(r for r in first if r["x_TokenCategory"] == "cacheRead")
    assert (cache["ConsumedQuantity"], cache["PricingQuantity"], cache["ListCost"]) == (
        "400.0", "0.0004", "0.0005")
    assert {r["ChargePeriodStart"][11:] for r in rows} <= {"18:30:00Z",
                                                          start.strftime("%H:%M:%SZ")}
    assert str(UNPRICED) not in body.decode()


def test_the_demo_data_exports_a_valid_focus_file(app: Application, tmp_path: Path) -> None:
    """The demo's first org over the last 7 days, in its own zone."""
    uc = app.use_cases
    uc.add_prices(cli_actor(), demo_price_drafts())
    uc.import_models(demo_model_names())
    now = datetime.now(UTC)
    data = generate_demo(now=now, seed=7, days=7, events=1500)
    uc.ingest_demo([RawMessage(p) for p in data.payloads])
    org = ORGS[0]
    start = (now - timedelta(days=7)).replace(minute=0, second=0, microsecond=0)
    end = now.replace(minute=0, second=0, microsecond=0)
    body, manifest = run_focus(app, org.org_id, start, end, org.tz)
    rows = check(body, tmp_path)
    assert len(rows) > 20
    assert manifest["rowCount"] == len(rows)
    assert billed_units(rows) == catalog_units(app, org.org_id, start, end, org.tz)


CATEGORY_FIELDS = ("cacheReadTokens", "cacheWriteTokens", "audioInputTokens")


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[dict[str, Any]], str, ExportGranularity, bool]:
    """Events (offsets in minutes, models, tokens, categories, tags, clients), a zone, a
    grain and whether the org has its own price for the first model."""
    specs = draw(st.lists(st.fixed_dictionaries({
        "minute": st.integers(0, 3 * 24 * 60 - 1), "model": st.sampled_from([GPT, CLAUDE]),
        "input": st.integers(0, 5_000_000), "output": st.integers(0, 2_000_000),
        "cache": st.integers(0, 100), "team": st.sampled_from([None, "a", "b"]),
        "client": st.sampled_from([None, "svc-1", "svc-2"]),
    }), min_size=1, max_size=25))
    tz = draw(st.sampled_from(["UTC", "Asia/Kathmandu", "America/New_York"]))
    grain = draw(st.sampled_from([ExportGranularity.HOURLY, ExportGranularity.DAILY]))
    return specs, tz, grain, draw(st.booleans())


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(scenario=scenarios())
def test_generated_data_exports_valid_focus_files(
    scenario: tuple[list[dict[str, Any]], str, ExportGranularity, bool],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Any mix of models, categories, tags, clients, zones, grains and an override."""
    specs, tz, grain, override = scenario
    workdir = tmp_path_factory.mktemp("focus")
    application = Application(Settings(export_dir=workdir / "exports",
                                       attribution_keys=("team",)))
    try:
        org = uuid.uuid4()
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(days=3)
        drafts = [price(GPT, None, start - timedelta(days=1), input="0.15", output="0.6",
                        cacheRead="0.075"),
                  price(CLAUDE, None, start - timedelta(days=1), input="3", output="15")]
        if override:
            drafts.append(price(GPT, org, start - timedelta(days=1), input="0.1", output="0.5"))
        application.use_cases.add_prices(cli_actor(), drafts)
        messages = []
        for s in specs:
            cache = min(s["cache"], s["input"])
            fields: dict[str, Any] = {"inputTokens": s["input"], "outputTokens": s["output"],
                                      "tokenDetails": {"cacheReadTokens": cache}}
            if s["team"]:
                fields["metadata"] = {"team": s["team"]}
            if s["client"]:
                fields["clientId"] = s["client"]
            messages.append(event(org, s["model"], start + timedelta(minutes=s["minute"]),
                                  **fields))
        application.use_cases.ingest_trusted(messages, source="test")
        body, _ = run_focus(application, org, start, end, tz, grain)
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
        if rows:  # all-zero token events make no rows; a header-only file is not validated
            check(body, workdir)
        assert billed_units(rows) == catalog_units(application, org, start, end, tz)
    finally:
        application.shutdown()
