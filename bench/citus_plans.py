"""The Citus plan of every statement the main operations send (docs/storage.md, "Citus").

Usage: .venv/bin/python bench/citus_plans.py [--shards 8] [--full]

Creates a Citus database over both workers as `bench/citus_cluster.py` does (`.ci/citus
createdb`, `--shards`; the cluster must be started), migrates it,
fills it with `analytics demo`, then runs the main operations in-process -- a 7-day usage read,
a 7-day reliability read in Asia/Kolkata, the admin fleet summary, an ingest batch over two
orgs, an export claim, an audit write -- and, just before each SELECT, INSERT, UPDATE or DELETE
the adapter sends, runs `EXPLAIN (COSTS OFF)` of it on the same connection with the same
parameters. It prints, per operation, each statement's first line and the Citus part of its
plan: the executor, the task count (1 = routed to one shard) and any distributed subplans.
`--full` prints whole plans. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEMO_ORG = uuid.UUID("61cfb301-976e-513e-a7b8-f4d8bf8ec460")

sys.path.insert(0, str(HERE))

from citus_cluster import target_database  # noqa: E402

from analytics_adapters.memory.clock import ManualClock  # noqa: E402
from analytics_adapters.memory.pipeline import SynchronousPipeline  # noqa: E402
from analytics_adapters.sql import SqlStorage  # noqa: E402
from analytics_adapters.system import RandomIds, SystemClock  # noqa: E402
from analytics_core.access import Outcome  # noqa: E402
from analytics_core.records import AuditEntry  # noqa: E402
from analytics_core.timegrid import Grain  # noqa: E402
from analytics_core.usecases.fleet import FleetWindow, fleet_summary  # noqa: E402
from analytics_core.usecases.ingest import RawMessage, ingest_batch  # noqa: E402
from analytics_core.usecases.queries import AnalyticsQuery, query_analytics  # noqa: E402

PLANNED = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")


class PlanRecorder:
    """EXPLAINs each statement on its own connection just before it runs.

    It wraps psycopg's `Cursor.execute` for this process: the adapter sends some statements
    through SQLAlchemy and the set-based ingest and read statements on the driver cursor
    directly, and both end there.
    """

    def __init__(self) -> None:
        self.plans: list[tuple[str, list[str]]] = []
        self.active = False
        original = psycopg.Cursor.execute
        recorder = self

        def execute(cursor: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
            if recorder.active:
                recorder.explain(cursor, query, params)
            return original(cursor, query, params, **kwargs)

        psycopg.Cursor.execute = execute  # type: ignore[method-assign]

    def explain(self, cursor: Any, query: Any, params: Any) -> None:
        text = query if isinstance(query, str) else (
            query.decode() if isinstance(query, bytes) else query.as_string(cursor.connection))
        head = text.lstrip().split(None, 1)[0].upper() if text.strip() else ""
        if head not in PLANNED or any(s in text for s in ("pg_catalog", "pg_extension",
                                                        "pg_type", "current_schema()")):
            return
        self.active = False  # the EXPLAIN itself is not recorded
        try:
            with cursor.connection.cursor() as probe:
                probe.execute("SAVEPOINT citus_plan")
                try:
                    probe.execute(f"EXPLAIN (COSTS OFF) {text}", params)
                    lines = [str(row[0]) for row in probe.fetchall()]
                except psycopg.Error as e:  # some statements cannot be explained alone
                    lines = [f"(no plan: {str(e).splitlines()[0]})"]
                    probe.execute("ROLLBACK TO SAVEPOINT citus_plan")
                probe.execute("RELEASE SAVEPOINT citus_plan")
        finally:
            self.active = True
        self.plans.append((" ".join(text.split()), lines))


def summary(lines: list[str]) -> str:
    """Executor, task count and subplans of one plan."""
    picked = [s.strip() for s in lines if any(k in s for k in (
        "Custom Scan (Citus", "Task Count", "Distributed Subplan", "(no plan"))]
    if not any("Citus" in s or "Task Count" in s for s in picked):
        picked.insert(0, f"coordinator only: {lines[0].strip() if lines else '?'}")
    return "; ".join(picked)


def run(recorder: PlanRecorder, title: str, operation: Callable[[], object],
        full: bool) -> None:
    recorder.plans.clear()
    recorder.active = True
    try:
        operation()
    finally:
        recorder.active = False
    print(f"\n### {title}\n")
    for statement, lines in recorder.plans:
        print(f"- `{statement[:110]}{'…' if len(statement) > 110 else ''}`")
        print(f"  - {summary(lines)}")
        if full:
            print("\n".join(f"        {line}" for line in lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--full", action="store_true")
    args = parser.parse_args()
    with target_database("citus-2-workers", args.shards) as url:
        env = {**os.environ, "ANALYTICS_DATABASE_URL": url.render_as_string(hide_password=False)}
        subprocess.run([sys.executable, "-m", "analytics_app.cli", "demo", "--events", "3000",
                        "--days", "8", "--no-progress"], env=env, check=True,
                       capture_output=True, cwd=ROOT)
        storage = SqlStorage.from_url(url)
        recorder = PlanRecorder()
        now = datetime.now(UTC)
        clock, progress = ManualClock(now), SynchronousPipeline()

        def analytics(tz: str, latency: bool) -> Callable[[], object]:
            query = AnalyticsQuery(DEMO_ORG, now - timedelta(days=7), now, Grain.DAY, tz)
            return lambda: query_analytics(query, uow_factory=storage.unit_of_work,
                                           progress=progress, clock=clock, latency=latency)

        def ingest() -> object:
            other = uuid.uuid4()
            messages = [RawMessage({
                "eventId": str(uuid.uuid4()), "orgId": str(org), "modelId": str(uuid.uuid4()),
                "occurredAt": (now - timedelta(minutes=3)).isoformat(), "status": "success",
                "latencyMs": 100, "inputTokens": 1, "outputTokens": 1,
                "costEstimateCents": 0.5, "clientId": "web"}) for org in (DEMO_ORG, other)]
            return ingest_batch(messages, source="http", uow_factory=storage.unit_of_work,
                                clock=SystemClock(), ids=RandomIds())

        def claim() -> object:
            with storage.unit_of_work() as uow:
                return uow.exports.claim_next("plans", now, timedelta(minutes=5))

        def audit() -> None:
            with storage.unit_of_work() as uow:
                uow.audit.record(AuditEntry(uuid.uuid4(), now, "plans", DEMO_ORG, DEMO_ORG,
                                            "read", "usage", Outcome.ALLOWED, "", None, False))
                uow.commit()

        run(recorder, "Usage, one org, 7 days, UTC", analytics("UTC", False), args.full)
        run(recorder, "Reliability, one org, 7 days, Asia/Kolkata",
            analytics("Asia/Kolkata", True), args.full)
        run(recorder, "Fleet summary (admin, every org)", lambda: fleet_summary(
            FleetWindow(now - timedelta(days=7), now), uow_factory=storage.unit_of_work),
            args.full)
        run(recorder, "Ingest batch, two orgs", ingest, args.full)
        run(recorder, "Export claim", claim, args.full)
        run(recorder, "Audit write", audit, args.full)
        storage.close()


if __name__ == "__main__":
    main()
