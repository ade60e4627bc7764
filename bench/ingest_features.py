"""What the SPEC §12 features cost at ingest, and what a repricing costs, on PostgreSQL.

Usage: .venv/bin/python bench/ingest_features.py [--events 100000] [--batch 5000]

In one run, each measurement in a fresh database, the same generated stream-like events
(250 orgs, 40 models, bench/benchdb.py; occurring over 15 minutes, as a live stream's batches
do) go through the real `ingest_batch` use case:

1. baseline: the events as producers sent them before §12 (no tokenDetails, no tags), an empty
   price catalog, no attribution keys;
2. features: every event with tokenDetails, an actorId and 4 attribution tags in its metadata,
   a catalog pricing all 40 models (every event priced), and those 4 keys configured as
   attribution keys (`actor` plus 4 `tag:` dimensions rolled up at ingest).

It prints events/s of both and their ratio (target >= 0.8). Then the features database gets
--events more events spread over the last 31 days (not timed), a correction of one model's
global price for those 31 days starts a restatement, and it runs to the end while a second
thread keeps ingesting new events: it prints the repricing's events/s and the ingest rate
during the repricing against the features rate above.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import EventFactory, machine, postgres_version, scratch_database

from analytics_adapters.memory.clock import ManualClock
from analytics_adapters.sql import SqlStorage
from analytics_adapters.system import RandomIds
from analytics_app.stream.gc_tuning import batch_collection
from analytics_core.access import ADMIN, Actor
from analytics_core.attribution import AttributionSettings
from analytics_core.prices import PriceCategory
from analytics_core.usecases import restatements
from analytics_core.usecases.ingest import CatalogCache, RawMessage, ingest_batch
from analytics_core.usecases.prices import PriceDraft, add_versions

KEYS = ("team", "feature", "env", "customer")
ADMIN_ACTOR = Actor("admin:bench", None, frozenset({ADMIN}))


CARDINALITY = {"actors": 5000, "customers": 2000}


def enrich(payloads: list[bytes], seed: int = 7) -> list[bytes]:
    """The same events with tokenDetails, an actor and 4 tags (30 teams, 200 features, 2 envs;
    actors and customers as set by --actors and --customers)."""
    rng = random.Random(seed)
    out = []
    for raw in payloads:
        body = json.loads(raw)
        tokens_in, tokens_out = body["inputTokens"], body["outputTokens"]
        body["tokenDetails"] = {"cacheReadTokens": rng.randrange(tokens_in + 1) // 2,
                                "reasoningTokens": rng.randrange(tokens_out + 1) // 3}
        body["actorId"] = str(uuid.UUID(int=rng.randrange(CARDINALITY["actors"])))
        body["metadata"] = {"team": f"team-{rng.randrange(30)}",
                            "feature": f"feature-{rng.randrange(200)}",
                            "env": rng.choice(("prod", "staging")),
                            "customer": f"cust-{rng.randrange(CARDINALITY['customers'])}"}
        out.append(json.dumps(body).encode())
    return out


def models_of(factory: EventFactory) -> list[uuid.UUID]:
    """Every model the factory's events use."""
    return sorted({m for models in factory.models.values() for m in models})


def price_everything(storage: SqlStorage, models: list[uuid.UUID], now: datetime) -> None:
    """One global version per model, in effect since 40 days ago."""
    drafts = [PriceDraft(m, None, now - timedelta(days=40),
                         {PriceCategory.INPUT: 150_000, PriceCategory.OUTPUT: 600_000,
                          PriceCategory.CACHE_READ: 75_000}, restate=True) for m in models]
    add_versions(ADMIN_ACTOR, drafts, uow_factory=storage.unit_of_work,
                 clock=ManualClock(now - timedelta(days=40, seconds=1)), ids=RandomIds())


def ingest_all(storage: SqlStorage, batches: list[list[RawMessage]], clock: ManualClock, *,
               pricing: CatalogCache | None, attribution: AttributionSettings | None) -> float:
    """Seconds to ingest every batch through the use case."""
    ids = RandomIds()
    started = time.perf_counter()
    for batch in batches:
        with batch_collection():  # as every driver runs a batch (UseCases._ingest)
            ingest_batch(batch, source="stream:bench", uow_factory=storage.unit_of_work,
                         clock=clock, ids=ids, pricing=pricing, attribution=attribution)
    return time.perf_counter() - started


def chunks(payloads: list[bytes], size: int) -> list[list[RawMessage]]:
    """Batches of messages."""
    return [[RawMessage(p) for p in payloads[i:i + size]]
            for i in range(0, len(payloads), size)]


def main() -> None:
    """Run the measurements and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--days", type=int, default=31, help="history repriced, in days")
    parser.add_argument("--actors", type=int, default=5000, help="distinct actorIds")
    parser.add_argument("--customers", type=int, default=2000, help="distinct customer tags")
    args = parser.parse_args()
    CARDINALITY.update(actors=args.actors, customers=args.customers)

    now = datetime.now(UTC).replace(microsecond=0)
    clock = ManualClock(now)
    factory = EventFactory()
    plain = factory.payloads(args.events, now - timedelta(minutes=16), timedelta(minutes=15))
    rich = enrich(plain)
    models = models_of(factory)
    attribution = AttributionSettings(KEYS)
    print(f"machine: {machine()}; {args.events:,} events, {args.actors:,} actors, "
          f"{args.customers:,} customers")
    with scratch_database("analytics_bench_plain") as url:
        storage = SqlStorage.from_url(url)
        print(f"postgres: {postgres_version(url)}")
        base = ingest_all(storage, chunks(plain, args.batch), clock, pricing=None,
                          attribution=None)
        storage.close()
    with scratch_database("analytics_bench_features") as url:
        storage = SqlStorage.from_url(url)
        price_everything(storage, models, now)
        feat = ingest_all(storage, chunks(rich, args.batch), clock, pricing=CatalogCache(),
                          attribution=attribution)
        base_rate, feat_rate = args.events / base, args.events / feat
        print(f"baseline ingest            {base_rate:10,.0f} events/s")
        print(f"with §12 features          {feat_rate:10,.0f} events/s")
        print(f"ratio features / baseline  {feat_rate / base_rate:10.2f}  (target >= 0.80)")
        history = enrich(EventFactory(seed=5).payloads(
            args.events, now - timedelta(days=args.days), timedelta(days=args.days, minutes=-20)))
        ingest_all(storage, chunks(history, args.batch), clock, pricing=CatalogCache(),
                   attribution=attribution)
        reprice(storage, models[0], now, args, attribution, feat_rate)
        storage.close()


def reprice(storage: SqlStorage, model: uuid.UUID, now: datetime, args: argparse.Namespace,
            attribution: AttributionSettings, feat_rate: float) -> None:
    """Correct one model's price for the whole window and run the restatement while another
    thread ingests new events."""
    with storage.unit_of_work() as uow:
        old = next(v for v in uow.prices.all() if v.model_id == model)
    clock = ManualClock(now)
    added = add_versions(ADMIN_ACTOR, [PriceDraft(
        model, None, old.effective_from, {PriceCategory.INPUT: 310_000,
                                          PriceCategory.OUTPUT: 1_200_000},
        supersedes=old.version_id, restate=True)], uow_factory=storage.unit_of_work,
        clock=clock, ids=RandomIds())
    (record,) = added.restatements
    clock.advance(restatements.START_GRACE)
    live = chunks(enrich(EventFactory(seed=99).payloads(
        args.events, now - timedelta(minutes=30), timedelta(minutes=29))), args.batch)
    done = threading.Event()
    ingested = [0, 0.0]

    def keep_ingesting() -> None:
        started = time.perf_counter()
        for batch in live:
            if done.is_set():
                break
            ingest_all(storage, [batch], clock, pricing=CatalogCache(),
                       attribution=attribution)
            ingested[0] += len(batch)
        ingested[1] = time.perf_counter() - started

    thread = threading.Thread(target=keep_ingesting)
    started = time.perf_counter()
    thread.start()
    restatements.run_restatements(uow_factory=storage.unit_of_work, clock=clock)
    took = time.perf_counter() - started
    done.set()
    thread.join()
    with storage.unit_of_work() as uow:
        repriced = uow.restatements.get(record.restatement_id).events_repriced  # type: ignore[union-attr]
    print(f"repricing one model, {args.days} days: {repriced:,} events in {took:.1f} s "
          f"({repriced / took:,.0f} events/s)")
    if ingested[1]:
        rate = ingested[0] / ingested[1]
        print(f"ingest meanwhile           {rate:10,.0f} events/s "
              f"({rate / feat_rate:.2f} of the features rate)")


if __name__ == "__main__":
    main()
