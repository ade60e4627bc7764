"""A restatement killed with SIGKILL mid-way and run again ends exactly where one
uninterrupted run ends (PostgreSQL, `analytics restatements run` as a real process)."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from analytics_adapters.memory import ManualClock, SequentialIds
from analytics_adapters.sql import SqlStorage
from analytics_core.access import ADMIN, Actor
from analytics_core.money import Cents
from analytics_core.prices import Catalog, PriceCategory, decimal_cost
from analytics_core.restatements import RestatementStatus
from analytics_core.usecases import restatements
from analytics_core.usecases.ingest import CatalogCache, RawMessage, ingest_batch
from analytics_core.usecases.prices import PriceDraft, add_versions
from tests.contract.sql_backends import fresh_postgres_database

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]
ANALYTICS = str(ROOT / ".venv" / "bin" / "analytics")
ADMIN_ACTOR = Actor("admin:test", None, frozenset({ADMIN}))
EVENTS = 240
ORGS = [uuid.uuid4(), uuid.uuid4()]
MODEL = uuid.uuid4()


def _events(now: datetime) -> list[dict[str, object]]:
    return [{
        "eventId": str(uuid.uuid4()), "orgId": str(ORGS[i % 2]), "modelId": str(MODEL),
        "occurredAt": (now - timedelta(hours=30) + timedelta(minutes=7 * i)).isoformat(),
        "status": "success", "latencyMs": 10, "inputTokens": 1000 + i, "outputTokens": 37 * i,
        "costEstimateCents": "0.5", "tokenDetails": {"cacheReadTokens": i, "reasoningTokens": i},
    } for i in range(EVENTS)]


def _draft(now: datetime, input_price: int, **overrides: object) -> PriceDraft:
    fields: dict[str, object] = {
        "model": MODEL, "org_id": None, "effective_from": now - timedelta(days=2),
        "prices": {PriceCategory.INPUT: input_price, PriceCategory.OUTPUT: 1_234_567},
        "restate": True,
    }
    fields.update(overrides)
    return PriceDraft(**fields)  # type: ignore[arg-type]


def _prepare(storage: SqlStorage, now: datetime) -> None:
    """Events priced by a first version, then a correction that needs a restatement."""
    clock, ids = ManualClock(now - timedelta(minutes=5)), SequentialIds()
    uow = storage.unit_of_work
    first = add_versions(ADMIN_ACTOR, [_draft(now, 150_000)], uow_factory=uow, clock=clock,
                         ids=ids)
    ingest_batch([RawMessage(e) for e in _events(now)], source="test", uow_factory=uow,
                 clock=clock, ids=ids, pricing=CatalogCache())
    add_versions(ADMIN_ACTOR, [_draft(now, 310_001, supersedes=first.versions[0].version_id)],
                 uow_factory=uow, clock=clock, ids=ids)


def _state(storage: SqlStorage) -> tuple[dict[uuid.UUID, int], list[tuple[object, ...]]]:
    """Catalog cost per org in the rollups, and every delta recorded."""
    totals: dict[uuid.UUID, int] = {}
    deltas: list[tuple[object, ...]] = []
    start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    with storage.unit_of_work() as uow:
        for org in ORGS:
            totals[org] = sum(sum(r.stats.catalog_costs)
                              for r in uow.rollups.query(org, start, end))
    for org in ORGS:
        for view in restatements.org_restatements(org, uow_factory=storage.unit_of_work):
            deltas.extend((d.org_id, d.day, d.events, d.before_units, d.after_units)
                          for d in view.deltas)
    return totals, sorted(deltas, key=str)


def _env(url: URL) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")}
    env["ANALYTICS_DATABASE_URL"] = url.render_as_string(hide_password=False)
    return env


def test_a_killed_restatement_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    """SIGKILL after a few committed batches leaves a running record; a second run finishes
    it with the same rollups and deltas as a run never interrupted, equal to the Decimal
    recomputation over the raw events."""
    now = datetime.now(UTC).replace(microsecond=0)
    with fresh_postgres_database() as killed_url, fresh_postgres_database() as whole_url:
        killed, whole = SqlStorage.from_url(killed_url), SqlStorage.from_url(whole_url)
        try:
            for storage in (killed, whole):
                _prepare(storage, now)
            process = subprocess.Popen(
                [ANALYTICS, "restatements", "run", "--batch", "1"], env=_env(killed_url),
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            assert process.stderr is not None
            seen = 0
            for line in process.stderr:
                seen += line.startswith("restatement ")
                if seen == 5:
                    os.kill(process.pid, signal.SIGKILL)
                    break
            process.wait(timeout=60)
            assert process.returncode == -signal.SIGKILL
            with killed.unit_of_work() as uow:
                states = {r.status for r in uow.restatements.open()}
            assert states & {RestatementStatus.RUNNING, RestatementStatus.PENDING}
            again = subprocess.run([ANALYTICS, "restatements", "run", "--batch", "7"],
                                   env=_env(killed_url), cwd=ROOT, capture_output=True,
                                   text=True, timeout=120, check=False)
            assert again.returncode == 0, again.stderr
            clock = ManualClock(now)
            restatements.run_restatements(uow_factory=whole.unit_of_work, clock=clock)
            assert _state(killed) == _state(whole)
            totals, deltas = _state(killed)
            with killed.unit_of_work() as uow:
                catalog = Catalog.of(uow.prices.all())
                assert uow.restatements.open() == []
                events = [e for org in ORGS for e in uow.events.scan(
                    org, now - timedelta(days=3), now + timedelta(days=1))]
            for org in ORGS:
                expected = sum((decimal_cost(e, v) for e in events if e.org_id == org
                                if (v := catalog.version_for(org, e.model_id, e.occurred_at))),
                               Decimal(0))
                assert Cents(totals[org]).exact == expected
            assert sum(d[2] for d in deltas) == EVENTS  # type: ignore[misc]
        finally:
            killed.close()
            whole.close()
