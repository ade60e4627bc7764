"""Budget evaluation at planned scale (SPEC §13): seconds per full pass over 10,000 budgets, and
what running passes back to back does to the ingest rate.

Usage: .venv/bin/python bench/budget_evaluation.py [--budgets 10000] [--reuse NAME] [--keep]
       [--events 50000] [--late-orgs 25]

Data: the planned-scale rollups of `scale_data.sql` (250 orgs, 40 models, 5 models and 3
clients per org, a row per (model, client) and 15-minute bucket: 13 months for the 20 largest
orgs, 35 days for the rest), built in a dedicated database (or `--reuse` one kept by this
script or by `bench/query_postgres.py --keep`). Budgets: 40 per org, rotating through the
scopes org / model / client, the measures (reported cost, catalog cost, tokens, invocations),
the periods day / week / month and the zones UTC, America/New_York, Asia/Kolkata and
Asia/Kathmandu; amounts are set so that about half reach a threshold. The clock is an hour
before the data ends; the pipeline is fresh.

Prints: the first pass (which fires alerts), then steady passes (nothing new) in seconds:
one that reads every value (no cache: what a process's first pass does); with the ValueCache
the alerts worker keeps (settled days' values kept between passes), the pass that fills it,
five steady passes (every org's closed periods of the 7-day late lookback too, as
`evaluate_budgets` does by default), the pass after late events of `--late-orgs` orgs (each
read again), and the ten passes the alerts worker cycles through (every current period, and
the closed periods of one org in ten); the slowest steady pass against the 5 s target; then
the ingest rate of `--events` stream-like events through `ingest_batch` alone and with an
evaluator running the worker's passes back to back in a second thread, and their ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchdb import (  # noqa: E402
    EventFactory,
    database_exists,
    drop_database,
    machine,
    postgres_version,
    server_url,
)
from query_postgres import END, build  # noqa: E402

from analytics_adapters.memory.clock import ManualClock  # noqa: E402
from analytics_adapters.memory.pipeline import SynchronousPipeline  # noqa: E402
from analytics_adapters.sql import SqlStorage  # noqa: E402
from analytics_adapters.sql.migrate import migrate_to_head  # noqa: E402
from analytics_adapters.system import RandomIds  # noqa: E402
from analytics_core.budgets import (  # noqa: E402
    Budget,
    BudgetPeriod,
    BudgetScope,
    Measure,
    ScopeType,
)
from analytics_core.usecases import budgets  # noqa: E402
from analytics_core.usecases.ingest import RawMessage, ingest_batch  # noqa: E402

ZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu")
PERIODS = (BudgetPeriod.DAY, BudgetPeriod.WEEK, BudgetPeriod.MONTH)
MEASURES = (Measure.REPORTED_COST, Measure.CATALOG_COST, Measure.TOKENS, Measure.INVOCATIONS)
TARGET_SECONDS = 5.0


def md5_uuid(text: str) -> uuid.UUID:
    """The ids scale_data.sql gives orgs and models (md5 of a label)."""
    return uuid.UUID(hashlib.md5(text.encode()).hexdigest())


def make_budgets(count: int, now: datetime) -> list[Budget]:
    """`count` budgets spread over the 250 orgs of the scale data."""
    out = []
    for i in range(count):
        o = i % 250
        org = md5_uuid(f"org{o}")
        k, c = (i // 250) % 5, (i // 1250) % 3
        kind = (ScopeType.ORG, ScopeType.MODEL, ScopeType.CLIENT)[(i // 250) % 3]
        scope = {ScopeType.ORG: BudgetScope(ScopeType.ORG),
                 ScopeType.MODEL: BudgetScope(ScopeType.MODEL,
                                              str(md5_uuid(f"model{(o * 7 + k * 3) % 40}"))),
                 ScopeType.CLIENT: BudgetScope(ScopeType.CLIENT, f"client-{o}-{c}")}[kind]
        measure = MEASURES[i % 4]
        amount = (10**6 if measure.is_cost else 10**4) * (1 + i % 7) ** 3
        out.append(Budget(uuid.uuid4(), org, f"bench {i}", scope, measure,
                          PERIODS[(i // 7) % 3], ZONES[(i // 11) % 4], amount, (50, 80, 100),
                          True, now - timedelta(days=60), "bench", now - timedelta(days=60)))
    return out


def evaluate(storage: SqlStorage, clock: ManualClock, *,
             closed: bool | tuple[int, int] = True,
             cache: budgets.ValueCache | None = None) -> tuple[float, int]:
    """Seconds of one pass over every budget (`closed`: whose closed periods of the late
    lookback too, as in `evaluate_budgets`; `cache`: settled values kept between passes, as
    the alerts worker keeps them) and the alerts it fired."""
    started = time.perf_counter()
    result = budgets.evaluate_budgets(uow_factory=storage.unit_of_work, clock=clock,
                                      progress=SynchronousPipeline(), ids=RandomIds(),
                                      closed=closed, cache=cache)
    assert result.deferred is None
    return time.perf_counter() - started, len(result.fired)


def late_events(storage: SqlStorage, clock: ManualClock, orgs: int) -> int:
    """One event of three days ago for each of the first `orgs` orgs that have budgets (a
    history revision each): the next cached pass reads those orgs again. Returns how many."""
    with storage.unit_of_work() as uow:
        chosen = sorted({b.org_id for b in uow.budgets.all()})[:orgs]
    at = clock.now() - timedelta(days=3)
    payloads = [json.dumps({
        "eventId": str(uuid.uuid4()), "orgId": str(org), "modelId": str(uuid.uuid4()),
        "occurredAt": at.isoformat(), "status": "success", "latencyMs": 10,
        "inputTokens": 1, "outputTokens": 1, "costEstimateCents": 1}).encode()
        for org in chosen]
    ingest_batch([RawMessage(p) for p in payloads], source="http", uow_factory=storage.unit_of_work,
                 clock=clock, ids=RandomIds())
    return len(chosen)


def ingest_rate(storage: SqlStorage, payloads: list[bytes], clock: ManualClock) -> float:
    """Events/s of ingesting `payloads` in batches of 5,000."""
    started = time.perf_counter()
    for i in range(0, len(payloads), 5000):
        ingest_batch([RawMessage(p) for p in payloads[i:i + 5000]], source="stream:bench",
                     uow_factory=storage.unit_of_work, clock=clock, ids=RandomIds())
    return len(payloads) / (time.perf_counter() - started)


def main() -> None:
    """Build or reuse the scale database, add budgets, time passes and the ingest effect."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--reuse", help="an existing scale database (kept by --keep)")
    parser.add_argument("--keep", action="store_true", help="keep the database built")
    parser.add_argument("--late-orgs", type=int, default=25,
                        help="orgs given a late event before the pass that reads them again")
    args = parser.parse_args()
    name = args.reuse or "analytics_bench_budgets"
    if args.reuse and not database_exists(name):
        raise SystemExit(f"no database {name!r}: build one with --keep")
    url = server_url().set(database=name) if args.reuse else build(name)
    migrate_to_head(url)  # a database kept by an earlier version of the schema
    print(f"machine: {machine()}; postgres: {postgres_version(url)}")
    now = END - timedelta(hours=1)
    clock = ManualClock(now)
    storage = SqlStorage.from_url(url)
    with storage.engine.begin() as conn:  # a reused database: the previous run's budgets go
        conn.exec_driver_sql("TRUNCATE budgets, alerts, webhook_deliveries, webhook_attempts")
    try:
        with storage.unit_of_work() as uow:
            for b in make_budgets(args.budgets, now):
                uow.budgets.add(b)
            uow.commit()
        first, fired = evaluate(storage, clock)
        full, again = evaluate(storage, clock)
        print(f"{args.budgets:,} budgets: first pass {first:.2f} s ({fired:,} alerts fired); "
              f"steady, reading every value (no cache): {full:.2f} s ({again} fired)",
              flush=True)
        cache = budgets.ValueCache()
        filling, _ = evaluate(storage, clock, cache=cache)
        kept = [evaluate(storage, clock, cache=cache)[0] for _ in range(5)]
        late_orgs = late_events(storage, clock, args.late_orgs)
        after_late, _ = evaluate(storage, clock, cache=cache)
        worker = [evaluate(storage, clock, closed=(slot, 10), cache=cache)[0]
                  for slot in range(10)]
        print(f"with the ValueCache (every org's closed periods too): the pass that fills it "
              f"{filling:.2f} s; steady passes {min(kept):.2f} to {max(kept):.2f} s, "
              f"{max(kept) / TARGET_SECONDS:.2f} of the {TARGET_SECONDS:.0f} s target "
              f"(hits {cache.hits:,}, misses {cache.misses:,}); after late events of "
              f"{late_orgs} orgs {after_late:.2f} s; the alerts worker's passes (current "
              f"periods, and the closed ones of one org in ten) {min(worker):.2f} to "
              f"{max(worker):.2f} s")
        factory = EventFactory(seed=3)
        plain = factory.payloads(args.events, now - timedelta(minutes=20),
                                 timedelta(minutes=15))
        more = EventFactory(seed=4).payloads(args.events, now - timedelta(minutes=20),
                                             timedelta(minutes=15))
        alone = ingest_rate(storage, plain, clock)
        stop = threading.Event()
        passes = [0]

        def loop() -> None:  # what the alerts worker does, back to back instead of every 30 s
            while not stop.is_set():
                evaluate(storage, clock, closed=(passes[0] % 10, 10), cache=cache)
                passes[0] += 1

        thread = threading.Thread(target=loop)
        thread.start()
        beside = ingest_rate(storage, more, clock)
        stop.set()
        thread.join()
        print(f"ingest alone {alone:,.0f} events/s; beside back-to-back evaluation "
              f"{beside:,.0f} events/s ({passes[0]} passes ran); ratio {beside / alone:.2f}")
    finally:
        storage.close()
        if not args.reuse and not args.keep:
            drop_database(name)


if __name__ == "__main__":
    main()
