"""Restatement-aware exports (issue 17 item 1, SPEC §15): a close (a usage export made with
`close`, or a scheduled monthly file) that late events or a repricing change later gets
adjustment files holding only the changed rows as signed deltas; original + adjustments equal
the current numbers exactly, and the manifests chain each file to the one it supersedes by
checksum. Hypothesis drives arbitrary sequences of late events, repricings and worker rounds;
an object-store outage while an adjustment is written retries and never leaves a manifest
pointing at a missing file."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from analytics_adapters.localfs.object_store import LocalDirectoryObjectStore
from analytics_adapters.memory import ManualClock
from analytics_adapters.system import RandomIds
from analytics_app.bootstrap.application import Application
from analytics_app.cli.prices import cli_actor
from analytics_app.config import Settings
from analytics_core.adjustments import apply, digest, parse
from analytics_core.errors import StoreUnavailable
from analytics_core.exports import ExportJob, ExportKind, ExportRequest, ExportStatus
from analytics_core.ports import ObjectStore
from analytics_core.prices import PriceCategory
from analytics_core.timegrid import Grain
from analytics_core.usecases.export_runner import (
    ExportRunner,
    ExportSettings,
    current_usage_rows,
    detect_restatements,
)
from analytics_core.usecases.ingest import RawMessage
from analytics_core.usecases.prices import PriceDraft
from analytics_core.usecases.queries import AnalyticsQuery
from analytics_core.usecases.restatements import START_GRACE
from tests.contract.store_backends import drop_bucket
from tests.integration.test_export_s3_outage import InterceptedStore, Outage

MODELS = (uuid.UUID(int=21), uuid.UUID(int=22))


def _mid_month(now: datetime) -> datetime:
    """`now`, or the last day before it that is the 6th of a month or later: the window's three
    days (in UTC and in Kolkata) then lie in one month, so the export worker's housekeeping
    schedules no monthly close of the month before beside the test's own jobs."""
    while now.day < 6:
        now -= timedelta(days=1)
    return now


class Close:
    """One org, a closed window of three days in Asia/Kolkata, and the service."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.clock = ManualClock(_mid_month(datetime.now(UTC)))
        app.container.clock.override(providers.Object(self.clock))
        self.org = uuid.uuid4()
        self.end = self.clock.now().replace(minute=0, second=0, microsecond=0)
        self.start = self.end - timedelta(days=3)
        self.tz = "Asia/Kolkata"
        self.reprices = 0
        self.objects: ObjectStore = app.ports.objects

    def ingest(self, model: int, minute: int, cost: str = "1.25", tokens: int = 1000) -> None:
        """One event inside the window."""
        at = self.start + timedelta(minutes=minute)
        result = self.app.use_cases.ingest_trusted([RawMessage({
            "eventId": str(uuid.uuid4()), "orgId": str(self.org), "modelId": str(MODELS[model]),
            "occurredAt": at.isoformat(), "status": "success", "latencyMs": 9,
            "inputTokens": tokens, "outputTokens": tokens // 4, "costEstimateCents": cost,
        })], source="test")
        assert result.accepted == 1

    def reprice(self, model: int, input_usd: str) -> None:
        """A new global price for the whole window (in effect from a minute after the last
        one, still before the window), restating what is stored."""
        self.reprices += 1
        since = self.start - timedelta(days=1) + timedelta(minutes=self.reprices)
        draft = PriceDraft(MODELS[model], None, since,
                           {PriceCategory.INPUT: int(Decimal(input_usd) * 10**6),
                            PriceCategory.OUTPUT: 2_000_000}, restate=True)
        self.app.use_cases.add_prices(cli_actor(), [draft])
        self.clock.advance(START_GRACE + timedelta(seconds=1))
        self.app.use_cases.run_restatements(batch=1000)

    def request(self) -> ExportRequest:
        """The close's request."""
        return ExportRequest(self.org, self.start, self.end, tz=self.tz, close=True)

    def file(self) -> ExportJob:
        """Create the close and run it."""
        job, _ = self.app.use_cases.create_export(self.request(), "test", None)
        self.settle()
        return self.app.use_cases.get_export(self.org, job.job_id)

    def settle(self) -> list[ExportJob]:
        """Worker rounds (a new worker runs its housekeeping at once) until nothing is due."""
        created: list[ExportJob] = []
        for _ in range(3):
            worker = self.app.export_worker()
            worker.run_round()
        return created

    def jobs(self) -> list[ExportJob]:
        """The org's jobs, oldest first."""
        return sorted(self.app.use_cases.list_exports(self.org, None, 200, None).jobs,
                      key=lambda j: (j.adjustment or 0))

    def read(self, key: str) -> bytes:
        """An object's bytes (from `objects`: the service's store unless a test sets one)."""
        return b"".join(self.objects.open(key))


@pytest.fixture
def close(tmp_path: Path) -> Iterator[Close]:
    """A fresh in-memory service."""
    app = Application(Settings(export_dir=tmp_path / "exports"))
    yield Close(app)
    app.shutdown()


def check_chain(c: Close) -> list[ExportJob]:
    """Every file succeeded; original + adjustments equal the current numbers and the usage
    API's totals; each adjustment's manifest names the file it supersedes and the close by
    checksum, and its own CSV's."""
    jobs = c.jobs()
    assert all(j.status is ExportStatus.SUCCEEDED for j in jobs), [j.error for j in jobs]
    original, adjustments = jobs[0], jobs[1:]
    assert original.adjusts is None
    assert [a.adjustment for a in adjustments] == list(range(1, len(adjustments) + 1))
    filed = {}
    previous = original
    for step in jobs:
        assert step.object_key is not None
        body = c.read(step.object_key)
        assert hashlib.sha256(body).hexdigest() == step.checksum
        filed = apply(filed, parse(body))
        if step.adjusts is not None:
            manifest = json.loads(c.read(step.object_key.removesuffix(".csv")
                                         + ".manifest.json"))
            assert manifest["adjustment"] == step.adjustment
            assert manifest["supersedes"]["checksum"] == previous.checksum
            assert manifest["adjusts"]["checksum"] == original.checksum
            assert manifest["checksum"] == step.checksum
            assert step.object_key.endswith(f".adjustment-{step.adjustment}.csv")
        previous = step
    current = current_usage_rows(c.request(), c.app.ports.uow_factory)
    assert digest(filed) == digest(current)
    report = c.app.use_cases.usage(AnalyticsQuery(c.org, c.start, c.end, grain=Grain.DAY,
                                                  tz=c.tz))
    invocations = sum(int(r["invocations"]) for r in filed.values())
    cost = sum((Decimal(r["cost_estimate_cents"]) for r in filed.values()), Decimal(0))
    catalog = sum((Decimal(r["catalog_cost_cents"]) for r in filed.values()), Decimal(0))
    assert invocations == report.totals.invocations
    assert cost == Decimal(report.totals.cost.exact_str())
    assert catalog == Decimal(report.totals.catalog_cost.exact_str())
    return jobs


def test_a_late_event_and_a_repricing_each_get_an_adjustment(close: Close) -> None:
    """Nothing changes: no adjustment. A late event: adjustment 1 with that row's delta only.
    A repricing: adjustment 2 superseding 1, negative and positive deltas of catalog cost."""
    c = close
    c.reprice(0, "1")
    c.ingest(0, 30)
    c.ingest(1, 60 * 30)
    original = c.file()
    assert original.close
    assert original.filed_digest is not None
    c.settle()
    assert len(c.jobs()) == 1  # unchanged: nothing to adjust

    restated = REGISTRY.get_sample_value("analytics_exports_restated_total") or 0.0
    c.ingest(0, 31, cost="2.5")  # late, in the same day and model as an earlier one
    c.settle()
    jobs = check_chain(c)
    assert len(jobs) == 2
    assert REGISTRY.get_sample_value("analytics_exports_restated_total") == restated + 1
    rows = list(parse(c.read(jobs[1].object_key or "")).values())
    assert [(r["model_id"], r["invocations"], r["cost_estimate_cents"]) for r in rows] == [
        (str(MODELS[0]), "1", "2.5000")]

    c.reprice(0, "0.5")  # cheaper: catalog cost goes down
    c.settle()
    jobs = check_chain(c)
    assert len(jobs) == 3
    rows = list(parse(c.read(jobs[2].object_key or "")).values())
    assert rows
    assert all(r["invocations"] == "0" and Decimal(r["catalog_cost_cents"]) < 0 for r in rows)
    c.settle()
    assert len(c.jobs()) == 3


def test_only_usage_exports_can_be_closes(close: Close) -> None:
    """An events or FOCUS close is refused, naming `close`."""
    from analytics_core.errors import ValidationFailed  # noqa: PLC0415

    for kind in (ExportKind.EVENTS, ExportKind.FOCUS):
        with pytest.raises(ValidationFailed) as bad:
            ExportRequest(close.org, close.start, close.start + timedelta(days=1), kind=kind,
                          close=True)
        assert [e.field for e in bad.value.errors] == ["close"]


@st.composite
def steps(draw: st.DrawFn) -> list[tuple[str, int, int]]:
    """Late events (model, minute), repricings (model, price step) and worker rounds."""
    return draw(st.lists(st.one_of(
        st.tuples(st.just("late"), st.integers(0, 1), st.integers(0, 3 * 24 * 60 - 1)),
        st.tuples(st.just("reprice"), st.integers(0, 1), st.integers(1, 9)),
        st.tuples(st.just("settle"), st.just(0), st.just(0)),
    ), min_size=1, max_size=8))


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(plan=steps())
def test_any_sequence_keeps_original_plus_adjustments_equal_to_now(
    plan: list[tuple[str, int, int]], tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """After any sequence and a final worker round, the chain verifies and its numbers are
    the API's."""
    app = Application(Settings(export_dir=tmp_path_factory.mktemp("adjust") / "exports"))
    try:
        c = Close(app)
        c.reprice(0, "1")
        c.ingest(0, 10)
        c.file()
        for action, model, value in plan:
            if action == "late":
                c.ingest(model, value, cost=f"{value % 7}.{value % 10000:04d}")
            elif action == "reprice":
                c.reprice(model, str(Decimal(value) / 4))
            else:
                c.settle()
                check_chain(c)  # after every round, not only the last
        c.settle()
        check_chain(c)
    finally:
        app.shutdown()


class FailingOnce:
    """A store whose first put of an adjustment manifest fails (the CSV is stored by then)."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.failed = False

    def put(self, key: str, chunks: Any, **kwargs: Any) -> int:
        """Store, except the first adjustment manifest."""
        if ".adjustment-" in key and key.endswith(".manifest.json") and not self.failed:
            self.failed = True
            raise StoreUnavailable("object store timed out")
        return self.inner.put(key, chunks, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def s3_outage() -> Iterator[Outage]:
    """A moto server of the test's own with an empty bucket; dropped afterwards."""
    o = Outage()
    yield o
    o.server.stop()
    o.server.start()
    drop_bucket(o.server.endpoint_url, o.bucket)
    o.server.stop()


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_an_outage_while_writing_an_adjustment_retries_without_a_dangling_manifest(
    close: Close, tmp_path: Path, backend: str, request: pytest.FixtureRequest,
) -> None:
    """Local directory: a put that fails; S3 (moto): the server stopped while the manifest is
    put. The failed attempt leaves no manifest (and its CSV is removed); the retry writes
    both, and the chain verifies."""
    c = close
    clock = ManualClock(c.clock.now())
    if backend == "s3":
        outage: Outage = request.getfixturevalue("s3_outage")
        store: Any = InterceptedStore(outage.store, outage.down_at(".adjustment-1.manifest.json",
                                                                   back_after=True))
        c.objects = outage.store
    else:
        store = FailingOnce(LocalDirectoryObjectStore(tmp_path / "files"))
        c.objects = store.inner
    runner = ExportRunner("w", c.app.ports.uow_factory, store, clock, c.app.ports.progress,
                          ExportSettings())
    c.ingest(0, 5)
    c.app.use_cases.create_export(c.request(), "test", None)
    original = runner.run_next()
    assert original is not None
    assert original.status is ExportStatus.SUCCEEDED
    assert original.object_key is not None
    c.ingest(1, 50)
    [queued] = detect_restatements(uow_factory=c.app.ports.uow_factory, clock=clock,
                                   ids=RandomIds())
    failed = runner.run_next()
    assert failed is not None
    assert failed.status is ExportStatus.PENDING  # retried later
    base = original.object_key.removesuffix(".csv")
    assert not c.objects.exists(f"{base}.adjustment-1.manifest.json")
    assert not c.objects.exists(f"{base}.adjustment-1.csv")
    clock.advance(timedelta(minutes=5))
    done = runner.run_next()
    assert done is not None
    assert (done.job_id, done.status) == (queued.job_id, ExportStatus.SUCCEEDED)
    check_chain(c)
