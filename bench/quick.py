"""`make bench`: reduced versions of the performance targets, each printed against its target.

Usage: .venv/bin/python bench/quick.py [--events 20000] [--seconds 3]

In one run on this machine (PostgreSQL on 127.0.0.1:5432; every database and server it makes
is its own and is removed at the end; loopback only), about 2-3 minutes:

1. PostgreSQL ingest: the ingest use case as the application binds it for the library and
   the demo (`UseCases.ingest_trusted`; first ingest, then a replay of the same batches)
   against a raw binary COPY of the same rows (bench/ingest_postgres.py's code); targets
   0.15x and 0.3x of COPY.
2. `POST /events` under gunicorn (`analytics serve`, one worker) with 5,000-event batches of
   one org, posted with its org_admin key, against the same use case as the service binds it
   (`UseCases.ingest`: attribution, pricing, caches) called in-process on the same batches;
   target 0.8x.
3. Embedded SQLite ingest through the same bound use case; target 15,000 events/s.
4. Reliability reads in four zones: the largest org of the planned-scale generator (its 13
   months of rollups only, `export_bench.build_largest_only`), with zone day tiers listed and
   built for the three non-UTC zones (timed), 7-day and 31-day windows, p95 of the use case
   rendered to the API body; targets 50 ms and 150 ms.
5. Requests/s of `GET /orgs/{org}/freshness` and `GET /status/healthz` under `analytics serve`
   against a bare Falcon JSON endpoint under the same gunicorn worker class; target 0.5x.

Each line ends with `score`: the measured figure divided by its target, oriented so that a
score >= 1.00 meets the target (for latencies, target / measured). It is not part of
`make test`; record full runs of the individual scripts in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import attrs  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from benchdb import (  # noqa: E402
    EventFactory,
    drop_database,
    machine,
    scratch_database,
)
from export_bench import build_largest_only  # noqa: E402
from ingest_postgres import raw_copy  # noqa: E402
from query_postgres import END, LARGEST_ORG, org_uuid  # noqa: E402

from analytics_adapters.memory.clock import ManualClock  # noqa: E402
from analytics_adapters.memory.pipeline import SynchronousPipeline  # noqa: E402
from analytics_adapters.sql import SqlStorage, migrate_to_head, zone_days  # noqa: E402
from analytics_app.bootstrap.application import Application  # noqa: E402
from analytics_app.config import Settings  # noqa: E402
from analytics_app.http.render import reliability_body  # noqa: E402
from analytics_core.event_parsing import parse_event  # noqa: E402
from analytics_core.timegrid import Grain  # noqa: E402
from analytics_core.usecases.ingest import (  # noqa: E402
    IngestScope,
    RawMessage,
    decode_payload,
)
from analytics_core.usecases.queries import AnalyticsQuery, query_analytics  # noqa: E402

BATCH = 5000
ZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Asia/Kathmandu")
CLI = [sys.executable, "-m", "analytics_app.cli"]
ROWS: list[tuple[str, str, str, float]] = []


def report(figure: str, measured: str, target: str, score: float) -> None:
    """Print one figure now and keep it for the summary."""
    ROWS.append((figure, measured, target, score))
    print(f"  {figure:<52} {measured:>22}  target {target:<16} score {score:5.2f}", flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@contextmanager
def server(argv: list[str], env: dict[str, str], port: int, probe: str) -> Iterator[None]:
    """A server process of our own on a loopback port, stopped (process group) at the end."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"server exited early: {' '.join(argv)}")
            try:
                if _get(port, probe) == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"server not up: {' '.join(argv)}")
            time.sleep(0.2)
        yield
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


def requests_per_second(port: int, path: str, headers: dict[str, str], seconds: float,
                        threads: int = 4) -> float:
    """Keep-alive GETs from `threads` client threads for `seconds`; successful requests/s."""
    counts = [0] * threads
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                counts[i] += 1
        conn.close()

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / (time.monotonic() - started)


def _batches(payloads: list[object]) -> list[list[RawMessage]]:
    return [[RawMessage(p) for p in payloads[i:i + BATCH]]
            for i in range(0, len(payloads), BATCH)]


def bound_ingest(url: str, batches: list[list[RawMessage]], runs: int) -> list[float]:
    """Seconds of each run over every batch through the ingest use case as every driver but
    the stream binds it (`UseCases.ingest_trusted`, the library's and the demo's call: the
    msgspec decoder, an empty catalog, no attribution keys, the collector tuned per batch)."""
    settings = attrs.evolve(Settings(), database_url=url)
    with Application(settings) as application:
        seconds = []
        for _ in range(runs):
            started = time.perf_counter()
            for batch in batches:
                application.use_cases.ingest_trusted(batch, source="library")
            seconds.append(time.perf_counter() - started)
    return seconds


def pg_ingest(payloads: list[object], now: datetime) -> None:
    """Figure 1."""
    batches = _batches(payloads)
    with scratch_database("analytics_quick_ingest") as url:
        first, replay = bound_ingest(url.render_as_string(hide_password=False), batches, 2)
    events = [parse_event(decode_payload(p), now=now, raw_retention=timedelta(days=400))
              for p in payloads]
    with scratch_database("analytics_quick_copy") as url:
        storage = SqlStorage.from_url(url)
        copy = raw_copy(storage, events)
        storage.close()
    n = len(payloads)
    report("PostgreSQL ingest, first (use case / COPY)",
           f"{n / first:,.0f}/s = {copy / first:.3f}x", ">= 0.15x", copy / first / 0.15)
    report("PostgreSQL ingest, replay (use case / COPY)",
           f"{n / replay:,.0f}/s = {copy / replay:.3f}x", ">= 0.3x", copy / replay / 0.3)


def http_ingest(payloads: list[object], now: datetime, seconds: float) -> None:
    """Figures 2 and 5 against one served scratch database: one org's events, posted with
    that org's org_admin key (the producer's case: one authorization per request)."""
    n = len(payloads)
    org = json.loads(payloads[0])["orgId"]  # type: ignore[arg-type]
    with scratch_database("analytics_quick_inprocess") as url:
        # The use case as the service binds it (attribution, pricing, caches), called here.
        settings = attrs.evolve(Settings(), database_url=url.render_as_string(
            hide_password=False))
        with Application(settings) as application:
            scope = IngestScope(lambda orgs: None, uuid.UUID(org))
            batches = _batches(payloads)
            started = time.perf_counter()
            for batch in batches:
                application.use_cases.ingest(batch, scope)
            in_process = time.perf_counter() - started
    with scratch_database("analytics_quick_http") as url:
        port = _free_port()
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("ANALYTICS_")},
               "ANALYTICS_DATABASE_URL": url.render_as_string(hide_password=False),
               "ANALYTICS_PORT": str(port), "ANALYTICS_WORKERS": "1",
               "ANALYTICS_EMBEDDED_WORKER": "false", "ANALYTICS_LOG_LEVEL": "WARNING"}
        made = subprocess.run([*CLI, "apikey", "create", "--org", org, "--role", "org_admin",
                               "--name", "quick"],
                              env=env, capture_output=True, text=True, check=True)
        found = re.search(r"ak_\w+", made.stdout)
        assert found, made.stdout
        key = {"X-API-Key": found.group(0)}
        bodies = [json.dumps({"events": [json.loads(p) for p in payloads[i:i + BATCH]]})
                  for i in range(0, n, BATCH)]  # type: ignore[arg-type]
        with server([*CLI, "serve"], env, port, "/analytics/v1/status/healthz"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            started = time.perf_counter()
            for body in bodies:
                conn.request("POST", "/analytics/v1/events", body=body,
                             headers={**key, "Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                assert response.status == 202, response.status
            served = time.perf_counter() - started
            conn.close()
            ratio = in_process / served
            report("POST /events under gunicorn / in-process use case",
                   f"{n / served:,.0f}/s = {ratio:.2f}x", ">= 0.8x", ratio / 0.8)
            freshness = requests_per_second(port, f"/analytics/v1/orgs/{org}/freshness", key,
                                            seconds)
            health = requests_per_second(port, "/analytics/v1/status/healthz", {}, seconds)
        bare_port = _free_port()
        bare = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{bare_port}",
                "--workers", "1", "--threads", "4", "--worker-class",
                "analytics_app.http.read_ahead.ReadAheadWorker", "--chdir", str(HERE),
                "bare_falcon:app"]
        with server(bare, dict(os.environ), bare_port, "/json"):
            baseline = requests_per_second(bare_port, "/json", {}, seconds)
    for name, rate in (("GET /orgs/{org}/freshness", freshness),
                       ("GET /status/healthz", health)):
        report(f"{name} / bare Falcon (gunicorn)",
               f"{rate:,.0f}/s = {rate / baseline:.2f}x", ">= 0.5x", rate / baseline / 0.5)


def sqlite_ingest(payloads: list[object], now: datetime) -> None:
    """Figure 3."""
    with tempfile.TemporaryDirectory(prefix="analytics-quick-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'quick.db'}"
        migrate_to_head(url)
        (seconds,) = bound_ingest(url, _batches(payloads), 1)
    rate = len(payloads) / seconds
    report("SQLite ingest (use case)", f"{rate:,.0f}/s", ">= 15,000/s", rate / 15_000)


def _p95(run: Callable[[], object], repeat: int) -> float:
    run()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return samples[max(0, round(0.95 * len(samples)) - 1)]


def zone_reads(repeat: int) -> None:
    """Figure 4 on the largest org's 13 months."""
    name = f"analytics_quick_zones_{uuid.uuid4().hex[:8]}"
    url = build_largest_only(name)
    storage = SqlStorage.from_url(url)
    try:
        for tz in ZONES[1:]:
            zone_days.add_zone(storage.engine, tz, END)
        started = time.perf_counter()
        built = zone_days.build(storage.engine, END)
        print(f"  zone day tiers built for {', '.join(ZONES[1:])}: {built.days:,} org-days in "
              f"{time.perf_counter() - started:.1f} s ({built.transactions} transactions)",
              flush=True)
        with storage.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
        clock, progress = ManualClock(END), SynchronousPipeline()
        for days, target in ((7, 50.0), (31, 150.0)):
            for tz in ZONES:
                query = AnalyticsQuery(org_uuid(LARGEST_ORG), END - timedelta(days=days), END,
                                       Grain.DAY, tz)

                def read(q: AnalyticsQuery = query) -> object:
                    return reliability_body(query_analytics(
                        q, uow_factory=storage.unit_of_work, progress=progress, clock=clock),
                        "p95")

                p95 = _p95(read, repeat)
                report(f"reliability, largest org, {days}-day, {tz}", f"p95 {p95:.1f} ms",
                       f"<= {target:.0f} ms", target / p95)
    finally:
        storage.close()
        drop_database(name)


def main() -> None:
    """Run every reduced figure and print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=3.0, help="per requests/s figure")
    parser.add_argument("--repeat", type=int, default=20, help="reads per zone figure")
    args = parser.parse_args()
    started = time.monotonic()
    print(machine(), flush=True)
    now = datetime.now(UTC).replace(microsecond=0)
    span = timedelta(minutes=15)
    payloads: list[object] = list(EventFactory(seed=42).payloads(args.events, now - span, span))
    print("ingest (same events everywhere):", flush=True)
    pg_ingest(payloads, now)
    sqlite_ingest(payloads, now)
    print("served (gunicorn, one worker; one org's events):", flush=True)
    one_org = list(EventFactory(seed=43, orgs=1).payloads(args.events, now - span, span))
    http_ingest(one_org, now, args.seconds)
    print("zone reads (largest org only):", flush=True)
    zone_reads(args.repeat)
    met = sum(1 for *_, score in ROWS if score >= 1.0)
    print(f"{met} of {len(ROWS)} figures meet their targets; worst score "
          f"{min(score for *_, score in ROWS):.2f}; median "
          f"{statistics.median(score for *_, score in ROWS):.2f}; "
          f"{time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
